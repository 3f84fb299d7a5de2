"""The shells' fast paths against plain, obviously correct versions of the same read-outs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from metalore import MetaLoreEnv, MetaLoreVectorEnv
from metalore.config import make_scenario
from metalore.core import kernels
from metalore.core import simulator as simulator_module
from metalore.core.rng import next_seed
from metalore.core.simulator import (
    INT_SUMMARY_KEYS,
    BatchSimulator,
    StepReadout,
    compiled_overload,
    nearest_rank_percentiles,
)
from metalore.core.state import (
    CLASS_NAMES,
    DONE_JOBS,
    DONE_MBIT,
    DROP_MEC_JOBS,
    DROP_UL_JOBS,
    GEN_JOBS,
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
)
from metalore.env import validate_action


def reference_percentile(hist: np.ndarray, q: float) -> float:
    n = int(hist.sum())
    if n == 0:
        return float("nan")
    rank = int(np.ceil(q * n))
    return float(np.searchsorted(np.cumsum(hist), max(rank, 1)))


def reference_summary(sim: BatchSimulator, b: int) -> dict[str, float]:
    """One environment's episode summary, one value at a time."""
    s = sim.state
    stats = s.stats[b]
    done = stats[S_UE_DONE]
    elapsed_s = max(int(s.t[b]), 1) * sim.params.dt_s

    def mean(total: float) -> float:
        return float(total / done) if done else float("nan")

    twin_count = stats[S_TWIN_AGE_COUNT]
    summary: dict[str, float] = {
        "steps": int(s.t[b]),
        "reward": float(stats[S_REWARD]),
        "ue_jobs_completed": int(done),
        "aori_mean": mean(stats[S_AORI_SUM]),
        "aori_p95": reference_percentile(s.aori_hist[b], 0.95),
        "aori_max": float(stats[S_AORI_MAX]) if done else float("nan"),
        "aosi_mean": mean(stats[S_AOSI_SUM]),
        "aosi_p95": reference_percentile(s.aosi_hist[b], 0.95),
        "aosi_max": float(stats[S_AOSI_MAX]) if done else float("nan"),
        "late_fraction": mean(stats[S_LATE]),
        "twin_age_mean": float(stats[S_TWIN_AGE_SUM] / twin_count) if twin_count else float("nan"),
        "twin_age_max": float(stats[S_TWIN_AGE_MAX]) if twin_count else float("nan"),
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


def reference_step_info(sim: BatchSimulator, b: int) -> dict[str, Any]:
    out = sim.out
    n = int(out.done_n[b])
    info: dict[str, Any] = {"t": int(sim.state.t[b]) - 1}
    for c, cls in enumerate(CLASS_NAMES):
        counts = out.step_counts[b, c]
        info[f"generated_{cls}"] = int(counts[GEN_JOBS])
        info[f"sent_{cls}"] = int(counts[SENT_JOBS])
        info[f"completed_{cls}"] = int(counts[DONE_JOBS])
        info[f"dropped_{cls}"] = int(counts[DROP_UL_JOBS] + counts[DROP_MEC_JOBS])
    info["queue_lengths"] = sim.state.bq_len[b].copy()
    info["aori"] = tuple(int(v) for v in out.done_aori[b, :n])
    info["aosi"] = tuple(int(v) for v in out.done_aosi[b, :n])
    return info


def assert_same_dict(fast: dict[str, Any], slow: dict[str, Any]) -> None:
    assert list(fast) == list(slow)  # same keys in the same order
    for key, value in slow.items():
        assert type(fast[key]) is type(value), key
        if isinstance(value, np.ndarray):
            assert fast[key].dtype == value.dtype and fast[key].shape == value.shape, key
        if isinstance(value, dict):
            assert_same_dict(fast[key], value)
        else:
            np.testing.assert_equal(fast[key], value, err_msg=key)


def starving_and_fed_episodes(num_envs: int, steps: int) -> MetaLoreVectorEnv:
    """Sub-envs part-way through episodes; even ones give all compute to UEs, so no UE job completes."""
    venv = MetaLoreVectorEnv(num_envs, "paper", {"episode": {"steps": steps}})
    venv.reset(seed=11)
    rng = np.random.default_rng(11)
    for _ in range(steps - 1):
        actions = rng.uniform(0.0, 1.0, venv.action_space.shape)
        actions[::2] = [0.5, 1.0]  # sensors starved: their twin data never arrives, UEs wait forever
        venv.step(actions)
    return venv


def test_batched_episode_summaries_equal_per_env_reference():
    venv = starving_and_fed_episodes(24, 30)
    sim = venv.sim
    ids = np.arange(24)
    batched = sim.episode_summaries(ids)
    assert math.isnan(batched["aori_mean"][0]) and math.isnan(batched["aosi_p95"][0])  # the NaN case is covered
    assert not math.isnan(batched["aori_mean"][1])
    for b in ids:
        expected = reference_summary(sim, b)
        assert_same_dict(sim.episode_summary(b), expected)
        assert list(batched) == list(expected)
        for key, value in expected.items():
            assert batched[key].dtype == np.float64
            np.testing.assert_equal(batched[key][b], float(value), err_msg=key)
    # An episode that has not stepped yet: no elapsed time, an empty twin.
    venv.reset(seed=3, options={"reset_mask": ids == 5})
    assert_same_dict(sim.episode_summary(5), reference_summary(sim, 5))
    subset = np.array([5, 2, 17])
    for key, values in sim.episode_summaries(subset).items():
        np.testing.assert_equal(values, [float(reference_summary(sim, b)[key]) for b in subset], err_msg=key)


def test_vector_env_summary_info_equals_per_env_summaries():
    venv = starving_and_fed_episodes(16, 20)
    venv.reset(seed=4, options={"reset_mask": np.arange(16) % 3 == 0})  # these end later
    *_, truncated, info = venv.step(np.full((16, 2), 0.5))
    assert truncated.any() and not truncated.all()
    np.testing.assert_array_equal(info["_summary"], truncated)
    for b in range(16):
        expected = reference_summary(venv.sim, b) if truncated[b] else None
        for key, values in info["summary"].items():
            if key.startswith("_"):  # nested masks, as Gymnasium batches a dict info
                assert values[b] == truncated[b], key
                continue
            assert values.dtype == (np.int64 if key in INT_SUMMARY_KEYS else np.float64), key
            np.testing.assert_equal(values[b], expected[key] if expected else 0, err_msg=key)  # zero elsewhere


def test_read_step_equals_numpy_read_outs():
    venv = starving_and_fed_episodes(12, 10)  # even sub-envs complete no UE job
    sim = venv.sim
    stepped = np.arange(12) % 3 != 1
    sim.active[:] = stepped
    sim.action[:] = 0.4
    sim.step(active=sim.active)
    step = sim.read_step(stepped)
    out, t = sim.out, sim.state.t
    np.testing.assert_array_equal(step.t, t - 1)
    for c in range(len(CLASS_NAMES)):
        counts = out.step_counts[:, c]
        expected = [
            counts[:, GEN_JOBS],
            counts[:, SENT_JOBS],
            counts[:, DONE_JOBS],
            counts[:, [DROP_UL_JOBS, DROP_MEC_JOBS]].sum(1),
        ]
        for k, values in enumerate(expected):
            np.testing.assert_array_equal(step.counts[4 * c + k], np.where(stepped, values, 0).astype(np.int64))
    means = [
        [np.mean(done[b, : out.done_n[b]]) if out.done_n[b] and stepped[b] else np.nan for b in range(12)]
        for done in (out.done_aori, out.done_aosi)
    ]
    np.testing.assert_allclose(step.aori_mean, means[0], rtol=1e-15)
    np.testing.assert_allclose(step.aosi_mean, means[1], rtol=1e-15)
    np.testing.assert_array_equal(step.ue_done, stepped & (out.done_n > 0))
    assert step.ue_done[1::2].any() and not step.ue_done[::2].any()
    np.testing.assert_array_equal(step.reward, np.where(stepped, out.reward, 0.0))
    np.testing.assert_array_equal(step.truncated, stepped & (t >= sim.params.steps))
    assert step.truncated.any() and not step.truncated.all()
    assert step.counts.dtype == np.int64 and step.truncated.dtype == np.bool_


def test_read_step_takes_any_boolean_mask_of_the_batch_length():
    # After its first call read_step goes through the compiled overload without type checks:
    # other mask forms are converted first, and a mask of another length is refused.
    venv = starving_and_fed_episodes(6, 10)
    sim = venv.sim
    sim.step()
    mask = np.array([True, False, True, True, False, True])
    reference = sim.read_step(mask)
    for form in (mask.tolist(), np.repeat(mask, 2)[::2], mask.astype(np.int8), mask.copy()):
        again = sim.read_step(form)
        for field, value in zip(StepReadout._fields, again, strict=True):
            np.testing.assert_array_equal(value, getattr(reference, field), err_msg=field)
    with pytest.raises(ValueError, match=r"stepped has shape \(5,\), expected \(6,\)"):
        sim.read_step(mask[:5])
    with pytest.raises(ValueError, match="stepped has shape"):
        sim.read_step(mask[None])


def test_threaded_simulators_read_the_step_on_their_threads_with_the_serial_values():
    # A threaded simulator reads each thread's part of the batch on that thread; the values must
    # be the serial pass's, for any mask, part count (more parts than threads too) and batch size.
    for batch in (3, 64, 200):
        threaded = BatchSimulator(make_scenario("paper", {"episode": {"steps": 20}}), batch=batch, parallel=True)
        threaded.reset(np.arange(batch), np.arange(batch) + 11)
        rng = np.random.default_rng(batch)
        for _ in range(25):  # past the episode end: truncated sub-envs in the read-outs
            threaded.action[:] = rng.uniform(0.0, 1.0, threaded.action.shape)
            threaded.step()
            stepped = rng.random(batch) < 0.7
            readout = threaded.read_step(stepped)
            args = (stepped, threaded.params.steps, threaded.state.t, threaded.out.reward, threaded.out.step_counts)
            args += (threaded.out.done_n, threaded.out.done_age_sum, threaded.state.bq_len)
            for parts in (None, 1, 5):
                expected = simulator_module._read_step(*args)
                got = readout if parts is None else simulator_module._read_step_parallel(parts, *args)
                for field, want, value in zip(StepReadout._fields, expected, got, strict=True):
                    assert value.dtype == want.dtype, field
                    np.testing.assert_array_equal(value, want, err_msg=field)
        assert threaded._read_entry is not None and threaded.read_step(stepped).truncated.any()
    threaded._use_serial_kernel()  # as after a fork: the threads are gone, so is the threaded reader
    assert threaded._read_entry is None
    np.testing.assert_array_equal(threaded.read_step(stepped).counts, expected[1])


def test_nearest_rank_percentiles_equal_searchsorted_per_row():
    rng = np.random.default_rng(0)
    hists = rng.integers(0, 4, size=(200, 12)) * (rng.random((200, 12)) < 0.3)
    hists[:5] = 0  # empty histograms
    for q in (0.05, 0.5, 0.95, 1.0):
        expected = [reference_percentile(h, q) for h in hists]
        np.testing.assert_equal(nearest_rank_percentiles(hists, q), expected)


def test_next_seeds_equal_next_seed_per_env():
    sim = BatchSimulator(make_scenario("small"), batch=5)
    sim.reset(np.arange(5), [0, 1, 2**62, 12345, 2**63 - 1])
    ids = np.array([4, 0, 2])
    expected = [next_seed(s) for s in sim.state.seed[ids]]
    np.testing.assert_array_equal(sim.next_seeds(ids), expected)
    assert sim.next_seeds(ids).dtype == np.int64


def all_arrays(sim: BatchSimulator) -> list[np.ndarray]:
    return [*sim.state, *sim.out]


@pytest.mark.parametrize("parallel", [False, True])
def test_stepping_through_the_compiled_overload_equals_the_dispatcher(parallel):
    scenario = make_scenario("multicell", {"episode": {"steps": 40}})
    fast, slow = (BatchSimulator(scenario, batch=3, parallel=parallel) for _ in range(2))
    for sim in (fast, slow):
        sim.reset(np.arange(3), [7, 8, 9])
    rng = np.random.default_rng(7)
    for t in range(40):
        fast.action[:] = rng.uniform(0.0, 1.0, fast.action.shape)
        active = np.array([True, t % 3 != 0, True])
        if t % 2:
            fast.step()
            slow.step(fast.action.copy())  # not the simulator's own buffer: the dispatcher path
        else:
            fast.active[:] = active
            fast.step(active=fast.active)
            slow.step(fast.action.copy(), active.copy())
        for a, b in zip(all_arrays(fast), all_arrays(slow), strict=True):
            np.testing.assert_array_equal(a, b)
    kernel = kernels.step_envs_parallel if parallel else kernels.step_envs
    call = (*fast._kernel_lead, fast.active, fast.action, fast._step_args)
    assert fast._step_owned == compiled_overload(kernel, call)
    assert fast._step_owned is not None


def test_steps_fall_back_to_the_dispatcher_without_a_matching_overload(monkeypatch):
    monkeypatch.setattr(simulator_module, "compiled_overload", lambda dispatcher, args: None)
    scenario = make_scenario("paper", {"episode": {"steps": 10}})
    fallback, reference = (BatchSimulator(scenario, batch=2) for _ in range(2))
    for sim in (fallback, reference):
        sim.reset([0, 1], [3, 4])
        sim.action[:] = 0.3
    for _ in range(10):
        fallback.step()
        reference.step(reference.action.copy())
    assert fallback._step_owned == fallback._dispatch_step
    for a, b in zip(all_arrays(fallback), all_arrays(reference), strict=True):
        np.testing.assert_array_equal(a, b)


def test_compiled_overload_is_none_for_types_never_compiled():
    sim = BatchSimulator(make_scenario("paper"), batch=1, parallel=False)
    sim.reset([0], [0])
    sim.step()
    float32_action = sim.action.astype(np.float32)
    assert compiled_overload(kernels.step_envs, (sim.active, float32_action, sim._step_args)) is None


def test_step_info_equals_reference_and_does_not_alias_state():
    env = MetaLoreEnv(config={"episode": {"steps": 30}})
    env.reset(seed=6)
    rng = np.random.default_rng(6)
    completions = 0
    previous = None
    for _ in range(30):
        obs, _, _, truncated, info = env.step(rng.uniform(0.0, 1.0, 2))
        expected = reference_step_info(env.sim, 0)
        if truncated:
            expected["summary"] = reference_summary(env.sim, 0)
        assert_same_dict(info, expected)
        completions += len(info["aori"])
        if previous is not None:  # what an earlier step returned stays as it was
            np.testing.assert_array_equal(previous[0], previous[1])
            assert_same_dict(previous[2], previous[3])
        previous = (obs, obs.copy(), info, {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in info.items()})
    assert completions > 0


def test_vector_step_outputs_do_not_alias_each_other_or_the_next_step():
    venv = MetaLoreVectorEnv(4, "paper", {"episode": {"steps": 5}})
    venv.reset(seed=1)
    first = venv.step(np.full((4, 2), 0.5))
    kept = [np.copy(x) for x in first[:4]], {k: np.copy(v) for k, v in first[4].items() if k != "summary"}
    for _ in range(6):
        venv.step(np.full((4, 2), 0.9))
    for a, b in zip(first[:4], kept[0], strict=True):
        np.testing.assert_array_equal(a, b)
    for key, value in kept[1].items():
        np.testing.assert_array_equal(first[4][key], value, err_msg=key)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_validate_action_into_a_buffer_equals_the_plain_result(symmetric, dtype):
    space = MetaLoreEnv("multicell", {"action": {"range": "symmetric" if symmetric else "unit"}}).action_space
    rng = np.random.default_rng(1)
    for batch_shape in [(), (5,)]:
        action = (rng.uniform(-3.0, 3.0, batch_shape + space.shape) * 2).astype(dtype)
        plain = validate_action(action, space, symmetric, batch_shape)
        out = np.full(batch_shape + space.shape, -7.0)
        assert validate_action(action, space, symmetric, batch_shape, out=out) is out
        np.testing.assert_array_equal(out, plain)
        arr = action.astype(np.float64)
        low = -1.0 if symmetric else 0.0
        clipped = np.minimum(np.maximum(arr, low), 1.0)
        np.testing.assert_array_equal(plain, (clipped + 1.0) * 0.5 if symmetric else clipped)


def space_and_edge_rows(preset: str, symmetric: bool) -> tuple[Any, list[list[float]]]:
    """The action space of ``preset`` and actions made of edge values (signed zeros, bounds, denormals, ±1e308)."""
    space = MetaLoreEnv(preset, {"action": {"range": "symmetric" if symmetric else "unit"}}).action_space
    edges = [-0.0, 0.0, 1.0, -1.0, 5e-324, -5e-324, 1.0000001, -1.0000001, 1e308, -1e308, 0.3, 0.7]
    rows = [[edges[(i + j) % len(edges)] for i in range(space.shape[0])] for j in range(len(edges))]
    return space, rows


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("preset", ["paper", "multicell"])
def test_the_small_action_path_equals_the_numpy_path(symmetric, preset):
    # A single env's action (<= 8 numbers) is checked and clipped in pure Python; the result must
    # be bit-identical to the numpy path (out=None), signed zeros and bounds included.
    space, rows = space_and_edge_rows(preset, symmetric)
    n = space.shape[0]
    rng = np.random.default_rng(2)
    cases = [np.array(row) for row in rows]
    cases += [rng.uniform(-3.0, 3.0, n) for _ in range(20)]
    cases += [np.full(n, 1e308), np.full(n, -1e308)]  # finite, but their sum overflows: clipped, not rejected
    for values in cases:
        variants = [values, values.tolist(), tuple(values.tolist()), [int(v) for v in values]]
        with np.errstate(over="ignore"):
            as_float32 = values.astype(np.float32)
        if np.isfinite(as_float32).all():  # 1e308 is infinite in float32 (and rejected)
            variants.append(as_float32)
        for action in variants:
            plain = validate_action(np.asarray(action, dtype=np.float64), space, symmetric)
            out = np.full(n, -7.0)
            assert validate_action(action, space, symmetric, out=out) is out
            np.testing.assert_array_equal(out, plain)
            np.testing.assert_array_equal(np.signbit(out), np.signbit(plain), err_msg=str(action))


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("preset", ["paper", "multicell"])
def test_the_compiled_batch_path_equals_the_numpy_path(symmetric, preset):
    # A vector env's (num_envs, 2M) float array is checked and clipped by one compiled call
    # (clip_actions); the result must be bit-identical to the numpy path, signed zeros included,
    # for C-ordered, Fortran-ordered and strided arrays of either float type.
    space, rows = space_and_edge_rows(preset, symmetric)
    n = space.shape[0]
    batch = np.array(rows + np.random.default_rng(3).uniform(-3.0, 3.0, (20, n)).tolist())
    b = (batch.shape[0],)
    for dtype in (np.float64, np.float32):
        with np.errstate(over="ignore"):
            typed = batch.astype(dtype)
        typed = typed[np.isfinite(typed).all(axis=1)]  # 1e308 is infinite in float32 (and rejected)
        wide = np.repeat(typed, 2, axis=1)
        for action in (typed, np.asfortranarray(typed), wide[:, ::2]):
            shape = (action.shape[0],)
            plain = validate_action(np.asarray(action, dtype=np.float64), space, symmetric, shape)
            out = np.full((*shape, n), -7.0)
            assert validate_action(action, space, symmetric, shape, out=out) is out
            np.testing.assert_array_equal(out, plain)
            np.testing.assert_array_equal(np.signbit(out), np.signbit(plain), err_msg=f"{dtype} {action.flags}")
    for bad in (np.nan, np.inf, -np.inf):  # rejected with the numpy path's message, buffer untouched
        action = batch.copy()
        action[-1, -1] = bad
        out = np.full((*b, n), -7.0)
        with pytest.raises(ValueError, match="NaN or infinity"):
            validate_action(action, space, symmetric, b, out=out)
        assert (out == -7.0).all()


def test_huge_finite_actions_are_clipped_in_a_batch_too():
    # The numpy path screens with one sum, which 1e308 + 1e308 overflows; the values are finite,
    # so they are clipped (MODEL.md §5), not rejected as "NaN or infinity".
    space = MetaLoreEnv().action_space
    action = np.array([[1e308, 1e308], [-1e308, -1e308], [1e308, -1e308]])
    np.testing.assert_array_equal(validate_action(action, space, False, (3,)), [[1, 1], [0, 0], [1, 0]])
    with pytest.raises(ValueError, match="NaN or infinity"):
        validate_action(np.array([[1e308, 1e308], [np.inf, 0.5]]), space, False, (2,))


def test_an_int_action_beyond_float_range_is_rejected_clearly():
    env = MetaLoreEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not numeric"):
        env.step([10**400, 0])


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.array([0.5, np.nan]), "NaN or infinity"),
        ([0.5, float("nan")], "NaN or infinity"),
        ((float("inf"), 0.5), "NaN or infinity"),
        (np.array([-np.inf, 0.5], np.float32), "NaN or infinity"),
        (np.zeros(3), r"shape \(3,\), expected \(2,\)"),
        (None, "action is None"),
        ("left", "not numeric"),
    ],
)
def test_rejected_action_leaves_the_buffer_untouched(action, message):
    env = MetaLoreEnv()
    env.reset(seed=0)
    env.step(np.array([0.25, 0.75]))
    with pytest.raises(ValueError, match=message):
        env.step(action)
    np.testing.assert_array_equal(env.applied_split(), [[0.25, 0.75]])


