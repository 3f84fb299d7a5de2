"""benchmarks/compare_other.py measures another simulator in a separate interpreter (here: CartPole)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "compare_other.py"), *args], capture_output=True, text=True, check=False
    )


def test_measures_steps_per_second_and_step_time_windows_of_another_simulator():
    proc = run_compare("--module", "gymnasium", "--id", "CartPole-v1", "--seconds", "0.05", "--long-steps", "2500")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["id"] == "CartPole-v1" and row["steps_per_s"] > 0 and len(row["steps_per_s_repeats"]) == 3
    assert len(row["window_ms"]) == 3 and all(w > 0 for w in row["window_ms"])  # 1,000 + 1,000 + 500 steps
    # a fixed action topples the pole within a few dozen steps: the episode restarts are recorded
    assert row["resets_at"] and row["resets_at"][0] < 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--make-kwargs", "{not json"), "is not JSON"),
        (("--make-kwargs", "[1]"), "is not a JSON object"),
        (("--long-steps", "10"), "shorter than one 1000-step window"),
    ],
)
def test_bad_arguments_are_named(args, message):
    proc = run_compare("--module", "gymnasium", "--id", "CartPole-v1", *args)
    assert proc.returncode == 2 and message in proc.stderr


def import_bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench
    finally:
        sys.path.remove(str(BENCHMARKS))
    return bench


def test_bench_table_shows_the_comparison_rows():
    bench = import_bench()
    rows = [
        {"module": "m", "id": "x-v0", "steps_per_s": 500.0, "long_steps": 2000, "window_steps": 1000,
         "window_ms": [2.0, 4.0], "resets_at": [2000]},
        {"module": "m", "id": "y-v0", "error": "Traceback ...\nNameNotFound: Environment y doesn't exist."},
    ]  # fmt: skip
    lines = bench.other_rows(rows, own_single_rate=50_000.0)
    text = "\n".join(lines)
    assert "m:x-v0  500.0 steps/s  (MetaLore paper single env: 100.0x faster)" in text
    assert "last/first 2.00" in text
    assert "m:y-v0  error: NameNotFound: Environment y doesn't exist." in text
    assert bench.other_rows(None, 1.0) == []


@pytest.mark.parametrize("lines", [1, 2, 37, 4096])
def test_memory_latency_probe_chases_every_line_once_per_cycle(lines):
    # The machine-speed probe times dependent loads along this cycle: it must visit every line
    # (else a smaller working set is timed) and use one slot per 64-byte line.
    bench = import_bench()
    nxt = bench.chase_cycle(lines, seed=lines)
    assert nxt.size == lines * 8
    seen, i = [], 0
    for _ in range(lines):
        seen.append(i)
        i = int(nxt[i])
    assert i == 0 and sorted(seen) == list(range(0, lines * 8, 8))
    assert not nxt.reshape(lines, 8)[:, 1:].any()  # the other slots of each line are never read


def test_machine_speed_lines_show_both_ends_of_the_run():
    bench = import_bench()
    start = {"python_loop_10M_s": 0.5, "load_latency_ns": {"256": 4.0, "8192": 20.0}}
    end = {"python_loop_10M_s": 1.5, "load_latency_ns": {"256": 4.5, "8192": 90.0}}
    lines = bench.speed_lines({"start": start, "end": end})
    assert lines == [
        "machine speed at the start: 10M-iteration Python loop 0.50 s;"
        " dependent-load latency (256 KiB, 8 MiB) 4.0 / 20.0 ns",
        "machine speed at the end: 10M-iteration Python loop 1.50 s;"
        " dependent-load latency (256 KiB, 8 MiB) 4.5 / 90.0 ns",
    ]
    assert bench.speed_lines(None) == []  # reports written before the probe existed


def test_cache_share_script_pairs_each_probe_with_a_stepping_rate(tmp_path):
    out = tmp_path / "share.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "cache_share.py"), "--samples", "2", "--envs", "4", "--steps", "3",
         "--json", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    samples = json.loads(out.read_text())["samples"]
    assert len(samples) == 2 and len(proc.stdout.strip().splitlines()) == 2
    for sample in samples:
        assert sample["envs"] == 4 and sample["env_steps_per_s"] > 0
        assert list(sample["load_latency_ns"]) == ["256", "1024", "2048", "4096", "8192", "32768", "262144"]
        assert all(ns > 0 for ns in sample["load_latency_ns"].values())
    bad = subprocess.run(
        [sys.executable, str(BENCHMARKS / "cache_share.py"), "--envs", "0"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "0 is not a positive integer" in bad.stderr
