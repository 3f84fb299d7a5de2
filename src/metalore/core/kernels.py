"""The compiled simulation core: episode start of one environment, one step of a block of them.

``init_envs`` and ``step_envs`` take the fields of ``Params``, ``State`` and ``StepOutput``
(see ``core.state``) as positional arguments in declaration order; the ``*_parallel`` twins
split the batch across threads for large batches (``step_envs_parallel`` takes the counter
its threads share blocks by first). All dynamics live in ``_init_one`` and
``_step_block`` (one step of environments ``lo <= b < hi``); every caller (single env, vector
env, PettingZoo, RLlib) goes through them. Step order and semantics follow MODEL.md §2;
choices the spec leaves open are marked DECISION and documented in docs/model.md.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from metalore.core.atomic import fetch_add
from metalore.core.channel import OKUMURA_HATA, path_loss_db, snr_linear, snr_power_law
from metalore.core.jit import STEP_PATH
from metalore.core.prefetch import prefetch
from metalore.core.rng import (
    MOBILITY,
    PLACEMENT,
    TRAFFIC,
    poisson_guided_at,
    seed_streams,
    uniform,
    uniform_at,
)
from metalore.core.state import (
    BQ_FIELDS,
    DONE_COMPUTE,
    DONE_JOBS,
    DONE_MBIT,
    DROP_MEC_COMPUTE,
    DROP_MEC_JOBS,
    DROP_MEC_MBIT,
    DROP_UL_COMPUTE,
    DROP_UL_JOBS,
    DROP_UL_MBIT,
    DROPPED_MEC,
    DROPPED_UPLINK,
    GEN_COMPUTE,
    GEN_JOBS,
    GEN_MBIT,
    JOB_COMPUTE,
    JOB_DATA,
    JOB_DEVICE,
    JOB_SENSOR,
    JOB_SENSOR_UPDATE_T,
    JOB_T_GEN,
    LOG_COMPUTE,
    LOG_DATA,
    LOG_DEVICE,
    LOG_DROPPED,
    LOG_KIND,
    LOG_SENSOR,
    LOG_SENSOR_UPDATE_T,
    LOG_T_DONE,
    LOG_T_GEN,
    LOG_T_START,
    LOG_T_TX,
    PROC_COMPUTE,
    PROPORTIONAL_FAIR,
    RANDOM_WAYPOINT,
    ROUND_ROBIN,
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
    SENSOR,
    SENT_JOBS,
    SENT_MBIT,
    TX_MBIT,
    UE,
)

# Remainders below this are "done": keeps float round-off from leaving a job one step longer.
EPS = 1e-9
# Sensor placement: attempts per sensor, and restarts of the whole placement, before giving up.
PLACEMENT_ATTEMPTS = 2000
PLACEMENT_RESTARTS = 5
# Up to this many sensors, nearest-sensor queries scan them all instead of walking the grid.
BRUTE_FORCE_SENSORS = 48
# Blocks of environments the threads of the threaded step take one at a time (see step_envs_parallel).
PARALLEL_BLOCKS = 32
# MEC-queue records prefetched at each end of a queue (a step serves or appends a few jobs there).
PREFETCH_MEC_RECORDS = 4
# Ring indices wrap by one conditional subtraction (head < Q and length <= Q), not by ``%``:
# a 64-bit division per queue touch was ~5% of the step (interleaved A/B, 1,024 envs).
# Return codes of _init_one.
INIT_OK, INIT_PLACEMENT_FAILED = 0, 1


# --------------------------------------------------------------------------- helpers


@nb.njit(inline="always", **STEP_PATH)
def _log_set(log_jid, log_rec, b, jid, field, value):
    """Write one field of job ``jid``'s log record, if logging is on and the row is still its own."""
    cap = log_jid.shape[1]
    if cap > 0:
        row = jid % cap
        if log_jid[b, row] == jid:
            log_rec[b, row, field] = value


@nb.njit(inline="always", **STEP_PATH)
def _count(step_counts, b, c, counter, value):
    """Add ``value`` to this step's increment of a class counter (totalled at the end of the step)."""
    step_counts[b, c, counter] += value


@nb.njit(cache=True)
def _build_sensor_grid(pos_m, num_ues, grid_cell_m, grid_nx, grid_ny, grid_start, grid_items):
    """Counting-sort the sensors of one environment into grid cells (for nearest-sensor queries)."""
    n = grid_items.shape[0]
    grid_start[:] = 0
    for i in range(n):
        cell = _cell_of(pos_m[num_ues + i, 0], pos_m[num_ues + i, 1], grid_cell_m, grid_nx, grid_ny)
        grid_start[cell + 1] += 1
    for c in range(grid_nx * grid_ny):
        grid_start[c + 1] += grid_start[c]
    fill = grid_start[:-1].copy()
    for i in range(n):
        cell = _cell_of(pos_m[num_ues + i, 0], pos_m[num_ues + i, 1], grid_cell_m, grid_nx, grid_ny)
        grid_items[fill[cell]] = i
        fill[cell] += 1


