"""How fast this machine is from second to second, and how the step kernel's time follows it.

The same code has stepped 1,024 environments at 293k and at 610k env-steps/s within one hour
on one machine (docs/performance.md, "What swings: the core, not the cache"). This script
interleaves, for ``--seconds``, short measurements of

* the core: an empty 300,000-iteration Python loop (~4-13 ms; branchy, load-heavy code, like
  the interpreter around the step and the step kernel itself);
* memory: dependent loads along a random cycle through 8 MiB (a few MiB is what a step of
  1,024 environments touches), 100,000 of them;
* the step kernel: a burst of ~16,384 env-steps at each ``--batches`` size (default 64, whose
  state stays cached, and 1,024), on this thread unless ``--threads``, after one untimed step
  (the probes evict the caches: bursts of 4 steps at 1,024 environments right after them
  measured ~1.5x the time per env-step of continuous stepping);

so that each sample holds all of them within ~0.1-0.2 s. It prints the samples' medians per time
bin, then for each batch size the correlation of its µs per env-step with the two probes, and
its medians in the quarter of the samples where the core probe was fastest and the quarter
where it was slowest::

    python benchmarks/swings.py                         # 60 s, serial kernel, 64 and 1,024 envs
    python benchmarks/swings.py --seconds 300 --json /tmp/swings.json
    python benchmarks/swings.py --threads               # threaded kernel (the probes run on one core)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # (the probes live there)

MEMORY_PROBE_MIB = 8
MEMORY_PROBE_HOPS = 100_000
ENV_STEPS_PER_BURST = 16_384


def positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text} is not a positive {kind.__name__}: pass {what} above 0")
        return value

    return parse


def correlation(xs: list[float], ys: list[float]) -> float:
    """Pearson's r of two equally long series (NaN when either is constant or shorter than 2)."""
    if len(xs) < 2 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return float("nan")
    return statistics.correlation(xs, ys)


