"""A slow, plain-Python reference stepper: the test oracle of the compiled core.

``ReferenceSim`` implements MODEL.md §2-4 for one environment with one Python object per job
and ``collections.deque`` FIFOs, written for reading, not for speed. It follows the same
DECISIONs as ``core.kernels`` (only connected devices with queued data share bandwidth;
processing is class-major: every BS's UE queue, then every sensor queue; tail drop at a full
device or MEC queue; remainders within ``EPS`` count as done; a random-waypoint UE stops at
its waypoint), so that the two produce identical trajectories.

Shared with the kernel, and tested on their own: the random primitives of ``core.rng``
(``seed_streams``, ``uniform``, ``poisson_at_least_one``, ``poisson_cdf_table``) and the
channel functions of ``core.channel`` (``path_loss_db``, ``snr_linear``, and the power-law
form of Okumura-Hata that the kernel evaluates: ``okumura_hata_power_law``,
``snr_power_law``). Everything else is written here independently from the scenario's config
mapping (not from ``core.state.Params``).
Initial placement is re-implemented too: it must draw the placement stream in the kernel's
order (per UE: x, y if not pinned, then the waypoint's x, y; then the sensors by rejection
in their BS's annulus), so a reference episode starts where the compiled one does.

Equal results need equal floating-point expressions where a comparison decides a branch
(distances as ``sqrt(dx*dx + dy*dy)``, rates as ``b * log2(1 + SNR) * Δt / 1e6``, EWMA
updates, mobility steps): those are written in the kernel's order on purpose.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metalore.config import ConfigError, Scenario
from metalore.core.channel import (
    MODEL_IDS,
    OKUMURA_HATA,
    okumura_hata_power_law,
    path_loss_db,
    snr_linear,
    snr_power_law,
)
from metalore.core.rng import (
    MOBILITY,
    NUM_STREAMS,
    PLACEMENT,
    TRAFFIC,
    poisson_at_least_one,
    poisson_cdf_table,
    seed_streams,
    uniform,
)
from metalore.core.state import COUNTERS

UE, SENSOR = 0, 1
CLASSES = (UE, SENSOR)
CLASS_NAMES = ("ue", "sensor")
# Must equal the kernel's constants (tests/test_reference_equivalence.py checks it).
EPS = 1e-9
PLACEMENT_ATTEMPTS = 2000
PLACEMENT_RESTARTS = 5


@dataclass
class Job:
    """One UE request or sensor update, from generation to completion."""

    jid: int  # generation order within the episode
    kind: int  # UE or SENSOR
    device: int  # device id (UEs 0..K-1, sensors K..K+N-1)
    sensor: int  # UE: nearest sensor at generation; sensor update: its own sensor id
    data_mbit: int  # size on the uplink (Mbit)
    compute_units: int  # load on the MEC (units)
    t_gen: int  # generation step
    left_mbit: float  # data still to send (Mbit)
    left_compute: float  # compute still to serve (units)
    update_t: int | None  # generation step of the twin update the job is served with


def _zero_counters() -> dict[str, dict[str, float]]:
    return {cls: dict.fromkeys(COUNTERS, 0.0) for cls in CLASS_NAMES}


class ReferenceSim:
    """One MetaLore environment, stepped in plain Python (slow; for tests).

    Args:
        scenario: a validated scenario (``metalore.config.make_scenario``).
        seed: the episode seed; equal seeds give the compiled core's episode.

    After ``step`` these attributes describe the step just taken: ``assoc`` (serving BS per
    device, -1 unconnected), ``snr``, ``bandwidth_hz``, ``completed`` ((AoRI, AoSI) of the UE
    jobs completed, in completion order), ``step_counts`` (per-class counter increments).
    ``totals`` holds the cumulative counters, ``all_completed`` every (AoRI, AoSI) of the
    episode, ``twin`` the generation step of the newest processed update per sensor (-1: none),
    ``pos`` / ``waypoint`` the device positions and UE waypoints (m), ``uplink`` / ``mec`` the
    queued ``Job`` objects (read-outs: ``uplink_lengths``, ``mec_lengths``, ...), ``rng`` the
    random stream words, and ``reward_sum``, ``late`` and ``twin_age_*`` episode statistics.
    """

    def __init__(self, scenario: Scenario, seed: int) -> None:
        cfg = scenario.config
        self.cfg = cfg
        self.num_ues = scenario.num_ues
        self.num_sensors = scenario.num_sensors
        if self.num_ues and not self.num_sensors:
            raise ConfigError("reference: UE requests need at least one sensor (sensor.count > 0)")
        self.num_devices = self.num_ues + self.num_sensors
        self.num_bs = scenario.num_bs
        self.bs_pos = [(float(x), float(y)) for x, y in cfg["bs"]["positions_m"]]
        self.width = float(cfg["area"]["width_m"])
        self.height = float(cfg["area"]["height_m"])
        self.dt = float(cfg["episode"]["step_duration_s"])
        self.mobile = cfg["ue"]["mobility"] == "random_waypoint"
        self.channel_model = MODEL_IDS[cfg["channel"]["model"]]
        self.scheduler = cfg["scheduler"]["model"]
        self.device_cfg = [cfg["ue"]] * self.num_ues + [cfg["sensor"]] * self.num_sensors
        bs = cfg["bs"]
        self.power_law = [  # (gain, exponent) of each device's Okumura-Hata links
            okumura_hata_power_law(
                bs["frequency_mhz"], bs["height_m"], dev["height_m"], bs["tx_power_dbm"], dev["noise_w"]
            )
            for dev in self.device_cfg
        ]
        self.mec_capacity = int(cfg["bs"]["queue_capacity"])
        self.data_cdf = [poisson_cdf_table(cfg[kind]["data_mbit_mean"]) for kind in CLASS_NAMES]
        self.compute_cdf = [poisson_cdf_table(cfg[kind]["compute_units_mean"]) for kind in CLASS_NAMES]

        self.rng = np.zeros((NUM_STREAMS, 4), np.uint64)
        seed_streams(self.rng, np.int64(seed))
        self.t = 0
        self.next_jid = 0
        self.uplink: list[deque[Job]] = [deque() for _ in range(self.num_devices)]
        self.mec: list[list[deque[Job]]] = [[deque(), deque()] for _ in range(self.num_bs)]
        self.twin = [-1] * self.num_sensors
        self.rr_pointer = [[0, 0] for _ in range(self.num_bs)]
        self.pf_avg_mbps = [0.0] * self.num_devices
        self.totals = _zero_counters()
        self.step_counts = _zero_counters()
        self.all_completed: list[tuple[int, int]] = []
        self.completed: list[tuple[int, int]] = []
        self.reward_sum = 0.0
        self.late = 0
        self.twin_age_sum = 0.0  # over steps and sensors whose twin entry is set: t - generation step
        self.twin_age_max = 0.0
        self.twin_age_count = 0
        self.twin_empty_count = 0  # sensor-steps with nothing in the twin
        self.assoc = [-1] * self.num_devices
        self.snr = [0.0] * self.num_devices
        self.bandwidth_hz = [0.0] * self.num_devices
        self.pos, self.waypoint = self._initial_positions()

    # ----------------------------------------------------------------- episode start
    def _initial_positions(self) -> tuple[list[list[float]], list[list[float]]]:
        ue, sensor = self.cfg["ue"], self.cfg["sensor"]
        stream = self.rng[PLACEMENT]
        pos: list[list[float]] = []
        waypoint: list[list[float]] = []
        for k in range(self.num_ues):
            if ue["positions_m"] is not None:
                pos.append([float(v) for v in ue["positions_m"][k]])
            else:
                x = uniform(stream) * self.width
                pos.append([x, uniform(stream) * self.height])
            x = uniform(stream) * self.width
            waypoint.append([x, uniform(stream) * self.height])
        if sensor["positions_m"] is not None:
            pos.extend([float(v) for v in p] for p in sensor["positions_m"])
        else:
            pos.extend(self._place_sensors(stream))
        return pos, waypoint

    def _place_sensors(self, stream: np.ndarray) -> list[list[float]]:
        """Rejection sampling in each sensor's home annulus (home BS = sensor id mod M)."""
        placement = self.cfg["sensor"]["placement"]
        r_min, r_max = float(placement["min_distance_m"]), float(placement["max_distance_m"])
        sep = float(placement["min_separation_m"])
        for _restart in range(PLACEMENT_RESTARTS):
            placed: list[list[float]] = []
            for i in range(self.num_sensors):
                home_x, home_y = self.bs_pos[i % self.num_bs]
                spot = None
                for _attempt in range(PLACEMENT_ATTEMPTS):
                    radius = math.sqrt(uniform(stream) * (r_max * r_max - r_min * r_min) + r_min * r_min)
                    angle = 2.0 * math.pi * uniform(stream)
                    x = home_x + radius * math.cos(angle)
                    y = home_y + radius * math.sin(angle)
                    if not (0.0 <= x <= self.width and 0.0 <= y <= self.height):
                        continue
                    if all((px - x) * (px - x) + (py - y) * (py - y) >= sep * sep for px, py in placed):
                        spot = [x, y]
                        break
                if spot is None:
                    break
                placed.append(spot)
            if len(placed) == self.num_sensors:
                return placed
        raise ConfigError("reference: sensor placement infeasible")

    # ----------------------------------------------------------------- one step
    def step(self, action: Sequence[Sequence[float]] | np.ndarray) -> float:
        """Advance one step under ``action`` ((M, 2) ``(bw_ue, comp_ue)`` in [0, 1]); return the reward."""
        split = [(float(action[m][0]), float(action[m][1])) for m in range(self.num_bs)]
        assert all(0.0 <= v <= 1.0 for pair in split for v in pair), split
        self.step_counts = _zero_counters()
        self.completed = []
        self._associate()
        self._generate()
        self._schedule(split)
        self._transmit()
        reward = self._process(split)
        self.reward_sum += reward
        self._record_twin_age()
        self._move()
        self.t += 1
        return reward

    def _count(self, kind: int, counter: str, value: float) -> None:
        self.totals[CLASS_NAMES[kind]][counter] += value
        self.step_counts[CLASS_NAMES[kind]][counter] += value

    def _kind(self, device: int) -> int:
        return UE if device < self.num_ues else SENSOR

    # 1. Association: the BS with the strongest received power (lowest id on ties).
    def _associate(self) -> None:
        bs = self.cfg["bs"]
        los = bool(self.cfg["channel"]["los"])
        for d in range(self.num_devices):
            dev = self.device_cfg[d]
            snrs = []
            for m, (bx, by) in enumerate(self.bs_pos):
                dx, dy = self.pos[d][0] - bx, self.pos[d][1] - by
                if self.channel_model == OKUMURA_HATA:  # its power-law form, as the kernel evaluates it
                    snrs.append((snr_power_law(dx * dx + dy * dy, *self.power_law[d]), m))
                    continue
                distance = math.sqrt(dx * dx + dy * dy)
                loss = path_loss_db(
                    self.channel_model, distance, bs["frequency_mhz"], bs["height_m"], dev["height_m"], los
                )
                snrs.append((snr_linear(bs["tx_power_dbm"], loss, dev["noise_w"]), m))
            best_snr = max(s for s, _ in snrs)
            best_bs = min(m for s, m in snrs if s == best_snr)
            self.snr[d] = best_snr
            self.assoc[d] = best_bs if best_snr >= dev["snr_threshold"] else -1

    # 2. Generation: UE requests, then periodic sensor updates, each to its device's FIFO tail.
    def _traffic_now(self) -> tuple[list[float], int]:
        """Request probability per UE and sensor period in force at the current step."""
        phases = self.cfg["traffic"]["phases"]
        if not phases:
            p = self.cfg["ue"]["request_probability"]
            probs = list(p) if isinstance(p, tuple) else [p] * self.num_ues
            return probs, int(self.cfg["sensor"]["period_steps"])
        current = [ph for ph in phases if ph["start_step"] <= self.t][-1]
        return [current["request_probability"]] * self.num_ues, int(current["sensor_period_steps"])

    def _nearest_sensor(self, x: float, y: float) -> int:
        def d2(i: int) -> float:
            dx = self.pos[self.num_ues + i][0] - x
            dy = self.pos[self.num_ues + i][1] - y
            return dx * dx + dy * dy

        return min(range(self.num_sensors), key=lambda i: (d2(i), i))

    def _generate(self) -> None:
        traffic = self.rng[TRAFFIC]
        probs, period = self._traffic_now()
        for k in range(self.num_ues):
            if uniform(traffic) < probs[k]:
                data = int(poisson_at_least_one(traffic, self.data_cdf[UE]))
                compute = int(poisson_at_least_one(traffic, self.compute_cdf[UE]))
                self._new_job(UE, k, self._nearest_sensor(*self.pos[k]), data, compute)
        if self.t % period == 0:
            for i in range(self.num_sensors):
                data = int(poisson_at_least_one(traffic, self.data_cdf[SENSOR]))
                compute = int(poisson_at_least_one(traffic, self.compute_cdf[SENSOR]))
                self._new_job(SENSOR, self.num_ues + i, i, data, compute)

    def _new_job(self, kind: int, device: int, sensor: int, data: int, compute: int) -> None:
        update_t = self.t if kind == SENSOR else None
        job = Job(self.next_jid, kind, device, sensor, data, compute, self.t, float(data), float(compute), update_t)
        self.next_jid += 1
        self._count(kind, "generated_jobs", 1)
        self._count(kind, "generated_mbit", data)
        self._count(kind, "generated_compute", compute)
        if len(self.uplink[device]) >= self.device_cfg[device]["queue_capacity"]:
            self._count(kind, "dropped_uplink_jobs", 1)
            self._count(kind, "dropped_uplink_mbit", data)
            self._count(kind, "dropped_uplink_compute", compute)
            return
        self.uplink[device].append(job)

    # 3-4. Action and scheduling.
    def _schedule(self, split: list[tuple[float, float]]) -> None:
        self.bandwidth_hz = [0.0] * self.num_devices
        bandwidth_hz = float(self.cfg["bs"]["bandwidth_hz"])
        for m in range(self.num_bs):
            for kind in CLASSES:
                members = [d for d in range(self.num_devices) if self._kind(d) == kind]
                backlogged = [d for d in members if self.assoc[d] == m and self.uplink[d]]
                if not backlogged:
                    continue
                share = split[m][0] if kind == UE else 1.0 - split[m][0]
                budget_hz = share * bandwidth_hz
                if self.scheduler == "round_robin":
                    self.bandwidth_hz[self._round_robin(m, kind, members, backlogged)] = budget_hz
                elif self.scheduler == "proportional_fair":
                    weights = [math.log2(1.0 + self.snr[d]) / max(self.pf_avg_mbps[d], EPS) for d in backlogged]
                    total = sum(weights)
                    for d, w in zip(backlogged, weights, strict=True):
                        self.bandwidth_hz[d] = budget_hz * w / total
                else:
                    for d in backlogged:
                        self.bandwidth_hz[d] = budget_hz / len(backlogged)

    def _round_robin(self, m: int, kind: int, members: list[int], backlogged: list[int]) -> int:
        """The class's whole budget goes to the first backlogged device at or after the pointer."""
        start = self.rr_pointer[m][kind]
        for j in range(len(members)):
            local = (start + j) % len(members)
            if members[local] in backlogged:
                self.rr_pointer[m][kind] = (local + 1) % len(members)
                return members[local]
        raise AssertionError("round robin found no backlogged device")

    # 5. Transmission: FIFO per device, devices in id order.
    def _transmit(self) -> None:
        pf_weight = float(self.cfg["scheduler"]["pf_ewma_weight"])
        for d in range(self.num_devices):
            kind = self._kind(d)
            sent = 0.0
            if self.bandwidth_hz[d] > 0.0:
                budget = self.bandwidth_hz[d] * math.log2(1.0 + self.snr[d]) * self.dt / 1e6
                queue = self.uplink[d]
                while budget > 0.0 and queue:
                    job = queue[0]
                    if job.left_mbit > budget + EPS:
                        job.left_mbit -= budget
                        sent += budget
                        break
                    sent += job.left_mbit
                    budget = max(budget - job.left_mbit, 0.0)
                    queue.popleft()
                    job.left_mbit = 0.0
                    self._arrive_at_mec(self.assoc[d], job)
                self._count(kind, "transmitted_mbit", sent)
            if self.scheduler == "proportional_fair":
                self.pf_avg_mbps[d] = (1.0 - pf_weight) * self.pf_avg_mbps[d] + pf_weight * sent / self.dt

    def _arrive_at_mec(self, m: int, job: Job) -> None:
        self._count(job.kind, "sent_jobs", 1)
        self._count(job.kind, "sent_mbit", job.data_mbit)
        queue = self.mec[m][job.kind]
        if len(queue) >= self.mec_capacity:
            self._count(job.kind, "dropped_mec_jobs", 1)
            self._count(job.kind, "dropped_mec_mbit", job.data_mbit)
            self._count(job.kind, "dropped_mec_compute", job.compute_units)
            return
        queue.append(job)

    # 6-7. Processing (UE queues of all BSs, then sensor queues), sync rule, ages and reward.
    def _process(self, split: list[tuple[float, float]]) -> float:
        compute_ups = float(self.cfg["bs"]["compute_units_per_s"])
        reward = 0.0
        for kind in CLASSES:
            for m in range(self.num_bs):
                share = split[m][1] if kind == UE else 1.0 - split[m][1]
                capacity = share * compute_ups * self.dt
                queue = self.mec[m][kind]
                while capacity > EPS and queue:
                    job = queue[0]
                    if job.update_t is None:  # a UE job that has not started yet
                        if self.twin[job.sensor] < 0:
                            break  # head-of-line blocking until the twin holds its sensor's data
                        job.update_t = self.twin[job.sensor]
                    if job.left_compute > capacity + EPS:
                        job.left_compute -= capacity
                        self._count(kind, "processed_compute", capacity)
                        break
                    capacity = max(capacity - job.left_compute, 0.0)
                    self._count(kind, "processed_compute", job.left_compute)
                    job.left_compute = 0.0
                    queue.popleft()
                    self._count(kind, "completed_jobs", 1)
                    self._count(kind, "completed_mbit", job.data_mbit)
                    self._count(kind, "completed_compute", job.compute_units)
                    if kind == SENSOR:
                        self.twin[job.sensor] = max(self.twin[job.sensor], job.t_gen)
                    else:
                        reward += self._ue_job_done(job)
        return reward

    def _ue_job_done(self, job: Job) -> float:
        assert job.update_t is not None
        rw = self.cfg["reward"]
        aori = self.t - job.t_gen
        aosi = abs(job.t_gen - job.update_t)
        self.completed.append((aori, aosi))
        self.all_completed.append((aori, aosi))
        value = rw["sync_reward"] * rw["aosi_discount"] ** aosi
        if aori > rw["e2e_delay_threshold_steps"]:
            value += rw["late_penalty"]
            self.late += 1
        return value

    def _record_twin_age(self) -> None:
        for generated in self.twin:
            if generated < 0:
                self.twin_empty_count += 1
            else:
                self.twin_age_sum += self.t - generated
                self.twin_age_max = max(self.twin_age_max, float(self.t - generated))
                self.twin_age_count += 1

    # 8. Mobility: random waypoint; a UE reaching its waypoint stops there and draws a new one.
    def _move(self) -> None:
        if not self.mobile:
            return
        stream = self.rng[MOBILITY]
        hop = float(self.cfg["ue"]["speed_mps"]) * self.dt
        for k in range(self.num_ues):
            pos, target = self.pos[k], self.waypoint[k]
            dx, dy = target[0] - pos[0], target[1] - pos[1]
            dist = math.sqrt(dx * dx + dy * dy)
            if dist <= hop:
                pos[0], pos[1] = target[0], target[1]
                x = uniform(stream) * self.width
                self.waypoint[k] = [x, uniform(stream) * self.height]
            else:
                pos[0] += dx / dist * hop
                pos[1] += dy / dist * hop

    # ----------------------------------------------------------------- read-outs
    def uplink_lengths(self) -> list[int]:
        """Jobs waiting in each device's uplink FIFO."""
        return [len(q) for q in self.uplink]

    def uplink_left_mbit(self) -> list[list[float]]:
        """Data still to send of every queued job, per device, head first (Mbit)."""
        return [[job.left_mbit for job in q] for q in self.uplink]

    def mec_lengths(self) -> list[list[int]]:
        """``[l_b, l^_b]`` per BS: jobs in its UE and sensor MEC queues."""
        return [[len(q) for q in pair] for pair in self.mec]

    def mec_left_compute(self) -> list[list[list[float]]]:
        """Compute still to serve of every MEC-queued job, per BS and class, head first (units)."""
        return [[[job.left_compute for job in q] for q in pair] for pair in self.mec]


__all__ = ["EPS", "Job", "ReferenceSim"]
