"""``BatchSimulator``: the functional core (initial / transition / observe / reward / terminal).

One object owns the scenario parameters, the batched state and the step outputs of ``B``
environments and exposes the pieces every shell needs. The Gymnasium env is a batch of
one; the vector env, the SB3 adapter and other integrations use larger batches of the same
object, so the dynamics exist exactly once (in ``core.kernels``).
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

from metalore.config import ConfigError, Scenario
from metalore.core import kernels
from metalore.core.rng import next_seed
from metalore.core.state import (
    CLASS_NAMES,
    COUNTERS,
    DONE_JOBS,
    DONE_MBIT,
    DROP_MEC_JOBS,
    DROP_UL_JOBS,
    GEN_JOBS,
    JOB_REM,
    LOG_FIELDS,
    S_AORI_MAX,
    S_AORI_SUM,
    S_AOSI_MAX,
    S_AOSI_SUM,
    S_LATE,
    S_REWARD,
    S_TWIN_AGE_COUNT,
    S_TWIN_AGE_MAX,
    S_TWIN_AGE_SUM,
    S_UE_DONE,
    SENT_JOBS,
    Params,
    State,
    StepOutput,
    allocate_output,
    allocate_state,
    build_params,
)

_INFO_COLUMNS = [GEN_JOBS, SENT_JOBS, DONE_JOBS, DROP_UL_JOBS, DROP_MEC_JOBS]
# Batches at least this large step on all threads (small ones lose more to thread start-up).
PARALLEL_MIN_BATCH = 64


@nb.njit(cache=True)
def _live_sum(records, field, head, length, out):
    """Sum ``records[q, slot, field]`` over the live slots of ring buffer q (``head``, ``length``)."""
    cap = records.shape[1]
    for q in range(records.shape[0]):
        total = 0.0
        for j in range(length[q]):
            total += records[q, (head[q] + j) % cap, field]
        out[q] = total


def _queue_sums(records: np.ndarray, head: np.ndarray, length: np.ndarray, field: int) -> np.ndarray:
    """``_live_sum`` over queues of any leading shape; returns an array shaped like ``length``."""
    out = np.zeros(length.size)
    _live_sum(records.reshape(-1, *records.shape[-2:]), field, head.reshape(-1), length.reshape(-1), out)
    return out.reshape(length.shape)


@nb.njit(cache=True)
def _prefix_means(values, counts, out):
    """Mean of the first ``counts[b]`` entries of each row ``values[b]`` (NaN where empty)."""
    for b in range(values.shape[0]):
        s = 0.0
        for j in range(counts[b]):
            s += values[b, j]
        out[b] = s / counts[b] if counts[b] > 0 else np.nan


def nearest_rank_percentile(hist: np.ndarray, q: float) -> float:
    """The q-quantile (nearest-rank) of integer ages given their histogram; NaN if empty."""
    n = int(hist.sum())
    if n == 0:
        return float("nan")
    rank = int(np.ceil(q * n))
    return float(np.searchsorted(np.cumsum(hist), max(rank, 1)))


def observation_layout(scenario: Scenario) -> dict[str, slice]:
    """Where each feature of ``observation.features`` sits in the observation vector."""
    m, n = scenario.num_bs, scenario.num_sensors
    sizes = {"queue_lengths": 2 * m, "queue_work": 2 * m, "uplink_backlog": 2, "twin_age": n, "time": 1}
    layout, start = {}, 0
    for name in scenario.config["observation"]["features"]:
        layout[name] = slice(start, start + sizes[name])
        start += sizes[name]
    return layout


def _by_class(counters: np.ndarray) -> dict[str, dict[str, float]]:
    return {cls: dict(zip(COUNTERS, counters[c].tolist(), strict=True)) for c, cls in enumerate(CLASS_NAMES)}


class BatchSimulator:
    """A batch of ``batch`` independent MetaLore environments sharing one scenario."""

    def __init__(self, scenario: Scenario, batch: int = 1, *, parallel: bool | None = None) -> None:
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if scenario.num_ues > 0 and scenario.num_sensors == 0:
            raise ConfigError(
                "config key 'sensor.count' = 0 is invalid with ue.count > 0: UE requests need twin data"
                " (MODEL.md §2.6); add at least one sensor"
            )
        self.scenario = scenario
        self.batch = batch
        self.params: Params = build_params(scenario)
        self.state: State = allocate_state(self.params, batch)
        self.out: StepOutput = allocate_output(self.params, batch)
        self.num_bs = scenario.num_bs
        self._init_args = (*self.params, *self.state)
        self._step_args = (*self.params, *self.state, *self.out)
        self._all = np.ones(batch, dtype=np.bool_)
        use_threads = batch >= PARALLEL_MIN_BATCH if parallel is None else parallel
        self._step_kernel = kernels.step_envs_parallel if use_threads else kernels.step_envs
        self._features = tuple(scenario.config["observation"]["features"])
        self.layout = observation_layout(scenario)
        self.observation_size = max((s.stop for s in self.layout.values()), default=0)

    # ----------------------------------------------------------------- initial / transition
    def reset(self, env_ids: np.ndarray | list[int], seeds: np.ndarray | list[int]) -> None:
        """Start new episodes in ``env_ids`` from ``seeds`` (one per environment)."""
        ids = np.asarray(env_ids, dtype=np.int64)
        seed_arr = np.asarray(seeds, dtype=np.int64)
        failed = kernels.init_envs(ids, seed_arr, *self._init_args)
        if failed >= 0:
            placement = self.scenario.config["sensor"]["placement"]
            raise ConfigError(
                f"cannot place {self.scenario.num_sensors} sensors {placement['min_separation_m']} m apart in"
                f" {placement['min_distance_m']}-{placement['max_distance_m']} m of their base station inside the"
                f" area (seed {int(seed_arr[list(ids).index(failed)])}, gave up after bounded retries):"
                " lower sensor.count or sensor.placement.min_separation_m, or widen the annulus"
            )

    def next_seeds(self, env_ids: np.ndarray) -> np.ndarray:
        """Seeds of the next episodes of ``env_ids`` when reset without an explicit seed."""
        return np.array([next_seed(s) for s in self.state.seed[env_ids]], dtype=np.int64)

    def step(self, action: np.ndarray, active: np.ndarray | None = None) -> None:
        """Advance the environments one step; ``action`` is (B, M, 2) in [0, 1].

        ``active`` (B,) bool selects the environments to step (default: all).
        """
        self._step_kernel(self._all if active is None else active, action, *self._step_args)

    # ----------------------------------------------------------------- observe / reward / terminal
    def truncated(self) -> np.ndarray:
        """(B,) bool: the episode reached its length."""
        return self.state.t >= self.params.steps

    def reward(self) -> np.ndarray:
        """(B,) float64: reward of the last step (MODEL.md §4)."""
        return self.out.reward

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the observation vector (for the Box space)."""
        p = self.params
        max_job_compute = max(len(p.ue_compute_cdf), len(p.sensor_compute_cdf))
        max_job_data = max(len(p.ue_data_cdf), len(p.sensor_data_cdf))
        upper = {
            "queue_lengths": float(p.bs_queue_capacity),
            "queue_work": float(p.bs_queue_capacity * max_job_compute),
            "uplink_backlog": float(p.dev_queue_capacity.sum() * max_job_data),
            "twin_age": float(p.steps + 1),
            "time": 1.0,
        }
        highs = [np.full(self.layout[f].stop - self.layout[f].start, upper[f]) for f in self._features]
        high = np.concatenate(highs).astype(np.float32)
        return np.zeros_like(high), high

    def observe(self) -> np.ndarray:
        """(B, obs_size) float32 observation; the paper's default is ``[l_b(t), l^_b(t)]`` per BS."""
        parts = [self._observe_feature(f) for f in self._features]
        obs = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return obs.astype(np.float32)

    def _observe_feature(self, name: str) -> np.ndarray:
        s = self.state
        b = self.batch
        if name == "queue_lengths":
            return s.bq_len.reshape(b, -1)
        if name == "queue_work":
            return _queue_sums(s.bq, s.bq_head, s.bq_len, JOB_REM).reshape(b, -1)
        if name == "uplink_backlog":
            backlog = _queue_sums(s.dq, s.dq_head, s.dq_len, JOB_REM)
            k = self.params.num_ues
            return np.stack([backlog[:, :k].sum(axis=1), backlog[:, k:].sum(axis=1)], axis=1)
        if name == "twin_age":
            age = s.t[:, None] - 1 - s.twin  # at the end of the last step, as in the summary statistics
            return np.where(s.twin >= 0, age, self.params.steps + 1).astype(np.float64)
        return (s.t / self.params.steps)[:, None].astype(np.float64)

    # ----------------------------------------------------------------- what users read out
    def step_info(self, b: int) -> dict[str, Any]:
        """Per-step information of environment ``b`` (the Gymnasium ``info`` dict)."""
        out = self.out
        n = int(out.done_n[b])
        info: dict[str, Any] = {"t": int(self.state.t[b]) - 1}
        counts = out.step_counts[b][:, _INFO_COLUMNS].tolist()
        for c, cls in enumerate(CLASS_NAMES):
            generated, sent, completed, dropped_uplink, dropped_mec = counts[c]
            info[f"generated_{cls}"] = int(generated)
            info[f"sent_{cls}"] = int(sent)
            info[f"completed_{cls}"] = int(completed)
            info[f"dropped_{cls}"] = int(dropped_uplink + dropped_mec)
        info["queue_lengths"] = self.state.bq_len[b].copy()
        info["aori"] = out.done_aori[b, :n].astype(np.int64)
        info["aosi"] = out.done_aosi[b, :n].astype(np.int64)
        return info

    def step_age_means(self) -> tuple[np.ndarray, np.ndarray]:
        """(B,) mean AoRI and mean AoSI of the UE jobs completed in the last step (NaN if none)."""
        aori, aosi = np.empty(self.batch), np.empty(self.batch)
        _prefix_means(self.out.done_aori, self.out.done_n, aori)
        _prefix_means(self.out.done_aosi, self.out.done_n, aosi)
        return aori, aosi

    def step_counts(self, b: int) -> dict[str, dict[str, float]]:
        """Every counter's increment in the last step, per class."""
        return _by_class(self.out.step_counts[b])

    def totals(self, b: int) -> dict[str, dict[str, float]]:
        """Every cumulative counter of the episode so far, per class."""
        return _by_class(self.state.totals[b])

    def episode_summary(self, b: int) -> dict[str, float]:
        """AoI and throughput statistics of environment ``b``'s episode so far."""
        s = self.state
        stats = s.stats[b]
        done = stats[S_UE_DONE]
        elapsed_s = max(int(s.t[b]), 1) * self.params.dt_s
        mean = (lambda total: float(total / done)) if done else (lambda total: float("nan"))
        summary: dict[str, float] = {
            "steps": int(s.t[b]),
            "reward": float(stats[S_REWARD]),
            "ue_jobs_completed": int(done),
            "aori_mean": mean(stats[S_AORI_SUM]),
            "aori_p95": nearest_rank_percentile(s.aori_hist[b], 0.95),
            "aori_max": float(stats[S_AORI_MAX]) if done else float("nan"),
            "aosi_mean": mean(stats[S_AOSI_SUM]),
            "aosi_p95": nearest_rank_percentile(s.aosi_hist[b], 0.95),
            "aosi_max": float(stats[S_AOSI_MAX]) if done else float("nan"),
            "late_fraction": mean(stats[S_LATE]),
            "twin_age_mean": float(stats[S_TWIN_AGE_SUM] / stats[S_TWIN_AGE_COUNT])
            if stats[S_TWIN_AGE_COUNT]
            else float("nan"),
            "twin_age_max": float(stats[S_TWIN_AGE_MAX]) if stats[S_TWIN_AGE_COUNT] else float("nan"),
        }
        for c, cls in enumerate(CLASS_NAMES):
            tot = s.totals[b, c]
            summary[f"{cls}_generated"] = int(tot[GEN_JOBS])
            summary[f"{cls}_completed"] = int(tot[DONE_JOBS])
            summary[f"{cls}_throughput_mbps"] = float(tot[DONE_MBIT] / elapsed_s)
            summary[f"{cls}_throughput_jobs_per_s"] = float(tot[DONE_JOBS] / elapsed_s)
            summary[f"{cls}_dropped_uplink"] = int(tot[DROP_UL_JOBS])
            summary[f"{cls}_dropped_mec"] = int(tot[DROP_MEC_JOBS])
        return summary

    def twin_age(self, b: int) -> np.ndarray:
        """(N,) age in steps of the twin's data per sensor at the end of the last step (-1: none yet)."""
        twin = self.state.twin[b]
        return np.where(twin >= 0, self.state.t[b] - 1 - twin, -1)

    def job_log_records(self, b: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Raw job log of environment ``b``: (job ids, records (rows, fields), rows overwritten)."""
        cap = self.params.log_capacity
        if cap == 0:
            raise RuntimeError("the job log is off: create the environment with config={'log': {'jobs': True}}")
        jid = self.state.log_jid[b]
        keep = jid >= 0
        order = np.argsort(jid[keep], kind="stable")
        generated = int(self.state.next_jid[b])
        return jid[keep][order], self.state.log_rec[b][keep][order], max(0, generated - cap)


__all__ = ["LOG_FIELDS", "BatchSimulator", "nearest_rank_percentile", "observation_layout"]
