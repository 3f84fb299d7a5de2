"""Conservation laws and invariants of the core, at every step of random episodes (hypothesis).

Per class (UE, sensor), with the cumulative counters of ``core.state.COUNTERS``:

* jobs, Mbit: generated = in device queues + in MEC queues + completed + dropped (uplink + MEC)
* sent (jobs, Mbit) = in MEC queues + completed + dropped at the MEC
* transmitted Mbit = partial progress of jobs still in device queues + sent Mbit
* compute: generated = in device queues + remaining in MEC queues + processed + dropped,
  and processed = completed + partial progress of jobs in MEC queues
* every step's increments add up to the totals

and: queue lengths within [0, capacity], remainders within (0, size], bandwidth per BS and
class within the class's share of the budget (nothing for unconnected devices), twin entries
not from the future, ages non-negative, reward bounded by its terms, and every observation
inside the env's observation space.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metalore.config import OBSERVATION_FEATURES
from metalore.core.simulator import MEC_JOB_COLUMNS, UPLINK_JOB_COLUMNS
from metalore.core.state import (
    COUNTERS,
    DONE_COMPUTE,
    DONE_JOBS,
    DONE_MBIT,
    DROP_MEC_COMPUTE,
    DROP_MEC_JOBS,
    DROP_MEC_MBIT,
    DROP_UL_COMPUTE,
    DROP_UL_JOBS,
    DROP_UL_MBIT,
    GEN_COMPUTE,
    GEN_JOBS,
    GEN_MBIT,
    PROC_COMPUTE,
    SENT_JOBS,
    SENT_MBIT,
    TX_MBIT,
)
from metalore.env import MetaLoreEnv, validate_action

STEPS = 30
TOL = 1e-6  # float sums of up to a few thousand Mbit / units


@st.composite
def configs(draw) -> dict:
    num_ues = draw(st.integers(0, 6))
    num_bs = draw(st.integers(1, 3))
    side = float(draw(st.sampled_from([80, 200, 500])))
    return {
        "episode": {"steps": STEPS, "step_duration_s": draw(st.sampled_from([0.5, 1.0]))},
        "area": {"width_m": side, "height_m": side},
        "bs": {
            "positions_m": [[draw(st.floats(0, side)), draw(st.floats(0, side))] for _ in range(num_bs)],
            "bandwidth_hz": draw(st.sampled_from([1e4, 1e6, 1e8])),
            "compute_units_per_s": draw(st.sampled_from([0.7, 5.0, 50.0])),
            "queue_capacity": draw(st.integers(1, 8)),
        },
        "ue": {
            "count": num_ues,
            "snr_threshold": draw(st.sampled_from([2e-8, 1e2])),
            "mobility": draw(st.sampled_from(["static", "random_waypoint"])),
            "speed_mps": draw(st.sampled_from([1.5, 50.0])),
            "request_probability": draw(st.sampled_from([0.2, 0.7, 1.0])),
            "data_mbit_mean": draw(st.sampled_from([0.5, 5.0, 40.0])),
            "compute_units_mean": draw(st.sampled_from([0.5, 3.0])),
            "queue_capacity": draw(st.integers(1, 8)),
        },
        "sensor": {
            "count": draw(st.integers(1 if num_ues else 0, 6)),
            "period_steps": draw(st.integers(1, 3)),
            "data_mbit_mean": draw(st.sampled_from([0.5, 5.0, 40.0])),
            "compute_units_mean": draw(st.sampled_from([0.5, 3.0])),
            "placement": {"min_distance_m": 5.0, "max_distance_m": 40.0, "min_separation_m": 3.0},
            "queue_capacity": draw(st.integers(1, 8)),
        },
        "channel": {"model": draw(st.sampled_from(["okumura_hata", "umi_38901"]))},
        "scheduler": {"model": draw(st.sampled_from(["resource_fair", "round_robin", "proportional_fair"]))},
        "observation": {
            "features": draw(st.lists(st.sampled_from(OBSERVATION_FEATURES), min_size=1, max_size=5, unique=True))
        },
        "action": {"range": draw(st.sampled_from(["unit", "symmetric"]))},
    }


def queued_jobs(env: MetaLoreEnv, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Class ``c``'s jobs in device queues and in MEC queues, (jobs, columns) each (see ``UPLINK_JOB_COLUMNS``)."""
    sim = env.sim
    k = env.scenario.num_ues
    devices = range(k) if c == 0 else range(k, sim.state.dq_len.shape[1])
    uplink = [sim.uplink_jobs(0, d) for d in devices]
    mec = [sim.mec_jobs(0, m, c) for m in range(sim.num_bs)]
    return np.concatenate([np.zeros((0, len(UPLINK_JOB_COLUMNS))), *uplink]), np.concatenate(mec)


# Columns of the job tables.
U = {name: i for i, name in enumerate(UPLINK_JOB_COLUMNS)}
M = {name: i for i, name in enumerate(MEC_JOB_COLUMNS)}