@pytest.mark.parametrize("workers", [1, 2, 5, 40])
def test_the_threaded_step_steps_every_environment_once_whatever_the_worker_count(workers):
    # Worker w steps its share of the blocks, then takes the blocks left in the other shares
    # from their cursors. With one worker it steps them all; with more workers than threads,
    # some run after others have emptied their shares; beyond PARALLEL_BLOCKS the extra
    # cursors are unused. Every active environment must be stepped exactly once per call.
    scenario = make_scenario("paper", {"episode": {"steps": 20}})
    threaded, serial = BatchSimulator(scenario, 70, parallel=True), BatchSimulator(scenario, 70, parallel=False)
    for sim in (threaded, serial):
        sim.reset(np.arange(70), 7 + np.arange(70))
    cursors = np.zeros(workers, dtype=np.int64)
    active = np.arange(70) % 4 != 1
    rng = np.random.default_rng(1)
    for _ in range(20):
        action = rng.uniform(0.0, 1.0, threaded.action.shape)
        kernels.step_envs_parallel(cursors, active, action, *threaded._step_args)
        kernels.step_envs(active, action, *serial._step_args)
    for a, b in zip(all_arrays(threaded), all_arrays(serial), strict=True):
        np.testing.assert_array_equal(a, b)
    used = min(workers, kernels.PARALLEL_BLOCKS)
    share_ends = (np.arange(used) + 1) * kernels.PARALLEL_BLOCKS // used
    assert (cursors[:used] >= share_ends).all() and not cursors[used:].any()  # every share was emptied


