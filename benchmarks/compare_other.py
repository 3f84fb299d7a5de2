"""Measure another Gymnasium simulator (e.g. the published MetaLore simulator) in its own interpreter.

The published MetaLore simulator is installed as ``mobile_env`` (2025) or as a package that is
also called ``metalore`` (2026), so it cannot share a process with this project. ``bench.py
--compare-python PATH`` runs this script with that interpreter; it imports only the standard
library, numpy and gymnasium besides the module under test, and prints one JSON line:

* ``steps_per_s``: steps/s with one fixed action (sampled once from the action space, seed 0),
  resets included, the same loop ``bench.py`` uses for its own single env;
* ``window_ms``: mean step time (ms) of consecutive windows of one long run (``--long-steps``;
  the episode is reset wherever it ends, which is recorded in ``resets_at``), to show whether
  the step time grows with the step index.

Usage (standalone)::

    /path/to/other/venv/bin/python benchmarks/compare_other.py --module mobile_env \\
        --id mobile-smart_city-smart_city_handler-v0 --long-steps 10000 \\
        --make-kwargs '{"config": {"EP_MAX_TIME": 10000}}'
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from typing import Any

WINDOW = 1_000


def measure(module: str, env_id: str, make_kwargs: dict[str, Any], seconds: float, long_steps: int) -> dict[str, Any]:
    """Steps/s and step time along one long run of ``env_id`` after ``import module``."""
    import gymnasium as gym

    importlib.import_module(module)  # registers the simulator's ids
    env = gym.make(env_id, **make_kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    action = env.action_space.sample()

    def run(count: int, times_s: list[float] | None = None, resets: list[int] | None = None) -> None:
        for i in range(count):
            start = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            if times_s is not None:
                times_s.append(time.perf_counter() - start)
            if terminated or truncated:
                env.reset()
                if resets is not None:
                    resets.append(i + 1)

    run(20)  # warm-up
    rates = []
    for _ in range(3):
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or steps < 100:
            run(20)
            steps += 20
        rates.append(steps / (time.perf_counter() - start))

    env.reset(seed=1)
    times_s: list[float] = []
    resets: list[int] = []
    run(long_steps, times_s, resets)
    windows = [times_s[i : i + WINDOW] for i in range(0, len(times_s), WINDOW)]
    return {
        "module": module,
        "id": env_id,
        "make_kwargs": make_kwargs,
        "python": platform.python_version(),
        "steps_per_s": max(rates),
        "steps_per_s_repeats": rates,
        "long_steps": long_steps,
        "window_steps": WINDOW,
        "window_ms": [1e3 * sum(w) / len(w) for w in windows],
        "resets_at": resets,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", required=True, help="module whose import registers the ids (e.g. mobile_env)")
    parser.add_argument("--id", required=True, dest="env_id", help="Gymnasium id to measure")
    parser.add_argument("--make-kwargs", default="{}", help="JSON object passed to gymnasium.make")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per steps/s repeat")
    parser.add_argument("--long-steps", type=int, default=10_000, help="steps of the step-time-vs-index run")
    args = parser.parse_args(argv)
    try:
        make_kwargs = json.loads(args.make_kwargs)
    except json.JSONDecodeError as exc:
        parser.error(f"--make-kwargs {args.make_kwargs!r} is not JSON ({exc}): pass an object such as '{{}}'")
    if not isinstance(make_kwargs, dict):
        parser.error(f"--make-kwargs {args.make_kwargs!r} is not a JSON object: pass e.g. '{{\"config\": {{}}}}'")
    if args.long_steps < WINDOW:
        parser.error(f"--long-steps {args.long_steps} is shorter than one {WINDOW}-step window: pass >= {WINDOW}")
    print(json.dumps(measure(args.module, args.env_id, make_kwargs, args.seconds, args.long_steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
