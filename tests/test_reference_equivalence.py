"""The compiled core equals the plain-Python reference stepper, step by step (STYLE.md §7).

Random small scenarios (hypothesis, derandomized) cover every scheduler, both channel models,
static and random-waypoint mobility, 1-3 BSs, 0-6 UEs and sensors, pinned positions with exact
ties, traffic phases, unconnected devices and queue capacities of 1-8 (so both kinds of drop
happen). After every step the whole observable state must agree: reward, association,
bandwidth, every queued job (ids, sizes, remainders, bindings), counters, twin, positions,
completed AoRI/AoSI, episode statistics and histograms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metalore.config import make_scenario
from metalore.core import kernels
from metalore.core import reference as ref_mod
from metalore.core.channel import MODEL_IDS, path_loss_db, snr_linear
from metalore.core.reference import ReferenceSim
from metalore.core.simulator import BatchSimulator
from metalore.core.state import (
    COUNTERS,
    S_AORI_MAX,
    S_AORI_SUM,
    S_AOSI_MAX,
    S_AOSI_SUM,
    S_LATE,
    S_REWARD,
    S_TWIN_AGE_COUNT,
    S_TWIN_AGE_MAX,
    S_TWIN_AGE_SUM,
    S_TWIN_EMPTY,
    S_UE_DONE,
)

STEPS = 25
FLOAT_TOL = 1e-9


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=FLOAT_TOL)


def random_action(rng: np.random.Generator, num_bs: int) -> np.ndarray:
    """Each entry 0 or 1 (starving a class), a decimal fraction or uniform on [0, 1).

    Decimal fractions (0.1, 0.3, ...) are inexact in binary, so capacities left after
    partial service land within round-off of a job's remainder: the EPS rule decides them.
    """
    kind = rng.integers(0, 4, size=(num_bs, 2))
    decimal = rng.choice([0.1, 0.2, 0.3, 0.7, 0.9], size=(num_bs, 2))
    return np.select([kind == 0, kind == 1, kind == 2], [0.0, 1.0, decimal], rng.random((num_bs, 2)))


# ----------------------------------------------------------------------------- reading the core
# A queued job as the tests compare it: its integer columns, then the remainder (a float).
# Job ids are kept by the core only while the job log is on; with it off they are compared as -1.


def _jobs(table: np.ndarray) -> list[tuple]:
    return [(*(int(v) for v in row[:-1]), float(row[-1])) for row in table]


def core_uplink(sim: BatchSimulator, d: int) -> list[tuple]:
    return _jobs(sim.uplink_jobs(0, d))


def core_mec(sim: BatchSimulator, m: int, c: int) -> list[tuple]:
    return _jobs(sim.mec_jobs(0, m, c))


def ref_uplink(ref: ReferenceSim, d: int, ids: bool) -> list[tuple]:
    return [(j.jid if ids else -1, j.data_mbit, j.compute_units, j.t_gen, j.sensor, j.left_mbit) for j in ref.uplink[d]]


def ref_mec(ref: ReferenceSim, m: int, c: int, ids: bool) -> list[tuple]:
    return [
        (j.jid if ids else -1, j.data_mbit, j.compute_units, j.t_gen, j.sensor, j.device,
         -1 if j.update_t is None else j.update_t, j.left_compute)
        for j in ref.mec[m][c]
    ]  # fmt: skip


def assert_jobs_equal(core: list[tuple], ref: list[tuple], where: str) -> None:
    assert len(core) == len(ref), f"{where}: core {core} != reference {ref}"
    for a, b in zip(core, ref, strict=True):
        assert a[:-1] == b[:-1], f"{where}: core job {a} != reference job {b}"
        assert close(a[-1], b[-1]), f"{where}: remainder {a[-1]} != {b[-1]}"


def assert_positions_equal(sim: BatchSimulator, ref: ReferenceSim, where: str) -> None:
    # Same float expressions in the same order: positions agree bit for bit.
    np.testing.assert_array_equal(sim.state.pos_m[0], np.array(ref.pos).reshape(-1, 2), err_msg=where)
    np.testing.assert_array_equal(sim.state.waypoint_m[0], np.array(ref.waypoint).reshape(-1, 2), err_msg=where)


def assert_same_state(sim: BatchSimulator, ref: ReferenceSim, reward: float, where: str) -> None:
    s, out = sim.state, sim.out
    assert close(float(out.reward[0]), reward), f"{where}: reward core {out.reward[0]} != reference {reward}"
    assert int(s.t[0]) == ref.t
    assert s.assoc[0].tolist() == ref.assoc, f"{where}: association"
    np.testing.assert_allclose(s.snr[0], ref.snr, rtol=1e-12, err_msg=where)
    np.testing.assert_allclose(out.bandwidth_hz[0], ref.bandwidth_hz, rtol=1e-12, atol=1e-9, err_msg=where)
    ids = sim.params.log_capacity > 0
    for d in range(ref.num_devices):
        assert_jobs_equal(core_uplink(sim, d), ref_uplink(ref, d, ids), f"{where}: uplink of device {d}")
    assert s.bq_len[0].tolist() == ref.mec_lengths(), f"{where}: MEC queue lengths"
    for m in range(ref.num_bs):
        for c in range(2):
            assert_jobs_equal(core_mec(sim, m, c), ref_mec(ref, m, c, ids), f"{where}: MEC queue {m}/{c}")
    assert s.twin[0].tolist() == ref.twin, f"{where}: twin"
    n = int(out.done_n[0])
    core_done = list(zip(out.done_aori[0, :n].tolist(), out.done_aosi[0, :n].tolist(), strict=True))
    assert core_done == ref.completed, f"{where}: completed (AoRI, AoSI)"
    for c, cls in enumerate(("ue", "sensor")):
        for i, name in enumerate(COUNTERS):
            assert close(s.totals[0, c, i], ref.totals[cls][name]), f"{where}: total {cls}.{name}"
            assert close(out.step_counts[0, c, i], ref.step_counts[cls][name]), f"{where}: step {cls}.{name}"
    assert_positions_equal(sim, ref, where)


def assert_same_statistics(sim: BatchSimulator, ref: ReferenceSim) -> None:
    stats = sim.state.stats[0]
    ages = np.array(ref.all_completed, dtype=np.int64).reshape(-1, 2)
    assert stats[S_UE_DONE] == len(ages)
    assert stats[S_AORI_SUM] == ages[:, 0].sum() and stats[S_AOSI_SUM] == ages[:, 1].sum()
    assert stats[S_AORI_MAX] == ages[:, 0].max(initial=0) and stats[S_AOSI_MAX] == ages[:, 1].max(initial=0)
    assert stats[S_LATE] == ref.late
    assert close(stats[S_REWARD], ref.reward_sum)
    assert stats[S_TWIN_AGE_SUM] == ref.twin_age_sum and stats[S_TWIN_AGE_MAX] == ref.twin_age_max
    assert stats[S_TWIN_AGE_COUNT] == ref.twin_age_count and stats[S_TWIN_EMPTY] == ref.twin_empty_count
    bins = sim.state.aori_hist.shape[1]
    for column, hist in ((0, sim.state.aori_hist[0]), (1, sim.state.aosi_hist[0])):
        expected = np.bincount(np.minimum(ages[:, column], bins - 1), minlength=bins)
        np.testing.assert_array_equal(hist, expected)


def run_both(config: dict, seed: int, action_seed: int, steps: int, preset: str = "paper") -> ReferenceSim:
    scenario = make_scenario(preset, config)
    sim = BatchSimulator(scenario, batch=1, parallel=False)
    sim.reset([0], [seed])
    ref = ReferenceSim(scenario, seed)
    assert_positions_equal(sim, ref, "after reset")
    np.testing.assert_array_equal(sim.state.rng[0], ref.rng)
    rng = np.random.default_rng(action_seed)
    for t in range(steps):
        action = random_action(rng, scenario.num_bs)
        sim.step(action[None])
        reward = ref.step(action)
        assert_same_state(sim, ref, reward, f"step {t}")
        np.testing.assert_array_equal(sim.state.rng[0], ref.rng, err_msg=f"step {t}: random streams")
    assert_same_statistics(sim, ref)
    return ref


# ----------------------------------------------------------------------------- random scenarios
def grid_points(draw, count: int, width: float, height: float) -> list[list[float]]:
    """Points on a coarse grid inside the area: repeats and equal distances (ties) are likely."""
    return [[draw(st.integers(0, 4)) * width / 4, draw(st.integers(0, 4)) * height / 4] for _ in range(count)]


@st.composite
def small_configs(draw) -> dict:
    width = float(draw(st.sampled_from([60, 150, 400])))
    height = float(draw(st.sampled_from([60, 150, 400])))
    num_bs = draw(st.integers(1, 3))
    num_ues = draw(st.integers(0, 6))
    num_sensors = draw(st.integers(1 if num_ues else 0, 6))
    per_ue = st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=num_ues, max_size=num_ues) if num_ues else st.just(0.5)
    request_probability = st.one_of(st.sampled_from([0.3, 1.0, 0.0, 0.7]), per_ue)
    cfg: dict = {
        "episode": {"steps": STEPS, "step_duration_s": draw(st.sampled_from([0.5, 1.0, 2.0]))},
        "area": {"width_m": width, "height_m": height},
        "bs": {
            "positions_m": grid_points(draw, num_bs, width, height),
            "bandwidth_hz": draw(st.sampled_from([1e4, 1e6, 1e7, 1e8])),
            "tx_power_dbm": draw(st.sampled_from([20.0, 40.0, 40.0])),
            "compute_units_per_s": draw(st.sampled_from([0.5, 5.0, 20.0, 100.0])),
            "queue_capacity": draw(st.integers(1, 8)),
        },
        "ue": {
            "count": num_ues,
            "snr_threshold": draw(st.sampled_from([2e-8, 2e-8, 1.0, 1e2])),
            "mobility": draw(st.sampled_from(["static", "random_waypoint"])),
            "speed_mps": draw(st.sampled_from([0.0, 1.5, 20.0, 100.0])),
            "request_probability": draw(request_probability),
            "data_mbit_mean": draw(st.sampled_from([0.5, 2.0, 8.0])),
            "compute_units_mean": draw(st.sampled_from([0.5, 2.0, 6.0])),
            "queue_capacity": draw(st.integers(1, 8)),
        },
        "sensor": {
            "count": num_sensors,
            "snr_threshold": draw(st.sampled_from([0.0, 2e-8, 2e-8, 1e2])),
            "period_steps": draw(st.integers(1, 3)),
            "data_mbit_mean": draw(st.sampled_from([0.5, 2.0, 8.0])),
            "compute_units_mean": draw(st.sampled_from([0.5, 2.0, 6.0])),
            "placement": {"min_distance_m": 5.0, "max_distance_m": 30.0, "min_separation_m": 3.0},
            "queue_capacity": draw(st.integers(1, 8)),
        },
        "channel": {"model": draw(st.sampled_from(["okumura_hata", "umi_38901"])), "los": draw(st.booleans())},
        "scheduler": {
            "model": draw(st.sampled_from(["resource_fair", "round_robin", "proportional_fair"])),
            "pf_ewma_weight": draw(st.sampled_from([0.1, 0.5, 1.0])),
        },
        "reward": {
            "sync_reward": draw(st.sampled_from([10.0, 3.5])),
            "aosi_discount": draw(st.sampled_from([0.9, 0.5, 0.0, 1.0])),
            "late_penalty": draw(st.sampled_from([-1.0, -2.5])),
            "e2e_delay_threshold_steps": draw(st.sampled_from([0, 2, 5])),
        },
    }
    if draw(st.booleans()):  # the core keeps job ids only for the log: compare them in queues too
        cfg["log"] = {"jobs": True, "max_jobs": draw(st.sampled_from([3, 10_000]))}
    if num_ues and draw(st.booleans()):
        cfg["ue"]["positions_m"] = grid_points(draw, num_ues, width, height)
    if num_sensors and draw(st.booleans()):
        cfg["sensor"]["positions_m"] = grid_points(draw, num_sensors, width, height)
    if draw(st.booleans()):
        cfg["traffic"] = {
            "phases": [
                {"start_step": 0, "request_probability": draw(st.sampled_from([0.0, 1.0])), "sensor_period_steps": 2},
                {"start_step": 10, "request_probability": 0.6, "sensor_period_steps": 1},
            ]
        }
    return cfg


def test_reference_uses_the_kernel_tolerances():
    assert ref_mod.EPS == kernels.EPS
    assert ref_mod.PLACEMENT_ATTEMPTS == kernels.PLACEMENT_ATTEMPTS
    assert ref_mod.PLACEMENT_RESTARTS == kernels.PLACEMENT_RESTARTS


@settings(max_examples=250, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=small_configs(), seed=st.integers(0, 2**40), action_seed=st.integers(0, 2**32 - 1))
def test_core_matches_reference_on_small_scenarios(config, seed, action_seed):
    run_both(config, seed, action_seed, STEPS)


@pytest.mark.parametrize(
    ("preset", "steps", "log"),
    [("small", 100, True), ("multicell", 60, False), ("dynamic", 150, True), ("large", 100, False)],
)
def test_core_matches_reference_on_presets(preset, steps, log):
    # Full-size scenarios; "large" has 60 sensors, so the core's nearest-sensor query walks
    # its sensor grid instead of scanning (the reference always scans). With the job log on,
    # queued jobs' ids are compared too.
    config = {"bs": {"queue_capacity": 16}, "log": {"jobs": log}}
    ref = run_both(config, seed=7, action_seed=3, steps=steps, preset=preset)
    assert ref.all_completed, "the episode should complete UE jobs"


def test_core_matches_reference_on_nearest_sensor_ties_in_the_grid():
    # 60 sensors (more than the core scans directly) on a 20-m lattice, ids shuffled; UEs
    # pinned on lattice-cell corners and edge midpoints are equally close to 4 or 2 sensors,
    # and the lowest id must win. The core's grid cells (20 m) align with the lattice.
    lattice = [[10.0 + 20.0 * i, 10.0 + 20.0 * j] for j in range(6) for i in range(10)]
    sensors = [lattice[i] for i in np.random.default_rng(1).permutation(len(lattice))]
    ues = [[20.0 + 20.0 * i, 20.0 + 20.0 * j] for j in range(5) for i in range(0, 9, 2)]
    ues += [[10.0 + 20.0 * i, 40.0] for i in range(10)] + [[0.0, 0.0], [200.0, 120.0]]
    config = {
        "area": {"width_m": 200.0, "height_m": 120.0},
        "bs": {"positions_m": [[100.0, 60.0]], "queue_capacity": 8},
        "ue": {"count": len(ues), "positions_m": ues, "mobility": "static", "queue_capacity": 4},
        "sensor": {"count": len(sensors), "positions_m": sensors, "queue_capacity": 4},
    }
    ref = run_both(config, seed=5, action_seed=9, steps=20)
    assert ref.totals["ue"]["generated_jobs"] > 0


@pytest.mark.parametrize("actions", ["alternating", "random"])
def test_core_matches_reference_at_float_boundaries(actions):
    # Both devices 10 m from the BS, with the noise power set so that their SNR is exactly 1:
    # log2(1 + SNR) = 1, so the whole 100 kHz carry exactly 0.1 Mbit per step, and a 1-Mbit
    # job's remainder after nine such steps is 0.1 + 1.4e-16 (binary round-off). Only the EPS
    # rule finishes it in its tenth step, in both steppers; the same holds for 1 compute unit
    # served at 0.1 unit per step. The alternating action gives all bandwidth to UEs on even
    # steps and to sensors on odd steps. The SNR threshold equals the SNR: "below the
    # threshold" is unconnected, equal is connected.
    loss = path_loss_db(MODEL_IDS["okumura_hata"], 10.0, 3500.0, 40.0, 1.5, False)
    noise_w = snr_linear(40.0, loss, 1.0)
    device = {"noise_w": noise_w, "snr_threshold": 1.0, "data_mbit_mean": 0.5, "compute_units_mean": 0.5}
    config = {
        "area": {"width_m": 100.0, "height_m": 100.0},
        "bs": {"positions_m": [[50.0, 50.0]], "bandwidth_hz": 1e5, "compute_units_per_s": 1.0},
        "ue": {"count": 1, "positions_m": [[50.0, 60.0]], "mobility": "static", "request_probability": 0.3, **device},
        "sensor": {"count": 1, "positions_m": [[50.0, 40.0]], "period_steps": 4, **device},
    }
    scenario = make_scenario("paper", config)
    sim = BatchSimulator(scenario, batch=1, parallel=False)
    sim.reset([0], [3])
    ref = ReferenceSim(scenario, 3)
    rng = np.random.default_rng(0)
    for t in range(60):
        action = np.array([[1.0 - t % 2, 0.1]]) if actions == "alternating" else random_action(rng, 1)
        sim.step(action[None])
        reward = ref.step(action)
        assert_same_state(sim, ref, reward, f"step {t}")
        assert ref.snr == [1.0, 1.0] and ref.assoc == [0, 0]
    assert_same_statistics(sim, ref)
    assert ref.all_completed
