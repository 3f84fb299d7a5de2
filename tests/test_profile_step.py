"""benchmarks/profile_step.py: the pieces that run without perf (the sampling itself needs perf)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
_spec = importlib.util.spec_from_file_location("profile_step", BENCHMARKS / "profile_step.py")
assert _spec is not None and _spec.loader is not None
profile_step = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile_step)


def test_perf_script_lines_are_parsed_and_counted_by_region_inside_the_time_window():
    text = "\n".join(
        [
            "  100.000100:      7f0000001010 ([JIT] tid 7)",
            "  100.000200:      7f0000001010 ([JIT] tid 7)",
            "  100.000300:      7f0000001ff0 ([JIT] tid 7)",
            "  100.000400:      7f1234567890 (/usr/lib/x86_64-linux-gnu/libm.so.6)",
            "  100.000500:      7f2234567890 (/usr/lib/libpython3.11.so.1.0)",
            "  100.000600:  ffffffff816acff5 ([kernel.kallsyms])",
            "   99.000000:      7f0000001010 ([JIT] tid 7)",  # before the window: imports
            "  101.000000:      7f2234567890 (/usr/lib/libpython3.11.so.1.0)",  # after it: shutdown
            "garbage line",
        ]
    )
    samples = profile_step.parse_perf_script(text)
    assert len(samples) == 8 and samples[0] == (100.0001, 0x7F0000001010, "[JIT] tid 7")
    counts = profile_step.classify(samples, base=0x7F0000001000, size=0x1000, start=100.0, end=100.5)
    assert counts["total"] == 6
    assert counts["regions"] == {
        "step kernel (JIT)": 3,
        "libm (log10, pow, log2, ...)": 1,
        "Python interpreter": 1,
        "operating system": 1,
    }
    assert counts["offsets"].most_common() == [(0x10, 2), (0xFF0, 1)]


def test_child_dumps_the_mapping_of_the_compiled_step_and_the_sampling_window(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "profile_step.py"),
            "--child",
            str(tmp_path),
            "--batch",
            "2",
            "--episodes",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    code = json.loads((tmp_path / "code.json").read_text())
    assert code["base"] <= code["entry"] < code["base"] + code["size"]
    assert (tmp_path / "code.bin").stat().st_size == code["size"]
    window = json.loads((tmp_path / "window.json").read_text())
    assert window["start"] < window["end"]
    # The dumped bytes are machine code: the kernel's entry disassembles into instructions.
    entry = code["entry"] - code["base"]
    (lines,) = profile_step.disassembly_context(tmp_path / "code.bin", [entry], lines=3).values()
    assert 1 <= len(lines) <= 3 and lines[-1].strip().startswith(f"{entry:x}:")
    mnemonic = lines[-1].split("\t")[-1].split()[0]
    assert mnemonic.isalpha() and mnemonic != "bad"


def test_bad_batch_is_rejected_with_the_value():
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "profile_step.py"), "--batch", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "--batch must be >= 1, got 0" in proc.stderr
