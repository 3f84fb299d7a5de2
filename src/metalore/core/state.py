"""The batched simulation state, the frozen scenario parameters, and the per-step outputs.

State is data (STYLE.md §1): three NamedTuples of arrays. Every ``State`` and ``StepOutput``
field has a leading batch axis ``B`` (a single environment is the batch of one); ``Params``
is shared by the batch. The compiled kernels take these fields as positional arguments in
declaration order (numba dispatches plain arrays far faster than tuples), so the field order
here *is* the kernel signature; ``tests/test_core_units.py`` checks that they agree.

Axis names: ``B`` batch, ``M`` base stations, ``K`` UEs, ``N`` sensors, ``D = K + N``
devices (UEs first, then sensors), ``Q`` device-queue slots, ``Qb`` MEC-queue slots, ``P``
traffic phases, ``H`` age-histogram bins, ``L`` job-log rows, ``C = 2`` device classes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from metalore.config import Scenario
from metalore.core.channel import MODEL_IDS, okumura_hata_power_law
from metalore.core.rng import NUM_STREAMS, poisson_cdf_table, poisson_guide_table

UE, SENSOR = 0, 1
CLASS_NAMES = ("ue", "sensor")
STATIC, RANDOM_WAYPOINT = 0, 1
RESOURCE_FAIR, ROUND_ROBIN, PROPORTIONAL_FAIR = 0, 1, 2
SCHEDULER_IDS = {"resource_fair": RESOURCE_FAIR, "round_robin": ROUND_ROBIN, "proportional_fair": PROPORTIONAL_FAIR}

# Fields of a queue slot (dq[..., field] and bq[..., field]), int32. A slot's fields are
# contiguous (one record per job) because a job is always read and written whole: three separate
# arrays cost three cache misses per touch. Records hold exact integers only: sizes are integer
# Poisson draws (means <= 100,000) and times are steps (episode.steps < 2**31, as in the job log),
# so 16-byte uplink and 24-byte MEC records (float64 fields took 48 and 64) halve the memory an
# env-step touches. Two parts of a job live beside its record, not in it:
# * the remainder: only the head job of a FIFO is ever partly sent or served, so its Mbit still to
#   send (compute units still to serve) is one float64 per queue (``dq_rem``, ``bq_rem``); every
#   other queued job still has all of its data (compute) to go. A partial send then touches no
#   record at all;
# * the job id (``dq_jid``, ``bq_jid``, int64): only the job log reads it, so it is written and
#   read only when the log is on (allocated lazily: untouched pages cost no memory).
JOB_DATA, JOB_COMPUTE, JOB_T_GEN, JOB_SENSOR, JOB_DEVICE, JOB_SENSOR_UPDATE_T = range(6)
DQ_FIELDS = 4  # device queues use JOB_DATA..JOB_SENSOR
BQ_FIELDS = 6  # MEC queues add JOB_DEVICE and JOB_SENSOR_UPDATE_T (-1 until a UE job binds to an update)

# Cumulative per-class counters (totals[b, class, counter]); units in the names.
COUNTERS = (
    "generated_jobs",
    "generated_mbit",
    "generated_compute",
    "sent_jobs",  # finished transmission (reached the BS, whether or not its queue had room)
    "sent_mbit",
    "transmitted_mbit",  # bits on the air, including parts of jobs still in transmission
    "completed_jobs",
    "completed_mbit",
    "completed_compute",
    "processed_compute",  # compute served, including parts of jobs still in processing
    "dropped_uplink_jobs",  # the device queue was full at generation
    "dropped_uplink_mbit",
    "dropped_uplink_compute",
    "dropped_mec_jobs",  # the MEC queue was full when transmission finished
    "dropped_mec_mbit",
    "dropped_mec_compute",
)
(
    GEN_JOBS,
    GEN_MBIT,
    GEN_COMPUTE,
    SENT_JOBS,
    SENT_MBIT,
    TX_MBIT,
    DONE_JOBS,
    DONE_MBIT,
    DONE_COMPUTE,
    PROC_COMPUTE,
    DROP_UL_JOBS,
    DROP_UL_MBIT,
    DROP_UL_COMPUTE,
    DROP_MEC_JOBS,
    DROP_MEC_MBIT,
    DROP_MEC_COMPUTE,
) = range(len(COUNTERS))

# Episode statistics of UE jobs and of the twin (stats[b, stat]).
STATS = (
    "ue_completed",
    "aori_sum",
    "aosi_sum",
    "aori_max",
    "aosi_max",
    "late",
    "reward_sum",
    "twin_age_sum",  # sum over steps and sensors holding data of (t - update generation step)
    "twin_age_max",
    "twin_age_count",
    "twin_empty_count",  # sensor-steps at which the twin had no update of that sensor
)
(
    S_UE_DONE,
    S_AORI_SUM,
    S_AOSI_SUM,
    S_AORI_MAX,
    S_AOSI_MAX,
    S_LATE,
    S_REWARD,
    S_TWIN_AGE_SUM,
    S_TWIN_AGE_MAX,
    S_TWIN_AGE_COUNT,
    S_TWIN_EMPTY,
) = range(len(STATS))

# Job-log record fields (log_rec[b, row, field]); -1 marks "not yet" / "not applicable".
LOG_FIELDS = (
    "kind",
    "device_id",
    "sensor_id",
    "data_mbit",
    "compute_units",
    "t_generated",
    "t_tx_done",
    "t_proc_start",
    "t_proc_done",
    "sensor_update_t",
    "dropped",  # 0 no, 1 device queue full, 2 MEC queue full
)
(
    LOG_KIND,
    LOG_DEVICE,
    LOG_SENSOR,
    LOG_DATA,
    LOG_COMPUTE,
    LOG_T_GEN,
    LOG_T_TX,
    LOG_T_START,
    LOG_T_DONE,
    LOG_SENSOR_UPDATE_T,
    LOG_DROPPED,
) = range(len(LOG_FIELDS))
DROPPED_UPLINK, DROPPED_MEC = 1, 2

MAX_HIST_BINS = 4096


class Params(NamedTuple):
    """Scenario parameters, frozen and shared by every environment of a batch."""

    steps: int  # episode length (steps)
    dt_s: float  # step duration (s)
    area_w_m: float  # area width (m)
    area_h_m: float  # area height (m)
    num_ues: int  # K
    bs_pos_m: np.ndarray  # (M, 2) float64, BS positions (m)
    bs_bandwidth_hz: np.ndarray  # (M,) float64, uplink bandwidth budget (Hz)
    bs_frequency_mhz: np.ndarray  # (M,) float64, carrier frequency (MHz)
    bs_tx_power_dbm: np.ndarray  # (M,) float64, transmit power of the link budget (dBm)
    bs_height_m: np.ndarray  # (M,) float64
    link_gain: np.ndarray  # (M, D) float64, Okumura-Hata SNR of BS m's link to device d at 1 km (see core.channel)
    link_exponent: np.ndarray  # (M,) float64, its power of the squared distance in km^2
    bs_compute_ups: np.ndarray  # (M,) float64, MEC compute (units/s)
    bs_queue_capacity: int  # MEC queue capacity (jobs, per queue)
    dev_height_m: np.ndarray  # (D,) float64
    dev_noise_w: np.ndarray  # (D,) float64, noise power (W)
    dev_snr_threshold: np.ndarray  # (D,) float64, linear SNR below which a device is unconnected
    dev_queue_capacity: np.ndarray  # (D,) int64, uplink queue capacity (jobs)
    mobility: int  # STATIC or RANDOM_WAYPOINT
    speed_mps: float  # UE speed (m/s)
    ue_pinned: bool  # UE start positions given in ue_pos_m
    ue_pos_m: np.ndarray  # (K, 2) float64, pinned UE positions (unused if not pinned)
    sensor_pinned: bool  # sensor positions given in sensor_pos_m
    sensor_pos_m: np.ndarray  # (N, 2) float64, pinned sensor positions (unused if not pinned)
    place_min_m: float  # sensor annulus inner radius around its BS (m)
    place_max_m: float  # sensor annulus outer radius (m)
    place_sep_m: float  # minimum sensor separation (m)
    phase_start: np.ndarray  # (P,) int64, first step of each traffic phase
    phase_request_p: np.ndarray  # (P, K) float64, UE request probability per step
    phase_period: np.ndarray  # (P,) int64, sensor update period (steps)
    ue_data_cdf: np.ndarray  # Poisson table of UE job data (Mbit)
    ue_compute_cdf: np.ndarray  # Poisson table of UE job compute (units)
    sensor_data_cdf: np.ndarray  # Poisson table of sensor update data (Mbit)
    sensor_compute_cdf: np.ndarray  # Poisson table of sensor update compute (units)
    ue_data_guide: np.ndarray  # guide table of ue_data_cdf (see core.rng.poisson_guide_table)
    ue_compute_guide: np.ndarray  # guide table of ue_compute_cdf
    sensor_data_guide: np.ndarray  # guide table of sensor_data_cdf
    sensor_compute_guide: np.ndarray  # guide table of sensor_compute_cdf
    channel_model: int  # see core.channel.MODEL_IDS
    los: bool  # line of sight (UMi model only)
    scheduler: int  # see SCHEDULER_IDS
    pf_weight: float  # EWMA weight of proportional-fair throughput averages
    sync_reward: float  # R_sync
    aosi_discount: float  # gamma
    aosi_discount_pow: np.ndarray  # (H,) float64, gamma**a for a = 0..H-1 (a table lookup instead of pow per job)
    late_penalty: float  # c_late
    late_threshold: int  # D_th (steps)
    log_capacity: int  # L, job-log rows per environment (0 = logging off)
    grid_cell_m: float  # cell size of the sensor lookup grid (m)
    grid_nx: int  # grid columns
    grid_ny: int  # grid rows


class State(NamedTuple):
    """The whole simulation state of a batch of environments."""

    t: np.ndarray  # (B,) int64, current step index (0 after reset)
    seed: np.ndarray  # (B,) int64, seed of the current episode
    rng: np.ndarray  # (B, 3, 4) uint64, xoshiro256** streams (traffic, mobility, placement)
    pos_m: np.ndarray  # (B, D, 2) float64, device positions (m)
    waypoint_m: np.ndarray  # (B, K, 2) float64, random-waypoint targets (m)
    # Links: UEs' recomputed at the start of every step, sensors' (they never move) at reset.
    assoc: np.ndarray  # (B, D) int64, serving BS of each device (-1 unconnected)
    snr: np.ndarray  # (B, D) float64, linear SNR to the strongest BS
    spectral_eff: np.ndarray  # (B, D) float64, log2(1 + snr) (bit/s/Hz), kept with the link it belongs to
    # (B, Q, D, DQ_FIELDS) int32, uplink FIFO ring buffers of job records, slot-major: the devices
    # of an environment advance together, so the records a step touches at their heads and tails
    # share cache lines (device-major rings put each device's on its own line).
    dq: np.ndarray
    dq_head: np.ndarray  # (B, D) int64, ring-buffer head slot
    dq_len: np.ndarray  # (B, D) int64, jobs queued (jobs)
    dq_rem: np.ndarray  # (B, D) float64, Mbit still to send of the head job (stale when the queue is empty)
    dq_jid: np.ndarray  # (B, Q, D) int64, job id of each uplink slot (written only when the job log is on)
    bq: np.ndarray  # (B, M, 2, Qb, BQ_FIELDS) int32, MEC FIFO ring buffers of job records
    bq_head: np.ndarray  # (B, M, 2) int64, ring-buffer head slot
    bq_len: np.ndarray  # (B, M, 2) int64, jobs queued: [l_b(t), l^_b(t)]
    bq_rem: np.ndarray  # (B, M, 2) float64, compute units still to serve of the head job (stale when empty)
    bq_jid: np.ndarray  # (B, M, 2, Qb) int64, job id of each MEC slot (written only when the job log is on)
    twin: np.ndarray  # (B, N) int64, generation step of the twin's latest update per sensor (-1 none)
    rr_next: np.ndarray  # (B, M, 2) int64, round-robin pointer (class-local device index)
    pf_avg_mbps: np.ndarray  # (B, D) float64, proportional-fair average throughput (Mbit/s)
    next_jid: np.ndarray  # (B,) int64, id of the next job generated
    totals: np.ndarray  # (B, 2, len(COUNTERS)) float64, cumulative counters per class
    stats: np.ndarray  # (B, len(STATS)) float64, episode statistics
    aori_hist: np.ndarray  # (B, H) int64, AoRI histogram (last bin: >= H - 1)
    aosi_hist: np.ndarray  # (B, H) int64, AoSI histogram (last bin: >= H - 1)
    grid_start: np.ndarray  # (B, nx * ny + 1) int64, sensor-grid cell offsets into grid_items
    grid_items: np.ndarray  # (B, N) int64, sensor ids sorted by grid cell
    log_jid: np.ndarray  # (B, L) int64, job id held by each log row (-1 empty)
    log_rec: np.ndarray  # (B, L, len(LOG_FIELDS)) int32, job-log records


class StepOutput(NamedTuple):
    """What one step produced (overwritten by the next step)."""

    reward: np.ndarray  # (B,) float64
    step_counts: np.ndarray  # (B, 2, len(COUNTERS)) float64, this step's counter increments
    done_n: np.ndarray  # (B,) int64, UE jobs completed this step
    done_aori: np.ndarray  # (B, M * Qb) int32, their AoRI (steps), first done_n entries valid
    done_aosi: np.ndarray  # (B, M * Qb) int32, their AoSI (steps)
    done_ue: np.ndarray  # (B, M * Qb) int32, the UE that issued each of them
    bandwidth_hz: np.ndarray  # (B, D) float64, uplink bandwidth scheduled to each device
    # (B, 2) int64, sums of the AoRI and of the AoSI of the done_n jobs: the step's mean ages are
    # read from here, not by scanning done_aori/done_aosi rows 4 KiB apart after a large batch.
    done_age_sum: np.ndarray


def _per_device(scenario: Scenario, key: str, dtype: type = np.float64) -> np.ndarray:
    cfg = scenario.config
    ues: np.ndarray = np.full(scenario.num_ues, cfg["ue"][key], dtype=dtype)
    return np.concatenate([ues, np.full(scenario.num_sensors, cfg["sensor"][key], dtype=dtype)])


def _points(points: tuple[tuple[float, float], ...] | None, count: int) -> np.ndarray:
    return np.zeros((count, 2)) if points is None else np.asarray(points, dtype=np.float64).reshape(count, 2)


def _phases(scenario: Scenario) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cfg = scenario.config
    k = scenario.num_ues
    base_p = np.broadcast_to(np.asarray(cfg["ue"]["request_probability"], dtype=np.float64), (k,))
    phases = cfg["traffic"]["phases"]
    if not phases:
        return np.zeros(1, np.int64), base_p.reshape(1, k).copy(), np.array([cfg["sensor"]["period_steps"]], np.int64)
    start = np.array([p["start_step"] for p in phases], dtype=np.int64)
    prob = np.array([np.full(k, p["request_probability"]) for p in phases], dtype=np.float64).reshape(len(phases), k)
    period = np.array([p["sensor_period_steps"] for p in phases], dtype=np.int64)
    return start, prob, period


def _okumura_hata_links(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """``Params.link_gain`` (M, D) and ``link_exponent`` (M,): each link's SNR as a power of the squared distance."""
    bs = scenario.config["bs"]
    heights, noises = _per_device(scenario, "height_m"), _per_device(scenario, "noise_w")
    links = [
        okumura_hata_power_law(bs["frequency_mhz"], bs["height_m"], float(h), bs["tx_power_dbm"], float(w))
        for h, w in zip(heights, noises, strict=True)
    ]
    # Every BS has the config's frequency, height and power: one row per BS, the same for all.
    gain = np.tile(np.array([g for g, _ in links], dtype=np.float64), (scenario.num_bs, 1))
    exponent = np.full(scenario.num_bs, links[0][1] if links else 0.0)  # (depends on the BS height only)
    return gain, exponent


