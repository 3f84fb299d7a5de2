"""A tiny scenario with answers worked out by hand (STYLE.md §4), checked through the env.

Geometry: 100 m x 100 m, one BS at (50, 50), one static UE at (50, 60), one sensor at
(50, 40): both devices 10 m from the BS (Okumura-Hata defaults: 3.5 GHz, BS 40 m high with
40 dBm, devices 1.5 m high, noise 1e-12 W). By hand, with log10(3500) = 3.5441 and
log10(40) = 1.6021:

    a(h_m) = (1.1 * 3.5441 - 0.7) * 1.5 - (1.56 * 3.5441 - 0.8) = 4.7978 - 4.7288 = 0.0690
    L      = 69.55 + 26.16 * 3.5441 - 13.82 * 1.6021 - 0.0690 + (44.9 - 6.55 * 1.6021) * log10(0.01)
           = 69.55 + 92.714 - 22.141 - 0.069 - 34.406 * 2 = 71.24 dB
    P_rx   = 40 - 71.24 = -31.24 dBm = 10^(-6.124) W = 7.5e-7 W,  SNR = 7.5e5 (>= 2e-8: connected)
    log2(1 + SNR) = 19 + log2(7.5e5 / 2^19) = 19 + log2(1.43) = 19.52 bit/s/Hz

Sizes: with data and compute means of 1e-9, P(Poisson >= 2) = 5e-19 is below the 2^-53
resolution of the uniform draw (the table's P(X <= 1) rounds to 1.0), so every job is
max(Poisson, 1) = 1 Mbit and 1 compute unit, deterministically.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from _scenarios import PINNED_PAIR
from metalore.config import deep_merge
from metalore.env import MetaLoreEnv

BASE: dict[str, Any] = deep_merge(
    PINNED_PAIR,
    {
        "episode": {"steps": 8},
        # 100 MHz: half of it carries 0.5 * 100e6 * 19.52 = 976 Mbit per step, far above the few
        # 1-Mbit jobs queued, so every job is sent in the step it is generated. 100 units/s of
        # compute likewise serve every queued 1-unit job at once.
        "bs": {"bandwidth_hz": 100e6, "compute_units_per_s": 100.0, "queue_capacity": 64},
    },
)
# One UE request at step 0 only; sensors keep the period given here.
ONE_REQUEST = [
    {"start_step": 0, "request_probability": 1.0, "sensor_period_steps": 1},
    {"start_step": 1, "request_probability": 0.0, "sensor_period_steps": 1},
]


def make_env(overrides: dict[str, Any] | None = None) -> MetaLoreEnv:
    env = MetaLoreEnv(config=deep_merge(BASE, overrides or {}))
    env.reset(seed=0)
    return env


def run(env: MetaLoreEnv, actions: list[tuple[float, ...]]) -> tuple[list[float], list[dict[str, Any]]]:
    rewards, infos = [], []
    for action in actions:
        _, reward, _, _, info = env.step(np.array(action, dtype=np.float32))
        rewards.append(reward)
        infos.append(info)
    return rewards, infos


def ages(infos: list[dict[str, Any]]) -> list[list[tuple[int, int]]]:
    """Per step, the (AoRI, AoSI) of the UE jobs completed, in completion order."""
    return [list(zip(i["aori"], i["aosi"], strict=True)) for i in infos]


def test_sizes_are_one_unit():
    env = make_env()
    run(env, [(0.5, 0.5)] * 8)
    totals = env.sim.totals(0)
    for cls in ("ue", "sensor"):
        assert totals[cls]["generated_jobs"] == 8
        assert totals[cls]["generated_mbit"] == 8 and totals[cls]["generated_compute"] == 8


def test_step_order_same_step_service_and_aosi():
    # Step 0: UE job u0 and sensor update s0 are generated and both sent. The UE queue is
    # served first: u0 needs sensor 0 in the twin, which is empty -> u0 blocks; then s0 is
    # processed -> twin[0] = 0. Reward 0, queues (UE 1, sensor 0).
    # Step 1: u1, s1 generated and sent. u0 binds to twin[0] = 0: AoRI 1 - 0 = 1, AoSI
    # |0 - 0| = 0 -> 10 * 0.9^0 = 10. u1 binds to the same update (s1 is processed after
    # the UE queue): AoRI 1 - 1 = 0 (generated, sent and processed in one step), AoSI
    # |1 - 0| = 1 -> 10 * 0.9 = 9. Reward 19. Then s1 -> twin[0] = 1.
    # Step t >= 2: u_t binds to s_{t-1}: AoRI 0, AoSI 1 -> reward 9; queues stay empty.
    env = make_env()
    rewards, infos = run(env, [(0.5, 0.5)] * 8)
    assert rewards == pytest.approx([0.0, 19.0] + [9.0] * 6, abs=1e-12)
    assert ages(infos) == [[], [(1, 0), (0, 1)]] + [[(0, 1)]] * 6
    assert infos[0]["queue_lengths"].tolist() == [[1, 0]]
    assert all(i["queue_lengths"].tolist() == [[0, 0]] for i in infos[1:])
    assert env.twin_age().tolist() == [0]  # the twin holds the update of the last step
    totals = env.sim.totals(0)
    for cls in ("ue", "sensor"):
        assert totals[cls]["completed_jobs"] == 8
        assert totals[cls]["dropped_uplink_jobs"] == totals[cls]["dropped_mec_jobs"] == 0
    summary = env.episode_summary()
    assert summary["reward"] == pytest.approx(73.0)
    # AoRI: 1, 0 x 7 -> mean 1/8; AoSI: 0, 1 x 7 -> mean 7/8; none late.
    assert summary["aori_mean"] == pytest.approx(1 / 8) and summary["aosi_mean"] == pytest.approx(7 / 8)
    assert summary["late_fraction"] == 0.0


def test_reward_formula_uses_configured_constants():
    # Same trajectory as above with R = 4, gamma = 0.5, c_late = -3, D = 0 (late means AoRI > 0):
    # step 1: u0 (AoRI 1 > 0, AoSI 0) -> 4 * 1 - 3 = 1; u1 (AoRI 0, AoSI 1) -> 4 * 0.5 = 2:
    # reward 3. Steps >= 2: one job with AoRI 0, AoSI 1 -> 2.
    reward = {"sync_reward": 4.0, "aosi_discount": 0.5, "late_penalty": -3.0, "e2e_delay_threshold_steps": 0}
    env = make_env({"reward": reward})
    rewards, _ = run(env, [(0.5, 0.5)] * 5)
    assert rewards == pytest.approx([0.0, 3.0, 2.0, 2.0, 2.0], abs=1e-12)


def test_starving_sensors_blocks_ues_forever():
    # comp_ue = 1: the sensor queue gets 0 compute, so the twin stays empty and u0 blocks the
    # head of the UE queue for ever (no compute is spent on it either). Both MEC queues
    # (capacity 3) fill: lengths 1, 2, 3, then jobs reaching a full queue are dropped
    # (tail drop): after 8 steps each class has 3 queued and 5 dropped, reward 0 throughout.
    env = make_env({"bs": {"queue_capacity": 3}})
    rewards, infos = run(env, [(0.5, 1.0)] * 8)
    assert rewards == [0.0] * 8
    assert [i["queue_lengths"].tolist() for i in infos] == [[[n, n]] for n in (1, 2, 3, 3, 3, 3, 3, 3)]
    assert [i["dropped_ue"] for i in infos] == [0, 0, 0, 1, 1, 1, 1, 1]
    totals = env.sim.totals(0)
    for cls in ("ue", "sensor"):
        assert totals[cls]["sent_jobs"] == 8 and totals[cls]["dropped_mec_jobs"] == 5
        assert totals[cls]["completed_jobs"] == 0 and totals[cls]["processed_compute"] == 0
    assert env.twin_age().tolist() == [-1]
    # The same episode with an even compute split earns 73 (see the step-order test).


@pytest.mark.parametrize(("threshold", "expected"), [(2, 9.0), (3, 10.0)])
def test_late_penalty_from_scarce_compute(threshold, expected):
    # 1 unit/s split evenly: each class gets 0.5 unit per step, a job needs 1 unit: 2 steps.
    # Only u0 is requested (at step 0); sensors update every step.
    # Sensor queue: s0 served 0.5 at step 0 and 0.5 at step 1 -> twin[0] = 0 after step 1.
    # UE queue (served before the sensor queue): u0 blocks at steps 0 and 1 (twin empty when
    # the UE queue is served), binds to s0 at step 2 (AoSI 0) and gets 0.5, finishes at
    # step 3: AoRI 3. With D = 2 it is late: 10 * 0.9^0 - 1 = 9; with D = 3 it is not: 10.
    env = make_env(
        {
            "bs": {"compute_units_per_s": 1.0},
            "traffic": {"phases": ONE_REQUEST},
            "reward": {"e2e_delay_threshold_steps": threshold},
        }
    )
    rewards, infos = run(env, [(0.5, 0.5)] * 6)
    assert rewards == pytest.approx([0.0, 0.0, 0.0, expected, 0.0, 0.0], abs=1e-12)
    assert ages(infos)[3] == [(3, 0)]
    assert env.sim.step_counts(0)["ue"]["generated_jobs"] == 0  # no request after step 0
    # Processed UE compute after steps 0..3: 0, 0, 0.5, 1.
    assert env.sim.totals(0)["ue"]["processed_compute"] == pytest.approx(1.0)


def test_ue_job_binds_to_newest_update_when_it_starts():
    # u0 requested at step 0 waits in the UE queue while comp_ue = 0 (steps 0-2: no compute,
    # so it does not start and binds to nothing). Sensors get all compute: s0, s1, s2 are
    # processed at steps 0, 1, 2 -> twin[0] = 2. At step 3 (comp_ue = 0.5) u0 starts, binds
    # to the newest update s2 and finishes: AoRI 3, AoSI |0 - 2| = 2 (the update is newer
    # than the request), late: 10 * 0.9^2 - 1 = 7.1.
    env = make_env({"traffic": {"phases": ONE_REQUEST}})
    rewards, infos = run(env, [(0.5, 0.0)] * 3 + [(0.5, 0.5)])
    assert rewards == pytest.approx([0.0, 0.0, 0.0, 7.1], abs=1e-12)
    assert ages(infos)[3] == [(3, 2)]


def test_transmission_over_several_steps():
    # 40 kHz split evenly: 20e3 Hz * 19.52 bit/s/Hz = 0.39 Mbit per step for each device
    # (any rate in (1/3, 1/2) Mbit/step gives the same schedule). u0 and s0 (generated at
    # step 0 only: sensor period 1000) need 3 steps: both reach the BS at step 2. There u0
    # blocks (the UE queue is served before s0 enters the twin); at step 3 it binds to s0:
    # AoRI 3 (late), AoSI 0 -> reward 9.
    env = make_env(
        {
            "bs": {"bandwidth_hz": 40e3},
            "traffic": {"phases": [{**p, "sensor_period_steps": 1000} for p in ONE_REQUEST]},
        }
    )
    rewards, infos = run(env, [(0.5, 0.5)] * 5)
    assert rewards == pytest.approx([0.0, 0.0, 0.0, 9.0, 0.0], abs=1e-12)
    assert [i["sent_ue"] for i in infos] == [0, 0, 1, 0, 0]
    assert [i["sent_sensor"] for i in infos] == [0, 0, 1, 0, 0]
    totals = env.sim.totals(0)
    for cls in ("ue", "sensor"):
        assert totals[cls]["transmitted_mbit"] == pytest.approx(1.0) and totals[cls]["sent_mbit"] == 1.0
    env2 = make_env({"bs": {"bandwidth_hz": 40e3}})
    env2.step(np.array([0.5, 0.5], dtype=np.float32))
    assert 1 / 3 < env2.sim.totals(0)["ue"]["transmitted_mbit"] < 1 / 2


def test_unconnected_ue_sends_nothing_and_drops_at_its_queue():
    # An SNR threshold of 1e9 (> 7.5e5) leaves the UE unconnected: its requests (one per
    # step) queue on the device (capacity 2) and the rest are dropped there; the sensor is
    # served as usual. After 6 steps: 6 generated, 2 queued, 4 dropped, 0 sent, reward 0.
    env = make_env({"ue": {"snr_threshold": 1e9, "queue_capacity": 2}})
    rewards, _ = run(env, [(0.5, 0.5)] * 6)
    assert rewards == [0.0] * 6
    assert env.sim.state.assoc[0].tolist() == [-1, 0]
    ue = env.sim.totals(0)["ue"]
    assert (ue["generated_jobs"], ue["dropped_uplink_jobs"], ue["sent_jobs"]) == (6, 4, 0)
    assert env.sim.state.dq_len[0].tolist() == [2, 0]
    assert env.sim.totals(0)["sensor"]["completed_jobs"] == 6


def test_shared_twin_and_class_major_processing_across_base_stations():
    # BS 0 at (10, 50), BS 1 at (90, 50); the sensor at (30, 50) attaches to BS 0 (20 m vs
    # 60 m), the UE at (70, 50) to BS 1. Step 0: s0 is processed at BS 0, but only after the
    # UE queues of all BSs were served (class-major order), so u0 waits at BS 1 even though
    # the twin is shared. Step 1: u0 (AoRI 1, AoSI 0) -> 10 and u1 (AoRI 0, AoSI 1) -> 9.
    env = make_env(
        {
            "bs": {"positions_m": [[10.0, 50.0], [90.0, 50.0]]},
            "ue": {"positions_m": [[70.0, 50.0]]},
            "sensor": {"positions_m": [[30.0, 50.0]]},
        }
    )
    rewards, infos = run(env, [(0.5, 0.5, 0.5, 0.5)] * 3)
    assert env.sim.state.assoc[0].tolist() == [1, 0]
    assert rewards == pytest.approx([0.0, 19.0, 9.0], abs=1e-12)
    assert infos[0]["queue_lengths"].tolist() == [[0, 0], [1, 0]]
    assert ages(infos)[1] == [(1, 0), (0, 1)]
