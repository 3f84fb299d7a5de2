"""The published experiments (MODEL.md §7), reproduced with one command: ``metalore compare``.

:func:`compare` runs four experiments on fixed evaluation seeds (common random numbers: every
policy and split sees the same traffic) and writes plots (PNG), a results table
(``results.md``) and every number behind them (CSV/JSON) into one folder:

1. **Pareto front** (claim 2). Every static split ``(bw_ue, comp_ue)`` of an ``N x N`` grid (the
   same split at every BS and step) on the main scenario: ``grid.csv`` (mean of every metric
   and the reward's 95% CI per split), ``pareto.png`` (UE throughput vs mean AoRI, coloured by
   mean AoSI; the non-dominated splits ringed; the PPO agents starred), ``pareto_front.csv``.
2. **PPO vs the grid's best** (claim 1). PPO agents (one per training seed) observing only the
   two MEC queue lengths of their BS (``observation.features: [queue_lengths]``) are trained
   with :func:`metalore.training.train`, then evaluated with the grid's best split and the
   heuristics on the evaluation seeds: ``episodes.csv``, ``summary.csv``, ``gaps.csv`` (reward
   of each agent minus the best split's, paired seed by seed, mean and 95% Student-t CI) and
   ``ppo_vs_static.png``. The best split is picked on the evaluation seeds themselves (the
   in-sample oracle of the grid): this favours the static baseline, so a gap that is not
   negative is conservative evidence for the agent.
3. **Synchronization coupling** (claim 3). From the grid's episodes: the sensor-starving splits
   (``comp_ue = 1``: sensors get no compute; ``bw_ue = 1``: no bandwidth; and both) against the
   best interior split (``0 < bw_ue, comp_ue < 1``), paired by seed: ``coupling.csv`` and
   ``coupling.png`` (reward and UE throughput over the grid, and UE throughput along the
   compute axis).
4. **Dynamic traffic** (claim 4). On a scenario with ``traffic.phases`` (default: the
   ``dynamic`` preset), the same grid is scored per phase (the reward earned during each
   phase's steps), PPO agents are trained on it, and each agent is compared with the best
   static split *of each phase* and with the best split *overall*: ``dynamic/phases.csv``,
   ``dynamic_phases.png``; per-step traces of an agent and of the static splits on one
   evaluation seed in ``dynamic/steps.csv`` and ``allocation_dynamic.png``.

Budgets (:data:`BUDGETS`): ``quick`` (a few minutes on 2 cores) and ``full``; any field can be
overridden (``grid``, ``eval_seeds``, ``train_steps``, ``dynamic_train_steps``, ``train_seeds``,
``n_envs``). Evaluation seeds are ``1000, 1001, ...`` (as ``metalore evaluate``); the agents'
periodic evaluation during training uses the validation seeds ``2000, 2001, ...``, and each agent
compared is the checkpoint that did best on them (``best_model.zip``; the final agent is kept
beside it); training episodes start from the training seed (sub-env i: ``seed + i``), far below
both.

Everything is deterministic for a given budget, scenario and seed (PPO on CPU with a fixed seed
included), so a rerun reproduces the tables; ``compare.json`` records the command, budget,
seeds and package versions. See ``docs/experiments.md`` for the results on the paper scenario.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from metalore.config import Scenario, make_scenario
from metalore.env import MetaLoreEnv
from metalore.evaluation import best_split, evaluate, grid_search, grid_table, paired_differences, summarize
from metalore.io import write_csv, write_json, write_text
from metalore.policies import make_policy
from metalore.trace import STEP_COLUMNS, phase_starts, run_episode

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BUDGETS", "EVAL_SEED_START", "VALIDATION_SEED_START", "Budget", "check_dynamic", "compare"]

EVAL_SEED_START = 1000
VALIDATION_SEED_START = 2000
HEURISTICS = ("random", "queue_proportional", "twin_first")
TABLE_METRICS = (
    ("reward", "reward", "{:.1f}"),
    ("aori_mean", "AoRI mean", "{:.2f}"),
    ("aosi_mean", "AoSI mean", "{:.2f}"),
    ("late_fraction", "late", "{:.1%}"),
    ("ue_throughput_mbps", "UE Mbit/s", "{:.1f}"),
    ("sensor_throughput_mbps", "sensor Mbit/s", "{:.1f}"),
    ("dropped", "drops", "{:.0f}"),
)

COUPLING_METRICS = ("reward", "ue_jobs_completed", "ue_throughput_mbps", "aori_mean", "late_fraction", "aosi_mean")
COUPLING_LABELS = ("reward", "UE jobs done", "UE Mbit/s", "AoRI mean", "late", "AoSI mean")
DELTA_METRICS = ("reward", "ue_jobs_completed")  # the coupling table's paired differences


@dataclass(frozen=True)
class Budget:
    """How much work :func:`compare` does.

    Attributes:
        grid: points per axis of the static grid (``grid x grid`` splits, values ``i / (grid - 1)``).
        eval_seeds: evaluation episodes per policy and per split (seeds 1000, 1001, ...).
        train_steps: PPO environment steps per agent on the main scenario.
        dynamic_train_steps: PPO environment steps per agent on the dynamic scenario.
        train_seeds: PPO agents trained per scenario (training seeds 0, 1, ...).
        n_envs: sub-envs per PPO agent.
    """

    grid: int
    eval_seeds: int
    train_steps: int
    dynamic_train_steps: int
    train_seeds: int
    n_envs: int

    def replace(self, **changes: Any) -> Budget:
        """A copy with some fields changed; ``None`` values are ignored; each must be an integer >= its minimum."""
        changes = {k: v for k, v in changes.items() if v is not None}
        minimum = {
            "grid": 2,
            "eval_seeds": 2,
            "train_steps": 1,
            "dynamic_train_steps": 1,
            "train_seeds": 1,
            "n_envs": 1,
        }
        for key, value in changes.items():
            if key not in minimum:
                raise ValueError(f"budget has no field {key!r}: choose from {', '.join(minimum)}")
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum[key]:
                raise ValueError(f"budget {key} = {value!r} is invalid: pass an integer >= {minimum[key]}")
        return dataclasses.replace(self, **changes)


BUDGETS = {
    # measured on 2 cores with --workers 2: quick 1.5 min, full 11-13 min. 150k dynamic steps were too few
    # (PPO had not left its initial split: reward 600 vs 3,500 for the best static split); 200k were enough
    "quick": Budget(grid=6, eval_seeds=10, train_steps=150_000, dynamic_train_steps=300_000, train_seeds=1, n_envs=8),
    "full": Budget(
        grid=11, eval_seeds=30, train_steps=500_000, dynamic_train_steps=1_000_000, train_seeds=3, n_envs=16
    ),
}


# --------------------------------------------------------------------------- helpers
def _fmt(value: float, fmt: str) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def _mean_ci(mean: float, half: float, fmt: str) -> str:
    if isinstance(mean, float) and math.isnan(mean):
        return "–"
    return _fmt(mean, fmt) if math.isnan(half) else f"{_fmt(mean, fmt)} ± {_fmt(half, fmt)}"


def _gap_ci(mean: float, low: float, high: float, fmt: str = "{:+.1f}") -> str:
    """``mean [low, high]`` of a paired difference."""
    return f"{fmt.format(mean)} [{fmt.format(low)}, {fmt.format(high)}]"


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _split_name(bw: float, comp: float) -> str:
    return f"static:{bw:g},{comp:g}"


def _split_episodes(per_episode: pd.DataFrame, splits: Sequence[tuple[float, float]]) -> pd.DataFrame:
    """The grid's episodes of ``splits`` (each once), with ``policy`` = ``static:BW,COMP`` as evaluate() names it."""
    import pandas as pd

    return pd.concat(
        [
            per_episode[(per_episode["bw_ue"] == b) & (per_episode["comp_ue"] == c)].assign(policy=_split_name(b, c))
            for b, c in dict.fromkeys(splits)
        ],
        ignore_index=True,
    )