def build_params(scenario: Scenario) -> Params:
    """Turn a validated scenario into the kernels' parameter arrays."""
    cfg = scenario.config
    m = scenario.num_bs
    width, height = cfg["area"]["width_m"], cfg["area"]["height_m"]
    n = scenario.num_sensors
    cell = math.sqrt(width * height / max(n, 1))
    nx, ny = max(1, math.ceil(width / cell)), max(1, math.ceil(height / cell))
    phase_start, phase_p, phase_period = _phases(scenario)
    bs = cfg["bs"]
    placement = cfg["sensor"]["placement"]
    link_gain, link_exponent = _okumura_hata_links(scenario)
    # Poisson tables of job sizes, one per class and quantity (each also gets a guide table).
    cdf = {
        f"{cls}_{what}": poisson_cdf_table(cfg[cls][key])
        for cls in CLASS_NAMES
        for what, key in (("data", "data_mbit_mean"), ("compute", "compute_units_mean"))
    }
    return Params(
        steps=scenario.steps,
        dt_s=float(cfg["episode"]["step_duration_s"]),
        area_w_m=float(width),
        area_h_m=float(height),
        num_ues=scenario.num_ues,
        bs_pos_m=np.asarray(bs["positions_m"], dtype=np.float64).reshape(m, 2),
        bs_bandwidth_hz=np.full(m, bs["bandwidth_hz"]),
        bs_frequency_mhz=np.full(m, bs["frequency_mhz"]),
        bs_tx_power_dbm=np.full(m, bs["tx_power_dbm"]),
        bs_height_m=np.full(m, bs["height_m"]),
        link_gain=link_gain,
        link_exponent=link_exponent,
        bs_compute_ups=np.full(m, bs["compute_units_per_s"]),
        bs_queue_capacity=int(bs["queue_capacity"]),
        dev_height_m=_per_device(scenario, "height_m"),
        dev_noise_w=_per_device(scenario, "noise_w"),
        dev_snr_threshold=_per_device(scenario, "snr_threshold"),
        dev_queue_capacity=_per_device(scenario, "queue_capacity", np.int64),
        mobility=RANDOM_WAYPOINT if cfg["ue"]["mobility"] == "random_waypoint" else STATIC,
        speed_mps=float(cfg["ue"]["speed_mps"]),
        ue_pinned=cfg["ue"]["positions_m"] is not None,
        ue_pos_m=_points(cfg["ue"]["positions_m"], scenario.num_ues),
        sensor_pinned=cfg["sensor"]["positions_m"] is not None,
        sensor_pos_m=_points(cfg["sensor"]["positions_m"], n),
        place_min_m=float(placement["min_distance_m"]),
        place_max_m=float(placement["max_distance_m"]),
        place_sep_m=float(placement["min_separation_m"]),
        phase_start=phase_start,
        phase_request_p=phase_p,
        phase_period=phase_period,
        ue_data_cdf=cdf["ue_data"],
        ue_compute_cdf=cdf["ue_compute"],
        sensor_data_cdf=cdf["sensor_data"],
        sensor_compute_cdf=cdf["sensor_compute"],
        ue_data_guide=poisson_guide_table(cdf["ue_data"]),
        ue_compute_guide=poisson_guide_table(cdf["ue_compute"]),
        sensor_data_guide=poisson_guide_table(cdf["sensor_data"]),
        sensor_compute_guide=poisson_guide_table(cdf["sensor_compute"]),
        channel_model=MODEL_IDS[cfg["channel"]["model"]],
        los=bool(cfg["channel"]["los"]),
        scheduler=SCHEDULER_IDS[cfg["scheduler"]["model"]],
        pf_weight=float(cfg["scheduler"]["pf_ewma_weight"]),
        sync_reward=float(cfg["reward"]["sync_reward"]),
        aosi_discount=float(cfg["reward"]["aosi_discount"]),
        aosi_discount_pow=_powers(float(cfg["reward"]["aosi_discount"]), _hist_bins(scenario.steps)),
        late_penalty=float(cfg["reward"]["late_penalty"]),
        late_threshold=int(cfg["reward"]["e2e_delay_threshold_steps"]),
        log_capacity=int(cfg["log"]["max_jobs"]) if cfg["log"]["jobs"] else 0,
        grid_cell_m=float(cell),
        grid_nx=nx,
        grid_ny=ny,
    )


