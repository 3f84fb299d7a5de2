"""MetaLore performance benchmark: every target of the fast-path issue, measured on this machine.

Measures
  * time to first step, cold (empty numba cache, in a fresh subprocess) and warm (cached);
    the difference is the one-off compile time, reported separately;
  * single-env steps/s through ``gymnasium.make("MetaLore/Paper-v0")`` with a fixed action;
  * raw core steps/s (``BatchSimulator``, batch of one);
  * native vector env env-steps/s at batch sizes 1, 16, 64, 256, 1024 (paper scenario), and the
    Stable-Baselines3 adapter at two sizes when SB3 is installed;
  * when torch is installed, the vector env's stepping rate with a small PyTorch policy's
    inference before every step (as in training) against a constant action, alternated;
  * step time vs step index over one 100,000-step episode (first vs last 1,000 steps);
  * peak RSS vs episode length (1k vs 100k steps, job log off, each in its own subprocess);
  * per-step time vs devices (UEs, sensors) and vs base stations;
  * optionally the same single-env rate for ``mobile-env`` scenarios when it is installed, and
    (``--compare-python``) steps/s and step time vs step index of another simulator, such as the
    published MetaLore simulator, run in its own interpreter by ``compare_other.py``.

Each run also measures how fast the machine is at its start and end (an interpreted loop and
memory latency by working-set size) and, before every timed repeat, runs a short core probe (an
interpreted loop, recorded beside the repeat's rate), so that runs on machines of the same kind
but of different speed, or a machine that changed speed during a run, can be told apart.

Every target is printed with measured/target and PASS/FAIL; the table and all raw numbers
(repeats, per-block step times, machine description) go to a JSON file.

Usage::

    python benchmarks/bench.py            # full run (about 5 minutes on 2 cores)
    python benchmarks/bench.py --quick    # about a minute: shorter timings, one long-episode replay,
                                          # and no cold compile of the threaded vector kernel (~30 s)
    python benchmarks/bench.py --out my.json
    python benchmarks/bench.py --compare-python /path/to/published/venv/bin/python \
        --compare-module mobile_env --compare-id mobile-smart_city-smart_city_handler-v0 \
        --compare-make-kwargs '{"config": {"EP_MAX_TIME": 10000}}'

Rates are the best of several timed repeats (the median is reported alongside): other
processes on a small machine only ever slow a run down.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PAPER_ID = "MetaLore/Paper-v0"
VECTOR_BATCHES = (1, 16, 64, 256, 1024)
DEVICE_SIZES = ((10, 15), (100, 100), (300, 300), (1000, 1000))
BS_COUNTS = (1, 3, 9)
LONG_EPISODE = 100_000
WINDOW = 1_000
RSS_LENGTHS = (1_000, 100_000)
MOBILE_ENV_IDS = ("mobile-small-central-v0", "mobile-medium-central-v0", "mobile-large-central-v0")

# The targets on this machine (paper scenario).
TARGET_SINGLE_STEPS_PER_S = 30_000.0
TARGET_VECTOR_STEPS_PER_S = 500_000.0  # at 1,024 envs
TARGET_FLAT_STEP_TIME = 0.10  # |last 1,000 / first 1,000 - 1|
TARGET_FLAT_RSS = 0.10  # peak RSS at 100k steps vs 1k steps, relative growth
# Log-log slope of per-step time vs device count: 1 is linear. A linear simulator measures 1 give
# or take noise, so "no worse than linear" allows the 10% the other timing targets allow: the
# per-device cost at 10x the devices at most 1.1 times that at 1x, i.e. a slope <= 1 + log10(1.1).
TARGET_SCALING_SLOPE = 1.0 + math.log10(1.10)
# Back-to-back rounds of the scaling configurations whose median slope the scaling checks judge.
SCALING_ROUNDS = 15


# --------------------------------------------------------------------------- helpers
def machine_info() -> dict[str, Any]:
    import gymnasium
    import llvmlite.binding
    import numba
    import numpy

    import metalore

    cpu = platform.processor() or "unknown"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": cpu_field("model name") or cpu,
        # The model name alone does not tell the machines of this kind apart ("AMD EPYC" has been
        # a Zen 3 with 512 KiB of L2 per core and a Zen 4 with 1 MiB, about 2x apart in speed):
        # LLVM's name for the host CPU (what numba compiles for), the CPUID numbers and the caches do.
        "llvm_cpu": llvmlite.binding.get_host_cpu_name(),
        "cpu_family_model_stepping": [cpu_field(key) for key in ("cpu family", "model", "stepping")],
        "caches": cpu_caches(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": threading_layer(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "gymnasium": gymnasium.__version__,
        "metalore": metalore.__version__,
    }


def cpu_field(key: str) -> str | None:
    """The first value of ``key`` in /proc/cpuinfo (e.g. "model name", "cpu family"), None if absent."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return None