@nb.njit(inline="always", **STEP_PATH)
def _cell_of(x, y, cell_m, nx, ny):
    cx = min(max(int(x / cell_m), 0), nx - 1)
    cy = min(max(int(y / cell_m), 0), ny - 1)
    return cy * nx + cx


@nb.njit(inline="always", **STEP_PATH)
def nearest_sensor(b, x, y, pos_m, num_ues, grid_cell_m, grid_nx, grid_ny, grid_start, grid_items):
    """Id of the sensor of env ``b`` closest to (x, y), lowest id on ties; -1 if there are none.

    Up to ``BRUTE_FORCE_SENSORS`` sensors a plain scan, compiled into the caller (a call passes
    the three arrays as ~25 scalars, as long as the scan itself); beyond, the grid walk.
    """
    n = grid_items.shape[1]
    if n > BRUTE_FORCE_SENSORS:
        return _nearest_sensor_grid(b, x, y, pos_m, num_ues, grid_cell_m, grid_nx, grid_ny, grid_start, grid_items)
    best, best_d2 = -1, np.inf
    for s in range(n):
        dx = pos_m[b, num_ues + s, 0] - x
        dy = pos_m[b, num_ues + s, 1] - y
        d2 = dx * dx + dy * dy
        if d2 < best_d2:
            best, best_d2 = s, d2
    return best


@nb.njit(**STEP_PATH)
def _nearest_sensor_grid(b, x, y, pos_m, num_ues, grid_cell_m, grid_nx, grid_ny, grid_start, grid_items):
    """``nearest_sensor`` by walking the grid: search rings of cells outward from (x, y).

    Stops once no unvisited cell can hold a closer (or equally close, lower-id) sensor:
    expected O(1) per query instead of O(N).
    """
    cx = min(max(int(x / grid_cell_m), 0), grid_nx - 1)
    cy = min(max(int(y / grid_cell_m), 0), grid_ny - 1)
    best, best_d2 = -1, np.inf
    for r in range(max(grid_nx, grid_ny) + 1):
        for j in range(cy - r, cy + r + 1):
            if j < 0 or j >= grid_ny:
                continue
            step = 1 if abs(j - cy) == r else 2 * r  # inner rows: only the ring's two ends
            i = cx - r
            while i <= cx + r:
                if 0 <= i < grid_nx:
                    c = j * grid_nx + i
                    for k in range(grid_start[b, c], grid_start[b, c + 1]):
                        s = grid_items[b, k]
                        dx = pos_m[b, num_ues + s, 0] - x
                        dy = pos_m[b, num_ues + s, 1] - y
                        d2 = dx * dx + dy * dy
                        if d2 < best_d2 or (d2 == best_d2 and s < best):
                            best, best_d2 = s, d2
                i += max(step, 1)
        # Every cell outside ring r is at least r cells away from the query point.
        if best >= 0 and best_d2 < (r * grid_cell_m) ** 2:
            break
    return best


@nb.njit(cache=True)
def _place_sensors(rng_s, pos_m, num_ues, bs_pos_m, area_w, area_h, r_min, r_max, sep):
    """Place sensors uniformly (by area) in their BS's annulus, >= sep apart; False if infeasible."""
    n = pos_m.shape[0] - num_ues
    m = bs_pos_m.shape[0]
    for _restart in range(PLACEMENT_RESTARTS):
        placed = 0
        for i in range(n):
            home = i % m
            ok = False
            for _attempt in range(PLACEMENT_ATTEMPTS):
                radius = math.sqrt(uniform(rng_s) * (r_max * r_max - r_min * r_min) + r_min * r_min)
                angle = 2.0 * math.pi * uniform(rng_s)
                x = bs_pos_m[home, 0] + radius * math.cos(angle)
                y = bs_pos_m[home, 1] + radius * math.sin(angle)
                if x < 0.0 or x > area_w or y < 0.0 or y > area_h:
                    continue
                ok = True
                for j in range(i):
                    dx = pos_m[num_ues + j, 0] - x
                    dy = pos_m[num_ues + j, 1] - y
                    if dx * dx + dy * dy < sep * sep:
                        ok = False
                        break
                if ok:
                    pos_m[num_ues + i, 0] = x
                    pos_m[num_ues + i, 1] = y
                    placed += 1
                    break
            if not ok:
                break
        if placed == n:
            return True
    return False


@nb.njit(inline="always", **STEP_PATH)
def _associate(
    b, d, pos_m, bs_pos_m, bs_frequency_mhz, bs_tx_power_dbm, bs_height_m, link_gain, link_exponent,
    dev_height_m, dev_noise_w, dev_snr_threshold, channel_model, los, assoc, snr, spectral_eff,
):  # fmt: skip
    """Link of device ``d`` at its current position: the BS of strongest SNR, -1 below the threshold.

    Ties go to the lowest BS id. Okumura-Hata evaluates its power-law form with the per-link
    constants of ``Params`` (``core.channel.okumura_hata_power_law``): one ``pow`` per link.
    """
    best_m, best_snr = -1, -1.0
    for m in range(bs_pos_m.shape[0]):
        dx = pos_m[b, d, 0] - bs_pos_m[m, 0]
        dy = pos_m[b, d, 1] - bs_pos_m[m, 1]
        if channel_model == OKUMURA_HATA:
            s = snr_power_law(dx * dx + dy * dy, link_gain[m, d], link_exponent[m])
        else:
            dist = math.sqrt(dx * dx + dy * dy)
            loss = path_loss_db(channel_model, dist, bs_frequency_mhz[m], bs_height_m[m], dev_height_m[d], los)
            s = snr_linear(bs_tx_power_dbm[m], loss, dev_noise_w[d])
        if s > best_snr:
            best_m, best_snr = m, s
    snr[b, d] = best_snr
    spectral_eff[b, d] = math.log2(1.0 + best_snr)
    assoc[b, d] = best_m if best_snr >= dev_snr_threshold[d] else -1