def _hist_bins(steps: int) -> int:
    return int(min(steps + 2, MAX_HIST_BINS))


def hist_bins(params: Params) -> int:
    """Number of age-histogram bins: exact for every age an episode can produce, capped."""
    return _hist_bins(params.steps)


def _powers(base: float, count: int) -> np.ndarray:
    """``base**a`` for a = 0..count-1, each computed as the reference stepper computes it."""
    return np.array([base**a for a in range(count)], dtype=np.float64)


def allocate_state(params: Params, batch: int) -> State:
    """Zeroed state for ``batch`` environments; ``core.kernels.init_envs`` makes it an episode start.

    Queue slots are allocated with ``np.zeros`` (lazily mapped pages) and an emptied ring
    restarts at slot 0, so resident memory follows the queues' peak occupancy, not their
    capacity. A queue that never empties (an overloaded class) walks its whole ring.
    """
    m, k = len(params.bs_pos_m), params.num_ues
    d = len(params.dev_height_m)
    n = d - k
    q = int(params.dev_queue_capacity.max()) if d else 1
    qb = params.bs_queue_capacity
    h = hist_bins(params)
    cells = params.grid_nx * params.grid_ny
    log = params.log_capacity
    return State(
        t=np.zeros(batch, np.int64),
        seed=np.zeros(batch, np.int64),
        rng=np.zeros((batch, NUM_STREAMS, 4), np.uint64),
        pos_m=np.zeros((batch, d, 2)),
        waypoint_m=np.zeros((batch, k, 2)),
        assoc=np.full((batch, d), -1, np.int64),
        snr=np.zeros((batch, d)),
        spectral_eff=np.zeros((batch, d)),
        dq=np.zeros((batch, q, d, DQ_FIELDS), np.int32),
        dq_head=np.zeros((batch, d), np.int64),
        dq_len=np.zeros((batch, d), np.int64),
        dq_rem=np.zeros((batch, d)),
        dq_jid=np.zeros((batch, q, d), np.int64),
        bq=np.zeros((batch, m, 2, qb, BQ_FIELDS), np.int32),
        bq_head=np.zeros((batch, m, 2), np.int64),
        bq_len=np.zeros((batch, m, 2), np.int64),
        bq_rem=np.zeros((batch, m, 2)),
        bq_jid=np.zeros((batch, m, 2, qb), np.int64),
        twin=np.full((batch, n), -1, np.int64),
        rr_next=np.zeros((batch, m, 2), np.int64),
        pf_avg_mbps=np.zeros((batch, d)),
        next_jid=np.zeros(batch, np.int64),
        totals=np.zeros((batch, 2, len(COUNTERS))),
        stats=np.zeros((batch, len(STATS))),
        aori_hist=np.zeros((batch, h), np.int64),
        aosi_hist=np.zeros((batch, h), np.int64),
        grid_start=np.zeros((batch, cells + 1), np.int64),
        grid_items=np.zeros((batch, n), np.int64),
        log_jid=np.full((batch, log), -1, np.int64),
        log_rec=np.zeros((batch, log, len(LOG_FIELDS)), np.int32),
    )


def allocate_output(params: Params, batch: int) -> StepOutput:
    """Per-step output buffers for ``batch`` environments."""
    m = len(params.bs_pos_m)
    d = len(params.dev_height_m)
    done_cap = m * params.bs_queue_capacity
    return StepOutput(
        reward=np.zeros(batch),
        step_counts=np.zeros((batch, 2, len(COUNTERS))),
        done_n=np.zeros(batch, np.int64),
        done_aori=np.zeros((batch, done_cap), np.int32),
        done_aosi=np.zeros((batch, done_cap), np.int32),
        done_ue=np.zeros((batch, done_cap), np.int32),
        bandwidth_hz=np.zeros((batch, d)),
        done_age_sum=np.zeros((batch, 2), np.int64),
    )
