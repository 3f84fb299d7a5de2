"""Evaluation protocol: policies compared on the same seeds, with confidence intervals.

* :func:`evaluate` plays every policy on the SAME list of episode seeds and returns one row
  per (policy, episode) with the episode's metrics (``env.unwrapped.episode_summary()`` plus
  ``dropped``, the total of the four drop counters). Traffic, positions and mobility never
  depend on the actions, so equal seeds give every policy the same traffic realisation
  (common random numbers): differences between policies are not sampling noise in the load.
* :func:`summarize` turns that table into the per-policy mean and a Student-t confidence
  interval of each metric (:func:`t_confidence_interval`); :func:`paired_differences`
  compares each policy with a baseline seed by seed, which the common random numbers make
  much tighter than comparing two independent means.
* :func:`grid_search` evaluates every static split ``(bw_ue, comp_ue)`` of a grid (the same
  split at every BS) and :func:`best_split` picks the brute-force oracle from it;
  ``brute_force[:grid=N,seeds=K]`` (registered in :data:`metalore.policies.POLICIES` when
  this module is imported) is that oracle as a policy, tuned on held-out seeds
  (:data:`TUNING_SEED_START`).

How episodes are played: all seeds of one policy run in one :class:`MetaLoreVectorEnv`
(sub-env i reset with seed ``seeds[i]`` replays the single env with that seed). A policy that
is a deterministic function of the observation (:func:`acts_on_batch`) maps the whole batch
of observations in one call; any other policy (e.g. ``random``) gets one instance per episode,
built and reset with that episode's seed exactly as ``metalore run`` does, so every row equals
a single-env run of ``run_episode(env, make_policy(spec, env, seed=s), s)``. Job logging is
switched off while evaluating (it does not change the dynamics, only memory use).

Where episodes are played: :func:`evaluate` and :func:`grid_search` split their episodes into
tasks (a plain-dict scenario and a list of seeds or splits each) and run them on a
:mod:`metalore.backends` backend: in this process, in local worker processes, or as Ray
tasks (``backend="ray"``). The rows are reassembled in task order, so the table is the same
whichever backend and however many workers played it.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from metalore.backends import BACKENDS, check_backend, in_worker, open_backend
from metalore.config import Scenario, make_scenario
from metalore.policies import (
    POLICIES,
    Policy,
    QueueProportionalPolicy,
    StaticPolicy,
    TwinFirstPolicy,
    _keywords,
    _spec_error,
    make_policy,
    register_policy,
    scenario_of,
)
from metalore.trace import phase_starts
from metalore.vector import MetaLoreVectorEnv

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BACKENDS",
    "HEADLINE_METRICS",
    "TUNING_SEED_START",
    "BruteForcePolicy",
    "PolicyFactory",
    "acts_on_batch",
    "best_split",
    "evaluate",
    "grid_search",
    "grid_table",
    "grid_values",
    "paired_differences",
    "summarize",
    "t_confidence_interval",
    "t_quantile",
]

PolicyFactory = Callable[[Scenario, int | None], Policy]  # (scenario, seed) -> Policy
Task = tuple[str, Any, str, dict[str, Any], list[int]]  # (name, policy, preset, config, seeds): one work unit
# The metrics printed by the CLI; every numeric column is summarized.
HEADLINE_METRICS = (
    "reward",
    "aori_mean",
    "aori_p95",
    "aosi_mean",
    "aosi_p95",
    "late_fraction",
    "ue_throughput_mbps",
    "sensor_throughput_mbps",
    "dropped",
)
DROP_KEYS = ("ue_dropped_uplink", "ue_dropped_mec", "sensor_dropped_uplink", "sensor_dropped_mec")
# The brute-force oracle tunes on seeds TUNING_SEED_START, TUNING_SEED_START + 1, ...: a block
# no evaluation should use (the CLI evaluates on 1000, 1001, ... by default).
TUNING_SEED_START = 1_000_000_000
MAX_BATCH = 256  # sub-envs per vector env: bounds memory, large enough to amortise the step calls


# --------------------------------------------------------------------------- statistics
def _t_two_sided_mass(theta: float, df: int) -> float:
    """P(|T| < sqrt(df) tan(theta)) for Student's t with integer ``df`` (Abramowitz & Stegun 26.7.3-4)."""
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:  # odd: (2/pi) (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
        term, series = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            series += term
        return 2.0 / math.pi * (theta + s * math.cos(theta) * series)
    term, series = 1.0, 1.0  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
    for k in range(1, df // 2):
        term *= c2 * (2 * k - 1) / (2 * k)
        series += term
    return s * series


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student-t critical value: ``P(|T_df| < q) = confidence`` (e.g. 12.706 for 0.95, df=1).

    Exact closed-form CDF for integer ``df`` inverted by bisection (no SciPy needed).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence = {confidence!r} is invalid: expected a number in (0, 1)")
    if df < 1:
        raise ValueError(f"df = {df!r} is invalid: expected an integer >= 1")
    lo, hi = 0.0, math.pi / 2
    for _ in range(100):  # the mass is increasing in theta on [0, pi/2)
        mid = 0.5 * (lo + hi)
        if _t_two_sided_mass(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
    return math.sqrt(df) * math.tan(0.5 * (lo + hi))


def t_confidence_interval(values: Any, confidence: float = 0.95) -> dict[str, float]:
    """Mean and Student-t confidence interval of the finite entries of ``values`` (episodes).

    ``half_width = t_{(1+confidence)/2, n-1} * s / sqrt(n)`` with ``s`` the sample standard
    deviation (``ddof=1``), treating episodes as independent draws. NaN entries (a metric
    undefined in that episode, e.g. AoRI with no completed UE job) are left out and ``n``
    counts the rest; with ``n < 2`` the interval is NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    half = t_quantile(confidence, n - 1) * std / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "half_width": half}


def _metric_columns(df: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    if metrics is not None:
        missing = [m for m in metrics if m not in df.columns]
        if missing:
            raise ValueError(f"metrics {missing} are not columns of the table: choose from {list(df.columns)}")
        return list(metrics)
    skip = {"policy", "spec", "seed", "bw_ue", "comp_ue"}
    return [c for c in df.columns if c not in skip and np.issubdtype(df[c].dtype, np.number)]


def summarize(df: pd.DataFrame, metrics: Sequence[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Per policy and metric: episodes ``n``, ``mean``, ``std`` and the Student-t ``confidence`` interval.

    ``df`` is an :func:`evaluate` table (a ``policy`` column, one row per episode). Returns a
    long table with columns ``policy, metric, n, mean, std, ci_low, ci_high, half_width``,
    policies in their order of first appearance, metrics in column order (default: every
    numeric column but ``seed``). See :func:`t_confidence_interval` for the method.
    """
    import pandas as pd

    if "policy" not in df.columns:
        raise ValueError("the table has no 'policy' column: pass the DataFrame returned by evaluate()")
    columns = _metric_columns(df, metrics)
    rows = []
    for policy in dict.fromkeys(df["policy"]):
        episodes = df[df["policy"] == policy]
        for metric in columns:
            rows.append({"policy": policy, "metric": metric, **t_confidence_interval(episodes[metric], confidence)})
    return pd.DataFrame(rows, columns=["policy", "metric", "n", "mean", "std", "ci_low", "ci_high", "half_width"])


def paired_differences(
    df: pd.DataFrame, baseline: str, metrics: Sequence[str] | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """Per policy, the mean and confidence interval of ``metric(policy) - metric(baseline)`` seed by seed.

    With common random numbers the per-seed difference removes the traffic's variance, so
    this interval is the one to read when asking "is A better than B?". Only seeds both
    policies played are paired. Same columns as :func:`summarize`.
    """
    import pandas as pd

    if baseline not in set(df["policy"]):
        raise ValueError(
            f"baseline {baseline!r} is not a policy of the table: choose from {list(dict.fromkeys(df['policy']))}"
        )
    columns = _metric_columns(df, metrics)
    base = df[df["policy"] == baseline].set_index("seed")[columns]
    rows = []
    for policy in dict.fromkeys(df["policy"]):
        if policy == baseline:
            continue
        other = df[df["policy"] == policy].set_index("seed")[columns]
        seeds = other.index.intersection(base.index)
        diff = other.loc[seeds] - base.loc[seeds]
        for metric in columns:
            rows.append({"policy": policy, "metric": metric, **t_confidence_interval(diff[metric], confidence)})
    return pd.DataFrame(rows, columns=["policy", "metric", "n", "mean", "std", "ci_low", "ci_high", "half_width"])


# --------------------------------------------------------------------------- playing episodes
def acts_on_batch(policy: Any) -> bool:
    """Whether one instance of ``policy`` may act for a whole batch of episodes at once.

    True for policies whose split is a deterministic function of the current observation
    (``static``, ``queue_proportional``, ``twin_first``, ``brute_force``); a policy class
    opts in or out with a class attribute ``acts_on_batch = True``/``False``. Others (with
    their own randomness or memory) get one instance per episode.
    """
    declared = getattr(policy, "acts_on_batch", None)
    if isinstance(declared, bool):
        return declared
    return isinstance(policy, StaticPolicy | QueueProportionalPolicy | TwinFirstPolicy)


def _quiet(scenario: Scenario) -> Scenario:
    """The scenario without the job log (evaluation needs only the episode summaries)."""
    return scenario.replace({"log": {"jobs": False}}) if scenario.config["log"]["jobs"] else scenario


def _play(scenario: Scenario, seeds: Sequence[int], act: Callable[[np.ndarray], np.ndarray]) -> list[dict[str, Any]]:
    """Play one episode per seed in a vector env; ``act`` maps the observations (n, obs) to env actions.

    With ``traffic.phases`` the summaries also hold ``reward_phase{k}``: the reward earned in
    the steps of phase k (they sum to ``reward``).
    """
    # a worker leaves Numba's threads alone: the other workers already occupy the cores
    venv = MetaLoreVectorEnv(len(seeds), scenario, parallel=False if in_worker() else None)
    obs, _ = venv.reset(seed=[int(s) for s in seeds])
    truncated = np.zeros(len(seeds), dtype=np.bool_)
    starts = phase_starts(scenario.config)
    phase_of_step = np.searchsorted(np.asarray(starts), np.arange(scenario.steps), side="right") - 1
    by_phase = np.zeros((len(seeds), len(starts)))
    for t in range(scenario.steps):
        obs, reward, _, truncated, _ = venv.step(act(obs))
        by_phase[:, phase_of_step[t]] += reward
    assert truncated.all(), "every sub-env ends after episode.steps steps"
    summaries = [venv.episode_summary(i) for i in range(len(seeds))]
    if len(starts) > 1:
        for summary, rewards in zip(summaries, by_phase.tolist(), strict=True):
            summary.update({f"reward_phase{k}": r for k, r in enumerate(rewards)})
    return summaries


def _build(policy: str | PolicyFactory, scenario: Scenario, seed: int) -> Policy:
    built = make_policy(policy, scenario, seed=seed) if isinstance(policy, str) else policy(scenario, seed)
    if not callable(getattr(built, "env_action", None)):
        raise TypeError(f"policy factory {policy!r} returned {type(built).__name__}, not a metalore Policy")
    return built


def _episode_rows(
    name: str, policy: str | PolicyFactory, scenario: Scenario, seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """The rows of ``policy`` on ``seeds`` (one work unit of :func:`evaluate`)."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(seeds), MAX_BATCH):
        chunk = list(seeds[start : start + MAX_BATCH])
        first = _build(policy, scenario, chunk[0])
        _check_held_out(name, first, seeds)
        if acts_on_batch(first):
            first.reset(seed=chunk[0])
            agents = [first]
            summaries = _play(scenario, chunk, first.env_action)
        else:
            agents = [first, *(_build(policy, scenario, s) for s in chunk[1:])]
            for agent, seed in zip(agents, chunk, strict=True):
                agent.reset(seed=seed)
            summaries = _play(scenario, chunk, _each_acts_on_its_own(agents))
        for seed, summary in zip(chunk, summaries, strict=True):
            rows.append({"policy": name, "spec": agents[0].spec, "seed": seed, **summary, "dropped": _dropped(summary)})
    return rows


def _each_acts_on_its_own(agents: list[Policy]) -> Callable[[np.ndarray], np.ndarray]:
    """Actions for a batch where agent i sees only observation i."""

    def act(obs: np.ndarray) -> np.ndarray:
        return np.stack([agent.env_action(o) for agent, o in zip(agents, obs, strict=True)])

    return act


def _dropped(summary: Mapping[str, Any]) -> int:
    return int(sum(summary[k] for k in DROP_KEYS))


def _check_held_out(name: str, policy: Policy, seeds: Sequence[int]) -> None:
    tuning = set(getattr(policy, "tuning_seeds", ()))
    overlap = sorted(tuning.intersection(seeds))
    if overlap:
        raise ValueError(
            f"policy {name!r} was tuned on seeds {overlap[0]}..{overlap[-1]} that are also evaluation seeds: "
            f"evaluate on seeds below {TUNING_SEED_START}"
        )


def _unit(task: Task) -> list[dict[str, Any]]:
    """One task of :func:`evaluate`: rebuild the scenario (a plain dict travels between processes) and play."""
    name, policy, preset, config, seeds = task
    return _episode_rows(name, policy, make_scenario(preset, base=config), seeds)


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    checked = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed {seed!r} is invalid: seeds must be non-negative integers")
        checked.append(int(seed))
    if not checked:
        raise ValueError("seeds is empty: pass at least one episode seed")
    if len(set(checked)) != len(checked):
        raise ValueError(f"seeds {checked} contain duplicates: each episode seed may appear once")
    return sorted(checked)


def _as_scenario(scenario: str | Scenario) -> Scenario:
    return make_scenario(scenario) if isinstance(scenario, str) else scenario_of(scenario)


def evaluate(
    policies: Mapping[str, str | PolicyFactory],
    scenario: str | Scenario,
    seeds: Sequence[int],
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
) -> pd.DataFrame:
    """Play every policy for one episode per seed, all on the same seeds; one row per episode.

    Args:
        policies: display name -> policy spec (``"static:0.5,0.5"``) or factory
            ``(scenario, seed) -> Policy``. With local ``workers > 1`` factories must be
            picklable (module-level functions or classes, not lambdas).
        scenario: preset name or :class:`Scenario` (or an env holding one).
        seeds: distinct non-negative episode seeds, shared by all policies (common random numbers).
        backend: ``"local"`` (this machine; worker processes when ``workers > 1``) or
            ``"ray"`` (Ray tasks; see :mod:`metalore.backends`).
        workers: tasks at once (local: processes, ``None`` or 1 for this process; Ray: CPUs of
            the local cluster, default all cores). The table depends neither on it nor on
            ``backend``: each episode is a function of (policy, seed) alone.
        address: the Ray cluster to connect to (``"auto"``, ``HOST:PORT``); default: start a local one.

    Returns:
        A DataFrame with ``policy`` (the name), ``spec`` (the policy's canonical spec; for
        ``brute_force`` the static split it chose), ``seed``, every key of
        ``episode_summary()`` and ``dropped``; rows ordered by the order of ``policies``,
        then by seed.
    """
    import pandas as pd

    workers = check_backend(backend, workers, address)
    if not policies:
        raise ValueError("policies is empty: pass at least one name -> spec")
    seeds = _check_seeds(seeds)
    scenario = _quiet(_as_scenario(scenario))
    for name, policy in policies.items():
        if backend == "local" and (workers or 1) > 1 and not isinstance(policy, str):
            try:
                pickle.dumps(policy)
            except (pickle.PicklingError, AttributeError, TypeError) as exc:
                raise ValueError(
                    f"policy {name!r}: its factory cannot be sent to worker processes ({exc}); "
                    "use a spec string or a module-level function, or workers=1"
                ) from None
    config = scenario.to_dict()
    with open_backend(backend, workers, address) as session:
        chunks = min(len(seeds), math.ceil(session.slots / len(policies)))
        bounds = np.linspace(0, len(seeds), chunks + 1).round().astype(int)
        tasks = [
            (name, policy, scenario.name, config, seeds[lo:hi])
            for name, policy in policies.items()
            for lo, hi in itertools.pairwise(bounds)
        ]
        rows = [row for unit in session.map(_unit, tasks) for row in unit]
    order = {name: i for i, name in enumerate(policies)}
    rows.sort(key=lambda r: (order[r["policy"]], r["seed"]))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- brute-force oracle
def grid_values(n: int) -> list[float]:
    """``n`` evenly spaced values ``0, 1/(n-1), ..., 1`` (``i / (n - 1)``, so 0.3 is the double 0.3)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"grid = {n!r} is invalid: pass an integer >= 2 (points per axis in [0, 1])")
    return [i / (n - 1) for i in range(n)]


def _grid_axes(grid: int | tuple[Sequence[float], Sequence[float]]) -> tuple[list[float], list[float]]:
    if isinstance(grid, int | np.integer) and not isinstance(grid, bool):
        values = grid_values(int(grid))
        return values, values
    try:
        bw, comp = ([float(v) for v in axis] for axis in grid)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"grid {grid!r} is invalid: pass an integer n or (bw values, comp values)") from None
    for label, axis in (("bw", bw), ("comp", comp)):
        if not axis or not all(0.0 <= v <= 1.0 for v in axis):
            raise ValueError(f"grid {label} values {axis} are invalid: expected a non-empty list of numbers in [0, 1]")
    return sorted(set(bw)), sorted(set(comp))


def _static_rows(task: tuple[str, dict[str, Any], list[tuple[float, float, int]]]) -> list[dict[str, Any]]:
    """Play each (bw_ue, comp_ue, seed) of ``task`` in one vector env: static actions, no policy objects."""
    preset, config, cases = task
    scenario = make_scenario(preset, base=config)
    split = np.array([(bw, comp) for bw, comp, _ in cases])
    actions = np.tile(split, (1, scenario.num_bs))
    if scenario.config["action"]["range"] == "symmetric":
        actions = 2.0 * actions - 1.0
    summaries = _play(scenario, [seed for *_, seed in cases], lambda obs: actions)
    return [
        {"bw_ue": bw, "comp_ue": comp, "seed": seed, **summary, "dropped": _dropped(summary)}
        for (bw, comp, seed), summary in zip(cases, summaries, strict=True)
    ]


def grid_search(
    scenario: str | Scenario,
    grid: int | tuple[Sequence[float], Sequence[float]],
    seeds: Sequence[int],
    workers: int | None = None,
    episodes: bool = False,
    backend: str = "local",
    address: str | None = None,
) -> pd.DataFrame:
    """Evaluate every static split ``(bw_ue, comp_ue)`` of ``grid`` (same split at every BS) on ``seeds``.

    Args:
        scenario: preset name or :class:`Scenario`.
        grid: ``n`` for :func:`grid_values` on both axes, or ``(bw values, comp values)``.
        seeds: the episode seeds, the same for every split (common random numbers).
        workers: tasks at once, as in :func:`evaluate`.
        episodes: return the per-episode rows instead of the per-split table.
        backend: ``"local"`` or ``"ray"``, as in :func:`evaluate`; the table does not depend on it.
        address: the Ray cluster to connect to, as in :func:`evaluate`.

    Returns:
        One row per split, ordered by ``bw_ue`` then ``comp_ue``: ``bw_ue, comp_ue, episodes``,
        the mean of every metric over the seeds, and ``reward_ci95`` (Student-t half-width of
        the mean episode reward). With ``episodes=True``: one row per (split, seed).
    """
    import pandas as pd

    workers = check_backend(backend, workers, address)
    seeds = _check_seeds(seeds)
    bw_axis, comp_axis = _grid_axes(grid)
    scenario = _quiet(_as_scenario(scenario))
    cases = [(bw, comp, seed) for bw in bw_axis for comp in comp_axis for seed in seeds]
    config = scenario.to_dict()
    with open_backend(backend, workers, address) as session:
        size = min(MAX_BATCH, math.ceil(len(cases) / session.slots))
        tasks = [(scenario.name, config, cases[i : i + size]) for i in range(0, len(cases), size)]
        results = session.map(_static_rows, tasks)
    per_episode = pd.DataFrame([row for chunk in results for row in chunk])
    return per_episode if episodes else grid_table(per_episode)


def grid_table(per_episode: pd.DataFrame) -> pd.DataFrame:
    """The per-split table of :func:`grid_search` from its per-episode rows (``episodes=True``)."""
    metrics = _metric_columns(per_episode, None)
    groups = per_episode.groupby(["bw_ue", "comp_ue"], sort=True)
    table = groups[metrics].mean()
    table.insert(0, "episodes", groups.size())
    table["reward_ci95"] = groups["reward"].agg(lambda r: t_confidence_interval(r)["half_width"])
    return table.reset_index()


def best_split(table: pd.DataFrame) -> tuple[float, float]:
    """The split of a :func:`grid_search` table with the highest mean episode reward (ties: lowest bw, then comp)."""
    ranked = table.sort_values(["reward", "bw_ue", "comp_ue"], ascending=[False, True, True], kind="stable")
    best = ranked.iloc[0]
    return float(best["bw_ue"]), float(best["comp_ue"])


@functools.lru_cache(maxsize=8)
def _cached_grid(preset: str, config_json: str, grid: int, seeds: tuple[int, ...]) -> pd.DataFrame:
    return grid_search(make_scenario(preset, base=json.loads(config_json)), grid, seeds)


class BruteForcePolicy(StaticPolicy):
    """The brute-force oracle: the best static split of a grid, found by enumeration at construction.

    Every split ``(i/(grid-1), j/(grid-1))`` is played on ``seeds`` held-out episodes with
    seeds ``TUNING_SEED_START + k`` (k < ``seeds``), never on the caller's evaluation seeds;
    the policy then plays the split with the highest mean episode reward (ties: lowest
    ``bw_ue``, then lowest ``comp_ue``) at every BS and step. ``table`` keeps the grid
    search; ``spec`` is the chosen ``static:BW,COMP``.
    """

    acts_on_batch = True

    def __init__(self, env: Any, grid: int = 11, seeds: int = 5, seed: int | None = None) -> None:
        scenario = _quiet(scenario_of(env))
        self.grid, self.tuning_seeds = grid, tuple(TUNING_SEED_START + k for k in range(seeds))
        config_json = json.dumps(scenario.to_dict(), sort_keys=True)
        self.table = _cached_grid(scenario.name, config_json, grid, self.tuning_seeds).copy()
        bw_ue, comp_ue = best_split(self.table)
        super().__init__(env, bw_ue, comp_ue, seed)


def _build_brute_force(spec: str, args: str, env: Any, seed: int | None) -> Policy:
    kw = _keywords(spec, args, {"grid": 11, "seeds": 5})
    for key, lo, hi in (("grid", 2, 101), ("seeds", 1, 1000)):
        if not (float(kw[key]).is_integer() and lo <= kw[key] <= hi):
            raise _spec_error(spec, f"{key} = {kw[key]:g} is invalid: expected an integer in [{lo}, {hi}]")
    return BruteForcePolicy(env, int(kw["grid"]), int(kw["seeds"]), seed)


if "brute_force" not in POLICIES:  # importing this module twice (reload) must not fail
    register_policy(
        "brute_force",
        _build_brute_force,
        "brute_force[:grid=N,seeds=K]",
        "best static split of an N x N grid (11) by mean reward over K (5) held-out seeds",
    )