# --------------------------------------------------------------------------- episode start


@nb.njit(cache=True)
def _init_one(
    b,
    seed,
    # Params
    steps, dt_s, area_w_m, area_h_m, num_ues, bs_pos_m, bs_bandwidth_hz, bs_frequency_mhz, bs_tx_power_dbm,
    bs_height_m, link_gain, link_exponent, bs_compute_ups, bs_queue_capacity, dev_height_m, dev_noise_w, dev_snr_threshold,
    dev_queue_capacity, mobility, speed_mps, ue_pinned, ue_pos_m, sensor_pinned, sensor_pos_m, place_min_m,
    place_max_m, place_sep_m, phase_start, phase_request_p, phase_period, ue_data_cdf, ue_compute_cdf,
    sensor_data_cdf, sensor_compute_cdf, ue_data_guide, ue_compute_guide, sensor_data_guide, sensor_compute_guide,
    channel_model, los, scheduler, pf_weight, sync_reward, aosi_discount, aosi_discount_pow, late_penalty,
    late_threshold, log_capacity, grid_cell_m, grid_nx, grid_ny,
    # State
    t, seeds, rng, pos_m, waypoint_m, assoc, snr, spectral_eff, dq, dq_head, dq_len, dq_rem, dq_jid, bq,
    bq_head, bq_len, bq_rem, bq_jid, twin, rr_next, pf_avg_mbps, next_jid, totals, stats, aori_hist, aosi_hist, grid_start,
    grid_items, log_jid, log_rec,
):  # fmt: skip
    """Start a new episode of environment ``b`` from ``seed``: positions, streams, empty queues."""
    seeds[b] = seed
    seed_streams(rng[b], seed)
    t[b] = 0
    dq_head[b] = 0
    dq_len[b] = 0
    dq_rem[b] = 0.0
    bq_head[b] = 0
    bq_len[b] = 0
    bq_rem[b] = 0.0
    twin[b] = -1
    rr_next[b] = 0
    pf_avg_mbps[b] = 0.0
    next_jid[b] = 0
    totals[b] = 0.0
    stats[b] = 0.0
    aori_hist[b] = 0
    aosi_hist[b] = 0
    log_jid[b] = -1
    placement = rng[b, PLACEMENT]
    for k in range(num_ues):
        if ue_pinned:
            pos_m[b, k, 0] = ue_pos_m[k, 0]
            pos_m[b, k, 1] = ue_pos_m[k, 1]
        else:
            pos_m[b, k, 0] = uniform(placement) * area_w_m
            pos_m[b, k, 1] = uniform(placement) * area_h_m
        waypoint_m[b, k, 0] = uniform(placement) * area_w_m
        waypoint_m[b, k, 1] = uniform(placement) * area_h_m
    if sensor_pinned:
        for i in range(sensor_pos_m.shape[0]):
            pos_m[b, num_ues + i, 0] = sensor_pos_m[i, 0]
            pos_m[b, num_ues + i, 1] = sensor_pos_m[i, 1]
    elif not _place_sensors(
        placement, pos_m[b], num_ues, bs_pos_m, area_w_m, area_h_m, place_min_m, place_max_m, place_sep_m
    ):
        return INIT_PLACEMENT_FAILED
    _build_sensor_grid(pos_m[b], num_ues, grid_cell_m, grid_nx, grid_ny, grid_start[b], grid_items[b])
    for d in range(pos_m.shape[1]):  # UEs too, so the state is complete before the first step
        _associate(
            b, d, pos_m, bs_pos_m, bs_frequency_mhz, bs_tx_power_dbm, bs_height_m, link_gain,
            link_exponent, dev_height_m, dev_noise_w, dev_snr_threshold, channel_model, los, assoc, snr,
            spectral_eff,
        )  # fmt: skip
    return INIT_OK


# --------------------------------------------------------------------------- one step


