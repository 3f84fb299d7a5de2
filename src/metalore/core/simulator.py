"""``BatchSimulator``: the functional core (initial / transition / observe / reward / terminal).

One object owns the scenario parameters, the batched state and the step outputs of ``B``
environments and exposes the pieces every shell needs. The Gymnasium env is a batch of
one; the vector env, the SB3 adapter and other integrations use larger batches of the same
object, so the dynamics exist exactly once (in ``core.kernels``).
"""

from __future__ import annotations

import importlib
import os
import warnings
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

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
    JOB_COMPUTE,
    JOB_DATA,
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

# Episode-summary keys that count something: ints in a single environment's summary.
INT_SUMMARY_KEYS = frozenset(
    {"steps", "ue_jobs_completed"}
    | {f"{c}_{k}" for c in CLASS_NAMES for k in ("generated", "completed", "dropped_uplink", "dropped_mec")}
)
# Batches at least this large step on all threads (small ones lose more to thread start-up).
PARALLEL_MIN_BATCH = 64
# DECISION: after a fork from a process that ran numba's GNU OpenMP thread pool (the ``omp``
# layer numba picks on Linux), the pool cannot run in the child: numba kills the child at its
# first threaded call ("fork() called from a process already using GNU OpenMP"). Python 3.11 on
# Linux forks by default (``multiprocessing``, Gymnasium's ``AsyncVectorEnv``, a DataLoader), so
# in such a child every simulator steps serially instead, with the same results (the threaded and
# serial kernels are tested equal), and says so once. ``parallel=True`` there is an error.
_forked_from_omp = False
_threaded_sims: weakref.WeakSet[BatchSimulator] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _forked_from_omp
    try:
        layer = nb.threading_layer()
    except ValueError:  # no threaded kernel ran in the parent: the child may start its own pool
        return
    if layer != "omp" or _forked_from_omp or _openmp_vendor() != "GNU":  # Intel's OpenMP survives a fork
        return
    _forked_from_omp = True
    inherited = list(_threaded_sims)
    for sim in inherited:
        sim._use_serial_kernel()
    if inherited:
        _warn_serial_after_fork()


def _openmp_vendor() -> str:
    try:  # the loaded OpenMP layer (numba internal)
        return str(importlib.import_module("numba.np.ufunc.omppool").openmp_vendor)
    except (ImportError, AttributeError):  # unknown: assume GNU, the one that cannot fork
        return "GNU"


def _warn_serial_after_fork() -> None:
    warnings.warn(
        "metalore: this process was forked from one that ran numba's GNU OpenMP thread pool, which cannot"
        " run after a fork; its simulators step serially (same results, one core). Start worker processes"
        " with multiprocessing's 'spawn' or 'forkserver' method to step on all threads.",
        RuntimeWarning,
        stacklevel=3,
    )


os.register_at_fork(after_in_child=_after_fork_in_child)

# Per class, the step's job counts in StepReadout.counts (rows class-major: ue then sensor).
STEP_COUNT_NAMES = ("generated", "sent", "completed", "dropped")
# Columns of ``BatchSimulator.uplink_jobs`` and ``mec_jobs`` (one row per queued job, head first).
UPLINK_JOB_COLUMNS = ("job_id", "data_mbit", "compute_units", "t_gen", "sensor", "left_mbit")
MEC_JOB_COLUMNS = (
    "job_id", "data_mbit", "compute_units", "t_gen", "sensor", "device", "sensor_update_t", "left_compute",
)  # fmt: skip


class StepReadout(NamedTuple):
    """What the last step produced in every environment of a batch (new arrays)."""

    t: np.ndarray  # (B,) int64, index of the step taken (t - 1)
    counts: np.ndarray  # (C * 4, B) int64, per class the STEP_COUNT_NAMES (dropped: uplink + MEC) (jobs)
    aori_mean: np.ndarray  # (B,) float64, mean AoRI of the UE jobs completed in the step, NaN if none (steps)
    aosi_mean: np.ndarray  # (B,) float64, mean AoSI of the same jobs, NaN if none (steps)
    ue_done: np.ndarray  # (B,) bool, stepped and completed at least one UE job
    reward: np.ndarray  # (B,) float64, the step's reward, 0 where not stepped
    truncated: np.ndarray  # (B,) bool, stepped and reached the episode length
    queue_lengths: np.ndarray  # (B, M, 2) int64, a copy of the MEC queue lengths after the step


