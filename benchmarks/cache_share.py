"""Vector-env rate at a large batch beside the machine-speed probe, sample after sample.

The rate at 1,024 environments swings by 2x on one machine, likely with the share of the host's
shared L3 the guest gets at the moment (docs/performance.md, "One session, one machine, the same
code"). This alternates
``bench.bench_machine_speed()`` (a Python loop and dependent-load latency by working-set size)
with stepping the vector env, so the two can be read side by side::

    python benchmarks/cache_share.py                      # 10 samples at 1,024 envs
    python benchmarks/cache_share.py --samples 30 --envs 256 --json /tmp/share.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # (the probe lives there)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer: pass 1 or more")
    return value


def sample_line(sample: dict[str, Any]) -> str:
    latency = " ".join(f"{bench.size_label(kib)} {ns:.0f}" for kib, ns in sample["load_latency_ns"].items())
    return (
        f"{sample['time']}  loop {sample['python_loop_10M_s']:.2f} s  latency (ns) {latency}"
        f"  | {sample['envs']:,} envs {sample['env_steps_per_s']:,.0f} env-steps/s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=positive, default=10, help="probe + stepping pairs (default 10)")
    parser.add_argument("--envs", type=positive, default=1024, help="vector env batch size (default 1,024)")
    parser.add_argument("--steps", type=positive, default=303, help="vector steps per sample (default 303)")
    parser.add_argument("--json", help="also write the samples to this file")
    args = parser.parse_args(argv)

    import numpy as np

    from metalore import MetaLoreVectorEnv

    venv = MetaLoreVectorEnv(args.envs, "paper")
    venv.reset(seed=0)
    actions = np.full((args.envs, 2), 0.5, dtype=np.float32)
    for _ in range(202):  # two episodes: compiled, and every queue page touched once
        venv.step(actions)
    samples = []
    for _ in range(args.samples):
        sample: dict[str, Any] = {"time": time.strftime("%H:%M:%S"), **bench.bench_machine_speed()}
        start = time.perf_counter()
        for _ in range(args.steps):
            venv.step(actions)
        sample["envs"] = args.envs
        sample["env_steps_per_s"] = args.steps * args.envs / (time.perf_counter() - start)
        samples.append(sample)
        print(sample_line(sample), flush=True)
    if args.json:
        from metalore.io import write_json  # atomic

        write_json(args.json, {"samples": samples})
    return 0


if __name__ == "__main__":
    sys.exit(main())