@nb.njit(inline="always", **STEP_PATH)
def _prefetch_queues(b, dq, dq_head, dq_len, bq, bq_head, bq_len):
    """Start loading the queue records environment ``b``'s next step reads and writes first.

    In large batches the head of a backlogged queue was written many steps earlier and is no
    longer cached; prefetching it (and each tail, where new jobs go) while the previous
    environment steps hides that wait. Only a hint: no values change.
    """
    q_dev = dq.shape[1]
    for d in range(dq.shape[2]):
        head = dq_head[b, d]
        tail = head + dq_len[b, d]
        if tail >= q_dev:
            tail -= q_dev
        prefetch(dq, (b, head, d, 0))  # a 16-byte record never straddles two lines
        if dq_len[b, d] > 1:  # the next head: its size becomes the remainder when the head is sent
            nh = head + 1
            prefetch(dq, (b, nh - q_dev if nh >= q_dev else nh, d, 0))
        prefetch(dq, (b, tail, d, 0))
    q_bs = bq.shape[3]
    for m in range(bq.shape[1]):
        for c in range(2):
            head = bq_head[b, m, c]
            tail = head + bq_len[b, m, c]
            if tail >= q_bs:
                tail -= q_bs
            for j in range(min(PREFETCH_MEC_RECORDS, q_bs)):
                hj = head + j
                tj = tail + j
                prefetch(bq, (b, m, c, hj - q_bs if hj >= q_bs else hj, BQ_FIELDS - 1))
                prefetch(bq, (b, m, c, tj - q_bs if tj >= q_bs else tj, BQ_FIELDS - 1))


@nb.njit(inline="always", **STEP_PATH)
def _prefetch_rows(
    b, rng, pos_m, waypoint_m, assoc, snr, spectral_eff, dq_head, dq_len, dq_rem, twin, totals, stats, step_counts,
    bandwidth_hz, bq_len, bq_rem, aori_hist, aosi_hist,
):  # fmt: skip
    """Start loading environment ``b``'s per-environment rows that every step reads or writes.

    Each state array holds one row per environment, so a step touches ~50 lines in ~15 arrays
    whose rows are kilobytes apart: more streams than the hardware prefetcher follows. Called
    two environments ahead, so that ``_prefetch_queues`` one environment ahead finds the queue
    heads and lengths it reads in the cache. Only a hint: no values change.
    """
    for s in range(rng.shape[1]):
        prefetch(rng, (b, s, 0))
    k = waypoint_m.shape[1]
    for j in range(0, k, 4):  # 4 (x, y) pairs per 64-byte line
        prefetch(waypoint_m, (b, j, 0))
    if k > 0:
        prefetch(waypoint_m, (b, k - 1, 1))
    n = assoc.shape[1]
    for j in range(0, n, 4):
        prefetch(pos_m, (b, j, 0))
    for j in range(0, n, 8):  # 8 float64 or int64 per line
        prefetch(assoc, (b, j))
        prefetch(snr, (b, j))
        prefetch(spectral_eff, (b, j))
        prefetch(dq_head, (b, j))
        prefetch(dq_len, (b, j))
        prefetch(dq_rem, (b, j))
        prefetch(bandwidth_hz, (b, j))
    if n > 0:  # the row's last line, when a row does not start on a line boundary
        prefetch(pos_m, (b, n - 1, 1))
        prefetch(assoc, (b, n - 1))
        prefetch(snr, (b, n - 1))
        prefetch(spectral_eff, (b, n - 1))
        prefetch(dq_head, (b, n - 1))
        prefetch(dq_len, (b, n - 1))
        prefetch(dq_rem, (b, n - 1))
        prefetch(bandwidth_hz, (b, n - 1))
    n_sensors = twin.shape[1]
    for j in range(0, n_sensors, 8):
        prefetch(twin, (b, j))
    if n_sensors > 0:
        prefetch(twin, (b, n_sensors - 1))
    for c in range(2):
        for j in range(0, totals.shape[2], 8):
            prefetch(totals, (b, c, j))
            prefetch(step_counts, (b, c, j))
    for j in range(0, stats.shape[1], 8):
        prefetch(stats, (b, j))
    prefetch(bq_len, (b, 0, 0))
    prefetch(aori_hist, (b, 0))  # the first 8 bins: AoRI and AoSI of most completed jobs
    prefetch(aosi_hist, (b, 0))
    prefetch(bq_rem, (b, 0, 0))