def test_a_large_threaded_batch_steps_like_a_small_serial_one():
    # Every environment of a large batch prefetches the next one's queue records (a hint: no
    # value may change). Short rings wrap and fill, so the prefetched indices reach a ring's
    # end; the first 8 environments must match a serial batch of 8.
    cfg = {
        "episode": {"steps": 30},
        "ue": {"queue_capacity": 3},
        "sensor": {"queue_capacity": 5},
        "bs": {"queue_capacity": 7},
    }
    big = BatchSimulator(make_scenario("paper", cfg), 512)
    small = BatchSimulator(make_scenario("paper", cfg), 8, parallel=False)
    big.reset(np.arange(big.batch), 100 + np.arange(big.batch))
    small.reset(np.arange(8), 100 + np.arange(8))
    rng = np.random.default_rng(4)
    for _ in range(30):
        big.action[:] = rng.uniform(0.0, 1.0, big.action.shape)
        small.action[:] = big.action[:8]
        big.step()
        small.step()
    assert big._step_kernel is kernels.step_envs_parallel
    for name in big.state._fields:
        np.testing.assert_array_equal(getattr(big.state, name)[:8], getattr(small.state, name), err_msg=name)
    totals = big.state.totals
    assert (totals[:, :, DROP_UL_JOBS] > 0).any() and (totals[:, :, DROP_MEC_JOBS] > 0).any()  # rings were full
    assert (big.state.dq_head > 0).any() and (big.state.bq_head > 0).any()