@nb.njit(cache=True)
def _queue_work(records, field, head, length, rem, out):
    """Work left in each ring buffer q, summed head first.

    The head job's remainder is ``rem[q]``; every other live slot still has all of its
    ``records[q, slot, field]`` to go.
    """
    cap = records.shape[1]
    for q in range(records.shape[0]):
        total = 0.0
        for j in range(length[q]):
            total += rem[q] if j == 0 else records[q, (head[q] + j) % cap, field]
        out[q] = total


@nb.njit(cache=True)
def _uplink_work(dq, head, length, rem, out):
    """Mbit left in every uplink ring (slot-major, see ``State.dq``), as ``_queue_work`` sums them."""
    cap = dq.shape[1]
    for b in range(dq.shape[0]):
        for d in range(dq.shape[2]):
            total = 0.0
            for j in range(length[b, d]):
                total += rem[b, d] if j == 0 else dq[b, (head[b, d] + j) % cap, d, JOB_DATA]
            out[b, d] = total


def _mec_work(s: State) -> np.ndarray:
    """Compute units left in every MEC queue, shaped like ``s.bq_len``."""
    out = np.zeros(s.bq_len.size)
    records = s.bq.reshape(-1, *s.bq.shape[-2:])
    _queue_work(records, JOB_COMPUTE, s.bq_head.reshape(-1), s.bq_len.reshape(-1), s.bq_rem.reshape(-1), out)
    return out.reshape(s.bq_len.shape)


@nb.njit(cache=True)
def clip_actions(actions, low, symmetric, out):
    """Clip a (B, A) float array into ``out`` as ``validate_action`` does; False (``out`` untouched) if one is NaN/inf.

    The same IEEE operations as its numpy path (max with ``low``, min with 1, then
    ``(v + 1) * 0.5`` for the symmetric range), so bit-identical results, in one compiled call
    instead of five numpy calls.
    """
    rows, cols = actions.shape
    for i in range(rows):
        for j in range(cols):
            if not np.isfinite(actions[i, j]):
                return False
    for i in range(rows):
        for j in range(cols):
            v = float(actions[i, j])
            v = low if v <= low else (1.0 if v > 1.0 else v)  # <=: -0.0 becomes 0.0, as in np.maximum
            out[i, j] = (v + 1.0) * 0.5 if symmetric else v
    return True


@nb.njit(cache=True, inline="always")
def _read_one(b, stepped, steps, t, reward, step_counts, done_n, done_age_sum, bq_len, out):
    """Environment ``b``'s fields of ``StepReadout`` into the arrays ``out``."""
    step_t, counts, aori, aosi, ue_done, step_reward, truncated, queue_lengths = out
    queue_lengths[b] = bq_len[b]
    step_t[b] = t[b] - 1
    for c in range(step_counts.shape[1]):
        counts[4 * c, b] = np.int64(step_counts[b, c, GEN_JOBS])
        counts[4 * c + 1, b] = np.int64(step_counts[b, c, SENT_JOBS])
        counts[4 * c + 2, b] = np.int64(step_counts[b, c, DONE_JOBS])
        counts[4 * c + 3, b] = np.int64(step_counts[b, c, DROP_UL_JOBS] + step_counts[b, c, DROP_MEC_JOBS])
    if not stepped[b]:  # as in Gymnasium's vector envs, masked-out counts are zero
        for i in range(counts.shape[0]):
            counts[i, b] = 0
    n = done_n[b]
    # Integer sums, exact: the same value as summing the done_n ages one by one.
    aori[b] = done_age_sum[b, 0] / n if stepped[b] and n > 0 else np.nan
    aosi[b] = done_age_sum[b, 1] / n if stepped[b] and n > 0 else np.nan
    ue_done[b] = stepped[b] and done_n[b] > 0
    step_reward[b] = reward[b] if stepped[b] else 0.0
    truncated[b] = stepped[b] and t[b] >= steps


@nb.njit(cache=True)
def _readout_arrays(batch, classes, bq_len):
    """New arrays for the fields of one ``StepReadout``."""
    return (
        np.empty(batch, np.int64),
        np.empty((classes * 4, batch), np.int64),
        np.empty(batch),
        np.empty(batch),
        np.empty(batch, np.bool_),
        np.empty(batch),
        np.empty(batch, np.bool_),
        np.empty_like(bq_len),
    )