@nb.njit(inline="always", **STEP_PATH)
def _enqueue_generated(
    b, d, kind, sensor, data, compute, tnow, dev_queue_capacity, dq, dq_head, dq_len, dq_rem, dq_jid,
    next_jid, step_counts, log_jid, log_rec,
):  # fmt: skip
    """Append a new job to device ``d``'s uplink FIFO, or count it dropped if the FIFO is full."""
    jid = next_jid[b]
    next_jid[b] += 1
    cap = log_jid.shape[1]
    if cap > 0:  # the row of the oldest job gives way (oldest first)
        row = jid % cap
        log_jid[b, row] = jid
        log_rec[b, row, LOG_KIND] = kind
        log_rec[b, row, LOG_DEVICE] = d
        log_rec[b, row, LOG_SENSOR] = sensor
        log_rec[b, row, LOG_DATA] = data
        log_rec[b, row, LOG_COMPUTE] = compute
        log_rec[b, row, LOG_T_GEN] = tnow
        log_rec[b, row, LOG_T_TX] = -1
        log_rec[b, row, LOG_T_START] = -1
        log_rec[b, row, LOG_T_DONE] = -1
        log_rec[b, row, LOG_SENSOR_UPDATE_T] = tnow if kind == SENSOR else -1
        log_rec[b, row, LOG_DROPPED] = 0
    _count(step_counts, b, kind, GEN_JOBS, 1.0)
    _count(step_counts, b, kind, GEN_MBIT, data)
    _count(step_counts, b, kind, GEN_COMPUTE, compute)
    if dq_len[b, d] >= dev_queue_capacity[d]:
        _count(step_counts, b, kind, DROP_UL_JOBS, 1.0)
        _count(step_counts, b, kind, DROP_UL_MBIT, data)
        _count(step_counts, b, kind, DROP_UL_COMPUTE, compute)
        _log_set(log_jid, log_rec, b, jid, LOG_DROPPED, DROPPED_UPLINK)
        return
    tail = dq_head[b, d] + dq_len[b, d]
    if tail >= dq.shape[1]:
        tail -= dq.shape[1]
    dq[b, tail, d, JOB_DATA] = data
    dq[b, tail, d, JOB_COMPUTE] = compute
    dq[b, tail, d, JOB_T_GEN] = tnow
    dq[b, tail, d, JOB_SENSOR] = sensor
    if cap > 0:  # job ids are kept for the job log only
        dq_jid[b, tail, d] = jid
    if dq_len[b, d] == 0:  # the new job is the head: all of its data still to send
        dq_rem[b, d] = data
    dq_len[b, d] += 1


