"""Where the step time goes: per env-step cost with parts of the traffic silenced by config.

    python benchmarks/ablation.py

Each variant runs the unchanged kernel (serial, 256 environments, 100-step episodes) on a
configuration that removes one part of the work; the differences attribute the step time.
"""

from __future__ import annotations

import time

import numpy as np

from metalore.config import make_scenario
from metalore.core import BatchSimulator

VARIANTS = {
    "paper": {},
    "sensors silent": {"sensor": {"period_steps": 1_000_000}},
    "UEs silent": {"ue": {"request_probability": 0.0}},
    "all traffic silent": {"ue": {"request_probability": 0.0}, "sensor": {"period_steps": 1_000_000}},
    "static UEs": {"ue": {"mobility": "static"}},
}


def per_env_step_us(overrides: dict, batch: int = 256, steps: int = 400) -> float:
    sim = BatchSimulator(make_scenario("paper", overrides), batch, parallel=False)
    ids = np.arange(batch)
    sim.reset(ids, 111 + ids)
    action = np.full((batch, 1, 2), 0.5)
    sim.step(action)  # compile / warm up
    start = time.perf_counter()
    for i in range(steps):
        if i % 100 == 99:
            sim.reset(ids, ids + i)
        sim.step(action)
    return (time.perf_counter() - start) / steps / batch * 1e6


if __name__ == "__main__":
    for name, overrides in VARIANTS.items():
        print(f"{name:24s} {per_env_step_us(overrides):6.2f} us per env-step")