def quartile_medians(probe: list[float], values: list[float]) -> tuple[float, float]:
    """Medians of ``values`` over the quarter of samples with the lowest and with the highest ``probe``.

    Each quarter holds at least one sample; with fewer than 4 samples the quarters overlap.
    """
    order = sorted(range(len(probe)), key=probe.__getitem__)
    quarter = max(1, len(order) // 4)
    return (
        statistics.median(values[i] for i in order[:quarter]),
        statistics.median(values[i] for i in order[-quarter:]),
    )


def summarize(samples: list[dict[str, Any]], batches: list[int]) -> dict[str, Any]:
    """Per batch size: median, correlation with each probe, and medians in the probe's fastest and slowest quarter."""
    core = [s["core_probe_ms"] for s in samples]
    memory = [s["load_ns"] for s in samples]
    out: dict[str, Any] = {}
    for batch in batches:
        us = [s["kernel_us"][str(batch)] for s in samples]
        fast, slow = quartile_medians(core, us)
        out[str(batch)] = {
            "median_us": statistics.median(us),
            "min_us": min(us),
            "max_us": max(us),
            "r_core_probe": correlation(us, core),
            "r_load_latency": correlation(us, memory),
            "fastest_core_quarter_us": fast,
            "slowest_core_quarter_us": slow,
        }
    out["core_probe_ms"] = {"min": min(core), "median": statistics.median(core), "max": max(core)}
    out["load_ns"] = {"min": min(memory), "median": statistics.median(memory), "max": max(memory)}
    return out


def bin_lines(samples: list[dict[str, Any]], batches: list[int], width_s: float) -> list[str]:
    """One line per ``width_s`` seconds: the medians of the samples taken then."""
    header = f"{'t (s)':>6} {'core probe ms':>14} {MEMORY_PROBE_MIB} MiB load ns " + " ".join(
        f"{f'{b:,} envs us':>14}" for b in batches
    )
    lines = [header]
    start = 0.0
    while samples and start <= samples[-1]["t_s"]:
        chunk = [s for s in samples if start <= s["t_s"] < start + width_s]
        if chunk:
            kernel = " ".join(f"{statistics.median(s['kernel_us'][str(b)] for s in chunk):>14.2f}" for b in batches)
            lines.append(
                f"{start:>6.0f} {statistics.median(s['core_probe_ms'] for s in chunk):>14.1f}"
                f" {statistics.median(s['load_ns'] for s in chunk):>15.0f} {kernel}"
            )
        start += width_s
    return lines


def summary_lines(summary: dict[str, Any], batches: list[int]) -> list[str]:
    core, load = summary["core_probe_ms"], summary["load_ns"]
    lines = [
        f"core probe {core['min']:.1f}-{core['max']:.1f} ms (median {core['median']:.1f});"
        f" {MEMORY_PROBE_MIB} MiB load {load['min']:.0f}-{load['max']:.0f} ns (median {load['median']:.0f})",
    ]
    for batch in batches:
        s = summary[str(batch)]
        lines.append(
            f"{batch:,} envs: {s['min_us']:.2f}-{s['max_us']:.2f} us per env-step (median {s['median_us']:.2f});"
            f" r with the core probe {s['r_core_probe']:.2f}, with the load latency {s['r_load_latency']:.2f};"
            f" median where the core probe was fastest / slowest (quarters) {s['fastest_core_quarter_us']:.2f}"
            f" / {s['slowest_core_quarter_us']:.2f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=positive(float), default=60.0, help="how long to sample (default 60)")
    parser.add_argument(
        "--batches", type=positive(int), nargs="+", default=[64, 1024], help="batch sizes (default 64 1024)"
    )
    parser.add_argument("--threads", action="store_true", help="step with the threaded kernel")
    parser.add_argument("--bin", type=positive(float), default=3.0, help="seconds per printed line (default 3)")
    parser.add_argument("--json", help="also write the samples and the summary to this file")
    args = parser.parse_args(argv)

    import numpy as np

    from metalore import make_scenario
    from metalore.core.simulator import BatchSimulator

    scenario = make_scenario("paper")
    sims = {b: BatchSimulator(scenario, batch=b, parallel=args.threads) for b in args.batches}
    episode, seed = scenario.steps, 0

    def restart(sim: BatchSimulator) -> None:
        nonlocal seed
        ids = np.arange(sim.batch)
        sim.reset(ids, ids + seed)
        seed += sim.batch

    for sim in sims.values():
        restart(sim)
        np.copyto(sim.action, 0.5)
        for _ in range(min(episode - 1, 150)):  # compiled, and the queues' pages touched
            sim.step()
        restart(sim)
    nxt = bench.chase_cycle(MEMORY_PROBE_MIB * 1024 * 1024 // bench.LINE_BYTES, seed=MEMORY_PROBE_MIB)
    bench.load_latency_ns(nxt, nxt.size // 8)  # compiled, and the cycle's pages touched

    samples: list[dict[str, Any]] = []
    started = time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        sample: dict[str, Any] = {"t_s": time.perf_counter() - started}
        sample["core_probe_ms"] = bench.python_loop_s(bench.CORE_PROBE_ITERATIONS) * 1e3
        sample["load_ns"] = bench.load_latency_ns(nxt, MEMORY_PROBE_HOPS)
        sample["kernel_us"] = {}
        for batch, sim in sims.items():
            steps = max(1, min(ENV_STEPS_PER_BURST // batch, episode - 1))
            if int(sim.state.t[0]) + 1 + steps > episode:  # (all environments of a burst share t)
                restart(sim)
            sim.step()  # untimed: refills the caches the probes (and the other batch) evicted
            start = time.perf_counter()
            for _ in range(steps):
                sim.step()
            sample["kernel_us"][str(batch)] = (time.perf_counter() - start) / (steps * batch) * 1e6
        samples.append(sample)

    summary = summarize(samples, args.batches)
    kernel = "threaded" if args.threads else "serial"
    print(f"{len(samples)} samples in {args.seconds:g} s, {kernel} kernel, paper scenario, split (0.5, 0.5)")
    print("\n".join(bin_lines(samples, args.batches, args.bin)))
    print("\n".join(summary_lines(summary, args.batches)))
    if args.json:
        from metalore.io import write_json  # atomic

        write_json(args.json, {"kernel": kernel, "samples": samples, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