@nb.njit(**STEP_PATH)
def _step_block(
    lo,
    hi,
    active,
    action,
    # Params
    steps, dt_s, area_w_m, area_h_m, num_ues, bs_pos_m, bs_bandwidth_hz, bs_frequency_mhz, bs_tx_power_dbm,
    bs_height_m, link_gain, link_exponent, bs_compute_ups, bs_queue_capacity, dev_height_m, dev_noise_w, dev_snr_threshold,
    dev_queue_capacity, mobility, speed_mps, ue_pinned, ue_pos_m, sensor_pinned, sensor_pos_m, place_min_m,
    place_max_m, place_sep_m, phase_start, phase_request_p, phase_period, ue_data_cdf, ue_compute_cdf,
    sensor_data_cdf, sensor_compute_cdf, ue_data_guide, ue_compute_guide, sensor_data_guide, sensor_compute_guide,
    channel_model, los, scheduler, pf_weight, sync_reward, aosi_discount, aosi_discount_pow, late_penalty,
    late_threshold, log_capacity, grid_cell_m, grid_nx, grid_ny,
    # State
    t, seeds, rng, pos_m, waypoint_m, assoc, snr, spectral_eff, dq, dq_head, dq_len, dq_rem, dq_jid, bq,
    bq_head, bq_len, bq_rem, bq_jid, twin, rr_next, pf_avg_mbps, next_jid, totals, stats, aori_hist, aosi_hist, grid_start,
    grid_items, log_jid, log_rec,
    # StepOutput
    reward, step_counts, done_n, done_aori, done_aosi, done_ue, bandwidth_hz, done_age_sum,
):  # fmt: skip
    """Advance the active environments ``lo <= b < hi`` by one step under ``action[b]`` (MODEL.md §2, steps 1-8).

    The loop over the block lives here, not in the callers, so the ~75 array arguments are passed
    once per block instead of once per environment (numba passes each array as several scalars).
    """
    for b in range(lo, hi):
        if b + 1 < hi:
            _prefetch_queues(b + 1, dq, dq_head, dq_len, bq, bq_head, bq_len)
        if b + 2 < hi:
            _prefetch_rows(
                b + 2, rng, pos_m, waypoint_m, assoc, snr, spectral_eff, dq_head, dq_len, dq_rem, twin, totals,
                stats, step_counts, bandwidth_hz, bq_len, bq_rem, aori_hist, aosi_hist,
            )  # fmt: skip
        if not active[b]:
            continue
        tnow = t[b]
        m_bs = bs_pos_m.shape[0]
        n_dev = pos_m.shape[1]
        q_dev = dq.shape[1]
        q_bs = bq.shape[3]
        n_hist = aori_hist.shape[1]
        log_on = log_jid.shape[1] > 0  # job ids are kept for the job log only
        step_counts[b] = 0.0
        done_n[b] = 0
        done_age_sum[b, 0] = 0
        done_age_sum[b, 1] = 0
        r = 0.0

        # 1. Association: strongest received power; below the SNR threshold -> unconnected.
        # Sensors never move: their links were set at reset, only the UEs' are recomputed.
        for k in range(num_ues):
            _associate(
                b, k, pos_m, bs_pos_m, bs_frequency_mhz, bs_tx_power_dbm, bs_height_m, link_gain,
                link_exponent, dev_height_m, dev_noise_w, dev_snr_threshold, channel_model, los, assoc, snr,
            spectral_eff,
            )  # fmt: skip

        # 2. Generation: UE requests (Bernoulli), then periodic sensor updates.
        phase = 0
        while phase + 1 < phase_start.shape[0] and phase_start[phase + 1] <= tnow:
            phase += 1
        for k in range(num_ues):
            if uniform_at(rng, b, TRAFFIC) < phase_request_p[phase, k]:
                data = poisson_guided_at(rng, b, TRAFFIC, ue_data_cdf, ue_data_guide)
                compute = poisson_guided_at(rng, b, TRAFFIC, ue_compute_cdf, ue_compute_guide)
                sensor = nearest_sensor(
                    b, pos_m[b, k, 0], pos_m[b, k, 1], pos_m, num_ues, grid_cell_m, grid_nx, grid_ny, grid_start,
                    grid_items,
                )  # fmt: skip
                _enqueue_generated(
                    b, k, UE, sensor, data, compute, tnow, dev_queue_capacity, dq, dq_head, dq_len, dq_rem, dq_jid,
                    next_jid, step_counts, log_jid, log_rec,
                )  # fmt: skip
        if tnow % phase_period[phase] == 0:
            for i in range(n_dev - num_ues):
                data = poisson_guided_at(rng, b, TRAFFIC, sensor_data_cdf, sensor_data_guide)
                compute = poisson_guided_at(rng, b, TRAFFIC, sensor_compute_cdf, sensor_compute_guide)
                _enqueue_generated(
                    b, num_ues + i, SENSOR, i, data, compute, tnow, dev_queue_capacity, dq, dq_head, dq_len, dq_rem,
                    dq_jid, next_jid, step_counts, log_jid, log_rec,
                )  # fmt: skip

        # 3-4. Action and scheduling: class budgets per BS, split within a class by the scheduler.
        # DECISION: only connected devices with queued data take part in the split.
        # (Counted per BS and class, not into a scratch array: the step path allocates nothing.)
        for d in range(n_dev):
            bandwidth_hz[b, d] = 0.0
        for m in range(m_bs):
            for c in range(2):
                # (first/end, not lo/hi: those bound the block of environments, and the prefetch
                # at the top of the loop reads hi; reusing it here had switched the prefetch off.)
                first = 0 if c == UE else num_ues
                end = num_ues if c == UE else n_dev
                n_part, weight_sum = 0, 0.0
                for d in range(first, end):
                    if assoc[b, d] == m and dq_len[b, d] > 0:
                        n_part += 1
                        if scheduler == PROPORTIONAL_FAIR:
                            weight_sum += spectral_eff[b, d] / max(pf_avg_mbps[b, d], EPS)
                if n_part == 0:
                    continue
                share = action[b, m, 0] if c == UE else 1.0 - action[b, m, 0]
                budget_hz = share * bs_bandwidth_hz[m]
                if scheduler == ROUND_ROBIN:
                    # The whole class budget goes to the next backlogged device after the last one served.
                    size = end - first
                    for j in range(size):
                        d = first + (rr_next[b, m, c] + j) % size
                        if assoc[b, d] == m and dq_len[b, d] > 0:
                            bandwidth_hz[b, d] = budget_hz
                            rr_next[b, m, c] = (d - first + 1) % size
                            break
                else:
                    for d in range(first, end):
                        if assoc[b, d] == m and dq_len[b, d] > 0:
                            if scheduler == PROPORTIONAL_FAIR:
                                w = spectral_eff[b, d] / max(pf_avg_mbps[b, d], EPS)
                                bandwidth_hz[b, d] = budget_hz * w / weight_sum
                            else:
                                bandwidth_hz[b, d] = budget_hz / n_part

        # 5. Transmission: FIFO per device, in device-id order (fixes the arrival order at the BS).
        for d in range(n_dev):
            sent_mbit = 0.0
            if bandwidth_hz[b, d] > 0.0:
                c = UE if d < num_ues else SENSOR
                m = assoc[b, d]
                budget = bandwidth_hz[b, d] * spectral_eff[b, d] * dt_s / 1e6
                while budget > 0.0 and dq_len[b, d] > 0:
                    rem = dq_rem[b, d]  # the head job's: a partial send touches no record
                    if rem > budget + EPS:
                        dq_rem[b, d] = rem - budget
                        sent_mbit += budget
                        budget = 0.0
                        break
                    sent_mbit += rem
                    budget = max(budget - rem, 0.0)
                    slot = dq_head[b, d]
                    dq_len[b, d] -= 1
                    # An emptied ring restarts at slot 0, so the pages a queue touches follow its
                    # peak occupancy, not the traffic that has passed through it.
                    nxt = slot + 1 if dq_len[b, d] > 0 and slot + 1 < q_dev else 0
                    dq_head[b, d] = nxt
                    if dq_len[b, d] > 0:
                        dq_rem[b, d] = dq[b, nxt, d, JOB_DATA]
                    jid = dq_jid[b, slot, d] if log_on else -1
                    data = dq[b, slot, d, JOB_DATA]
                    compute = dq[b, slot, d, JOB_COMPUTE]
                    t_gen = dq[b, slot, d, JOB_T_GEN]
                    _count(step_counts, b, c, SENT_JOBS, 1.0)
                    _count(step_counts, b, c, SENT_MBIT, data)
                    _log_set(log_jid, log_rec, b, jid, LOG_T_TX, tnow)
                    if bq_len[b, m, c] >= bs_queue_capacity:
                        _count(step_counts, b, c, DROP_MEC_JOBS, 1.0)
                        _count(step_counts, b, c, DROP_MEC_MBIT, data)
                        _count(step_counts, b, c, DROP_MEC_COMPUTE, compute)
                        _log_set(log_jid, log_rec, b, jid, LOG_DROPPED, DROPPED_MEC)
                        continue
                    tail = bq_head[b, m, c] + bq_len[b, m, c]
                    if tail >= q_bs:
                        tail -= q_bs
                    bq[b, m, c, tail, JOB_DATA] = data
                    bq[b, m, c, tail, JOB_COMPUTE] = compute
                    bq[b, m, c, tail, JOB_T_GEN] = t_gen
                    bq[b, m, c, tail, JOB_SENSOR] = dq[b, slot, d, JOB_SENSOR]
                    bq[b, m, c, tail, JOB_DEVICE] = d
                    bq[b, m, c, tail, JOB_SENSOR_UPDATE_T] = t_gen if c == SENSOR else -1
                    if log_on:
                        bq_jid[b, m, c, tail] = jid
                    if bq_len[b, m, c] == 0:  # the new job is the head: all of its compute still to serve
                        bq_rem[b, m, c] = compute
                    bq_len[b, m, c] += 1
                c = UE if d < num_ues else SENSOR
                step_counts[b, c, TX_MBIT] += sent_mbit
            if scheduler == PROPORTIONAL_FAIR:
                pf_avg_mbps[b, d] = (1.0 - pf_weight) * pf_avg_mbps[b, d] + pf_weight * sent_mbit / dt_s

        # 6. Processing: every BS's UE queue first, then every sensor queue (DECISION: class-major
        # order, so a UE's outcome never depends on BS numbering). Sync rule: a UE job starts only
        # once the twin holds an update of its sensor, and binds to the newest one.
        for c in range(2):
            for m in range(m_bs):
                share = action[b, m, 1] if c == UE else 1.0 - action[b, m, 1]
                cap = share * bs_compute_ups[m] * dt_s
                while cap > EPS and bq_len[b, m, c] > 0:
                    slot = bq_head[b, m, c]
                    jid = bq_jid[b, m, c, slot] if log_on else -1
                    if c == UE and bq[b, m, c, slot, JOB_SENSOR_UPDATE_T] < 0:
                        sensor = bq[b, m, c, slot, JOB_SENSOR]
                        if sensor < 0 or twin[b, sensor] < 0:
                            break  # head-of-line blocking: the twin has nothing to serve this request
                        bq[b, m, c, slot, JOB_SENSOR_UPDATE_T] = twin[b, sensor]
                        _log_set(log_jid, log_rec, b, jid, LOG_SENSOR_UPDATE_T, twin[b, sensor])
                    rem = bq_rem[b, m, c]  # the head job's: partial service touches no record
                    if log_on and rem == bq[b, m, c, slot, JOB_COMPUTE]:  # (a record load the log alone needs)
                        _log_set(log_jid, log_rec, b, jid, LOG_T_START, tnow)
                    if rem > cap + EPS:
                        bq_rem[b, m, c] = rem - cap
                        _count(step_counts, b, c, PROC_COMPUTE, cap)
                        break
                    cap = max(cap - rem, 0.0)
                    bq_len[b, m, c] -= 1
                    nxt = slot + 1 if bq_len[b, m, c] > 0 and slot + 1 < q_bs else 0
                    bq_head[b, m, c] = nxt
                    if bq_len[b, m, c] > 0:
                        bq_rem[b, m, c] = bq[b, m, c, nxt, JOB_COMPUTE]
                    _count(step_counts, b, c, PROC_COMPUTE, rem)
                    _count(step_counts, b, c, DONE_JOBS, 1.0)
                    _count(step_counts, b, c, DONE_MBIT, bq[b, m, c, slot, JOB_DATA])
                    _count(step_counts, b, c, DONE_COMPUTE, bq[b, m, c, slot, JOB_COMPUTE])
                    _log_set(log_jid, log_rec, b, jid, LOG_T_DONE, tnow)
                    t_gen = np.int64(bq[b, m, c, slot, JOB_T_GEN])
                    if c == SENSOR:
                        sensor = bq[b, m, c, slot, JOB_SENSOR]
                        twin[b, sensor] = max(twin[b, sensor], t_gen)
                        continue
                    # 7. Ages and reward of a completed UE job (MODEL.md §4).
                    aori = tnow - t_gen
                    aosi = abs(t_gen - np.int64(bq[b, m, c, slot, JOB_SENSOR_UPDATE_T]))
                    n_pow = aosi_discount_pow.shape[0]
                    r += sync_reward * (aosi_discount_pow[aosi] if aosi < n_pow else aosi_discount**aosi)
                    if aori > late_threshold:
                        r += late_penalty
                        stats[b, S_LATE] += 1.0
                    stats[b, S_UE_DONE] += 1.0
                    stats[b, S_AORI_SUM] += aori
                    stats[b, S_AOSI_SUM] += aosi
                    stats[b, S_AORI_MAX] = max(stats[b, S_AORI_MAX], aori)
                    stats[b, S_AOSI_MAX] = max(stats[b, S_AOSI_MAX], aosi)
                    aori_hist[b, min(aori, n_hist - 1)] += 1
                    aosi_hist[b, min(aosi, n_hist - 1)] += 1
                    done_aori[b, done_n[b]] = aori
                    done_aosi[b, done_n[b]] = aosi
                    done_ue[b, done_n[b]] = np.int64(bq[b, m, c, slot, JOB_DEVICE])
                    done_n[b] += 1
                    done_age_sum[b, 0] += aori
                    done_age_sum[b, 1] += aosi

        # 7. Reward and the twin's age at the end of the step; the step's counts join the totals.
        for c in range(2):
            for i in range(totals.shape[2]):
                totals[b, c, i] += step_counts[b, c, i]
        reward[b] = r
        stats[b, S_REWARD] += r
        for i in range(twin.shape[1]):
            if twin[b, i] < 0:
                stats[b, S_TWIN_EMPTY] += 1.0
            else:
                age = tnow - twin[b, i]
                stats[b, S_TWIN_AGE_SUM] += age
                stats[b, S_TWIN_AGE_COUNT] += 1.0
                stats[b, S_TWIN_AGE_MAX] = max(stats[b, S_TWIN_AGE_MAX], age)

        # 8. Mobility: random waypoint at constant speed, a new waypoint on arrival.
        # DECISION: a UE that reaches its waypoint stops there for the rest of the step.
        if mobility == RANDOM_WAYPOINT:
            hop = speed_mps * dt_s
            for k in range(num_ues):
                dx = waypoint_m[b, k, 0] - pos_m[b, k, 0]
                dy = waypoint_m[b, k, 1] - pos_m[b, k, 1]
                dist = math.sqrt(dx * dx + dy * dy)
                if dist <= hop:
                    pos_m[b, k, 0] = waypoint_m[b, k, 0]
                    pos_m[b, k, 1] = waypoint_m[b, k, 1]
                    waypoint_m[b, k, 0] = uniform_at(rng, b, MOBILITY) * area_w_m
                    waypoint_m[b, k, 1] = uniform_at(rng, b, MOBILITY) * area_h_m
                else:
                    pos_m[b, k, 0] += dx / dist * hop
                    pos_m[b, k, 1] += dy / dist * hop
        t[b] = tnow + 1