def _interior_best(table: pd.DataFrame) -> tuple[float, float]:
    inner = table[(table["bw_ue"] > 0) & (table["bw_ue"] < 1) & (table["comp_ue"] > 0) & (table["comp_ue"] < 1)]
    return best_split(inner if len(inner) else table)


class _Log:
    """Progress lines with elapsed time (stdout), silent when ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.start = quiet, time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.start:6.0f} s] {message}", flush=True)


# --------------------------------------------------------------------------- the experiments
def _train_agents(
    scenario: Scenario, out: Path, steps: int, budget: Budget, log: _Log, label: str, fan_out: dict[str, Any]
) -> dict[str, Path]:
    """Train ``budget.train_seeds`` PPO agents (seeds 0, 1, ...); return each one's validation-best model file.

    DECISION: each agent is its ``best_model.zip``, the checkpoint with the highest mean reward on
    the validation seeds (2000, 2001, ...): PPO's reward is not monotone in training steps (the
    dynamic scenario swung between ~1,600 and ~4,000 from one evaluation to the next), and the
    evaluation seeds of the comparison (1000, ...) never take part in the choice.
    """
    from metalore.training import BEST_MODEL_FILE, seed_folder, train_seeds

    seeds = list(range(budget.train_seeds))
    log(f"{label}: training PPO seeds {seeds} for {steps} steps each ({budget.n_envs} envs) -> {out}")
    summary = train_seeds(
        scenario,
        out,
        steps,
        seeds,
        n_envs=budget.n_envs,
        eval_every=max(steps // 5, 1),
        eval_seeds=[VALIDATION_SEED_START + i for i in range(min(budget.eval_seeds, 10))],
        **fan_out,
    )
    for row in summary["final_evaluations"]:
        best = json.loads((seed_folder(out, row["seed"]) / "metadata.json").read_text(encoding="utf-8"))
        best = best["best_evaluation"]
        log(
            f"{label}: PPO seed {row['seed']}: final validation reward {row['reward_mean']:.1f} ± "
            f"{row['reward_ci95']:.1f}; best {best['reward_mean']:.1f} at step {best['step']} (the one compared)"
        )
    return {f"agent:ppo-seed{k}": seed_folder(out, k) / BEST_MODEL_FILE for k in seeds}


def _summary_rows(summary: pd.DataFrame, names: Sequence[str]) -> list[list[str]]:
    stats = summary.set_index(["policy", "metric"])
    rows = []
    for name in names:
        row = [f"`{name}`"]
        for metric, _, fmt in TABLE_METRICS:
            mean, half = float(stats.loc[(name, metric), "mean"]), float(stats.loc[(name, metric), "half_width"])
            row.append(_mean_ci(mean, half, fmt))
        rows.append(row)
    return rows


def _gap_rows(gaps: pd.DataFrame) -> list[list[str]]:
    rows = []
    for row in gaps[gaps["metric"] == "reward"].itertuples():
        verdict = "better" if row.ci_low > 0 else "worse" if row.ci_high < 0 else "no significant difference"
        rows.append(
            [f"`{row.policy}`", f"{row.mean:+.1f}", f"[{row.ci_low:+.1f}, {row.ci_high:+.1f}]", str(row.n), verdict]
        )
    return rows


def _coupling(per_episode: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Sensor-starving splits vs the best interior split, paired by seed (one row per split and metric)."""
    import pandas as pd

    bw_best, comp_best = _interior_best(table)
    bw_values = sorted(table["bw_ue"].unique())
    comp_values = sorted(table["comp_ue"].unique())
    corners = {
        f"no sensor compute (comp_ue=1, bw_ue={bw_best:g})": (bw_best, 1.0),
        f"no sensor bandwidth (bw_ue=1, comp_ue={comp_best:g})": (1.0, comp_best),
        "sensors starved of both (1, 1)": (1.0, 1.0),
    }
    if 1.0 not in bw_values or 1.0 not in comp_values:
        raise ValueError(
            "the grid has no split with bw_ue = 1 or comp_ue = 1: use a grid of at least 2 points per axis"
        )
    cases = [(bw_best, comp_best), *corners.values()]
    episodes = _split_episodes(per_episode, cases)
    metrics = list(COUPLING_METRICS)
    base = _split_name(bw_best, comp_best)
    diffs = paired_differences(episodes, base, metrics)
    means = episodes.groupby("policy", sort=False)[metrics].mean()
    rows = []
    for label, (b, c) in corners.items():
        name = _split_name(b, c)
        for metric in metrics:
            d = diffs[(diffs["policy"] == name) & (diffs["metric"] == metric)].iloc[0]
            rows.append(
                {
                    "case": label,
                    "split": name,
                    "baseline": base,
                    "metric": metric,
                    "value": float(means.loc[name, metric]),
                    "baseline_value": float(means.loc[base, metric]),
                    "difference": float(d["mean"]),
                    "ci_low": float(d["ci_low"]),
                    "ci_high": float(d["ci_high"]),
                    "n": int(d["n"]),
                }
            )
    return pd.DataFrame(rows)