@nb.njit(cache=True)
def _read_range(lo, hi, stepped, steps, t, reward, step_counts, done_n, done_age_sum, bq_len, out):
    """``_read_one`` for the environments ``lo <= b < hi``."""
    for b in range(lo, hi):
        _read_one(b, stepped, steps, t, reward, step_counts, done_n, done_age_sum, bq_len, out)


@nb.njit(cache=True)
def _read_step(stepped, steps, t, reward, step_counts, done_n, done_age_sum, bq_len):
    """The fields of ``StepReadout`` in one pass over the batch."""
    out = _readout_arrays(step_counts.shape[0], step_counts.shape[1], bq_len)
    _read_range(0, step_counts.shape[0], stepped, steps, t, reward, step_counts, done_n, done_age_sum, bq_len, out)
    return out


@nb.njit(parallel=True, cache=True)
def _read_step_parallel(workers, stepped, steps, t, reward, step_counts, done_n, done_age_sum, bq_len):
    """``_read_step`` on ``workers`` threads, for the simulators that step on them.

    Thread w reads the w-th contiguous part of the batch (iteration w of a parallel loop runs on
    thread w, as in ``kernels.step_envs_parallel``, whose threads step such parts first), so each
    thread reads the rows it has just written, still in its core's cache; read on one thread,
    they came from the other core or from memory (1,024 environments: ~0.17 µs per env-step,
    ~6% of the vector env's step; vector env, 1,024 envs, 40 x 100 steps interleaved in one
    process: 2.475/2.970 against 2.314/2.880 µs per env-step min/median). (The per-environment
    body is called, not written into the parallel loop: numba 0.68 lowered that loop's
    conditional stores wrongly, leaving them unwritten.)
    """
    batch = step_counts.shape[0]
    out = _readout_arrays(batch, step_counts.shape[1], bq_len)
    for w in nb.prange(workers):
        lo, hi = w * batch // workers, (w + 1) * batch // workers
        _read_range(lo, hi, stepped, steps, t, reward, step_counts, done_n, done_age_sum, bq_len, out)
    return out


# Keys of an episode summary, in order: the rows of _summary_rows.
SUMMARY_KEYS = (
    "steps", "reward", "ue_jobs_completed", "aori_mean", "aori_p95", "aori_max", "aosi_mean", "aosi_p95",
    "aosi_max", "late_fraction", "twin_age_mean", "twin_age_max",
    *(f"{cls}_{key}" for cls in CLASS_NAMES for key in (
        "generated", "completed", "throughput_mbps", "throughput_jobs_per_s", "dropped_uplink", "dropped_mec",
    )),
)  # fmt: skip


@nb.njit(cache=True)
def _ratio_or_nan(numerator, denominator):
    return numerator / denominator if denominator != 0 else np.nan


@nb.njit(cache=True)
def _nearest_rank(hist, b, q):
    """The q-quantile (nearest rank) of the integer ages counted in ``hist[b]``; NaN if it is empty."""
    n = 0
    for count in hist[b]:
        n += count
    if n == 0:
        return np.nan
    rank = max(np.int64(np.ceil(q * n)), 1)
    cumulative, index = 0, 0
    for count in hist[b]:  # the first bin whose cumulative count reaches the rank
        cumulative += count
        if cumulative >= rank:
            break
        index += 1
    return float(index)