# --------------------------------------------------------------------------- batch drivers


@nb.njit(cache=True)
def init_envs(env_ids, seeds_in, *args):
    """Start episodes of the environments ``env_ids`` with ``seeds_in``; args = Params + State fields.

    Returns the id of the first environment whose initial placement failed, or -1.
    """
    for i in range(env_ids.shape[0]):
        if _init_one(env_ids[i], seeds_in[i], *args) != INIT_OK:
            return env_ids[i]
    return -1


@nb.njit(parallel=True, cache=True)
def init_envs_parallel(env_ids, seeds_in, *args):
    """``init_envs`` with the environments split across threads (``env_ids`` must be distinct).

    Every listed environment is initialized, then the first (in list order) whose placement
    failed is returned, or -1.
    """
    failed = np.zeros(env_ids.shape[0], dtype=np.bool_)
    for i in nb.prange(env_ids.shape[0]):
        failed[i] = _init_one(env_ids[i], seeds_in[i], *args) != INIT_OK
    for i in range(env_ids.shape[0]):
        if failed[i]:
            return env_ids[i]
    return -1


@nb.njit(**STEP_PATH)
def step_envs(active, action, *args):
    """Step the environments where ``active`` is true; ``action`` is (B, M, 2) in [0, 1].

    ``args`` are the Params, State and StepOutput fields.
    """
    _step_block(0, action.shape[0], active, action, *args)