def _phase_table(grid_episodes: pd.DataFrame, agent_episodes: pd.DataFrame, n_phases: int) -> pd.DataFrame:
    """Per phase and overall: each agent vs the best static split of that phase and the best overall."""
    import pandas as pd

    columns = [f"reward_phase{k}" for k in range(n_phases)] + ["reward"]
    grid_means = grid_episodes.groupby(["bw_ue", "comp_ue"], sort=True)[columns].mean().reset_index()
    overall = best_split(grid_means)
    static_names = {}
    for column in columns:
        ranked = grid_means.sort_values([column, "bw_ue", "comp_ue"], ascending=[False, True, True], kind="stable")
        static_names[column] = (float(ranked.iloc[0]["bw_ue"]), float(ranked.iloc[0]["comp_ue"]))
    chosen = {overall, *static_names.values()}
    episodes = pd.concat([agent_episodes, _split_episodes(grid_episodes, sorted(chosen))], ignore_index=True)
    rows = []
    for k, column in enumerate(columns):
        phase = "overall" if column == "reward" else str(k)
        best_here = _split_name(*static_names[column])
        best_all = _split_name(*overall)
        stats = summarize(episodes, [column]).set_index("policy")
        for reference, kind in ((best_here, "best static of this phase"), (best_all, "best static overall")):
            diffs = paired_differences(episodes, reference, [column]).set_index("policy")
            # the agents, and the overall-best split itself against the phase's best (what a fixed split loses)
            compared = [*dict.fromkeys(agent_episodes["policy"]), best_all]
            for agent in compared:
                if agent == reference or (agent == best_all and kind == "best static overall"):
                    continue
                rows.append(
                    {
                        "phase": phase,
                        "agent": agent,
                        "kind": "static" if agent == best_all else "agent",
                        "agent_reward": float(stats.loc[agent, "mean"]),
                        "agent_ci95": float(stats.loc[agent, "half_width"]),
                        "reference": kind,
                        "reference_split": reference,
                        "reference_reward": float(stats.loc[reference, "mean"]),
                        "reference_ci95": float(stats.loc[reference, "half_width"]),
                        "gap": float(diffs.loc[agent, "mean"]),
                        "gap_ci_low": float(diffs.loc[agent, "ci_low"]),
                        "gap_ci_high": float(diffs.loc[agent, "ci_high"]),
                        "n": int(diffs.loc[agent, "n"]),
                    }
                )
    return pd.DataFrame(rows)


