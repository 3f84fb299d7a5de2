"""Where the compiled step spends its time: sampled instruction addresses in the step kernel.

``perf record`` with the software ``cpu-clock`` event works on virtual machines without
hardware counters, but numba's machine code has no symbols, so ``perf report`` shows it as
anonymous addresses. This script closes that gap:

1. a child process builds a batch of paper environments, warms the kernel up, writes the
   bytes of the executable mapping that holds the compiled step (from ``/proc/self/maps``)
   and its base address to a work directory, then steps episodes under ``perf record``;
2. the parent reads the samples (``perf script``), counts them by region (the step code,
   libm, the rest) and by instruction offset in the step code, and prints the hottest
   instructions with the disassembly that leads up to them (``objdump`` on the saved bytes).

Usage::

    python benchmarks/profile_step.py                      # 64 envs, serial kernel
    python benchmarks/profile_step.py --batch 1024 --threads --top 15
    python benchmarks/profile_step.py --batch 1 --episodes 2000 --json /tmp/profile.json

Needs ``perf`` (Debian: ``linux-perf``) and ``objdump`` (``binutils``). A timer sample names
the instruction that was waiting to retire, usually the one after a stalled load, so read the
context lines above each hot offset. Comparing batch sizes shows what grows with the batch:
see docs/performance.md for what it showed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CONTEXT_LINES = 8


def child(workdir: Path, batch: int, episodes: int, threads: bool) -> None:
    """Step ``episodes`` episodes of ``batch`` paper environments after dumping the step code."""
    import ctypes
    import time

    import numpy as np

    from metalore import make_scenario
    from metalore.core.simulator import BatchSimulator

    sim = BatchSimulator(make_scenario("paper"), batch, parallel=threads)
    ids = np.arange(batch)
    sim.action[:] = 0.5
    sim.reset(ids, ids)
    sim.step()  # the environments' own path: the compiled overload, called without the dispatcher
    overload = next(iter(sim._step_kernel.overloads.values()))  # the kernel the simulator chose
    entry = overload.library.get_pointer_to_function(overload.fndesc.llvm_func_name)
    for line in Path("/proc/self/maps").read_text().splitlines():
        span, perms = line.split()[:2]
        lo, hi = (int(x, 16) for x in span.split("-"))
        if lo <= entry < hi and "x" in perms:
            (workdir / "code.bin").write_bytes(ctypes.string_at(lo, hi - lo))
            (workdir / "code.json").write_text(json.dumps({"base": lo, "size": hi - lo, "entry": entry}))
            break
    else:
        raise SystemExit(f"no executable mapping holds the step kernel's entry point {entry:#x}")
    # Only samples between these two moments count: not the imports, compilation and first
    # step before, nor the interpreter's shutdown (a full garbage collection) after.
    start = time.clock_gettime(time.CLOCK_MONOTONIC)
    for episode in range(episodes):
        sim.reset(ids, ids + 1_000 * (episode + 1))
        for _ in range(sim.params.steps):
            sim.step()
    end = time.clock_gettime(time.CLOCK_MONOTONIC)
    (workdir / "window.json").write_text(json.dumps({"start": start, "end": end}))


def classify(samples: list[tuple[float, int, str]], base: int, size: int, start: float, end: float) -> dict[str, Any]:
    """Count the ``(time, ip, dso)`` samples of ``[start, end]`` by region and by offset into the step code."""
    regions: collections.Counter[str] = collections.Counter()
    offsets: collections.Counter[int] = collections.Counter()
    samples = [(ip, dso) for when, ip, dso in samples if start <= when <= end]
    for ip, dso in samples:
        if base <= ip < base + size:
            regions["step kernel (JIT)"] += 1
            offsets[ip - base] += 1
        elif "libm" in dso:
            regions["libm (log10, pow, log2, ...)"] += 1
        elif "python" in dso:
            regions["Python interpreter"] += 1
        elif "kernel" in dso:
            regions["operating system"] += 1
        else:
            regions["other"] += 1
    return {"total": len(samples), "regions": dict(regions.most_common()), "offsets": offsets}


def parse_perf_script(text: str) -> list[tuple[float, int, str]]:
    """``(time, ip, dso)`` from ``perf script -F time,ip,dso`` lines like ``123.456789:  7f12ab (/lib/libm.so.6)``."""
    samples = []
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        try:
            when, ip = float(parts[0].rstrip(":")), int(parts[1], 16)
        except ValueError:
            continue
        samples.append((when, ip, parts[2].strip("() ") if len(parts) > 2 else ""))
    return samples


def disassembly_context(code: Path, offsets: list[int], lines: int = CONTEXT_LINES) -> dict[int, list[str]]:
    """The ``lines`` instructions up to and including each offset, from ``objdump`` of the raw code bytes."""
    listing = subprocess.run(
        ["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", "--adjust-vma=0", str(code)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    instructions, index = [], {}
    for line in listing:
        head = line.split(":", 1)[0].strip()
        try:
            address = int(head, 16)
        except ValueError:  # headers and blank lines
            continue
        index[address] = len(instructions)
        instructions.append(line)
    return {off: instructions[max(index[off] - lines + 1, 0) : index[off] + 1] for off in offsets if off in index}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="environments in the batch (default 64)")
    parser.add_argument("--episodes", type=int, default=0, help="episodes to sample (default: ~2 s of stepping)")
    parser.add_argument("--threads", action="store_true", help="profile the threaded kernel")
    parser.add_argument("--top", type=int, default=10, help="hottest instructions to show (default 10)")
    parser.add_argument("--frequency", type=int, default=4_000, help="samples per second (default 4000)")
    parser.add_argument("--json", type=Path, help="also write the counts to this file")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch must be >= 1, got {args.batch}")
    episodes = args.episodes or max(2, 60_000 // (100 * args.batch) * 5)
    if args.child is not None:
        child(args.child, args.batch, episodes, args.threads)
        return 0
    for tool, package in (("perf", "linux-perf"), ("objdump", "binutils")):
        if shutil.which(tool) is None:
            print(f"error: '{tool}' is not installed; install it (Debian: apt-get install {package})", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="metalore-profile-") as tmp:
        work = Path(tmp)
        data = work / "perf.data"
        cmd = [sys.executable, __file__, "--child", str(work), "--batch", str(args.batch), "--episodes", str(episodes)]
        if args.threads:
            cmd.append("--threads")
        # CLOCK_MONOTONIC time stamps, comparable with the moments the child writes to window.json.
        record = ["perf", "record", "-e", "cpu-clock", "-k", "CLOCK_MONOTONIC", "-F", str(args.frequency)]
        record += ["-o", str(data), "--", *cmd]
        run = subprocess.run(record, capture_output=True, text=True)
        if run.returncode != 0 or not (work / "window.json").exists():
            print(f"error: perf record failed (exit {run.returncode}):\n{run.stderr[-2000:]}", file=sys.stderr)
            print("hint: perf needs /proc/sys/kernel/perf_event_paranoid <= 2 for the cpu-clock event", file=sys.stderr)
            return 2
        code = json.loads((work / "code.json").read_text())
        script = subprocess.run(
            ["perf", "script", "-i", str(data), "-F", "time,ip,dso"], check=True, capture_output=True, text=True
        ).stdout
        window = json.loads((work / "window.json").read_text())
        counts = classify(parse_perf_script(script), code["base"], code["size"], window["start"], window["end"])
        in_kernel = sum(counts["offsets"].values())
        hottest = counts["offsets"].most_common(args.top)
        context = disassembly_context(work / "code.bin", [off for off, _ in hottest])
    mode = "threaded" if args.threads else "serial"
    print(f"paper scenario, {args.batch} envs, {mode} kernel, {episodes} episodes: {counts['total']} samples")
    for region, n in counts["regions"].items():
        print(f"  {region:32s} {n:7d}  {100 * n / max(counts['total'], 1):5.1f}%")
    print(f"\nhottest instructions of the step code (share of its {in_kernel} samples):")
    for off, n in hottest:
        print(f"\n{off:#07x}  {n} samples, {100 * n / max(in_kernel, 1):.1f}%")
        for line in context.get(off, []):
            print("    " + line.strip())
    if args.json is not None:
        payload = {
            "batch": args.batch,
            "threads": args.threads,
            "episodes": episodes,
            "total_samples": counts["total"],
            "regions": counts["regions"],
            "hottest": [{"offset": off, "samples": n, "context": context.get(off, [])} for off, n in hottest],
        }
        tmp_json = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp_json.write_text(json.dumps(payload, indent=1))
        os.replace(tmp_json, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
