"""Plots of a results folder: see what the simulator did (``metalore plot RESULTS_DIR``).

:func:`plot_results` reads the files that ``metalore run``, ``evaluate``, ``grid`` and ``train``
write and makes every plot they allow (PNG, one file each), skipping the others with a note:

=======================  ========================================  ==================================
file                     needs                                     shows
=======================  ========================================  ==================================
``age_cdf.png``          ``job_log_NNN.csv`` (``run --job-log``)   empirical CDF of AoRI and AoSI
``age_over_time.png``    idem                                      mean AoRI/AoSI per generation step
``queues.png``           idem                                      jobs in uplink and MEC queues
``rewards.png``          ``episodes.csv`` (``run``/``evaluate``)   reward per episode
``training.png``         ``evaluations.csv`` (``train``)           evaluation reward/ages vs steps
``summary.png``          ``summary.csv`` (``evaluate``)            mean ± 95% CI per policy
``pareto.png``           ``grid.csv`` (``grid``)                   static splits: throughput vs ages
``allocation.png``       ``steps.csv`` (``run``, ``compare``)      split, MEC queues, reward per step
=======================  ========================================  ==================================

Job logs are looked up in the folder and in its immediate sub-folders (e.g. ``runs/a`` and
``runs/b``, one policy each); they are grouped by the policy recorded in each folder's
``run.json``, so the age plots compare policies when several are present. ``pareto.png``
marks trained agents (``agent:...`` rows of an ``evaluate`` summary in the same folder).

``age_over_time.png`` averages over the UE jobs *completed* within the episode, so its last
steps count only the fast jobs (the slow ones were still under way at the end).

**Queue reconstruction.** The job log holds the step of each stage of a job's life, not the
queues, so ``queues.png`` rebuilds them as snapshots at the end of every step ``t``: a job is in
its device's *uplink* FIFO when ``t_generated <= t < t_tx_done`` and in its class's *MEC* queue
(waiting or in service) when ``t_tx_done <= t < t_proc_done``; a stage not reached by the end
of the episode counts as lasting to its last step. Jobs dropped at a full uplink queue never
enter it, jobs dropped at a full MEC queue never enter that one. Counts are summed over base
stations and averaged over the episodes of a policy. If ``log.max_jobs`` cut the oldest rows
of a log, the early steps are undercounted.

``allocation.png`` (from ``steps.csv``, written by ``metalore run`` and ``compare``) shows the
split applied at every step (UE shares of bandwidth and compute), the MEC queue lengths and
the reward per step, with traffic phase boundaries marked.

matplotlib is optional (``pip install "metalore[render]"``); it is imported only when a plot
is drawn, through :class:`matplotlib.figure.Figure` (no pyplot, no global state).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from metalore.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PLOT_INSTALL_HINT",
    "PlotSet",
    "add_plot_arguments",
    "load_job_logs",
    "load_step_traces",
    "make_plots",
    "pareto_front",
    "plot_allocation",
    "plot_results",
    "queue_lengths",
    "run_plot",
]

PLOT_INSTALL_HINT = 'pip install "metalore[render]"'
DPI = 100
QUEUE_COLUMNS = ("ue_uplink", "ue_mec", "sensor_uplink", "sensor_mec")
# metric column -> axis label with its unit; "higher" says which direction is better.
METRIC_LABELS = {
    "reward": "episode reward",
    "aori_mean": "mean AoRI (steps)",
    "aori_p95": "AoRI p95 (steps)",
    "aosi_mean": "mean AoSI (steps)",
    "aosi_p95": "AoSI p95 (steps)",
    "late_fraction": "late UE jobs (fraction)",
    "ue_throughput_mbps": "UE throughput (Mbit/s)",
    "sensor_throughput_mbps": "sensor throughput (Mbit/s)",
    "dropped": "dropped jobs (per episode)",
}
SUMMARY_METRICS = ("reward", "aori_mean", "aosi_mean", "late_fraction", "ue_throughput_mbps", "dropped")
# Pareto objectives of the static splits: (column, maximise?).
PARETO_OBJECTIVES = (("ue_throughput_mbps", True), ("aori_mean", False), ("aosi_mean", False))


@dataclass
class PlotSet:
    """The PNGs made from a results folder and a note per plot that could not be made."""

    paths: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading
def _require_figure() -> Any:
    """Import and return :class:`matplotlib.figure.Figure`, or fail with the install command."""
    try:
        return importlib.import_module("matplotlib.figure").Figure
    except ImportError as exc:
        raise ImportError(f"plotting results needs matplotlib, which is not installed: {PLOT_INSTALL_HINT}") from exc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_csv(path: Path) -> pd.DataFrame | None:
    import pandas as pd

    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError):
        return None
    return frame if len(frame) else None


def _episode_steps(folder: Path, logs: Sequence[pd.DataFrame]) -> int:
    """Steps per episode: the scenario's ``episode.steps``, else one past the latest logged time."""
    import yaml

    try:
        config = yaml.safe_load((folder / "scenario.yaml").read_text(encoding="utf-8"))
        return int(config["episode"]["steps"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        times = ["t_generated", "t_tx_done", "t_proc_start", "t_proc_done"]
        return 1 + max(int(np.nanmax(log[times].to_numpy(dtype=float))) for log in logs)


def load_job_logs(results_dir: str | Path) -> dict[str, tuple[int, list[pd.DataFrame]]]:
    """Job logs of ``results_dir`` and its immediate sub-folders, by policy: ``{label: (steps, logs)}``.

    The label is the ``policy`` of the folder's ``run.json`` (else the folder's name), with the
    folder name added when two folders ran the same policy.
    """
    root = Path(results_dir)
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
    found: dict[str, tuple[int, list[pd.DataFrame]]] = {}
    for folder in folders:
        logs = [log for path in sorted(folder.glob("job_log_*.csv")) if (log := _read_csv(path)) is not None]
        if not logs:
            continue
        label = str(_read_json(folder / "run.json").get("policy") or folder.name)
        if label in found:
            label = f"{label} ({folder.name})"
        found[label] = (_episode_steps(folder, logs), logs)
    return found


def load_step_traces(results_dir: str | Path) -> pd.DataFrame | None:
    """Per-step traces (``steps.csv``) of ``results_dir`` and its immediate sub-folders, with a ``policy`` column.

    A ``steps.csv`` that already has a ``policy`` column (``metalore compare``) keeps it; any other
    is labelled like the job logs (the ``policy`` of the folder's ``run.json``, else its name).
    """
    import pandas as pd

    root = Path(results_dir)
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
    frames: list[pd.DataFrame] = []
    for folder in folders:
        trace = _read_csv(folder / "steps.csv")
        if trace is None or not {"t", "bs", "bw_ue", "comp_ue"} <= set(trace.columns):
            continue
        if "policy" not in trace.columns:
            label = str(_read_json(folder / "run.json").get("policy") or folder.name)
            if any(label in set(f["policy"]) for f in frames):
                label = f"{label} ({folder.name})"
            trace.insert(0, "policy", label)
        frames.append(trace)
    return pd.concat(frames, ignore_index=True) if frames else None


# --------------------------------------------------------------------------- derived data
def queue_lengths(log: pd.DataFrame, steps: int) -> pd.DataFrame:
    """Jobs in the uplink and MEC queues per class at the end of each step (see the module docstring).

    Returns one row per step ``0..steps-1`` with columns ``step`` and :data:`QUEUE_COLUMNS`.
    """
    import pandas as pd

    def occupancy(rows: pd.DataFrame, start: str, end: str) -> np.ndarray:
        entered = rows[rows[start].notna()]
        first = entered[start].to_numpy(dtype=float).astype(np.int64)
        last = entered[end].fillna(steps).to_numpy(dtype=float).astype(np.int64)
        change = np.zeros(steps + 1, dtype=np.int64)
        np.add.at(change, np.clip(first, 0, steps), 1)
        np.add.at(change, np.clip(last, 0, steps), -1)
        counts = np.cumsum(change)[:steps]
        assert (counts >= 0).all(), "a job left a queue before it entered it"
        return counts

    columns: dict[str, Any] = {"step": np.arange(steps)}
    for kind in ("ue", "sensor"):
        jobs = log[log["kind"] == kind]
        reason = jobs["drop_reason"]  # empty cells read back from CSV as NaN, which equals no reason
        columns[f"{kind}_uplink"] = occupancy(jobs[~reason.eq("uplink_queue_full")], "t_generated", "t_tx_done")
        columns[f"{kind}_mec"] = occupancy(jobs[~reason.eq("mec_queue_full")], "t_tx_done", "t_proc_done")
    return pd.DataFrame(columns)


def pareto_front(table: pd.DataFrame, objectives: Sequence[tuple[str, bool]] = PARETO_OBJECTIVES) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (``objectives``: ``(column, maximise)``).

    A row dominates another when it is at least as good on every objective and better on one.
    Rows with an undefined (NaN) objective, e.g. a split that completes no UE job, are never on
    the front.
    """
    values = np.column_stack([table[c].to_numpy(dtype=float) * (1.0 if up else -1.0) for c, up in objectives])
    valid = ~np.isnan(values).any(axis=1)
    front = np.zeros(len(values), dtype=bool)
    for i in np.flatnonzero(valid):
        others = values[valid]
        dominated = ((others >= values[i]).all(axis=1) & (others > values[i]).any(axis=1)).any()
        front[i] = not dominated
    return front


def _ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ordered = np.sort(values)
    return ordered, np.arange(1, len(ordered) + 1) / len(ordered)


def _completed_ue(logs: Sequence[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.concat(logs, ignore_index=True)
    return frame[(frame["kind"] == "ue") & frame["aori"].notna()]


# --------------------------------------------------------------------------- drawing
def _figure(width: float, height: float) -> Any:
    return _require_figure()(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return path


def plot_age_cdf(job_logs: dict[str, tuple[int, list[pd.DataFrame]]], path: Path) -> Path:
    """Empirical CDF of the AoRI and AoSI of completed UE jobs, one line per policy."""
    fig = _figure(10, 4)
    axes = fig.subplots(1, 2)
    for label, (_, logs) in job_logs.items():
        jobs = _completed_ue(logs)
        for ax, column in zip(axes, ("aori", "aosi"), strict=True):
            x, y = _ecdf(jobs[column].to_numpy(dtype=float))
            ax.step(x, y, where="post", label=f"{label} ({len(x)} jobs)")
    for ax, name in zip(axes, ("AoRI", "AoSI"), strict=True):
        ax.set(xlabel=f"{name} (steps)", ylabel="fraction of completed UE jobs", ylim=(0, 1.02))
        ax.set_title(f"{name} distribution (empirical CDF)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def plot_age_over_time(job_logs: dict[str, tuple[int, list[pd.DataFrame]]], path: Path) -> Path:
    """Mean AoRI and AoSI of the completed UE jobs generated at each step, one line per policy."""
    fig = _figure(10, 4)
    axes = fig.subplots(1, 2, sharex=True)
    for label, (_, logs) in job_logs.items():
        by_step = _completed_ue(logs).groupby("t_generated")[["aori", "aosi"]].mean()
        for ax, column in zip(axes, ("aori", "aosi"), strict=True):
            ax.plot(by_step.index.to_numpy(dtype=float), by_step[column].to_numpy(dtype=float), marker=".", label=label)
    for ax, name in zip(axes, ("AoRI", "AoSI"), strict=True):
        ax.set(xlabel="generation step of the UE job", ylabel=f"mean {name} (steps)")
        ax.set_title(f"{name} over time (mean over completed jobs)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_queues(job_logs: dict[str, tuple[int, list[pd.DataFrame]]], path: Path) -> Path:
    """Jobs in the uplink and MEC queues per class over time, rebuilt from the job logs."""
    import pandas as pd

    fig = _figure(10, 4)
    axes = fig.subplots(1, 2, sharex=True)
    styles = ["-", "--", ":", "-."]
    for n, (label, (steps, logs)) in enumerate(job_logs.items()):
        mean = pd.concat([queue_lengths(log, steps) for log in logs]).groupby("step").mean()
        for ax, stage in zip(axes, ("uplink", "mec"), strict=True):
            for kind, color in (("ue", "tab:blue"), ("sensor", "tab:orange")):
                name = f"{kind.upper() if kind == 'ue' else kind} jobs"
                ax.plot(
                    mean.index.to_numpy(),
                    mean[f"{kind}_{stage}"].to_numpy(dtype=float),
                    color=color,
                    linestyle=styles[n % len(styles)],
                    label=name if len(job_logs) == 1 else f"{name}, {label}",
                )
    episodes = sorted({len(logs) for _, logs in job_logs.values()})
    for ax, title in zip(axes, ("uplink queues (all devices)", "MEC queues (all base stations)"), strict=True):
        ax.set(xlabel="step (end-of-step snapshot)", ylabel="jobs in queue")
        ax.set_title(f"{title}, mean of {'/'.join(map(str, episodes))} episode(s)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_rewards(episodes: pd.DataFrame, path: Path) -> Path:
    """Reward per episode: by episode index (``run``) or by seed per policy (``evaluate``)."""
    fig = _figure(8, 4)
    ax = fig.subplots()
    if "policy" in episodes.columns:
        for policy, rows in episodes.groupby("policy", sort=False):
            ax.plot(rows["seed"].to_numpy(), rows["reward"].to_numpy(dtype=float), marker="o", label=str(policy))
        ax.set(xlabel="episode seed (common to all policies)", ylabel="episode reward")
        ax.legend(fontsize="small")
    else:
        ax.bar(episodes["episode"].to_numpy(), episodes["reward"].to_numpy(dtype=float), color="tab:blue")
        ax.set(xlabel="episode", ylabel="episode reward")
        ax.set_xticks(episodes["episode"].to_numpy())
    ax.xaxis.set_major_locator(importlib.import_module("matplotlib.ticker").MaxNLocator(integer=True))
    ax.set_title("Reward per episode")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_training(evaluations: pd.DataFrame, path: Path) -> Path:
    """Training curve: evaluation reward, AoRI and AoSI (mean ± 95% CI) against training steps."""
    metrics = [m for m in ("reward", "aori_mean", "aosi_mean") if f"{m}_mean" in evaluations.columns]
    fig = _figure(4 * len(metrics), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    steps = evaluations["step"].to_numpy(dtype=float)
    for ax, metric in zip(axes, metrics, strict=True):
        mean = evaluations[f"{metric}_mean"].to_numpy(dtype=float)
        ax.plot(steps, mean, marker="o", color="tab:blue", label="mean")
        if f"{metric}_ci95" in evaluations.columns:
            half = evaluations[f"{metric}_ci95"].to_numpy(dtype=float)
            ax.fill_between(steps, mean - half, mean + half, alpha=0.25, color="tab:blue", label="95% CI")
        ax.set(xlabel="training steps", ylabel=METRIC_LABELS.get(metric, metric))
        ax.set_title(f"Evaluation {METRIC_LABELS.get(metric, metric).split(' (')[0]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_allocation(steps: pd.DataFrame, path: Path) -> Path:
    """Allocation over time: the UE shares of bandwidth and compute, the MEC queues and the reward per step.

    One line per policy (mean over its episodes and base stations; a band spans the episodes'
    min..max when there are several), or one line per BS for a single policy on several BSs.
    Traffic phase boundaries (the ``phase`` column) are drawn as dotted vertical lines.
    """
    fig = _figure(12, 7)
    axes = fig.subplots(2, 2, sharex=True).ravel()
    panels = (
        ("bw_ue", "UE share of the uplink bandwidth", (0, 1.02)),
        ("comp_ue", "UE share of the MEC compute", (0, 1.02)),
        ("queue", "jobs in the MEC queues (solid: UE, dashed: sensor)", None),
        ("reward", "reward per step", None),
    )
    policies = list(dict.fromkeys(steps["policy"])) if "policy" in steps.columns else [None]
    per_bs = len(policies) == 1 and steps["bs"].nunique() > 1
    colors = importlib.import_module("matplotlib").colormaps["tab10"]
    n_lines = 0
    for policy in policies:
        rows = steps if policy is None else steps[steps["policy"] == policy]
        groups = rows.groupby("bs") if per_bs else [(None, rows)]
        for bs, part in groups:
            label = f"BS {bs}" if per_bs else ("" if policy is None else str(policy))
            color = colors(n_lines % 10)
            n_lines += 1
            # per episode: mean over BSs for bw/comp/queues; reward is already per env
            by_episode = part.groupby(["episode", "t"])[
                ["bw_ue", "comp_ue", "ue_mec_queue", "sensor_mec_queue", "reward"]
            ].mean()
            mean = by_episode.groupby("t").mean()
            low, high = by_episode.groupby("t").min(), by_episode.groupby("t").max()
            t = mean.index.to_numpy(dtype=float)
            many = by_episode.index.get_level_values("episode").nunique() > 1
            for ax, (column, _, _) in zip(axes, panels, strict=True):
                columns = ["ue_mec_queue", "sensor_mec_queue"] if column == "queue" else [column]
                for c, style in zip(columns, ("-", "--"), strict=False):
                    ax.plot(
                        t,
                        mean[c].to_numpy(dtype=float),
                        style,
                        color=color,
                        lw=1.4,
                        label=label if style == "-" else None,
                    )
                    if many and column != "queue":
                        ax.fill_between(
                            t,
                            low[c].to_numpy(dtype=float),
                            high[c].to_numpy(dtype=float),
                            color=color,
                            alpha=0.15,
                            lw=0,
                        )
    if "phase" in steps.columns:
        phase_by_t = steps.groupby("t")["phase"].max()
        starts = phase_by_t.index[phase_by_t.diff().fillna(0).to_numpy() > 0].to_numpy(dtype=float)
        for ax in axes:
            for start in starts:
                ax.axvline(start - 0.5, color="grey", linestyle=":", lw=1.2)
        if len(starts):
            axes[0].annotate(
                "phase boundaries: dotted", (0.01, 0.02), xycoords="axes fraction", fontsize="small", color="grey"
            )
    episodes = steps.groupby("policy")["episode"].nunique() if "policy" in steps.columns else None
    count = int(steps["episode"].nunique()) if episodes is None else int(episodes.max())
    for ax, (_, title, ylim) in zip(axes, panels, strict=True):
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ylim:
            ax.set_ylim(*ylim)
        else:
            ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    for ax in axes[2:]:
        ax.set_xlabel("step")
    if any(label for label in axes[0].get_legend_handles_labels()[1]):
        axes[0].legend(fontsize="small", loc="best")
    band = "; bands: min..max over episodes" if count > 1 else ""
    fig.suptitle(f"Allocation over time (mean of {count} episode(s){band})")
    return _save(fig, path)


def plot_summary(summary: pd.DataFrame, path: Path) -> Path:
    """Mean ± 95% CI of the headline metrics per policy (one panel per metric)."""
    metrics = [m for m in SUMMARY_METRICS if m in set(summary["metric"])]
    policies = list(dict.fromkeys(summary["policy"]))
    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    fig = _figure(4.2 * columns, 0.5 + rows * (0.9 + 0.35 * len(policies)))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    colors = [f"C{i % 10}" for i in range(len(policies))]
    positions = np.arange(len(policies))
    for ax, metric in zip(axes, metrics, strict=False):
        stats = summary[summary["metric"] == metric].set_index("policy").reindex(policies)
        ax.barh(
            positions,
            stats["mean"].fillna(0).to_numpy(dtype=float),
            xerr=stats["half_width"].fillna(0).to_numpy(dtype=float),
            color=colors,
            capsize=4,
        )
        ax.set_yticks(positions, [str(p) for p in policies])
        ax.invert_yaxis()
        ax.set_xlabel(METRIC_LABELS.get(metric, metric))
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    n = int(summary["n"].max())
    fig.suptitle(f"Policy comparison: mean ± 95% CI (Student t) over {n} episodes")
    return _save(fig, path)


def plot_pareto(grid: pd.DataFrame, path: Path, agents: pd.DataFrame | None = None) -> Path:
    """Static splits in two projections of the 3-objective space; the Pareto front ringed and labelled.

    Left: UE throughput against mean AoRI, coloured by mean AoSI. Right: mean AoSI against mean
    AoRI, coloured by throughput (the throughput saturates for many splits, which piles them up
    on the left panel; the right one separates them). ``agents`` (optional): one row per trained
    agent with the same metric columns, marked with stars on both panels.
    """
    fig = _figure(15, 6)
    axes = fig.subplots(1, 2)
    defined = grid.dropna(subset=[c for c, _ in PARETO_OBJECTIVES])
    front = pareto_front(defined)
    panels = (
        ("ue_throughput_mbps", "UE throughput (Mbit/s, higher is better)", "aosi_mean", "mean AoSI (steps)"),
        ("aosi_mean", "mean AoSI (steps, lower is better)", "ue_throughput_mbps", "UE throughput (Mbit/s)"),
    )
    for ax, (y, y_label, colour, colour_label) in zip(axes, panels, strict=True):
        points = ax.scatter(
            defined["aori_mean"],
            defined[y],
            c=defined[colour].to_numpy(dtype=float),
            cmap="viridis",
            s=np.where(front, 110, 40),
            edgecolors=np.where(front, "red", "none"),
            linewidths=1.8,
            zorder=2,
        )
        fig.colorbar(points, ax=ax, label=colour_label)
        # stagger the labels of the front, and skip those of points crowding an already labelled one
        ordered = defined[front].sort_values(["aori_mean", y])
        spans = [float(np.ptp(defined[c].to_numpy(dtype=float))) or 1.0 for c in ("aori_mean", y)]
        labelled: list[tuple[float, float]] = []
        for row in ordered.itertuples():
            at = (row.aori_mean / spans[0], getattr(row, y) / spans[1])
            if any(math.hypot(at[0] - u, at[1] - v) < 0.04 for u, v in labelled):
                continue
            i = len(labelled)
            labelled.append(at)
            ax.annotate(
                f"{row.bw_ue:g},{row.comp_ue:g}",
                (row.aori_mean, getattr(row, y)),
                textcoords="offset points",
                xytext=(7, 5 + 11 * (i % 3)),
                fontsize="small",
                color="darkred",
                arrowprops={"arrowstyle": "-", "color": "darkred", "lw": 0.5} if i % 3 else None,
            )
        crowded = int(front.sum()) - len(labelled)
        extra = f"; {crowded} crowded ones unlabelled" if crowded else ""
        handles = [
            ax.scatter(
                [],
                [],
                s=110,
                facecolors="none",
                edgecolors="red",
                linewidths=1.8,
                label=f"Pareto front (bw,comp){extra}",
            ),
            ax.scatter([], [], s=40, color="grey", label="other static split"),
        ]
        if agents is not None and len(agents):
            # one colour per agent, named in the legend (agents often sit too close for text labels)
            star_colors = ["black", "#d62728", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b"]
            for k, row in enumerate(agents.itertuples()):
                color = star_colors[k % len(star_colors)]
                handles.append(
                    ax.scatter(
                        row.aori_mean,
                        getattr(row, y),
                        marker="*",
                        s=300,
                        color=color,
                        zorder=3,
                        edgecolors="white",
                        label=str(row.Index),
                    )
                )
        ax.legend(handles=handles, loc="best", fontsize="small")
        ax.set(xlabel="mean AoRI (steps, lower is better)", ylabel=y_label)
        ax.grid(alpha=0.3)
    skipped = len(grid) - len(defined)
    note = f"; {skipped} without completed UE jobs not shown" if skipped else ""
    fig.suptitle(
        "Pareto front of the static splits (bw_ue, comp_ue): UE throughput ↑, mean AoRI ↓, mean AoSI ↓ — "
        f"{len(defined)} splits shown, {int(front.sum())} non-dominated{note}"
    )
    return _save(fig, path)


# --------------------------------------------------------------------------- the whole folder
def _agent_rows(summary: pd.DataFrame | None) -> pd.DataFrame | None:
    """Mean metrics of the ``agent:...`` policies of an evaluate summary (one row per agent)."""
    if summary is None:
        return None
    agents = summary[summary["policy"].astype(str).str.startswith("agent")]
    if agents.empty:
        return None
    table = agents.pivot(index="policy", columns="metric", values="mean")
    needed = [c for c, _ in PARETO_OBJECTIVES]
    return table.dropna(subset=needed) if set(needed) <= set(table.columns) else None


def _bind(function: Any, *bound: Any) -> Any:
    """``function`` with its leading arguments bound (the output path comes last)."""
    return lambda path: function(*bound, path)


def make_plots(results_dir: str | Path, out_dir: str | Path | None = None) -> PlotSet:
    """Every plot the files of ``results_dir`` allow, written to ``out_dir`` (default ``results_dir/plots``).

    Raises:
        ValueError: ``results_dir`` is not a folder, or holds none of the files a plot needs.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise ValueError(f"results folder {str(root)!r} does not exist: pass the --out folder of a metalore command")
    out = Path(out_dir) if out_dir is not None else root / "plots"
    job_logs = load_job_logs(root)
    episodes = _read_csv(root / "episodes.csv")
    evaluations = _read_csv(root / "evaluations.csv")
    summary = _read_csv(root / "summary.csv")
    grid = _read_csv(root / "grid.csv")
    steps = load_step_traces(root)
    if not (job_logs or any(t is not None for t in (episodes, evaluations, summary, grid, steps))):
        raise ValueError(
            f"results folder {str(root)!r} holds nothing to plot: expected job_log_*.csv, episodes.csv, steps.csv, "
            "evaluations.csv, summary.csv or grid.csv (from metalore run/evaluate/train/grid/compare)"
        )
    _require_figure()
    result = PlotSet()

    def attempt(name: str, available: bool, why_not: str, draw: Any) -> None:
        if available:
            result.paths.append(draw(out / name))
        else:
            result.skipped.append(f"{name}: {why_not}")

    has_ages = any(not _completed_ue(logs).empty for _, logs in job_logs.values())
    no_logs = "no job logs (run with 'metalore run --job-log')"
    attempt("age_cdf.png", has_ages, no_logs if not job_logs else "no completed UE job", _bind(plot_age_cdf, job_logs))
    attempt(
        "age_over_time.png",
        has_ages,
        no_logs if not job_logs else "no completed UE job",
        _bind(plot_age_over_time, job_logs),
    )
    attempt("queues.png", bool(job_logs), no_logs, _bind(plot_queues, job_logs))
    attempt(
        "rewards.png",
        episodes is not None and "reward" in episodes.columns,
        "no episodes.csv (from metalore run or evaluate)",
        lambda p: plot_rewards(episodes, p),
    )
    attempt(
        "training.png",
        evaluations is not None and "reward_mean" in evaluations.columns,
        "no evaluations.csv (from metalore train)",
        lambda p: plot_training(evaluations, p),
    )
    attempt(
        "summary.png",
        summary is not None,
        "no summary.csv (from metalore evaluate)",
        lambda p: plot_summary(summary, p),
    )
    pareto_ok = grid is not None and not grid.dropna(subset=[c for c, _ in PARETO_OBJECTIVES]).empty
    attempt(
        "pareto.png",
        pareto_ok,
        "no grid.csv with completed UE jobs (from metalore grid)",
        lambda p: plot_pareto(grid, p, _agent_rows(summary)),
    )
    attempt(
        "allocation.png",
        steps is not None,
        "no steps.csv (from metalore run or compare)",
        lambda p: plot_allocation(steps, p),
    )
    return result


def plot_results(results_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write every plot the files of ``results_dir`` allow to ``out_dir`` (default ``results_dir/plots``).

    Plots whose files are missing are skipped (:func:`make_plots` returns the notes).

    Returns:
        The paths of the PNGs written.

    Raises:
        ValueError: ``results_dir`` is missing or holds no usable file.
        ImportError: matplotlib is not installed.
    """
    return make_plots(results_dir, out_dir).paths


# --------------------------------------------------------------------------- command line
def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``metalore plot RESULTS_DIR [--out DIR]``."""
    parser.add_argument(
        "results_dir", metavar="RESULTS_DIR", help="a folder written by metalore run/evaluate/grid/train"
    )
    parser.add_argument("--out", metavar="DIR", help="folder for the PNGs (default: RESULTS_DIR/plots)")


def run_plot(args: argparse.Namespace) -> int:
    """``metalore plot``: write the plots, print one line per PNG and per skipped plot."""
    made = make_plots(args.results_dir, args.out)
    for path in made.paths:
        print(path)
    for note in made.skipped:
        print(f"skipped {note}")
    return 0