def check_conservation(env: MetaLoreEnv, step_sums: np.ndarray) -> None:
    s, out = env.sim.state, env.sim.out
    np.testing.assert_allclose(step_sums, s.totals[0], rtol=1e-12, atol=TOL)
    assert np.all(s.totals[0] >= 0.0), dict(zip(COUNTERS, s.totals[0].T.tolist(), strict=True))
    for c in (0, 1):
        tot = s.totals[0, c]
        uplink, mec = queued_jobs(env, c)
        # Jobs and Mbit (integers, summed exactly).
        assert tot[GEN_JOBS] == len(uplink) + len(mec) + tot[DONE_JOBS] + tot[DROP_UL_JOBS] + tot[DROP_MEC_JOBS]
        in_queues_mbit = uplink[:, U["data_mbit"]].sum() + mec[:, M["data_mbit"]].sum()
        assert tot[GEN_MBIT] == in_queues_mbit + tot[DONE_MBIT] + tot[DROP_UL_MBIT] + tot[DROP_MEC_MBIT]
        assert tot[SENT_JOBS] == len(mec) + tot[DONE_JOBS] + tot[DROP_MEC_JOBS]
        assert tot[SENT_MBIT] == mec[:, M["data_mbit"]].sum() + tot[DONE_MBIT] + tot[DROP_MEC_MBIT]
        # Partial progress (floats).
        partial_mbit = (uplink[:, U["data_mbit"]] - uplink[:, U["left_mbit"]]).sum()
        assert math.isclose(tot[TX_MBIT], partial_mbit + tot[SENT_MBIT], abs_tol=TOL)
        in_queues_compute = uplink[:, U["compute_units"]].sum() + mec[:, M["left_compute"]].sum()
        dropped_compute = tot[DROP_UL_COMPUTE] + tot[DROP_MEC_COMPUTE]
        assert math.isclose(tot[GEN_COMPUTE], in_queues_compute + tot[PROC_COMPUTE] + dropped_compute, abs_tol=TOL)
        partial_compute = (mec[:, M["compute_units"]] - mec[:, M["left_compute"]]).sum()
        assert math.isclose(tot[PROC_COMPUTE], tot[DONE_COMPUTE] + partial_compute, abs_tol=TOL)
        # Remainders: something left (else the job would have left the queue), never more than the job.
        left, size = uplink[:, U["left_mbit"]], uplink[:, U["data_mbit"]]
        assert np.all(left > 0) and np.all(left <= size)
        left, size = mec[:, M["left_compute"]], mec[:, M["compute_units"]]
        assert np.all(left > 0) and np.all(left <= size)
    assert np.all(s.dq_len[0] >= 0) and np.all(s.dq_len[0] <= env.sim.params.dev_queue_capacity)
    assert np.all(s.bq_len[0] >= 0) and np.all(s.bq_len[0] <= env.sim.params.bs_queue_capacity)
    assert np.all(out.bandwidth_hz[0] >= 0.0)


def check_bandwidth(env: MetaLoreEnv, action: np.ndarray) -> None:
    out = env.sim.out
    k = env.scenario.num_ues
    assoc, bandwidth = env.sim.state.assoc[0], out.bandwidth_hz[0]
    assert np.all(bandwidth[assoc < 0] == 0.0), "an unconnected device got bandwidth"
    budget = env.sim.params.bs_bandwidth_hz
    for m in range(env.scenario.num_bs):
        for c, members in enumerate((slice(0, k), slice(k, None))):
            share = action[m, 0] if c == 0 else 1.0 - action[m, 0]
            used = bandwidth[members][assoc[members] == m].sum()
            assert used <= share * budget[m] * (1 + 1e-12), (m, c, used, share)


def check_outputs(env: MetaLoreEnv, obs: np.ndarray, reward: float) -> None:
    s, out = env.sim.state, env.sim.out
    assert env.observation_space.contains(obs), (obs, env.observation_space)
    n = int(out.done_n[0])
    aori, aosi = out.done_aori[0, :n], out.done_aosi[0, :n]
    assert np.all(aori >= 0) and np.all(aosi >= 0)
    assert np.all(aori <= s.t[0] - 1)
    rw = env.scenario.config["reward"]
    assert math.isfinite(reward) and abs(reward) <= n * (abs(rw["sync_reward"]) + abs(rw["late_penalty"])) + 1e-9
    assert np.all(s.twin[0] >= -1) and np.all(s.twin[0] <= s.t[0] - 1), "the twin holds an update from the future"


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs(), seed=st.integers(0, 2**40), action_seed=st.integers(0, 2**32 - 1))
def test_conservation_and_invariants_at_every_step(config, seed, action_seed):
    env = MetaLoreEnv(config=config)
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    symmetric = config["action"]["range"] == "symmetric"
    rng = np.random.default_rng(action_seed)
    step_sums = np.zeros_like(env.sim.state.totals[0])
    for _ in range(STEPS):
        # Extremes, interior values and out-of-range values (clipped by the env).
        raw = rng.choice([-0.5, -1.0, 0.0, 0.25, 0.5, 1.0, 1.5], size=env.action_space.shape)
        raw = np.where(rng.random(raw.shape) < 0.5, raw, rng.uniform(-1.2, 1.2, raw.shape)).astype(np.float32)
        action = validate_action(raw, env.action_space, symmetric).reshape(-1, 2)  # what the core receives
        obs, reward, terminated, truncated, _ = env.step(raw)
        step_sums += env.sim.out.step_counts[0]
        assert not terminated
        check_conservation(env, step_sums)
        check_bandwidth(env, action)
        check_outputs(env, obs, reward)
    assert truncated