def _traces(scenario: Scenario, policies: Mapping[str, str], seed: int) -> pd.DataFrame:
    """Per-step traces (:data:`metalore.trace.STEP_COLUMNS` plus ``policy``) of each policy on one seed."""
    import pandas as pd

    env = MetaLoreEnv(scenario)
    frames = []
    for name, spec in policies.items():
        rows: list[dict[str, Any]] = []
        run_episode(env, make_policy(spec, env, seed=seed), seed, trace=rows)
        frames.append(pd.DataFrame(rows, columns=list(STEP_COLUMNS)).assign(policy=name))
    frame = pd.concat(frames, ignore_index=True)
    return frame[["policy", *STEP_COLUMNS]]


# --------------------------------------------------------------------------- plots
def _plot_ppo_vs_static(summary: pd.DataFrame, names: Sequence[str], best: str, path: Path) -> Path:
    from metalore.plots import METRIC_LABELS, _figure, _save

    metrics = ("reward", "aori_mean", "aosi_mean", "late_fraction")
    fig = _figure(13, 4.2)
    axes = fig.subplots(1, len(metrics))
    stats = summary.set_index(["policy", "metric"])
    colors = ["black" if n.startswith("agent") else "tab:red" if n == best else "tab:grey" for n in names]
    for ax, metric in zip(axes, metrics, strict=True):
        means = [float(stats.loc[(n, metric), "mean"]) for n in names]
        halves = [float(stats.loc[(n, metric), "half_width"]) for n in names]
        y = np.arange(len(names))
        ax.barh(y, np.nan_to_num(means), xerr=np.nan_to_num(halves), color=colors, alpha=0.85, capsize=3)
        ax.set_yticks(y, names if ax is axes[0] else [""] * len(names), fontsize="small")
        ax.invert_yaxis()
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize="medium")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"PPO (black) vs the grid's best static split {best} (red) and heuristics: mean ± 95% CI")
    return _save(fig, path)