@nb.njit(parallel=True, **STEP_PATH)
def step_envs_parallel(cursors, active, action, *args):
    """``step_envs`` with the batch split into blocks stepped by all threads (for large batches).

    The ``PARALLEL_BLOCKS`` blocks are dealt into ``W = cursors.shape[0]`` contiguous shares
    (``W`` = the number of threads). numba hands a parallel loop's iterations out statically
    (with the OpenMP layer, iteration w to thread w every step), so worker w first steps its
    own share, the same environments on the same core every step (their rows stay in that
    core's cache), taking each next block from its share's cursor ``cursors[w]``; then it
    takes the blocks left in the other shares from their cursors. A thread that is preempted
    (by the learner, or other processes on a small machine) thus holds back only the block
    it is stepping, not its whole share. Which thread steps a block changes no value.
    """
    batch = action.shape[0]
    size = (batch + PARALLEL_BLOCKS - 1) // PARALLEL_BLOCKS
    workers = min(cursors.shape[0], PARALLEL_BLOCKS)
    for w in range(workers):
        cursors[w] = w * PARALLEL_BLOCKS // workers
    for w in nb.prange(workers):
        for k in range(workers):  # own share first, then the others' leftovers
            v = w + k if w + k < workers else w + k - workers
            end = (v + 1) * PARALLEL_BLOCKS // workers
            while True:
                i = fetch_add(cursors, v, 1)
                if i >= end:
                    break
                _step_block(min(i * size, batch), min((i + 1) * size, batch), active, action, *args)