@nb.njit(cache=True)
def _summary_rows(env_ids, t, stats, totals, aori_hist, aosi_hist, dt_s):
    """(len(SUMMARY_KEYS), len(env_ids)) float64: the episode summaries, one compiled pass.

    (~30 numpy operations on tiny arrays took ~150 µs per single-env episode; this is one call.)
    """
    out = np.empty((12 + 6 * totals.shape[1], env_ids.shape[0]))
    for j in range(env_ids.shape[0]):
        b = env_ids[j]
        done = stats[b, S_UE_DONE]
        twin_count = stats[b, S_TWIN_AGE_COUNT]
        elapsed_s = max(t[b], 1) * dt_s
        out[0, j] = t[b]
        out[1, j] = stats[b, S_REWARD]
        out[2, j] = np.trunc(done)
        out[3, j] = _ratio_or_nan(stats[b, S_AORI_SUM], done)
        out[4, j] = _nearest_rank(aori_hist, b, 0.95)
        out[5, j] = stats[b, S_AORI_MAX] if done != 0 else np.nan
        out[6, j] = _ratio_or_nan(stats[b, S_AOSI_SUM], done)
        out[7, j] = _nearest_rank(aosi_hist, b, 0.95)
        out[8, j] = stats[b, S_AOSI_MAX] if done != 0 else np.nan
        out[9, j] = _ratio_or_nan(stats[b, S_LATE], done)
        out[10, j] = _ratio_or_nan(stats[b, S_TWIN_AGE_SUM], twin_count)
        out[11, j] = stats[b, S_TWIN_AGE_MAX] if twin_count != 0 else np.nan
        for c in range(totals.shape[1]):
            row = 12 + 6 * c
            out[row, j] = np.trunc(totals[b, c, GEN_JOBS])
            out[row + 1, j] = np.trunc(totals[b, c, DONE_JOBS])
            out[row + 2, j] = totals[b, c, DONE_MBIT] / elapsed_s
            out[row + 3, j] = totals[b, c, DONE_JOBS] / elapsed_s
            out[row + 4, j] = np.trunc(totals[b, c, DROP_UL_JOBS])
            out[row + 5, j] = np.trunc(totals[b, c, DROP_MEC_JOBS])
    return out


@nb.njit(cache=True)
def _next_seeds(seeds):
    """``next_seed`` of every entry of ``seeds``."""
    out = np.empty_like(seeds)
    for i in range(seeds.shape[0]):
        out[i] = next_seed(seeds[i])
    return out


@nb.njit(cache=True)
def _nearest_ranks(hists, q):
    out = np.empty(hists.shape[0])
    for b in range(hists.shape[0]):
        out[b] = _nearest_rank(hists, b, q)
    return out


def nearest_rank_percentiles(hists: np.ndarray, q: float) -> np.ndarray:
    """The q-quantile (nearest-rank) of integer ages given one histogram per row; NaN where empty."""
    return _nearest_ranks(np.ascontiguousarray(hists, dtype=np.int64), float(q))


def nearest_rank_percentile(hist: np.ndarray, q: float) -> float:
    """The q-quantile (nearest-rank) of integer ages given their histogram; NaN if empty."""
    return float(nearest_rank_percentiles(np.asarray(hist)[None], q)[0])