def cpu_caches(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> dict[str, str]:
    """CPU 0's caches as {"L1d": "32K", "L2": "1024K", ...} (sysfs, per core); {} where unreadable."""
    caches: dict[str, str] = {}
    for index in sorted(root.glob("index*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches[f"L{level}{suffix}"] = size
    return caches


# Working sets of the memory-latency probe: within a core's L2, about what the 1,024-environment
# vector env touches per step (a few MiB), and well beyond the host's shared L3 (DRAM).
LATENCY_WORKING_SETS_KIB = (256, 1024, 2 * 1024, 4 * 1024, 8 * 1024, 32 * 1024, 256 * 1024)
LINE_BYTES = 64
LATENCY_HOPS = 1_000_000  # per timed chase: ~0.2 s at main memory's latency
# The TLB probe: 4,096 lines (256 KiB, cache-resident) chased contiguously, then one per 4 KiB
# page (16 MiB apart in all; +64 bytes per page so that they spread over the cache sets). The
# second pays a TLB miss per load once the pages outnumber what the TLB maps.
TLB_PROBE_LINES = 4096
TLB_PROBE_STRIDE_BYTES = 4096 + LINE_BYTES
# The core probe before every timed repeat: an empty Python loop of ~5-10 ms on this machine kind.
CORE_PROBE_ITERATIONS = 300_000


def chase_cycle(lines: int, seed: int = 0, stride_bytes: int = LINE_BYTES) -> Any:
    """A random single cycle through ``lines`` cache lines: ``nxt[i * stride_bytes // 8]`` holds the next one's slot.

    The lines are linked in a random order, the last back to the first, so a chase visits every
    line before it repeats; one int64 per line is used (lines ``stride_bytes`` apart), so every
    hop loads a different line, in an order no prefetcher can guess.
    """
    import numpy as np

    if stride_bytes < LINE_BYTES or stride_bytes % 8:
        raise ValueError(f"stride_bytes={stride_bytes}: use a multiple of 8 of at least one line ({LINE_BYTES})")
    order = np.random.default_rng(seed).permutation(lines) * (stride_bytes // 8)
    nxt = np.zeros(lines * (stride_bytes // 8), dtype=np.int64)
    nxt[order] = np.roll(order, -1)
    return nxt


def bench_machine_speed() -> dict[str, Any]:
    """How fast this machine is now: a 10-million-iteration Python loop, and ns per dependent load.

    The machines of this project's kind (2-core KVM guests) have differed by 3-4x in interpreted
    speed between sessions, and within a session each core switches between two speeds every
    few seconds (docs/performance.md, "What swings"); these numbers let two runs be compared.
    Best of 3 each.
    """
    loop_s = [python_loop_s(10_000_000) for _ in range(3)]
    latency = {}
    for kib in LATENCY_WORKING_SETS_KIB:
        nxt = chase_cycle(kib * 1024 // LINE_BYTES, seed=kib)
        load_latency_ns(nxt, nxt.size // 8)  # compile, and bring the working set in once
        latency[str(kib)] = min(load_latency_ns(nxt, LATENCY_HOPS) for _ in range(3))
    pages = {}
    for layout, stride in (("contiguous", LINE_BYTES), ("one_per_page", TLB_PROBE_STRIDE_BYTES)):
        nxt = chase_cycle(TLB_PROBE_LINES, seed=1, stride_bytes=stride)
        load_latency_ns(nxt, TLB_PROBE_LINES)
        pages[layout] = min(load_latency_ns(nxt, LATENCY_HOPS) for _ in range(3))
    return {"python_loop_10M_s": min(loop_s), "load_latency_ns": latency, "page_spread_latency_ns": pages}


def python_loop_s(iterations: int) -> float:
    """Seconds of an empty interpreted ``for`` loop: how fast the core runs branchy code right now."""
    start = time.perf_counter()
    for _ in range(iterations):
        pass
    return time.perf_counter() - start


@functools.cache
def _chase_kernel() -> Callable[[Any, int], int]:
    import numba

    @numba.njit(cache=False)
    def chase(nxt: Any, hops: int) -> int:
        i = 0
        for _ in range(hops):
            i = nxt[i]
        return i

    return chase  # type: ignore[no-any-return]


def load_latency_ns(nxt: Any, hops: int) -> float:
    """ns per load of one timed chase of ``hops`` dependent loads along ``nxt`` (a ``chase_cycle``)."""
    chase = _chase_kernel()
    start = time.perf_counter()
    chase(nxt, hops)
    return (time.perf_counter() - start) / hops * 1e9


def threading_layer() -> str:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process
        return "not started"


def timed_rate(step_chunk: Callable[[], int], min_seconds: float, min_steps: int, repeats: int) -> dict[str, Any]:
    """Steps/s of ``step_chunk`` (which runs some steps and returns how many), best and median of repeats.

    Each repeat is preceded by the core probe (``CORE_PROBE_ITERATIONS`` of an empty Python loop,
    in ms; not part of the timing), so that a repeat's rate can be read against how fast the core
    ran just before it: this machine's core speed swings by ~1.5x every few seconds.
    """
    rates, probes = [], []
    for _ in range(repeats):
        probes.append(python_loop_s(CORE_PROBE_ITERATIONS) * 1e3)
        steps, start = 0, time.perf_counter()
        while True:
            steps += step_chunk()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds and steps >= min_steps:
                break
        rates.append(steps / elapsed)
    return {"best": max(rates), "median": statistics.median(rates), "repeats": rates, "core_probe_ms": probes}


def cpu_ticks() -> list[int] | None:
    """The machine's CPU time counters (``/proc/stat``: user, nice, system, idle, iowait, irq, softirq, steal).

    None where there is no such file (not Linux) or it has no steal column.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    return [int(x) for x in fields[1:9]]


def steal_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share (%) of the CPU time between two ``cpu_ticks`` readings that the hypervisor gave to others."""
    if before is None or after is None:
        return None
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta)
    return 100.0 * delta[7] / total if total > 0 else None


def run_child(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run this script in a fresh interpreter in child mode and return the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scaled_config(ues: int, sensors: int, num_bs: int = 1) -> dict[str, Any]:
    """Paper scenario with more devices and BSs: area, annulus and resources grow with the device count.

    Bandwidth and compute scale with the number of devices (so the load per device stays the
    paper's); the area grows with the devices so placement stays feasible and cells stay
    connected; BSs sit on a grid and share the totals.
    """
    scale = (ues + sensors) / 25.0
    side = 200.0 * math.sqrt(scale) if scale > 1 else 200.0
    cols = math.ceil(math.sqrt(num_bs))
    rows = math.ceil(num_bs / cols)
    positions = [[side * (c + 0.5) / cols, side * (r + 0.5) / rows] for r in range(rows) for c in range(cols)][:num_bs]
    return {
        "area": {"width_m": side, "height_m": side},
        "bs": {
            "positions_m": positions,
            "bandwidth_hz": 100.0e6 * scale / num_bs,
            "compute_units_per_s": 100.0 * scale / num_bs,
        },
        "ue": {"count": ues},
        "sensor": {
            "count": sensors,
            "placement": {
                "min_distance_m": 10.0,
                "max_distance_m": max(90.0, 0.45 * side / math.sqrt(num_bs)),
                "min_separation_m": 10.0 if scale > 1 else 20.0,
            },
        },
    }


# --------------------------------------------------------------------------- children (fresh processes)
def child_first_step(with_vector: bool) -> dict[str, Any]:
    start = time.perf_counter()
    import gymnasium as gym
    import numpy as np

    import metalore  # noqa: F401  (registers the ids)

    imported = time.perf_counter()
    env = gym.make(PAPER_ID)
    env.reset(seed=0)
    env.step(np.array([0.5, 0.5], dtype=np.float32))
    first_step = time.perf_counter()
    result = {"import_s": imported - start, "single_first_step_s": first_step - start}
    if with_vector:
        venv = gym.make_vec(PAPER_ID, num_envs=1024, vectorization_mode="vector_entry_point")
        venv.reset(seed=0)
        venv.step(np.full((1024, 2), 0.5, dtype=np.float32))
        result["vector_1024_first_step_s"] = time.perf_counter() - first_step
    return result


def peak_rss_kib() -> int:
    """Peak resident set size of this process image (KiB).

    ``VmHWM`` starts afresh at ``exec``; ``ru_maxrss`` (the fallback) keeps the peak of the
    process that forked us on Linux, so it would report the parent's memory.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


PARALLEL_WARMUP_ENVS = 64  # a threaded batch (same compiled overloads as 1,024 envs), small in memory


def child_rss(steps: int) -> dict[str, Any]:
    import gymnasium as gym
    import numpy as np

    import metalore  # noqa: F401

    action = np.array([0.5, 0.5], dtype=np.float32)
    # A 2-step episode first, so that every compiled function an episode needs up to its end is
    # loaded (or compiled, if the cache lacks it: ~20 MiB of LLVM) before the baseline is read.
    # One full run measured +23 MiB in the 1,000-step child and +5 in the 100,000-step one: the
    # first child had compiled the episode summary, which then sat in the cache for the second.
    warm = gym.make(PAPER_ID, config={"episode": {"steps": 2}})
    warm.reset(seed=0)
    while not warm.step(action)[3]:
        pass
    env = gym.make(PAPER_ID, config={"episode": {"steps": steps}})
    env.reset(seed=0)
    before = peak_rss_kib()
    truncated = False
    while not truncated:
        _, _, _, truncated, _ = env.step(action)
    return {
        "steps": steps,
        "peak_rss_kib_before_episode": before,
        "peak_rss_kib": peak_rss_kib(),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def child_rss_vector(num_envs: int, steps: int) -> dict[str, Any]:
    import numpy as np

    from metalore import MetaLoreVectorEnv

    warm = MetaLoreVectorEnv(PARALLEL_WARMUP_ENVS, "paper", {"episode": {"steps": 2}}, parallel=True)
    warm.reset(seed=0)  # as in child_rss: the threaded kernel and the read-outs, loaded before the baseline
    for _ in range(3):  # to the episode end and its autoreset
        warm.step(np.full((PARALLEL_WARMUP_ENVS, 2), 0.5, dtype=np.float32))
    venv = MetaLoreVectorEnv(num_envs, "paper", {"episode": {"steps": steps}})
    venv.reset(seed=0)
    actions = np.full((num_envs, 2), 0.5, dtype=np.float32)
    before = peak_rss_kib()
    for _ in range(steps):
        venv.step(actions)
    return {"num_envs": num_envs, "steps": steps, "peak_rss_kib_before_episode": before, "peak_rss_kib": peak_rss_kib()}


# --------------------------------------------------------------------------- measurements
def bench_first_step(cold_vector: bool) -> dict[str, Any]:
    """Fresh-process start-up, cold and warm; ``cold_vector`` also compiles the threaded kernel cold (~30 s)."""
    with tempfile.TemporaryDirectory(prefix="metalore-numba-cold-") as empty_cache:
        cold = run_child(["first-step", "vector" if cold_vector else "single"], {"NUMBA_CACHE_DIR": empty_cache})
    run_child(["first-step", "vector"])  # fills the regular cache if the sources changed
    warm = run_child(["first-step", "vector"])
    result = {"cold": cold, "warm": warm, "compile_s": cold["single_first_step_s"] - warm["single_first_step_s"]}
    if cold_vector:
        result["vector_compile_s"] = cold["vector_1024_first_step_s"] - warm["vector_1024_first_step_s"]
    return result


def bench_single_env(min_seconds: float, repeats: int) -> dict[str, Any]:
    import gymnasium as gym
    import numpy as np

    env = gym.make(PAPER_ID)
    env.reset(seed=0)
    action = np.array([0.5, 0.5], dtype=np.float32)

    def chunk() -> int:
        for _ in range(1_000):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return 1_000

    chunk()  # warm-up (first call checks the env, touches the caches)
    return timed_rate(chunk, min_seconds, 2_000, repeats)


def bench_core(min_seconds: float, repeats: int) -> dict[str, Any]:
    import numpy as np

    from metalore import make_scenario
    from metalore.core.simulator import BatchSimulator

    sim = BatchSimulator(make_scenario("paper"), batch=1, parallel=False)
    sim.reset([0], [0])
    sim.action[:] = 0.5  # the simulator's own buffer: the direct entry the single env uses
    ids = np.zeros(1, np.int64)
    t, steps = sim.state.t, sim.params.steps

    def chunk() -> int:
        for _ in range(1_000):
            sim.step()
            if t[0] >= steps:
                sim.reset(ids, sim.next_seeds(ids))
        return 1_000

    chunk()
    return timed_rate(chunk, min_seconds, 2_000, repeats)


def bench_vector(min_seconds: float, repeats: int) -> dict[str, Any]:
    import numpy as np

    from metalore import MetaLoreVectorEnv

    out = {}
    for batch in VECTOR_BATCHES:
        venv = MetaLoreVectorEnv(batch, "paper")
        venv.reset(seed=0)
        actions = np.full((batch, 2), 0.5, dtype=np.float32)
        steps_per_chunk = max(1, 20_000 // batch)

        def chunk(venv: MetaLoreVectorEnv = venv, actions: np.ndarray = actions, n: int = steps_per_chunk) -> int:
            for _ in range(n):
                venv.step(actions)
            return n * venv.num_envs

        chunk()
        rate = timed_rate(chunk, min_seconds, 201 * batch, repeats)  # >= 2 episodes incl. autoresets
        rate["threads"] = venv.sim._step_kernel.__name__ == "step_envs_parallel"
        out[str(batch)] = rate
    return out


def bench_sb3(min_seconds: float, repeats: int) -> dict[str, Any] | None:
    try:
        from metalore.sb3 import make_sb3_vec_env
    except ImportError:
        return None
    import numpy as np

    out = {}
    # (the full infos, DummyVecEnv's; and at 1,024 envs also the lean ones, step_info=False)
    for batch, step_info in ((16, True), (1024, True), (1024, False)):
        vec_env = make_sb3_vec_env(PAPER_ID, batch, seed=0, step_info=step_info)
        vec_env.reset()
        actions = np.full((batch, 2), 0.5, dtype=np.float32)
        steps_per_chunk = max(1, 20_000 // batch)

        def chunk(vec_env: Any = vec_env, actions: np.ndarray = actions, n: int = steps_per_chunk) -> int:
            for _ in range(n):
                vec_env.step(actions)
            return n * vec_env.num_envs

        chunk()
        out[str(batch) if step_info else f"{batch}-lean"] = timed_rate(chunk, min_seconds, 201 * batch, repeats)
    return out


def bench_policy_loop(batches: tuple[int, ...], steps: int, rounds: int) -> dict[str, Any] | None:
    """The vector env beside a PyTorch learner: a 2 x 64 MLP computes the actions before every step.

    Training alternates policy inference and env steps in one process; the two compete for the
    cores (numba's threads and torch's), so the stepping rate is measured both ways, alternated
    ``rounds`` times: ``steps`` steps with the policy's actions (stepping time only, inference
    timed apart) and as many with a constant action.
    """
    try:
        import torch
    except ImportError:
        return None
    import numpy as np

    from metalore import MetaLoreVectorEnv

    torch.manual_seed(0)
    out: dict[str, Any] = {}
    for batch in batches:
        venv = MetaLoreVectorEnv(batch, "paper")
        obs, _ = venv.reset(seed=0)
        size = venv.single_observation_space.shape[0]
        net = torch.nn.Sequential(
            torch.nn.Linear(size, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2)
        )
        constant = np.full((batch, 2), 0.5, dtype=np.float32)
        venv.step(constant)
        with_policy, without, inference = [], [], []
        for _ in range(rounds):
            for policy in (True, False):
                step_s = infer_s = 0.0
                for _ in range(steps):
                    t0 = time.perf_counter()
                    if policy:
                        with torch.no_grad():
                            actions = torch.sigmoid(net(torch.as_tensor(obs))).numpy()
                    else:
                        actions = constant
                    t1 = time.perf_counter()
                    obs = venv.step(actions)[0]
                    step_s += time.perf_counter() - t1
                    infer_s += t1 - t0
                (with_policy if policy else without).append(batch * steps / step_s)
                if policy:
                    inference.append(infer_s / steps * 1e3)
        out[str(batch)] = {
            "with_policy": with_policy,
            "without": without,
            "inference_ms": inference,
            "torch_threads": torch.get_num_threads(),
        }
    return out


def bench_step_index(replays: int) -> dict[str, Any]:
    """Per-step time along one 100,000-step episode: first vs last 1,000 steps.

    One continuous pass gives the timeline. A 1,000-step window lasts about 30 ms, so one
    preemption by another process shifts its mean by several percent; therefore the state is
    also snapshotted at the start of both windows (state is plain arrays) and each window is
    replayed ``replays`` times from its snapshot, alternating first and last, doing exactly the
    same work each time. The check uses the median over the replay pairs of (last window's
    mean step time / first window's), each pair run back to back: this machine switches
    between speeds about 2x apart every few seconds (one run's replays: 15-16 us in one
    stretch, 25-34 us around it), so the median of each window's replays alone can fall on
    different speeds for the two windows; a pair shares the machine's speed.
    """
    import gymnasium as gym
    import numpy as np

    env = gym.make(PAPER_ID, config={"episode": {"steps": LONG_EPISODE}})
    shell = env.unwrapped
    sim = shell.sim
    action = np.array([0.5, 0.5], dtype=np.float32)
    env.reset(seed=1)
    for _ in range(2_000):  # warm-up on another episode (env checker, caches)
        env.step(action)
    clock = time.perf_counter_ns
    step = env.step

    def run(times_ns: np.ndarray) -> None:
        for i in range(len(times_ns)):
            start = clock()
            step(action)
            times_ns[i] = clock() - start

    def replay_window(snapshot: list[np.ndarray]) -> float:
        for field, saved in zip(sim.state, snapshot, strict=True):
            np.copyto(field, saved)
        shell._needs_reset = False  # the shell's only state: the restored episode is running
        window = np.empty(WINDOW, dtype=np.int64)
        run(window)
        return float(window.mean() / 1e3)

    env.reset(seed=0)
    start_snapshot = [field.copy() for field in sim.state]
    timeline = np.empty(LONG_EPISODE, dtype=np.int64)
    run(timeline[: LONG_EPISODE - WINDOW])
    end_snapshot = [field.copy() for field in sim.state]
    run(timeline[LONG_EPISODE - WINDOW :])
    queues = sim.state.bq_len[0].tolist()
    # Replays alternate between the two windows, so a burst of load from other processes
    # falls on both alike; one extra pair first warms the caches for both.
    replay_window(start_snapshot), replay_window(end_snapshot)
    first_replays, last_replays = [], []
    for _ in range(replays):
        first_replays.append(replay_window(start_snapshot))
        last_replays.append(replay_window(end_snapshot))
    first, last = timeline[:WINDOW] / 1e3, timeline[-WINDOW:] / 1e3
    pair_ratios = [b / a for a, b in zip(first_replays, last_replays, strict=True)]
    return {
        "first_mean_us": statistics.median(first_replays),
        "last_mean_us": statistics.median(last_replays),
        "ratio": statistics.median(pair_ratios),
        "ratio_of_medians": statistics.median(last_replays) / statistics.median(first_replays),
        "pair_ratios": pair_ratios,
        "first_replay_means_us": first_replays,
        "last_replay_means_us": last_replays,
        "pass_first_mean_us": float(first.mean()),
        "pass_last_mean_us": float(last.mean()),
        "pass_ratio": float(last.mean() / first.mean()),
        "pass_median_ratio": float(np.median(last) / np.median(first)),
        "block_means_us": (timeline.reshape(10, -1).mean(axis=1) / 1e3).tolist(),
        "final_mec_queue_lengths": queues,
    }


def bench_rss() -> dict[str, Any]:
    runs = [run_child(["rss", str(n)]) for n in RSS_LENGTHS]
    return {
        "runs": runs,
        "ratio": runs[-1]["peak_rss_kib"] / runs[0]["peak_rss_kib"],
        "vector_1024": run_child(["rss-vector", "1024", "1000"]),
    }


def scaling_runner(config: dict[str, Any]) -> dict[str, Any]:
    """Chunks of 50 steps of the raw core (step + observe) and of the Gymnasium env, resets included."""
    import gymnasium as gym
    import numpy as np

    from metalore import make_scenario
    from metalore.core.simulator import BatchSimulator

    scenario = make_scenario("paper", config)
    sim = BatchSimulator(scenario, batch=1, parallel=False)
    sim.reset([0], [0])
    action = np.full((1, scenario.num_bs, 2), 0.5)
    ids = np.zeros(1, np.int64)

    def core_chunk() -> int:
        for _ in range(50):
            sim.step(action)
            sim.observe()
            if sim.truncated()[0]:
                sim.reset(ids, sim.next_seeds(ids))
        return 50

    env = gym.make(PAPER_ID, config=config)
    env.reset(seed=0)
    flat = np.full(2 * scenario.num_bs, 0.5, dtype=np.float32)

    def env_chunk() -> int:
        for _ in range(50):
            _, _, _, truncated, _ = env.step(flat)
            if truncated:
                env.reset()
        return 50

    core_chunk()
    env_chunk()
    return {"core": core_chunk, "env": env_chunk, "min_steps": 2 * scenario.steps + 1, "sim": sim}


def per_step_us(runners: list[dict[str, Any]], min_seconds: float, repeats: int) -> list[dict[str, Any]]:
    """Per-step time (µs) of the raw core and of the Gymnasium env for each runner, measured interleaved.

    Every repeat times each config once, in turn, so that all sizes see the same phases of a
    machine whose speed drifts over seconds (measured one after the other, two identical
    configs of one run differed by a third); best and median over the repeats.
    """
    core: list[list[float]] = [[] for _ in runners]
    env: list[list[float]] = [[] for _ in runners]
    for _ in range(repeats):
        for i, runner in enumerate(runners):
            core[i] += timed_rate(runner["core"], min_seconds, runner["min_steps"], 1)["repeats"]
            env[i] += timed_rate(runner["env"], min_seconds, runner["min_steps"], 1)["repeats"]
    return [
        {
            "core_us": 1e6 / max(core_rates),
            "env_us": 1e6 / max(env_rates),
            "core_us_median": 1e6 / statistics.median(core_rates),
            "env_us_median": 1e6 / statistics.median(env_rates),
            "connected_fraction": float((runner["sim"].state.assoc[0] >= 0).mean()),
        }
        for runner, core_rates, env_rates in zip(runners, core, env, strict=True)
    ]


def round_slopes(groups: list[list[tuple[int, dict[str, Any]]]], window_s: float, rounds: int) -> list[list[float]]:
    """Per group of (size, runner) pairs: the log-log slope of the core's per-step time, once per round.

    A round times every runner of a group once, back to back, in windows of ``window_s`` (order
    reversed every other round), so that the sizes compared within a round ran at the same machine
    speed. This machine switches between speeds ~1.5x apart every few seconds; a slope between
    best-of-repeats of 1-second windows compared one size's fast moments with another's slow
    ones (one run measured the 100 + 100 configuration at 40.1 and 35.9 µs best, in two
    instances, and the device slope at 1.04 from it; 15 rounds right after gave a median of 0.94).
    """
    slopes: list[list[float]] = [[] for _ in groups]
    for r in range(rounds):
        for g, group in enumerate(groups):
            us = {}
            for size, runner in group if r % 2 == 0 else group[::-1]:
                us[size] = 1e6 / timed_rate(runner["core"], window_s, runner["min_steps"], 1)["best"]
            slopes[g].append(loglog_slope([(size, us[size]) for size, _ in group]))
    return slopes


def loglog_slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(time) against log(size): 1 = linear growth, below 1 = better."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def worst_step(points: list[tuple[int, float]]) -> float:
    """Worst (time growth) / (size growth) between consecutive sizes; 1 = linear."""
    return max((t2 / t1) / (n2 / n1) for (n1, t1), (n2, t2) in itertools.pairwise(points))


def bench_scaling(min_seconds: float, repeats: int, rounds: int) -> dict[str, Any]:
    device_configs = [{} if size == (10, 15) else scaled_config(*size) for size in DEVICE_SIZES]
    bs_configs = [scaled_config(100, 100, num_bs) for num_bs in BS_COUNTS]
    runners = [scaling_runner(config) for config in device_configs + bs_configs]
    timings = per_step_us(runners, min_seconds, repeats)
    devices = [
        {"ues": ues, "sensors": sensors, **timing}
        for (ues, sensors), timing in zip(DEVICE_SIZES, timings[: len(DEVICE_SIZES)], strict=True)
    ]
    cells = [
        {"bs": num_bs, "ues": 100, "sensors": 100, **timing}
        for num_bs, timing in zip(BS_COUNTS, timings[len(DEVICE_SIZES) :], strict=True)
    ]
    # Growth is judged from 100 + 100 devices on: below that, fixed per-step costs dominate.
    big = [i for i, (ues, _) in enumerate(DEVICE_SIZES) if ues >= 100]
    device_group = [(sum(DEVICE_SIZES[i]), runners[i]) for i in big]
    bs_group = list(zip(BS_COUNTS, runners[len(DEVICE_SIZES) :], strict=True))
    device_rounds, bs_rounds = round_slopes([device_group, bs_group], min_seconds * 0.3, rounds)
    core = [(d["ues"] + d["sensors"], d["core_us"]) for d in devices if d["ues"] >= 100]
    env = [(d["ues"] + d["sensors"], d["env_us"]) for d in devices if d["ues"] >= 100]
    bs = [(c["bs"], c["core_us"]) for c in cells]
    return {
        "devices": devices,
        "base_stations": cells,
        # The checks' values: medians over back-to-back rounds (see round_slopes).
        "device_slope_core_rounds": device_rounds,
        "device_slope_core_median": statistics.median(device_rounds),
        "bs_slope_core_rounds": bs_rounds,
        "bs_slope_core_median": statistics.median(bs_rounds),
        # From the best of the interleaved repeats above, as reported before the rounds existed.
        "device_slope_core": loglog_slope(core),
        "device_slope_env": loglog_slope(env),
        "device_worst_step_core": worst_step(core),
        "device_worst_step_env": worst_step(env),
        "bs_slope_core": loglog_slope(bs),
        "bs_worst_step_core": worst_step(bs),
    }


def bench_mobile_env(min_seconds: float, repeats: int) -> dict[str, Any] | None:
    """Single-env steps/s of mobile-env's scenarios (same process, same loop), if it is installed."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # mobile-env imports pygame
    try:
        import gymnasium as gym
        import mobile_env  # noqa: F401  (registers its ids)
    except ImportError:
        return None
    out: dict[str, Any] = {}
    for env_id in MOBILE_ENV_IDS:
        try:
            env = gym.make(env_id)
            env.reset(seed=0)
            env.action_space.seed(0)
            action = env.action_space.sample()
        except Exception as exc:  # report and go on: a comparison row must not stop the benchmark
            out[env_id] = {"error": f"{type(exc).__name__}: {exc}"}
            continue

        def chunk(env: Any = env, action: Any = action) -> int:
            for _ in range(20):
                _, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    env.reset()
            return 20

        chunk()
        out[env_id] = timed_rate(chunk, min_seconds, 200, repeats)
    return out


def bench_other(python: str, module: str, env_ids: list[str], make_kwargs: str, long_steps: int) -> list[dict]:
    """Run ``compare_other.py`` in another interpreter for each id; a failure becomes an error row."""
    script = Path(__file__).with_name("compare_other.py")
    rows = []
    for env_id in env_ids:
        command = [python, str(script), "--module", module, "--id", env_id, "--make-kwargs", make_kwargs]
        proc = subprocess.run([*command, "--long-steps", str(long_steps)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            rows.append({"python": python, "module": module, "id": env_id, "error": proc.stderr.strip()[-2000:]})
            continue
        rows.append({"interpreter": python, **json.loads(proc.stdout.strip().splitlines()[-1])})
    return rows


# --------------------------------------------------------------------------- report
def check(name: str, measured: float, target: float, unit: str, higher_is_better: bool) -> dict[str, Any]:
    ratio = measured / target
    passed = ratio >= 1.0 if higher_is_better else ratio <= 1.0
    return {
        "name": name,
        "measured": measured,
        "target": target,
        "unit": unit,
        "comparison": ">=" if higher_is_better else "<=",
        "ratio": ratio,
        "result": "PASS" if passed else "FAIL",
    }


def checks_from(results: dict[str, Any]) -> list[dict[str, Any]]:
    step_index = results["step_index"]
    rss = results["rss"]
    scaling = results["scaling"]
    return [
        check(
            "single env, Gymnasium API (paper)",
            results["single_env"]["best"],
            TARGET_SINGLE_STEPS_PER_S,
            "steps/s",
            True,
        ),
        check(
            "vector env, 1,024 envs (paper)",
            results["vector"]["1024"]["best"],
            TARGET_VECTOR_STEPS_PER_S,
            "env-steps/s",
            True,
        ),
        check(
            "step time drift, last vs first 1,000 of 100k (mean)",
            abs(step_index["ratio"] - 1.0),
            TARGET_FLAT_STEP_TIME,
            "|ratio-1|",
            False,
        ),
        check("peak RSS growth, 100k vs 1k-step episode", abs(rss["ratio"] - 1.0), TARGET_FLAT_RSS, "|ratio-1|", False),
        check(
            "per-step cost vs devices, log-log slope (core)",
            scaling_slope(scaling, "device"),
            TARGET_SCALING_SLOPE,
            "slope",
            False,
        ),
        check(
            "per-step cost vs BSs, log-log slope (core)",
            scaling_slope(scaling, "bs"),
            TARGET_SCALING_SLOPE,
            "slope",
            False,
        ),
    ]


def scaling_slope(scaling: dict[str, Any], kind: str) -> float:
    """The value a scaling check judges: the median over back-to-back rounds (best-of-repeats in older reports)."""
    return float(scaling.get(f"{kind}_slope_core_median", scaling[f"{kind}_slope_core"]))


def fmt(value: float) -> str:
    if value >= 1_000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def size_label(kib: str | int) -> str:
    """A probe working set as printed: ``256 KiB``, ``8 MiB``."""
    return f"{int(kib) // 1024} MiB" if int(kib) >= 1024 else f"{int(kib)} KiB"


def speed_lines(speed: dict[str, Any] | None) -> list[str]:
    """The machine-speed probe at the run's start and end, one line each (none in older reports)."""
    if not speed:
        return []
    lines = []
    for when in ("start", "end"):
        s = speed[when]
        latency = ", ".join(size_label(kib) for kib in s["load_latency_ns"])
        values = " / ".join(f"{ns:.1f}" for ns in s["load_latency_ns"].values())
        pages = s.get("page_spread_latency_ns")  # (not in reports from before the TLB probe)
        tlb = (
            f"; {TLB_PROBE_LINES:,} lines one per 4 KiB page {pages['one_per_page']:.1f} ns,"
            f" contiguous {pages['contiguous']:.1f} ns"
            if pages
            else ""
        )
        lines.append(
            f"machine speed at the {when}: 10M-iteration Python loop {s['python_loop_10M_s']:.2f} s;"
            f" dependent-load latency ({latency}) {values} ns{tlb}"
        )
    return lines


def steal_note(report: dict[str, Any]) -> str:
    """The header's note of CPU time taken by the hypervisor (none in older reports, or off Linux)."""
    steal = report.get("cpu_steal_percent")
    return "" if steal is None else f"; CPU time stolen by the hypervisor during the run {steal:.1f}%"


def probe_note(rate: dict[str, Any]) -> str:
    """The range of the core probe before a row's repeats (none in reports from before the probe)."""
    probes = rate.get("core_probe_ms")
    return f"  (core probe {min(probes):.1f}-{max(probes):.1f} ms)" if probes else ""


def round_lines(scaling: dict[str, Any], kind: str, label: str) -> list[str]:
    """The scaling check's median over back-to-back rounds and their range (none in older reports)."""
    rounds = scaling.get(f"{kind}_slope_core_rounds")
    if not rounds:
        return []
    return [
        f"  {label}: log-log slope core {scaling[f'{kind}_slope_core_median']:.2f}, the median over"
        f" {len(rounds)} rounds of the sizes timed back to back (range {min(rounds):.2f}-{max(rounds):.2f};"
        " the check's value)"
    ]


def cpu_details(m: dict[str, Any]) -> str:
    """The CPU suffix of the table's header, e.g. ' (znver4, family 25 model 17 stepping 1; L2 1024K, L3 32768K)'.

    Empty when the record has none of these fields (results written before they were recorded).
    """
    parts = []
    if m.get("llvm_cpu"):
        parts.append(m["llvm_cpu"])
    fms = m.get("cpu_family_model_stepping") or []
    if len(fms) == 3 and all(fms):
        parts.append("family {} model {} stepping {}".format(*fms))
    caches = m.get("caches") or {}
    text = ", ".join(parts)
    levels = ", ".join(f"{k} {caches[k]}" for k in ("L2", "L3") if k in caches)
    if levels:
        text = f"{text}; {levels}" if text else levels
    return f" ({text})" if text else ""


def render_table(report: dict[str, Any]) -> str:
    m, r = report["machine"], report["results"]
    lines = [
        f"MetaLore benchmark ({report['mode']} mode) on {m['cpu_model']}{cpu_details(m)}, {m['usable_cores']}"
        f" usable cores ({m['numba_threads']} numba threads, {m['numba_threading_layer']} layer)",
        f"Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, gymnasium {m['gymnasium']}, "
        f"metalore {m['metalore']}; {m['platform']}",
        f"load average before / after: {report['load_before']} / {report['load_after']}" + steal_note(report),
        *speed_lines(r.get("machine_speed")),
        "",
        "Targets (rates: best of repeats)",
        f"  {'metric':<48} {'measured':>14} {'target':>14} {'unit':>12} {'ratio':>7}  result",
    ]
    for c in report["checks"]:
        lines.append(
            f"  {c['name']:<48} {fmt(c['measured']):>14} {c['comparison'] + ' ' + fmt(c['target']):>14} "
            f"{c['unit']:>12} {c['ratio']:>7.2f}  {c['result']}"
        )
    fs = r["first_step"]
    cold_vector = (
        f"{fs['cold']['vector_1024_first_step_s']:.2f}s"
        if "vector_1024_first_step_s" in fs["cold"]
        else "(quick: skipped)"
    )
    lines += [
        "",
        "Time to first step (fresh process, from before `import metalore`)",
        f"  {'':<34} {'cold (empty cache)':>20} {'warm (cached)':>16}",
        f"  {'import metalore':<34} {fs['cold']['import_s']:>19.2f}s {fs['warm']['import_s']:>15.2f}s",
        f"  {'single env: make+reset+step':<34} {fs['cold']['single_first_step_s']:>19.2f}s "
        f"{fs['warm']['single_first_step_s']:>15.2f}s",
        f"  {'then vector 1,024: make+reset+step':<34} {cold_vector:>20} "
        f"{fs['warm']['vector_1024_first_step_s']:>15.2f}s",
        f"  compile time paid once (cold - warm): single env {fs['compile_s']:.2f}s, threaded vector kernel "
        + (f"{fs['vector_compile_s']:.2f}s" if "vector_compile_s" in fs else "not measured (quick mode)"),
        "",
        "Throughput (paper scenario, fixed action; best / median of repeats)",
        f"  {'single env, gymnasium.make API':<34} {fmt(r['single_env']['best']):>12} / "
        f"{fmt(r['single_env']['median']):>12} steps/s",
        f"  {'raw core, batch 1':<34} {fmt(r['core']['best']):>12} / {fmt(r['core']['median']):>12} steps/s",
    ]
    for batch, v in r["vector"].items():
        label = f"vector env, {int(batch):,} envs" + (" (threads)" if v["threads"] else "")
        lines.append(f"  {label:<34} {fmt(v['best']):>12} / {fmt(v['median']):>12} env-steps/s" + probe_note(v))
    if r["sb3"] is None:
        lines.append("  SB3 adapter: skipped (stable-baselines3 not installed)")
    else:
        for key, v in r["sb3"].items():
            batch, _, lean = key.partition("-")
            label = f"SB3 adapter, {int(batch):,} envs" + (" (lean infos)" if lean else "")
            lines.append(f"  {label:<34} {fmt(v['best']):>12} / {fmt(v['median']):>12} env-steps/s")
    loop = r.get("policy_loop")
    lines += ["", "Vector env beside a PyTorch policy (2 x 64 MLP inference before every step; stepping rate alone)"]
    if loop is None:
        lines.append("  skipped: torch is not installed")
    else:
        for batch, v in loop.items():
            rates = " ".join(f"{fmt(x)}" for x in v["with_policy"])
            alone = " ".join(f"{fmt(x)}" for x in v["without"])
            infer = " ".join(f"{x:.2f}" for x in v["inference_ms"])
            lines.append(
                f"  {int(batch):,} envs: with the policy {rates}; constant action {alone} env-steps/s"
                f" (alternated); inference {infer} ms/step on {v['torch_threads']} torch threads"
            )
    si = r["step_index"]
    lines += [
        "",
        f"Step time vs step index (one {LONG_EPISODE:,}-step episode, single env)",
        f"  first {WINDOW:,} steps: mean {si['first_mean_us']:.2f} us; last {WINDOW:,}: mean "
        f"{si['last_mean_us']:.2f} us (medians of {len(si['first_replay_means_us'])} replays of each window from a "
        "state snapshot, alternated)",
        f"  ratio last/first {si['ratio']:.3f} (median over the back-to-back replay pairs; range "
        f"{min(si['pair_ratios']):.3f}-{max(si['pair_ratios']):.3f}); ratio of the two medians "
        f"{si['ratio_of_medians']:.3f}",
        f"  the continuous pass alone: first {si['pass_first_mean_us']:.2f} us, last {si['pass_last_mean_us']:.2f} us, "
        f"ratio {si['pass_ratio']:.3f} (ratio of per-step medians {si['pass_median_ratio']:.3f})",
        "  mean per 10% of the episode (us): " + " ".join(f"{b:.1f}" for b in si["block_means_us"]),
        f"  MEC queue lengths at the end (UE, sensor): {si['final_mec_queue_lengths'][0]}",
        "",
        "Peak RSS vs episode length (job log off, fresh process each)",
    ]
    for run in r["rss"]["runs"]:
        lines.append(
            f"  single env, {run['steps']:>7,}-step episode: peak {run['peak_rss_kib'] / 1024:.1f} MiB "
            f"(before the episode {run['peak_rss_kib_before_episode'] / 1024:.1f} MiB)"
        )
    vec = r["rss"]["vector_1024"]
    lines.append(
        f"  vector env, {vec['num_envs']:,} envs x {vec['steps']:,} steps: peak {vec['peak_rss_kib'] / 1024:.1f} MiB "
        f"(after reset {vec['peak_rss_kib_before_episode'] / 1024:.1f} MiB)"
    )
    lines += ["", "Scaling (per-step time incl. resets, best of repeats; resources grow with the devices)"]
    lines.append(f"  {'UEs':>5} {'sensors':>7} {'BSs':>4} {'core us/step':>13} {'env us/step':>12} {'connected':>10}")
    sc = r["scaling"]
    for d in sc["devices"]:
        lines.append(
            f"  {d['ues']:>5} {d['sensors']:>7} {1:>4} {d['core_us']:>13.1f} {d['env_us']:>12.1f} "
            f"{d['connected_fraction']:>10.2f}"
        )
    for c in sc["base_stations"]:
        lines.append(
            f"  {c['ues']:>5} {c['sensors']:>7} {c['bs']:>4} {c['core_us']:>13.1f} {c['env_us']:>12.1f} "
            f"{c['connected_fraction']:>10.2f}"
        )
    lines += [
        f"  vs devices (from 100+100): log-log slope core {sc['device_slope_core']:.2f}, env "
        f"{sc['device_slope_env']:.2f} (from the best of repeats); worst consecutive step (time growth / device "
        f"growth) core {sc['device_worst_step_core']:.2f}, env {sc['device_worst_step_env']:.2f}",
        *round_lines(sc, "device", "vs devices"),
        f"  vs BSs (100+100 devices): log-log slope core {sc['bs_slope_core']:.2f} (from the best of repeats); "
        f"worst consecutive step {sc['bs_worst_step_core']:.2f}",
        *round_lines(sc, "bs", "vs BSs"),
    ]
    twins = [d for d in sc["devices"] if (d["ues"], d["sensors"]) == (100, 100)]
    twins += [c for c in sc["base_stations"] if c["bs"] == 1]
    if len(twins) == 2:  # the same configuration, two instances: how far apart identical runs land
        lines.append(
            f"  noise: 100+100 devices, 1 BS, measured twice (two instances, interleaved): core "
            f"{twins[0]['core_us']:.1f} and {twins[1]['core_us']:.1f} us/step"
        )
    lines += ["", "mobile-env comparison (single env, same process and loop)"]
    if r["mobile_env"] is None:
        lines.append("  skipped: mobile-env is not installed (`pip install mobile-env` to add these rows)")
    else:
        for env_id, v in r["mobile_env"].items():
            if "error" in v:
                lines.append(f"  {env_id:<34} error: {v['error']}")
            else:
                speedup = r["single_env"]["best"] / v["best"]
                lines.append(
                    f"  {env_id:<34} {fmt(v['best']):>12} / {fmt(v['median']):>12} steps/s"
                    f"  (MetaLore paper single env: {speedup:,.0f}x faster)"
                )
    lines += other_rows(r.get("other"), r["single_env"]["best"])
    return "\n".join(lines)


def other_rows(rows: list[dict[str, Any]] | None, own_single_rate: float) -> list[str]:
    """Table section of the ``--compare-python`` measurements (none when not asked for)."""
    if not rows:
        return []
    lines = ["", "Other simulators, each in its own interpreter (compare_other.py; fixed sampled action)"]
    for row in rows:
        if "error" in row:
            lines.append(f"  {row['module']}:{row['id']}  error: {row['error'].splitlines()[-1]}")
            continue
        windows = row["window_ms"]
        lines.append(
            f"  {row['module']}:{row['id']}  {fmt(row['steps_per_s'])} steps/s"
            f"  (MetaLore paper single env: {own_single_rate / row['steps_per_s']:,.1f}x faster)"
        )
        lines.append(
            f"    step time over {row['long_steps']:,} steps, mean per {row['window_steps']:,}-step window (ms): "
            + " ".join(f"{w:.3g}" for w in windows)
            + f"; last/first {windows[-1] / windows[0]:.2f}; episode resets after steps {row['resets_at'][:5]}"
            + (" ..." if len(row["resets_at"]) > 5 else "")
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings (about a minute in total)")
    parser.add_argument("--out", default="benchmarks/results.json", help="where to write the JSON results")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    other = parser.add_argument_group("comparison with another simulator in its own interpreter (compare_other.py)")
    other.add_argument("--compare-python", help="python of a venv where the other simulator is installed")
    other.add_argument("--compare-module", default="mobile_env", help="module whose import registers its ids")
    other.add_argument(
        "--compare-id", action="append", help="Gymnasium id to measure (repeatable; default: the seed's smart-city id)"
    )
    other.add_argument("--compare-make-kwargs", default="{}", help="JSON object passed to gymnasium.make")
    other.add_argument("--compare-long-steps", type=int, default=10_000, help="steps of its step-time-vs-index run")
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "first-step":
            result = child_first_step(with_vector=rest[0] == "vector")
        elif kind == "rss":
            result = child_rss(int(rest[0]))
        else:
            result = child_rss_vector(int(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return 0

    import metalore  # noqa: F401  (registers the ids; children import it themselves, timed)

    seconds, repeats = (0.4, 3) if args.quick else (2.0, 5)
    load_before = [round(x, 2) for x in os.getloadavg()]
    ticks_before = cpu_ticks()
    started = time.perf_counter()
    speed_before = bench_machine_speed()
    # Subprocess measurements first, while this process is still small.
    results: dict[str, Any] = {"first_step": bench_first_step(cold_vector=not args.quick), "rss": bench_rss()}
    results["single_env"] = bench_single_env(seconds, repeats)
    results["core"] = bench_core(seconds, repeats)
    results["vector"] = bench_vector(seconds, repeats)
    results["sb3"] = bench_sb3(seconds, repeats)
    results["policy_loop"] = bench_policy_loop((128, 1024), 300 if args.quick else 1000, 2 if args.quick else 3)
    results["step_index"] = bench_step_index(5 if args.quick else 15)
    results["scaling"] = bench_scaling(seconds / 2, repeats, 5 if args.quick else SCALING_ROUNDS)
    results["mobile_env"] = bench_mobile_env(seconds, repeats)
    if args.compare_python:
        ids = args.compare_id or ["mobile-smart_city-smart_city_handler-v0"]
        results["other"] = bench_other(
            args.compare_python, args.compare_module, ids, args.compare_make_kwargs, args.compare_long_steps
        )
    results["machine_speed"] = {"start": speed_before, "end": bench_machine_speed()}
    report = {
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_steal_percent": steal_percent(ticks_before, cpu_ticks()),
        "wall_time_s": time.perf_counter() - started,
        "results": results,
    }
    report["checks"] = checks_from(results)
    from metalore.io import write_text  # atomic: an interrupted run never leaves half a file

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(report, indent=2) + "\n")  # the numbers are safe before any formatting
    report["table"] = render_table(report)
    write_text(out, json.dumps(report, indent=2) + "\n")
    print(report["table"])
    print(f"\nwrote {out} ({report['wall_time_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