def _plot_coupling(table: pd.DataFrame, coupling: pd.DataFrame, path: Path) -> Path:
    from metalore.plots import _figure, _save

    fig = _figure(15, 4.6)
    axes = fig.subplots(1, 3)
    bw_values = np.array(sorted(table["bw_ue"].unique()))
    comp_values = np.array(sorted(table["comp_ue"].unique()))
    bw_best, comp_best = _interior_best(table)
    for ax, metric, title in (
        (axes[0], "reward", "episode reward"),
        (axes[1], "ue_throughput_mbps", "UE throughput (Mbit/s, completed jobs)"),
    ):
        grid = table.pivot(index="comp_ue", columns="bw_ue", values=metric).loc[comp_values, bw_values]
        image = ax.imshow(grid.to_numpy(dtype=float), origin="lower", cmap="viridis", aspect="auto")
        fig.colorbar(image, ax=ax, shrink=0.85)
        ax.set_xticks(range(len(bw_values)), [f"{v:.2g}" for v in bw_values], fontsize="small")
        ax.set_yticks(range(len(comp_values)), [f"{v:.2g}" for v in comp_values], fontsize="small")
        ax.set(xlabel="bw_ue (UE share of bandwidth)", ylabel="comp_ue (UE share of compute)", title=title)
        ax.scatter(
            [list(bw_values).index(bw_best)], [list(comp_values).index(comp_best)], marker="*", s=250, color="red"
        )
        for split in coupling["split"].unique():
            b, c = (float(v) for v in split.split(":")[1].split(","))
            ax.scatter(
                [list(bw_values).index(b)],
                [list(comp_values).index(c)],
                marker="s",
                s=160,
                facecolors="none",
                edgecolors="white",
                linewidths=2,
            )
    ax = axes[2]
    for bw in sorted({bw_best, 1.0}):
        rows = table[table["bw_ue"] == bw].sort_values("comp_ue")
        ax.plot(rows["comp_ue"], rows["ue_throughput_mbps"], marker="o", label=f"bw_ue = {bw:g}")
    ax.axvline(comp_best, color="red", linestyle=":", label=f"best interior comp_ue = {comp_best:g}")
    ax.set(
        xlabel="comp_ue (sensors get 1 - comp_ue)", ylabel="UE throughput (Mbit/s)", title="UE service vs compute split"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.suptitle("Synchronization coupling: red star = best interior split, white squares = sensor-starving splits")
    return _save(fig, path)


def _plot_phases(phases: pd.DataFrame, path: Path) -> Path:
    from metalore.plots import _figure, _save

    fig = _figure(11, 4.6)
    ax = fig.subplots()
    phases = phases[phases["kind"] == "agent"]
    labels = list(dict.fromkeys(phases["phase"]))
    agents = list(dict.fromkeys(phases["agent"]))
    series: list[tuple[str, list[float], list[float], str]] = []
    for agent in agents:
        rows = phases[(phases["agent"] == agent) & (phases["reference"] == "best static of this phase")]
        series.append((agent, rows["agent_reward"].tolist(), rows["agent_ci95"].tolist(), "black"))
    first = phases[phases["agent"] == agents[0]]
    for kind, color in (("best static of this phase", "tab:green"), ("best static overall", "tab:red")):
        rows = first[first["reference"] == kind]
        label = f"{kind} ({', '.join(dict.fromkeys(rows['reference_split']))})"
        series.append((label, rows["reference_reward"].tolist(), rows["reference_ci95"].tolist(), color))
    width = 0.8 / len(series)
    x = np.arange(len(labels))
    for i, (label, means, halves, color) in enumerate(series):
        alpha = 0.9 - 0.5 * i / max(len(series), 1) if color == "black" else 0.85
        ax.bar(
            x + (i - (len(series) - 1) / 2) * width,
            means,
            width,
            yerr=halves,
            capsize=3,
            color=color,
            alpha=alpha,
            label=label,
        )
    ax.set_xticks(x, [f"phase {p}" if p != "overall" else "whole episode" for p in labels])
    ax.set_ylabel("reward earned (mean ± 95% CI over evaluation seeds)")
    ax.set_title("Dynamic traffic: PPO vs the best static split of each phase and the best overall")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


# --------------------------------------------------------------------------- the command
def check_dynamic(scenario: Scenario) -> list[int]:
    """The phase starts of experiment 4's scenario; ValueError if it has fewer than two phases."""
    starts = phase_starts(scenario.config)
    if len(starts) < 2:
        raise ValueError(
            f"dynamic scenario {scenario.name!r} has no traffic.phases: experiment 4 needs a scenario whose load"
            " changes during the episode (e.g. --dynamic-scenario dynamic)"
        )
    return starts


def compare(
    out_dir: str | Path,
    scenario: str | Scenario = "paper",
    dynamic_scenario: str | Scenario = "dynamic",
    budget: str | Budget = "quick",
    quiet: bool = False,
    plots: bool = True,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Run the four experiments of the module docstring; write every artifact to ``out_dir``.

    Args:
        out_dir: results folder (created; files of the same names are replaced).
        scenario: the main scenario (experiments 1–3); its observation is forced to the two
            queue lengths (``observation.features: [queue_lengths]``) as in the published claim.
        dynamic_scenario: a scenario with ``traffic.phases`` (experiment 4), same observation rule.
        budget: ``"quick"``, ``"full"`` or a :class:`Budget`.
        quiet: no progress lines.
        plots: draw the PNGs (needs matplotlib: ``pip install "metalore[render]"``).
        backend: where the grid, the evaluations and the training seeds run: ``"local"`` or
            ``"ray"`` (:mod:`metalore.backends`); the results do not depend on it.
        workers: parallel tasks (local processes or Ray CPUs), as in :func:`metalore.evaluation.evaluate`.
        address: the Ray cluster to use (default: start a local one).

    Returns:
        The contents of ``compare.json`` (headline numbers, files, budget).
    """
    import pandas as pd

    if isinstance(budget, str):
        if budget not in BUDGETS:
            raise ValueError(f"budget {budget!r} is unknown: choose one of {', '.join(BUDGETS)}")
        budget = BUDGETS[budget]
    if plots:
        from metalore.plots import _require_figure

        _require_figure()  # fail before hours of work, not after
    log = _Log(quiet)
    fan_out: dict[str, Any] = {"backend": backend, "workers": workers, "address": address}
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} exists and is not a folder: choose another path")
    queue_only = {"observation": {"features": ["queue_lengths"]}, "log": {"jobs": False}}
    main = (scenario if isinstance(scenario, Scenario) else make_scenario(scenario)).replace(queue_only)
    dynamic = (dynamic_scenario if isinstance(dynamic_scenario, Scenario) else make_scenario(dynamic_scenario)).replace(
        queue_only
    )
    starts = check_dynamic(dynamic)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [EVAL_SEED_START + i for i in range(budget.eval_seeds)]
    files: list[str] = []

    def csv(frame: pd.DataFrame, name: str) -> None:
        write_csv(out / name, frame)
        files.append(name)

    from metalore.cli import scenario_yaml

    write_text(out / "scenario.yaml", scenario_yaml(main))
    (out / "dynamic").mkdir(exist_ok=True)
    write_text(out / "dynamic" / "scenario.yaml", scenario_yaml(dynamic))
    files += ["scenario.yaml", "dynamic/scenario.yaml"]

    # 1. the static grid and its Pareto front
    log(f"1/4 grid: {budget.grid}x{budget.grid} static splits x {len(seeds)} seeds on {main.name}")
    grid_episodes = grid_search(main, budget.grid, seeds, episodes=True, **fan_out)
    table = grid_table(grid_episodes)
    from metalore.plots import PARETO_OBJECTIVES, pareto_front

    defined = table.dropna(subset=[c for c, _ in PARETO_OBJECTIVES])
    front = defined[pareto_front(defined)]
    csv(table, "grid.csv")
    csv(grid_episodes, "grid_episodes.csv")
    csv(front, "pareto_front.csv")
    best = _split_name(*best_split(table))
    log(f"   best static split by reward: {best}; {len(front)} splits on the Pareto front")

    # 2. PPO on the queue lengths vs the grid's best split
    log("2/4 PPO vs the grid's best")
    agents = _train_agents(main, out / "agents", budget.train_steps, budget, log, main.name, fan_out)
    policies: dict[str, Any] = {name: f"agent:{path}" for name, path in agents.items()}
    policies[best] = best
    policies.update({h: h for h in HEURISTICS})
    episodes = evaluate(policies, main, seeds, **fan_out)
    summary = summarize(episodes)
    gaps = paired_differences(episodes, best)
    gaps = gaps[gaps["policy"].isin(list(agents))]
    csv(episodes, "episodes.csv")
    csv(summary, "summary.csv")
    csv(gaps, "gaps.csv")
    for row in gaps[gaps["metric"] == "reward"].itertuples():
        log(f"   {row.policy} - {best}: {row.mean:+.1f} reward, 95% CI [{row.ci_low:+.1f}, {row.ci_high:+.1f}]")

    # 3. synchronization coupling
    log("3/4 synchronization coupling")
    coupling = _coupling(grid_episodes, table)
    csv(coupling, "coupling.csv")

    # 4. dynamic traffic
    log(f"4/4 dynamic traffic on {dynamic.name}: {len(starts)} phases starting at steps {starts}")
    dyn_grid = grid_search(dynamic, budget.grid, seeds, episodes=True, **fan_out)
    csv(dyn_grid, "dynamic/grid_episodes.csv")
    dyn_agents = _train_agents(
        dynamic, out / "dynamic" / "agents", budget.dynamic_train_steps, budget, log, dynamic.name, fan_out
    )
    dyn_policies: dict[str, Any] = {name: f"agent:{path}" for name, path in dyn_agents.items()}
    dyn_policies.update({h: h for h in HEURISTICS if h != "random"})
    dyn_episodes = evaluate(dyn_policies, dynamic, seeds, **fan_out)
    csv(dyn_episodes, "dynamic/episodes.csv")
    phases = _phase_table(dyn_grid, dyn_episodes[dyn_episodes["policy"].isin(list(dyn_agents))], len(starts))
    csv(phases, "dynamic/phases.csv")
    trace_policies = {name: f"agent:{path}" for name, path in list(dyn_agents.items())[:1]}
    trace_policies.update({split: split for split in dict.fromkeys(phases["reference_split"])})
    traces = _traces(dynamic, trace_policies, seeds[0])
    csv(traces, "dynamic/steps.csv")

    # tables, plots, record
    agent_rows = summary[summary["policy"].isin(list(agents))]
    names = [*agents, best, *HEURISTICS]
    md = _results_markdown(main, dynamic, budget, seeds, table, front, best, summary, names, gaps, coupling, phases)
    write_text(out / "results.md", md)
    files.append("results.md")
    if plots:
        from metalore.plots import _agent_rows, plot_allocation, plot_pareto, plot_training

        plot_pareto(table, out / "pareto.png", _agent_rows(agent_rows))
        _plot_ppo_vs_static(summary, names, best, out / "ppo_vs_static.png")
        _plot_coupling(table, coupling, out / "coupling.png")
        _plot_phases(phases, out / "dynamic_phases.png")
        plot_allocation(traces, out / "allocation_dynamic.png")
        files += ["pareto.png", "ppo_vs_static.png", "coupling.png", "dynamic_phases.png", "allocation_dynamic.png"]
        for path in [*agents.values(), *dyn_agents.values()]:
            evaluations = pd.read_csv(path.parent / "evaluations.csv")
            plot_training(evaluations, path.parent / "training.png")
    reward_gaps = gaps[gaps["metric"] == "reward"]
    record = {
        "budget": dataclasses.asdict(budget),
        "scenario": main.name,
        "dynamic_scenario": dynamic.name,
        "eval_seeds": seeds,
        "validation_seeds": [VALIDATION_SEED_START + i for i in range(min(budget.eval_seeds, 10))],
        "best_static": best,
        "pareto_front": [_split_name(r.bw_ue, r.comp_ue) for r in front.itertuples()],
        "ppo_gap_vs_best_static": {
            row.policy: {"mean": row.mean, "ci_low": row.ci_low, "ci_high": row.ci_high}
            for row in reward_gaps.itertuples()
        },
        "files": [*files, "compare.json"],
    }
    from metalore.io import package_versions

    record["versions"] = package_versions(("metalore", "numpy", "gymnasium", "numba", "stable-baselines3", "torch"))
    write_json(out / "compare.json", record)
    log(f"done: results in {out}")
    return record


def _share(k: int, n: int) -> str:
    """``reproduced`` (all ``n`` agents), ``partly reproduced`` (some) or ``not reproduced`` (none)."""
    return "reproduced" if k == n else "partly reproduced" if k else "not reproduced"


def _verdict(low: float, high: float) -> str:
    """Reading of a paired difference's 95% CI: above zero, below zero or not distinguishable from it."""
    return "higher" if low > 0 else "lower" if high < 0 else "not distinguishable"


def _dominating(table: pd.DataFrame, point: Mapping[str, float]) -> pd.DataFrame:
    """Rows of ``table`` at least as good as ``point`` in every Pareto objective and better in one."""
    from metalore.plots import PARETO_OBJECTIVES

    at_least = np.ones(len(table), dtype=bool)
    better = np.zeros(len(table), dtype=bool)
    for column, maximise in PARETO_OBJECTIVES:
        values = table[column].to_numpy(dtype=float)
        sign = 1.0 if maximise else -1.0
        at_least &= sign * values >= sign * point[column]
        better |= sign * values > sign * point[column]
    return table[at_least & better]


def _claims(
    table: pd.DataFrame,
    summary: pd.DataFrame,
    agents: Sequence[str],
    best: str,
    gaps: pd.DataFrame,
    coupling: pd.DataFrame,
    phases: pd.DataFrame,
) -> list[str]:
    """One bullet per claim of MODEL.md §7 with what this run measured (verdicts read off the 95% CIs)."""
    lines = []
    reward_gaps = gaps[gaps["metric"] == "reward"].set_index("policy")
    parts = []
    for agent in agents:
        g = reward_gaps.loc[agent]
        reading = {"higher": "above", "lower": "below", "not distinguishable": "not distinguishable from"}[
            _verdict(g["ci_low"], g["ci_high"])
        ]
        parts.append(f"`{agent}` {_gap_ci(g['mean'], g['ci_low'], g['ci_high'])} ({reading} `{best}`)")
    reached = sum(bool(reward_gaps.loc[a, "ci_high"] >= 0) for a in agents)  # not significantly below
    lines.append(
        f"1. **PPO reaches the best static split** — {_share(reached, len(agents))}"
        f" ({reached} of {len(agents)} agents not significantly below it): reward gap " + "; ".join(parts) + "."
    )
    stats = summary.set_index(["policy", "metric"])["mean"]
    defined = table.dropna(subset=["ue_throughput_mbps", "aori_mean", "aosi_mean"])
    parts, on_front = [], 0
    for agent in agents:
        point = {m: float(stats.loc[(agent, m)]) for m in ("ue_throughput_mbps", "aori_mean", "aosi_mean")}
        dominating = _dominating(defined, point)
        on_front += dominating.empty
        parts.append(
            f"`{agent}` is not dominated by any static split"
            if dominating.empty
            else f"`{agent}` is dominated by {len(dominating)} of {len(defined)} splits "
            f"(e.g. `{_split_name(dominating.iloc[0]['bw_ue'], dominating.iloc[0]['comp_ue'])}`)"
        )
    lines.append(
        "2. **Static splits trace a Pareto front; PPO lies on or near it** — "
        + ("on the front" if on_front == len(agents) else "see the distances below")
        + ": "
        + "; ".join(parts)
        + " (means over the evaluation seeds; `pareto.png`)."
    )
    rewards = coupling[coupling["metric"] == "reward"]
    jobs = coupling[coupling["metric"] == "ue_jobs_completed"]
    worse = bool((rewards["ci_high"] < 0).all() and (jobs["ci_high"] < 0).all())
    lines.append(
        f"3. **Starving sensors does not help UEs** — {'reproduced' if worse else 'not reproduced'}: the best "
        f"interior split `{coupling['baseline'].iloc[0]}` completes {jobs['baseline_value'].iloc[0]:.0f} UE jobs per "
        "episode; the sensor-starving splits complete "
        + ", ".join(f"{v:.0f} (`{sp}`)" for v, sp in zip(jobs["value"], jobs["split"], strict=True))
        + "."
    )
    regret = phases[phases["kind"] == "static"]
    degraded = regret[(regret["phase"] != "overall") & (regret["gap_ci_high"] < 0)]
    agent_rows = phases[(phases["kind"] == "agent") & (phases["reference"] == "best static overall")]
    whole = agent_rows[agent_rows["phase"] == "overall"]
    adapted = int((whole["gap_ci_high"] >= 0).sum())
    per_phase = agent_rows[agent_rows["phase"] != "overall"]
    beats = [
        f"phase {phase}: {int((rows['gap_ci_low'] > 0).sum())} of {len(rows)}"
        for phase, rows in per_phase.groupby("phase", sort=False)
    ]
    lines.append(
        "4. **Under changing traffic PPO adapts while any fixed split degrades in some regime** — "
        + (
            "a fixed split degrades: the best overall split loses significantly to the phase's best in phase(s) "
            + ", ".join(degraded["phase"])
            if len(degraded)
            else "no fixed split degrades significantly: the best overall split is as good as every phase's best"
        )
        + f". PPO over the whole episode: {_share(adapted, len(agents))} ({adapted} of {len(agents)} agents not "
        "significantly below the best overall split: "
        + "; ".join(f"`{row.agent}` {_gap_ci(row.gap, row.gap_ci_low, row.gap_ci_high)}" for row in whole.itertuples())
        + "); agents significantly above the best overall split, by phase: "
        + ", ".join(beats)
        + "."
    )
    return lines


def _results_markdown(
    main: Scenario,
    dynamic: Scenario,
    budget: Budget,
    seeds: list[int],
    table: pd.DataFrame,
    front: pd.DataFrame,
    best: str,
    summary: pd.DataFrame,
    names: Sequence[str],
    gaps: pd.DataFrame,
    coupling: pd.DataFrame,
    phases: pd.DataFrame,
) -> str:
    headers = ["policy", *(header for _, header, _ in TABLE_METRICS)]
    front_rows = [
        [
            f"`{_split_name(r.bw_ue, r.comp_ue)}`",
            f"{r.ue_throughput_mbps:.1f}",
            f"{r.aori_mean:.2f}",
            f"{r.aosi_mean:.2f}",
            f"{r.reward:.1f}",
        ]
        for r in front.sort_values("aori_mean").itertuples()
    ]
    coupling_rows = []
    base = coupling["baseline"].iloc[0]
    base_values = coupling.drop_duplicates("metric").set_index("metric")["baseline_value"]
    coupling_rows.append(
        ["best interior split", f"`{base}`", *(f"{base_values[m]:.3g}" for m in COUPLING_METRICS), "", ""]
    )
    for case, rows in coupling.groupby("case", sort=False):
        by_metric = rows.set_index("metric")
        split = rows["split"].iloc[0]
        deltas = [
            _gap_ci(by_metric.loc[m, "difference"], by_metric.loc[m, "ci_low"], by_metric.loc[m, "ci_high"], "{:+.3g}")
            for m in DELTA_METRICS
        ]
        coupling_rows.append(
            [str(case), f"`{split}`", *(_fmt(by_metric.loc[m, "value"], "{:.3g}") for m in COUPLING_METRICS), *deltas]
        )
    phase_rows = []
    agent_phases = phases[phases["kind"] == "agent"]
    for (phase, agent), rows in agent_phases.groupby(["phase", "agent"], sort=False):
        here = rows[rows["reference"] == "best static of this phase"].iloc[0]
        overall = rows[rows["reference"] == "best static overall"].iloc[0]
        phase_rows.append(
            [
                "whole episode" if phase == "overall" else str(phase),
                f"`{agent}`",
                _mean_ci(here.agent_reward, here.agent_ci95, "{:.1f}"),
                f"`{here.reference_split}`: {_mean_ci(here.reference_reward, here.reference_ci95, '{:.1f}')}",
                _gap_ci(here.gap, here.gap_ci_low, here.gap_ci_high),
                f"`{overall.reference_split}`: {_mean_ci(overall.reference_reward, overall.reference_ci95, '{:.1f}')}",
                _gap_ci(overall.gap, overall.gap_ci_low, overall.gap_ci_high),
            ]
        )
    regret_rows = [
        [
            "whole episode" if row.phase == "overall" else str(row.phase),
            f"`{row.reference_split}`: {_mean_ci(row.reference_reward, row.reference_ci95, '{:.1f}')}",
            f"`{row.agent}`: {_mean_ci(row.agent_reward, row.agent_ci95, '{:.1f}')}",
            _gap_ci(row.gap, row.gap_ci_low, row.gap_ci_high),
        ]
        for row in phases[phases["kind"] == "static"].itertuples()
    ]
    parts = [
        "# MetaLore compare: the published experiments",
        "",
        f"Main scenario `{main.name}` ({main.num_bs} BS, {main.config['ue']['count']} UEs, "
        f"{main.config['sensor']['count']} sensors, {main.steps} steps); dynamic scenario `{dynamic.name}` "
        f"(phases start at steps {phase_starts(dynamic.config)}). Evaluation seeds {seeds[0]}..{seeds[-1]} "
        f"({len(seeds)} episodes per policy and split, common random numbers). "
        f"Budget: grid {budget.grid}x{budget.grid}, "
        f"PPO {budget.train_steps} steps (dynamic: {budget.dynamic_train_steps}) x {budget.train_seeds} seed(s), "
        f"{budget.n_envs} envs. Intervals are 95% Student-t over episodes; gaps are paired by seed.",
        "",
        "## The claims (MODEL.md §7) and what this run measured",
        "",
        *_claims(table, summary, [n for n in names if n.startswith("agent:")], best, gaps, coupling, phases),
        "",
        "## 1. Static splits: Pareto front (UE throughput ↑, mean AoRI ↓, mean AoSI ↓)",
        "",
        f"{len(table)} splits evaluated, {len(front)} non-dominated. Best by reward: `{best}`.",
        "",
        _markdown(["split", "UE Mbit/s", "AoRI mean", "AoSI mean", "reward"], front_rows),
        "",
        "## 2. PPO (observing the two queue lengths) vs the grid's best split",
        "",
        _markdown(headers, _summary_rows(summary, names)),
        "",
        f"Reward gap to `{best}` (agent − static, paired by seed; the static split was picked on these same seeds):",
        "",
        _markdown(["agent", "gap", "95% CI", "episodes", "reading"], _gap_rows(gaps)),
        "",
        "## 3. Synchronization coupling: starving sensors vs the best interior split",
        "",
        _markdown(
            ["case", "split", *COUPLING_LABELS, "Δ reward [95% CI]", "Δ UE jobs [95% CI]"],
            coupling_rows,
        ),
        "",
        "## 4. Dynamic traffic: PPO vs the best static split per phase and overall",
        "",
        _markdown(
            [
                "phase",
                "agent",
                "agent reward",
                "best static of the phase",
                "gap [95% CI]",
                "best static overall",
                "gap [95% CI]",
            ],
            phase_rows,
        ),
        "",
        "What the best overall static split loses in each phase against that phase's best split "
        "(phases where they coincide are not listed):",
        "",
        _markdown(["phase", "best static of the phase", "best static overall", "loss [95% CI]"], regret_rows)
        if regret_rows
        else "The best overall static split is also the best split of every phase.",
        "",
    ]
    return "\n".join(parts)