def compiled_overload(dispatcher: Any, args: tuple[Any, ...]) -> Callable[..., Any] | None:
    """The entry point ``dispatcher`` compiled for exactly the types of ``args``, or None if it has none.

    Calling it skips the dispatcher's typing of every argument on every call; it performs no
    type checks itself, so it must only ever receive arguments of those very types. ``args``
    are packed as the dispatcher packs them: a kernel ``f(a, b, *rest)`` takes ``(a, b, rest)``.
    """
    key = tuple(dispatcher.typeof_pyval(a) for a in args)
    compiled = dispatcher.overloads.get(key)
    return None if compiled is None else compiled.entry_point


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
        # The step's inputs, owned here so that their types never change (see step()).
        self._action = np.zeros((batch, self.num_bs, 2))
        self._active = np.ones(batch, dtype=np.bool_)
        use_threads = batch >= PARALLEL_MIN_BATCH if parallel is None else parallel
        if use_threads and _forked_from_omp:
            if parallel:
                raise RuntimeError(
                    "parallel=True cannot step on threads in this process: it was forked from one that ran"
                    " numba's GNU OpenMP thread pool, which cannot run after a fork. Pass parallel=None or"
                    " False (serial, same results), or start the process with multiprocessing's 'spawn' or"
                    " 'forkserver' method"
                )
            use_threads = False
            _warn_serial_after_fork()
        self._step_kernel = kernels.step_envs_parallel if use_threads else kernels.step_envs
        # The threaded kernel's leading argument: one block cursor per thread (any count is
        # correct; one per thread keeps each thread on the same environments every step).
        cursors = np.zeros(nb.get_num_threads(), dtype=np.int64)
        self._kernel_lead: tuple[np.ndarray, ...] = (cursors,) if use_threads else ()
        if use_threads:
            _threaded_sims.add(self)
        self._step_owned: Callable[..., Any] = self._first_step_owned
        self._read_entry: Callable[..., Any] | None = None  # read_step's compiled overload (see there)
        self._features = tuple(scenario.config["observation"]["features"])
        self._feature_parts = tuple(getattr(self, f"_observe_{name}") for name in self._features)
        self.layout = observation_layout(scenario)
        self.observation_size = max((s.stop for s in self.layout.values()), default=0)

    def _use_serial_kernel(self) -> None:
        """Step on the calling thread from now on (same results; see ``_after_fork_in_child``)."""
        self._step_kernel = kernels.step_envs
        self._kernel_lead = ()
        self._step_owned = self._first_step_owned
        self._read_entry = None  # (it read on the threads too)
        _threaded_sims.discard(self)

    # ----------------------------------------------------------------- copies
    def __getstate__(self) -> dict[str, Any]:
        """What ``pickle`` and ``copy.deepcopy`` keep: the scenario, the kernel choice and every array.

        The rest (parameters, argument tuples, compiled entries, bound read-outs) is rebuilt by
        ``__init__`` on arrival; copying it field by field would not do: ``deepcopy`` turns a
        view into an independent array, and the compiled entries cannot be pickled.
        """
        return {
            "scenario": self.scenario,
            "batch": self.batch,
            "threaded": self._step_kernel is kernels.step_envs_parallel,
            "arrays": (*self.state, *self.out, self._action, self._active),
        }

    def __setstate__(self, saved: dict[str, Any]) -> None:
        threaded = saved["threaded"] and not _forked_from_omp
        self.__init__(saved["scenario"], saved["batch"], parallel=threaded)  # type: ignore[misc]
        for dst, src in zip((*self.state, *self.out, self._action, self._active), saved["arrays"], strict=True):
            np.copyto(dst, src)

    # ----------------------------------------------------------------- initial / transition
    def reset(self, env_ids: np.ndarray | list[int], seeds: np.ndarray | list[int]) -> None:
        """Start new episodes in ``env_ids`` from ``seeds`` (one per environment)."""
        ids = np.asarray(env_ids, dtype=np.int64)
        seed_arr = np.asarray(seeds, dtype=np.int64)
        # Many distinct environments start on all threads (the vector env's autoreset of a whole batch).
        threaded = self._step_kernel is kernels.step_envs_parallel and ids.size >= PARALLEL_MIN_BATCH
        if threaded and np.unique(ids).size == ids.size:
            failed = kernels.init_envs_parallel(ids, seed_arr, *self._init_args)
        else:
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
        return _next_seeds(self.state.seed[env_ids])

    @property
    def action(self) -> np.ndarray:
        """(B, M, 2) float64 buffer of the split ``(bw_ue, comp_ue)`` in [0, 1]; ``step()`` applies it."""
        return self._action

    @property
    def active(self) -> np.ndarray:
        """(B,) bool buffer of environments to step, for ``step(active=sim.active)``."""
        return self._active

    def step(self, action: np.ndarray | None = None, active: np.ndarray | None = None) -> None:
        """Advance the environments one step; ``action`` is (B, M, 2) in [0, 1] (default: ``self.action``).

        ``active`` (B,) bool selects the environments to step (default: all).
        """
        action = self._action if action is None else action
        active = self._all if active is None else active
        if action is self._action and (active is self._all or active is self._active):
            self._step_owned(*self._kernel_lead, active, action, self._step_args)
        else:
            self._step_kernel(*self._kernel_lead, active, action, *self._step_args)

    def _first_step_owned(self, *call: Any) -> None:
        """Step through the dispatcher, then bind later steps with the own buffers to its compiled overload.

        ``call`` is ``(*lead, active, action, args)``. The kernel takes ~80 arguments, and the
        dispatcher types each of them on every call (several µs, as long as the env-step
        itself). The buffers owned here keep their types for the simulator's lifetime, so the
        overload compiled for them stays the right one.
        """
        self._dispatch_step(*call)
        entry = compiled_overload(self._step_kernel, call)
        self._step_owned = entry if entry is not None else self._dispatch_step

    def _dispatch_step(self, *call: Any) -> None:
        *head, args = call
        self._step_kernel(*head, *args)

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
        """(B, obs_size) float32 observation, a new array; the paper's default is ``[l_b(t), l^_b(t)]`` per BS."""
        if len(self._feature_parts) == 1:
            return self._feature_parts[0]().astype(np.float32)
        return np.concatenate([part() for part in self._feature_parts], axis=1).astype(np.float32)

    def _observe_queue_lengths(self) -> np.ndarray:
        return self.state.bq_len.reshape(self.batch, -1)

    def _observe_queue_work(self) -> np.ndarray:
        s = self.state
        return _mec_work(s).reshape(self.batch, -1)

    def _observe_uplink_backlog(self) -> np.ndarray:
        s = self.state
        backlog = np.zeros(s.dq_len.shape)
        _uplink_work(s.dq, s.dq_head, s.dq_len, s.dq_rem, backlog)
        k = self.params.num_ues
        return np.stack([backlog[:, :k].sum(axis=1), backlog[:, k:].sum(axis=1)], axis=1)

    def _observe_twin_age(self) -> np.ndarray:
        s = self.state
        age = s.t[:, None] - 1 - s.twin  # at the end of the last step, as in the summary statistics
        return np.where(s.twin >= 0, age, self.params.steps + 1).astype(np.float64)

    def _observe_time(self) -> np.ndarray:
        return (self.state.t / self.params.steps)[:, None].astype(np.float64)

    # ----------------------------------------------------------------- what users read out
    def step_info(self, b: int) -> dict[str, Any]:
        """Per-step information of environment ``b`` (the Gymnasium ``info`` dict)."""
        out = self.out
        n = out.done_n.item(b)
        ue, sensor = out.step_counts[b].tolist()  # one conversion: this runs on every single-env step
        return {
            "t": self.state.t.item(b) - 1,
            "generated_ue": int(ue[GEN_JOBS]),
            "sent_ue": int(ue[SENT_JOBS]),
            "completed_ue": int(ue[DONE_JOBS]),
            "dropped_ue": int(ue[DROP_UL_JOBS] + ue[DROP_MEC_JOBS]),
            "generated_sensor": int(sensor[GEN_JOBS]),
            "sent_sensor": int(sensor[SENT_JOBS]),
            "completed_sensor": int(sensor[DONE_JOBS]),
            "dropped_sensor": int(sensor[DROP_UL_JOBS] + sensor[DROP_MEC_JOBS]),
            "queue_lengths": self.state.bq_len[b].copy(),
            # Tuples, not arrays: their length varies by step, and Gymnasium's SyncVectorEnv /
            # AsyncVectorEnv batch an array info into a fixed-shape array (object arrays take tuples).
            "aori": tuple(out.done_aori[b, :n].tolist()),
            "aosi": tuple(out.done_aosi[b, :n].tolist()),
        }

    def read_step(self, stepped: np.ndarray) -> StepReadout:
        """Everything a vector env reports of the last step; ``stepped`` (B,) bool: who took it.

        One compiled pass: after a large batch's step every further numpy operation starts
        from cold caches (tens of µs each at 1,024 environments), and this replaces ~15 of them.
        After the first call it goes through the compiled overload directly, without the
        dispatcher's typing of its eight arguments (``stepped`` is made a C-contiguous bool array
        of the batch's length first, and every other argument is owned here).
        """
        stepped = np.ascontiguousarray(stepped, dtype=np.bool_)  # the same array if it already is one
        if stepped.shape != (self.batch,):
            raise ValueError(f"stepped has shape {stepped.shape}, expected ({self.batch},): one flag per environment")
        out = self.out
        threaded = self._step_kernel is kernels.step_envs_parallel
        # (the threaded reader's parts: one per cursor of the threaded kernel, one per thread)
        args: tuple[Any, ...] = (len(self._kernel_lead[0]),) if threaded else ()
        args += (stepped, self.params.steps, self.state.t, out.reward, out.step_counts)
        args += (out.done_n, out.done_age_sum, self.state.bq_len)
        if self._read_entry is not None:  # all arguments are of the types it was compiled for
            return StepReadout(*self._read_entry(*args))
        reader = _read_step_parallel if threaded else _read_step
        readout = StepReadout(*reader(*args))
        self._read_entry = compiled_overload(reader, args)
        return readout

    def step_counts(self, b: int) -> dict[str, dict[str, float]]:
        """Every counter's increment in the last step, per class."""
        return _by_class(self.out.step_counts[b])

    def totals(self, b: int) -> dict[str, dict[str, float]]:
        """Every cumulative counter of the episode so far, per class."""
        return _by_class(self.state.totals[b])

    def episode_summary(self, b: int) -> dict[str, float]:
        """AoI and throughput statistics of environment ``b``'s episode so far."""
        values = self._summary_rows(np.array([b])).ravel().tolist()
        return {
            key: int(value) if key in INT_SUMMARY_KEYS else value
            for key, value in zip(SUMMARY_KEYS, values, strict=True)
        }

    def episode_summaries(self, env_ids: np.ndarray) -> dict[str, np.ndarray]:
        """``episode_summary`` of every environment in ``env_ids``: one float64 array per key.

        Counts come out as whole floats (``int`` in ``episode_summary``); a mean over no
        completed UE job, or a twin age of a twin that never held data, is NaN.
        """
        return dict(zip(SUMMARY_KEYS, self._summary_rows(np.asarray(env_ids, dtype=np.int64)), strict=True))

    def _summary_rows(self, env_ids: np.ndarray) -> np.ndarray:
        s = self.state
        return _summary_rows(env_ids, s.t, s.stats, s.totals, s.aori_hist, s.aosi_hist, self.params.dt_s)

    def twin_age(self, b: int) -> np.ndarray:
        """(N,) age in steps of the twin's data per sensor at the end of the last step (-1: none yet)."""
        twin = self.state.twin[b]
        return np.where(twin >= 0, self.state.t[b] - 1 - twin, -1)

    def uplink_jobs(self, b: int, d: int) -> np.ndarray:
        """Jobs queued in device ``d``'s uplink in environment ``b``, head first.

        Returns an (n, 6) float64 array with the columns ``UPLINK_JOB_COLUMNS``; ``left_mbit``
        is what is still to send (only the head job can have sent part of its data).
        ``job_id`` is -1 unless the job log is on (the core keeps ids for the log only).
        """
        s = self.state
        slots = (int(s.dq_head[b, d]) + np.arange(int(s.dq_len[b, d]))) % s.dq.shape[1]
        records = s.dq[b, slots, d]
        jobs = np.empty((len(slots), len(UPLINK_JOB_COLUMNS)))
        jobs[:, 0] = s.dq_jid[b, slots, d] if self.params.log_capacity else -1
        jobs[:, 1:5] = records  # JOB_DATA, JOB_COMPUTE, JOB_T_GEN, JOB_SENSOR
        jobs[:, 5] = records[:, JOB_DATA]
        if len(slots):
            jobs[0, 5] = s.dq_rem[b, d]
        return jobs

    def mec_jobs(self, b: int, m: int, c: int) -> np.ndarray:
        """Jobs queued at BS ``m``'s MEC queue of class ``c`` (0 UE, 1 sensor) in environment ``b``, head first.

        Returns an (n, 8) float64 array with the columns ``MEC_JOB_COLUMNS``: ``sensor_update_t``
        is the generation step of the twin update a UE job is bound to (-1 until it starts;
        a sensor update's own generation step), ``left_compute`` the compute units still to
        serve. ``job_id`` as in ``uplink_jobs``.
        """
        s = self.state
        slots = (int(s.bq_head[b, m, c]) + np.arange(int(s.bq_len[b, m, c]))) % s.bq.shape[3]
        records = s.bq[b, m, c, slots]
        jobs = np.empty((len(slots), len(MEC_JOB_COLUMNS)))
        jobs[:, 0] = s.bq_jid[b, m, c, slots] if self.params.log_capacity else -1
        jobs[:, 1:7] = records  # JOB_DATA .. JOB_SENSOR_UPDATE_T
        jobs[:, 7] = records[:, JOB_COMPUTE]
        if len(slots):
            jobs[0, 7] = s.bq_rem[b, m, c]
        return jobs

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


__all__ = [
    "INT_SUMMARY_KEYS",
    "LOG_FIELDS",
    "MEC_JOB_COLUMNS",
    "STEP_COUNT_NAMES",
    "UPLINK_JOB_COLUMNS",
    "BatchSimulator",
    "StepReadout",
    "compiled_overload",
    "nearest_rank_percentile",
    "nearest_rank_percentiles",
    "observation_layout",
]
