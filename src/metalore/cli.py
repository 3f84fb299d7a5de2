"""The ``metalore`` command line: run a policy on a scenario, list presets, show configurations.

Usage::

    metalore run [--scenario P] [--config FILE] [--set KEY=VALUE ...] [--policy SPEC]
                 [--episodes N] [--seed S] [--out DIR] [--job-log] [--quiet]
    metalore evaluate --policy SPEC [--policy SPEC ...] [--scenario P] [--config FILE] [--set ...]
                      [--seeds N] [--seed-start S] [--workers N] [--backend local|ray]
                      [--ray-address ADDRESS] [--out DIR] [--quiet]
    metalore grid [--grid N] [--seeds N] [--seed-start S] [--workers N] [--backend local|ray]
                  [--ray-address ADDRESS] [--out DIR] [--quiet] [scenario options]
    metalore train [--steps N] [--envs N] [--seed S | --seeds S1,S2,...] [--algo ppo|sac] [--no-normalize]
                   [--out DIR] [--resume]
                   [--eval-every N] [--eval-seeds N] [--workers N] [--backend local|ray]
                   [--ray-address ADDRESS] [--quiet] [scenario options]
    metalore scenarios
    metalore show-config [--scenario P] [--config FILE] [--set KEY=VALUE ...]
    metalore --version

The scenario is the preset (``--scenario``, else the config file's ``preset:``, else
``paper``), with the config file's sections and then every ``--set`` merged over it.
``--set`` values are YAML scalars or flow collections (``--set ue.count=20``,
``--set 'bs.positions_m=[[100, 100]]'``); numbers such as ``50e6`` that YAML would read as
text are taken as numbers.

``run`` plays ``--episodes`` episodes, episode i with seed ``S + i`` for both the env and
the policy's own randomness (so any episode replays alone), and writes to ``--out``
(default ``runs/YYYYmmdd-HHMMSS`` under the current directory, local time, with ``-2``,
``-3``, ... appended if that folder exists; an existing ``--out`` folder is reused and
its files of the same names replaced):

* ``episodes.csv``: one row per episode (episode, seed, then every key of
  ``env.unwrapped.episode_summary()``); ``episodes.json``: the same plus their mean
  (``mean`` ignores episodes where a statistic is undefined, e.g. no completed UE job);
* ``steps.csv``: one row per step and base station: the split applied, the MEC queue lengths,
  the reward and the step's job counts and mean ages (columns in :mod:`metalore.trace`);
* ``scenario.yaml``: the full resolved configuration (``--config scenario.yaml`` re-runs it);
* ``run.json``: command, policy, seeds, package versions, start time, wall time;
* ``job_log_000.csv`` (and ``.parquet`` if pyarrow is installed) per episode when the job
  log is on (``--job-log``, or ``log.jobs: true`` in the configuration).

``evaluate`` plays every ``--policy`` on the same seeds ``S, S+1, ..., S+N-1`` (default
1000..1009; common random numbers), prints the mean and 95% Student-t confidence interval of
the main metrics per policy and writes ``episodes.csv`` (one row per policy and episode),
``summary.csv`` / ``summary.json`` (mean, std, CI of every metric), ``scenario.yaml`` and
``run.json``. ``grid`` evaluates every static split of an N x N grid on those seeds, writes
``grid.csv`` (one row per split), ``scenario.yaml`` and ``run.json`` and prints the best
split (the brute-force oracle). See ``docs/evaluation.md``. ``train`` trains a
Stable-Baselines3 agent (``metalore.training``; needs the ``sb3`` extra) and prints one line
per evaluation and a summary; play the result with ``--policy agent:DIR``. ``train --seeds
0,1,2`` trains one agent per seed into ``DIR/seed_S/`` and writes ``seeds.csv`` and
``seeds.json`` (final evaluations and their mean and CI across seeds).

``evaluate``, ``grid`` and ``train --seeds`` fan out over ``--workers`` local processes, or with
``--backend ray`` over a Ray cluster (a local one of ``--workers`` CPUs, default all cores, or
the one at ``--ray-address``; needs the ``ray`` extra). Their results do not depend on the
backend or the number of workers (``metalore.backends``).

Every file is written atomically. Invalid input prints one line ``metalore: error: ...``
to stderr and exits with status 2; an unexpected failure exits with status 1 (add
``--traceback`` before the command to see the Python traceback).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import yaml

from metalore import PRESET_IDS, __version__
from metalore.backends import BACKENDS
from metalore.config import PRESETS, ConfigError, Scenario, deep_merge, load_config_file, make_scenario
from metalore.env import MetaLoreEnv
from metalore.evaluation import HEADLINE_METRICS, best_split, evaluate, grid_search, summarize
from metalore.io import package_versions, write_csv, write_json, write_text
from metalore.joblog import write_job_log
from metalore.plots import add_plot_arguments, run_plot
from metalore.policies import POLICIES, PolicyError, make_policy
from metalore.report import add_report_arguments, run_report
from metalore.trace import STEP_COLUMNS, run_episode
from metalore.video import add_render_arguments, run_render

__all__ = ["UsageError", "build_parser", "main", "parse_set_options", "run_episode", "scenario_yaml"]

EXIT_USAGE = 2
EXIT_INTERNAL = 1
VERSIONED_PACKAGES = ("metalore", "numpy", "gymnasium", "numba", "pandas", "pyarrow")

# (summary key, column header, format) of the table printed by ``run``.
TABLE_COLUMNS = (
    ("reward", "reward", "{:.2f}"),
    ("aori_mean", "AoRI mean", "{:.2f}"),
    ("aori_p95", "AoRI p95", "{:.1f}"),
    ("aosi_mean", "AoSI mean", "{:.2f}"),
    ("aosi_p95", "AoSI p95", "{:.1f}"),
    ("late_fraction", "late", "{:.1%}"),
    ("ue_throughput_mbps", "UE Mbit/s", "{:.1f}"),
    ("sensor_throughput_mbps", "sensor Mbit/s", "{:.1f}"),
    ("dropped", "drops", "{:.0f}"),
)
SUMMARY_STATS = ("n", "mean", "std", "ci_low", "ci_high", "half_width")
DROP_KEYS = ("ue_dropped_uplink", "ue_dropped_mec", "sensor_dropped_uplink", "sensor_dropped_mec")


class UsageError(Exception):
    """Invalid command-line input (bad option, bad ``--set``, bad output folder)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports errors by raising, so ``main`` prints them on one line."""

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` instead of printing the usage block and exiting."""
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- scenario options
def _parse_value(item: str, text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        raise UsageError(f"--set {item!r}: value {text!r} is not a valid YAML value ({reason})") from None
    if isinstance(value, str):  # YAML 1.1 reads "50e6" as text; the user meant a number
        for number in (int, float):
            try:
                return number(value)
            except ValueError:
                pass
    return value


def parse_set_options(items: Sequence[str]) -> dict[str, Any]:
    """Turn ``["ue.count=20", "log.jobs=true"]`` into the nested overrides ``{"ue": {"count": 20}, ...}``."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(part.strip() for part in parts):
            raise UsageError(f"--set {item!r} is invalid: expected KEY=VALUE with a dotted key, e.g. --set ue.count=20")
        nested: Any = _parse_value(item, text.strip())
        for part in reversed(parts):
            nested = {part.strip(): nested}
        overrides = deep_merge(overrides, nested)
    return overrides


def _add_scenario_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        choices=list(PRESETS),
        default=None,
        metavar="PRESET",
        help=f"preset to start from: {', '.join(PRESETS)} (default: the config file's 'preset', else paper)",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML or TOML file merged over the preset")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one dotted config key (repeatable), e.g. --set ue.count=20 --set log.jobs=true",
    )


def resolve_scenario(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> tuple[Scenario, dict[str, Any]]:
    """The scenario of ``--scenario``/``--config``/``--set`` (and ``extra`` on top), and the overrides used."""
    preset = args.scenario
    overrides: dict[str, Any] = {}
    if args.config:
        file_preset, overrides = load_config_file(args.config)
        preset = preset or file_preset
    overrides = deep_merge(overrides, parse_set_options(args.set))
    if extra:
        overrides = deep_merge(overrides, extra)
    return make_scenario(preset or "paper", overrides), overrides


class _ConfigDumper(yaml.SafeDumper):
    """Block-style mappings, flow-style lists of values: ``positions_m: [[100.0, 100.0]]`` stays on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = not any(isinstance(item, dict) for item in data)  # lists of mappings (traffic phases) stay blocks
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_ConfigDumper.add_representer(list, _represent_list)


def scenario_yaml(scenario: Scenario) -> str:
    """The full resolved configuration as YAML, loadable again with ``--config``."""
    header = (
        f"# MetaLore scenario: preset '{scenario.name}' with every value resolved.\n"
        "# Re-run with: metalore run --config scenario.yaml\n"
    )
    body = yaml.dump({"preset": scenario.name, **scenario.to_dict()}, Dumper=_ConfigDumper, sort_keys=False)
    return header + body


# --------------------------------------------------------------------------- running
def _mean_row(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of every metric over the episodes where it is defined (NaN where it never is)."""
    mean: dict[str, float] = {}
    for key in rows[0]:
        if key in ("episode", "seed"):
            continue
        values = [float(r[key]) for r in rows if not math.isnan(float(r[key]))]
        mean[key] = sum(values) / len(values) if values else float("nan")
    return mean


def _format_table(rows: list[dict[str, Any]], mean: dict[str, float]) -> str:
    headers = ["episode", "seed", *(header for _, header, _ in TABLE_COLUMNS)]

    def cells(label: str, seed: str, metrics: dict[str, Any]) -> list[str]:
        values = {**metrics, "dropped": sum(float(metrics[k]) for k in DROP_KEYS)}
        out = [label, seed]
        for key, _, fmt in TABLE_COLUMNS:
            value = float(values[key])
            out.append("-" if math.isnan(value) else fmt.format(value))
        return out

    body = [cells(str(r["episode"]), str(r["seed"]), r) for r in rows]
    if len(rows) > 1:
        body.append(cells("mean", "", mean))
    widths = [max(len(line[i]) for line in [headers, *body]) for i in range(len(headers))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in [headers, *body]]
    return "\n".join(lines)


def _default_out_dir() -> Path:
    base = Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _prepare_out_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {str(path)!r} exists and is not a folder: choose another path")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _versions() -> dict[str, str | None]:
    found = package_versions(VERSIONED_PACKAGES)
    found["metalore"] = found["metalore"] or __version__
    return found


def _write_job_logs(env: MetaLoreEnv, out: Path, episode: int) -> list[str]:
    frame = env.job_log()
    names = [f"job_log_{episode:03d}.csv"]
    if importlib.util.find_spec("pyarrow") is not None:
        names.append(f"job_log_{episode:03d}.parquet")
    for name in names:
        write_job_log(frame, out / name)
    if frame.attrs.get("rows_dropped"):
        print(
            f"metalore: warning: episode {episode}: the job log kept the last {len(frame)} jobs and dropped "
            f"{frame.attrs['rows_dropped']} older ones; raise log.max_jobs to keep all",
            file=sys.stderr,
        )
    return names


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``metalore run``: play episodes of a policy, print a summary table, write the results folder."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    scenario, overrides = resolve_scenario(args, {"log": {"jobs": True}} if args.job_log else None)
    first_seed = args.seed if args.seed is not None else int(scenario.config["episode"]["seed"])
    seeds = [first_seed + i for i in range(args.episodes)]
    env = MetaLoreEnv(scenario)
    policy = make_policy(args.policy, env, seed=first_seed)
    out = _prepare_out_dir(Path(args.out) if args.out else _default_out_dir())
    log_jobs = bool(scenario.config["log"]["jobs"])

    from tqdm import tqdm  # imported here: only `run` needs it (keeps `--version` and `scenarios` quick)

    rows: list[dict[str, Any]] = []
    trace: list[dict[str, Any]] = []
    files = ["episodes.csv", "episodes.json", "steps.csv", "scenario.yaml", "run.json"]
    show_progress = not args.quiet and sys.stderr.isatty()
    with tqdm(total=len(seeds) * scenario.steps, unit="step", file=sys.stderr, disable=not show_progress) as bar:
        for episode, seed in enumerate(seeds):
            bar.set_description(f"episode {episode + 1}/{len(seeds)}")
            summary = run_episode(env, policy, seed, on_step=bar.update, trace=trace, episode=episode)
            rows.append({"episode": episode, "seed": seed, **summary})
            if log_jobs:
                files += _write_job_logs(env, out, episode)

    import pandas as pd  # idem

    mean = _mean_row(rows)
    write_csv(out / "episodes.csv", pd.DataFrame(rows))
    write_json(out / "episodes.json", {"episodes": rows, "mean": mean})
    write_csv(out / "steps.csv", pd.DataFrame(trace, columns=list(STEP_COLUMNS)))
    write_text(out / "scenario.yaml", scenario_yaml(scenario))
    write_json(
        out / "run.json",
        {
            **_run_record(args, argv, scenario, overrides, out, started, clock),
            "policy": policy.spec,
            "policy_arg": args.policy,
            "episodes": len(seeds),
            "seeds": seeds,
            "job_log": log_jobs,
            "files": files,
        },
    )
    if args.quiet:
        print(out)
    else:
        print(f"scenario {scenario.name}, policy {policy.spec}, {len(seeds)} episode(s) of {scenario.steps} steps")
        print(_format_table(rows, mean))
        print(f"results: {out}")
    return 0


def cmd_scenarios(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``metalore scenarios``: one line per preset with its sizes."""
    headers = ["preset", "gymnasium id", "BS", "UEs", "sensors", "steps", "area (m)", "MHz/BS", "units/s/BS", "traffic"]
    body = []
    for name in PRESETS:
        s = make_scenario(name)
        cfg = s.config
        phases = len(cfg["traffic"]["phases"])
        body.append(
            [
                name,
                PRESET_IDS.get(name, "-"),
                str(s.num_bs),
                str(s.num_ues),
                str(s.num_sensors),
                str(s.steps),
                f"{cfg['area']['width_m']:g} x {cfg['area']['height_m']:g}",
                f"{cfg['bs']['bandwidth_hz'] / 1e6:g}",
                f"{cfg['bs']['compute_units_per_s']:g}",
                f"{phases} phases" if phases else "steady",
            ]
        )
    widths = [max(len(line[i]) for line in [headers, *body]) for i in range(len(headers))]
    for line in [headers, *body]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return 0


def cmd_show_config(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``metalore show-config``: print the resolved configuration as YAML."""
    scenario, _ = resolve_scenario(args)
    print(scenario_yaml(scenario), end="")
    return 0


# --------------------------------------------------------------------------- evaluate and grid
def _run_record(
    args: argparse.Namespace,
    argv: Sequence[str],
    scenario: Scenario,
    overrides: dict[str, Any],
    out: Path,
    started: datetime,
    clock: float,
) -> dict[str, Any]:
    """What every results folder's run.json holds: the command, scenario, timing and versions."""
    return {
        "command": shlex.join(["metalore", *argv]),
        "argv": list(argv),
        "scenario": scenario.name,
        "config_file": str(Path(args.config).resolve()) if args.config else None,
        "overrides": overrides,
        "out": str(out.resolve()),
        "started_at": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - clock, 3),
        "versions": _versions(),
        "platform": platform.platform(),
    }


def _eval_seeds(args: argparse.Namespace) -> list[int]:
    return [args.seed_start + i for i in range(args.seeds)]


def _mean_ci_table(summary: Any) -> str:
    """One line per policy: ``mean ± half-width`` of the headline metrics (``±`` omitted when undefined)."""
    formats = {key: fmt for key, _, fmt in TABLE_COLUMNS}
    headers = ["policy", "episodes", *(header for _, header, _ in TABLE_COLUMNS)]
    body = []
    for policy, rows in summary.groupby("policy", sort=False):
        stats = rows.set_index("metric")
        line = [str(policy), str(int(stats.loc["reward", "n"]))]
        for key in HEADLINE_METRICS:
            mean, half = float(stats.loc[key, "mean"]), float(stats.loc[key, "half_width"])
            cell = "-" if math.isnan(mean) else formats[key].format(mean)
            line.append(cell if math.isnan(half) else f"{cell} ± {formats[key].format(half)}")
        body.append(line)
    widths = [max(len(line[i]) for line in [headers, *body]) for i in range(len(headers))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [headers, *body]
    )


def _summary_json(summary: Any, episodes: Any, seeds: list[int]) -> dict[str, Any]:
    policies: dict[str, Any] = {}
    for policy, rows in summary.groupby("policy", sort=False):
        spec = episodes.loc[episodes["policy"] == policy, "spec"].iloc[0]
        metrics = {row.metric: {k: getattr(row, k) for k in SUMMARY_STATS} for row in rows.itertuples()}
        policies[str(policy)] = {"spec": spec, "metrics": metrics}
    return {
        "confidence": 0.95,
        "interval": "Student t over episodes: mean ± t(0.975, n-1) * std / sqrt(n), std with ddof=1",
        "seeds": seeds,
        "policies": policies,
    }


def cmd_evaluate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``metalore evaluate``: every policy on the same seeds; mean ± 95% CI per policy; results folder."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    specs = [spec.strip() for spec in args.policy or []]
    if not specs:
        raise UsageError(
            "no policy given: pass --policy SPEC once per policy, e.g. --policy random --policy twin_first"
        )
    duplicates = sorted({spec for spec in specs if specs.count(spec) > 1})
    if duplicates:
        raise UsageError(f"--policy {duplicates[0]!r} is given twice: list each policy once")
    scenario, overrides = resolve_scenario(args)
    seeds = _eval_seeds(args)
    for spec in specs:  # reject a bad spec before any episode is played (brute_force is checked when built)
        if not spec.startswith("brute_force"):
            make_policy(spec, scenario, seed=seeds[0])
    out = _prepare_out_dir(Path(args.out) if args.out else _default_out_dir())
    episodes = evaluate(
        {spec: spec for spec in specs},
        scenario,
        seeds,
        backend=args.backend,
        workers=args.workers,
        address=args.ray_address,
    )
    summary = summarize(episodes)
    write_csv(out / "episodes.csv", episodes)
    write_csv(out / "summary.csv", summary)
    write_json(out / "summary.json", _summary_json(summary, episodes, seeds))
    write_text(out / "scenario.yaml", scenario_yaml(scenario))
    write_json(
        out / "run.json",
        {
            **_run_record(args, argv, scenario, overrides, out, started, clock),
            "policies": specs,
            "seeds": seeds,
            "workers": args.workers,
            "backend": args.backend,
            "ray_address": args.ray_address,
            "files": ["episodes.csv", "summary.csv", "summary.json", "scenario.yaml", "run.json"],
        },
    )
    if args.quiet:
        print(out)
    else:
        print(
            f"scenario {scenario.name}, {len(specs)} policies x {len(seeds)} episodes of {scenario.steps} steps "
            f"(seeds {seeds[0]}..{seeds[-1]}); mean ± 95% CI (Student t)"
        )
        print(_mean_ci_table(summary))
        for spec, chosen in dict(zip(episodes["policy"], episodes["spec"], strict=True)).items():
            if spec.startswith("brute_force"):
                print(f"{spec} plays {chosen}")
        print(f"results: {out}")
    return 0


def cmd_grid(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``metalore grid``: every static split of an N x N grid on the same seeds; the best one."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    scenario, overrides = resolve_scenario(args)
    seeds = _eval_seeds(args)
    out = _prepare_out_dir(Path(args.out) if args.out else _default_out_dir())
    table = grid_search(
        scenario, args.grid, seeds, workers=args.workers, backend=args.backend, address=args.ray_address
    )
    bw_ue, comp_ue = best_split(table)
    write_csv(out / "grid.csv", table)
    write_text(out / "scenario.yaml", scenario_yaml(scenario))
    write_json(
        out / "run.json",
        {
            **_run_record(args, argv, scenario, overrides, out, started, clock),
            "grid": args.grid,
            "seeds": seeds,
            "workers": args.workers,
            "backend": args.backend,
            "ray_address": args.ray_address,
            "best": {"bw_ue": bw_ue, "comp_ue": comp_ue, "spec": f"static:{bw_ue:g},{comp_ue:g}"},
            "files": ["grid.csv", "scenario.yaml", "run.json"],
        },
    )
    if args.quiet:
        print(out)
        return 0
    top = table.sort_values(["reward", "bw_ue", "comp_ue"], ascending=[False, True, True], kind="stable").head(5)
    print(
        f"scenario {scenario.name}, {len(table)} static splits x {len(seeds)} episodes of {scenario.steps} steps "
        f"(seeds {seeds[0]}..{seeds[-1]}); top 5 by mean episode reward:"
    )
    print(
        top[["bw_ue", "comp_ue", "reward", "reward_ci95", "aori_mean", "aosi_mean", "late_fraction"]].to_string(
            index=False, float_format=lambda v: f"{v:.3g}"
        )
    )
    print(f"best split: static:{bw_ue:g},{comp_ue:g} (mean reward {table['reward'].max():.2f})")
    print(f"results: {out}")
    return 0


def _add_evaluation_options(parser: argparse.ArgumentParser, default_seeds: int) -> None:
    _add_scenario_options(parser)
    parser.add_argument(
        "--seeds",
        type=_count(1, 100_000),
        default=default_seeds,
        metavar="N",
        help=f"episodes (default: {default_seeds})",
    )
    parser.add_argument(
        "--seed-start",
        type=_count(0, 2**62),
        default=1000,
        metavar="S",
        help="episode seeds are S, S+1, ..., S+N-1 for every policy (default: 1000)",
    )
    _add_backend_options(parser, "episodes")
    parser.add_argument("--out", metavar="DIR", help="results folder (default: runs/YYYYmmdd-HHMMSS)")
    parser.add_argument("--quiet", action="store_true", help="no table; print only the results folder")


def _add_backend_options(parser: argparse.ArgumentParser, work: str) -> None:
    parser.add_argument(
        "--workers",
        type=_count(1, 1024),
        default=None,
        metavar="N",
        help=f"parallel workers for the {work}: local processes (default: 1, in-process) or, with --backend ray,"
        " the CPUs of the local Ray cluster (default: all cores)",
    )
    parser.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default="local",
        help="where to run: local processes or a Ray cluster (needs the ray extra); same results (default: local)",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="with --backend ray: the cluster to connect to ('auto', HOST:PORT or ray://HOST:PORT;"
        " default: start a local one)",
    )


# --------------------------------------------------------------------------- parser and entry point
def _count(minimum: int, maximum: int = 2**63 - 1) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"expected an integer <= {maximum}, got {value}")
        return value

    return parse


def _seed_list(text: str) -> list[int]:
    parse = _count(0, 2**62)
    seeds = [parse(item.strip()) for item in text.split(",")]
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds {text!r} repeat a seed: list each seed once, e.g. 0,1,2")
    return seeds


def _train_seeds(args: argparse.Namespace, scenario: Scenario, out: Path) -> int:
    """``metalore train --seeds``: one agent per seed, on the chosen backend; print a summary across seeds."""
    from metalore.training import seed_folder, train_seeds  # imported here: it needs the optional sb3 extra

    clock = time.perf_counter()
    if not args.quiet:
        print(
            f"training {args.algo} on scenario {scenario.name} for {args.steps} steps with {args.envs} envs,"
            f" seeds {','.join(map(str, args.seeds))} on backend {args.backend} -> {out}"
        )
    summary = train_seeds(
        scenario,
        out,
        args.steps,
        args.seeds,
        backend=args.backend,
        workers=args.workers,
        address=args.ray_address,
        n_envs=args.envs,
        algo=args.algo,
        eval_every=args.eval_every,
        eval_seeds=args.eval_seeds,
        resume=args.resume,
        normalize=not args.no_normalize,
    )
    if not args.quiet:
        for row in summary["final_evaluations"]:
            print(f"seed {row['seed']}: eval reward {row['reward_mean']:.2f} ± {row['reward_ci95']:.2f}")
    reward = summary["across_seeds"]["reward"]
    spread = "" if math.isnan(reward["half_width"]) else f" ± {reward['half_width']:.2f} (95% CI across seeds)"
    first = seed_folder(out, args.seeds[0])
    print(
        f"trained {args.algo} on {len(args.seeds)} seeds in {time.perf_counter() - clock:.0f} s:"
        f" mean final eval reward {reward['mean']:.2f}{spread}; agents: --policy agent:{first} (one folder per seed);"
        f" summary: {out / 'seeds.csv'}"
    )
    return 0


def cmd_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``metalore train``: train an SB3 agent (see ``metalore.training``); print progress and a summary."""
    if args.resume and not args.out:
        raise UsageError("--resume needs --out DIR: the folder of the run to continue")
    if args.seeds is not None and args.seed is not None:
        raise UsageError("--seed and --seeds exclude each other: --seed S trains one agent, --seeds 0,1,2 several")
    if args.seeds is None and (args.backend != "local" or args.workers is not None or args.ray_address):
        raise UsageError("--workers, --backend and --ray-address spread several seeds: add --seeds, e.g. --seeds 0,1,2")
    scenario, _ = resolve_scenario(args)
    out = Path(args.out) if args.out else _default_out_dir()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} exists and is not a folder: choose another path")

    if args.seeds is not None:
        return _train_seeds(args, scenario, out)

    from metalore.training import train  # imported here: it needs the optional sb3 extra

    clock = time.perf_counter()
    if not args.quiet:
        print(f"training {args.algo} on scenario {scenario.name} for {args.steps} steps with {args.envs} envs -> {out}")
    metadata = train(
        scenario,
        out,
        args.steps,
        n_envs=args.envs,
        seed=args.seed or 0,
        algo=args.algo,
        eval_every=args.eval_every,
        eval_seeds=args.eval_seeds,
        resume=args.resume,
        normalize=not args.no_normalize,
        progress=not args.quiet,
    )
    final = metadata["final_evaluation"]
    print(
        f"trained {args.algo} for {metadata['total_steps']} steps in {time.perf_counter() - clock:.0f} s:"
        f" eval reward {final['reward_mean']:.2f} ± {final['reward_ci95']:.2f} on {final['episodes']} seeds;"
        f" agent: --policy agent:{out}"
    )
    return 0


def cmd_compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``metalore compare``: the published experiments (see ``metalore.experiments``)."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    scenario, overrides = resolve_scenario(args)
    dynamic = make_scenario(args.dynamic_scenario, parse_set_options(args.dynamic_set))

    from metalore.experiments import BUDGETS, check_dynamic, compare  # imported here: it needs sb3 and render

    check_dynamic(dynamic)
    out = _prepare_out_dir(Path(args.out) if args.out else _default_out_dir())
    budget = BUDGETS["quick" if args.quick else "full"].replace(
        grid=args.grid,
        eval_seeds=args.eval_seeds,
        train_steps=args.train_steps,
        dynamic_train_steps=args.dynamic_train_steps,
        train_seeds=args.train_seeds,
        n_envs=args.envs,
    )
    record = compare(
        out,
        scenario,
        dynamic,
        budget,
        quiet=args.quiet,
        plots=not args.no_plots,
        backend=args.backend,
        workers=args.workers,
        address=args.ray_address,
    )
    write_json(
        out / "run.json",
        {
            **_run_record(args, argv, scenario, overrides, out, started, clock),
            "dynamic_scenario": dynamic.name,
            "dynamic_overrides": parse_set_options(args.dynamic_set),
            "budget": record["budget"],
            "files": [*record["files"], "run.json"],
        },
    )
    print(f"results: {out / 'results.md'}")
    return 0


def cmd_plot(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``metalore plot``: PNG plots from a results folder (see ``metalore.plots``)."""
    return run_plot(args)


def cmd_report(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``metalore report``: one self-contained HTML page from a results folder (see ``metalore.report``)."""
    return run_report(args)


def cmd_render(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``metalore render``: record an episode as a video (see ``metalore.video``)."""
    scenario, _ = resolve_scenario(args)
    return run_render(args, scenario)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``metalore`` command."""
    parser = _Parser(prog="metalore", description="MetaLore: AoI-aware orchestration simulator.")
    parser.add_argument("--version", action="version", version=f"metalore {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the Python traceback of unexpected errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    policies = "; ".join(f"{entry.usage}: {entry.summary}" for entry in POLICIES.values())
    run = commands.add_parser(
        "run",
        help="run a policy for some episodes and write the results",
        description="Run a policy on a scenario, print per-episode metrics and write a results folder.",
        epilog="example: metalore run --scenario small --policy static:0.5,0.6 --episodes 3 --set episode.steps=50",
    )
    _add_scenario_options(run)
    run.add_argument("--policy", default="random", metavar="SPEC", help=f"policy (default: random). {policies}")
    run.add_argument("--episodes", type=_count(1), default=1, metavar="N", help="episodes (default: 1)")
    run.add_argument(
        "--seed",
        type=_count(0, 2**62),  # episode seeds S+i stay inside int64
        default=None,
        metavar="S",
        help="seed of episode 0; episode i uses S+i (default: the scenario's episode.seed)",
    )
    run.add_argument("--out", metavar="DIR", help="results folder (default: runs/YYYYmmdd-HHMMSS)")
    run.add_argument("--job-log", action="store_true", help="record and write the per-job log of each episode")
    run.add_argument("--quiet", action="store_true", help="no progress bar or table; print only the results folder")
    run.set_defaults(handler=cmd_run)

    evaluate_cmd = commands.add_parser(
        "evaluate",
        help="compare policies on the same seeds (mean and 95%% confidence interval)",
        description="Play every policy on the same episode seeds; print mean ± 95% CI per policy; write results.",
        epilog="example: metalore evaluate --policy random --policy static:0.5,0.5 --policy twin_first --seeds 10",
    )
    evaluate_cmd.add_argument(
        "--policy", action="append", metavar="SPEC", help=f"a policy to evaluate (repeat for each). {policies}"
    )
    _add_evaluation_options(evaluate_cmd, default_seeds=10)
    evaluate_cmd.set_defaults(handler=cmd_evaluate)

    grid = commands.add_parser(
        "grid",
        help="evaluate every static split of a grid; print the best (brute-force oracle)",
        description="Evaluate every static split (bw_ue, comp_ue) of an N x N grid on the same seeds.",
        epilog="example: metalore grid --grid 11 --seeds 5",
    )
    grid.add_argument(
        "--grid", type=_count(2, 101), default=11, metavar="N", help="points per axis, i/(N-1) (default: 11)"
    )
    _add_evaluation_options(grid, default_seeds=5)
    grid.set_defaults(handler=cmd_grid)

    train_cmd = commands.add_parser(
        "train",
        help="train a Stable-Baselines3 agent (needs the sb3 extra)",
        description="Train PPO or SAC on a scenario; write TensorBoard logs, evaluations, checkpoints and the agent.",
        epilog="example: metalore train --scenario toy --steps 60000 --out runs/toy-ppo",
    )
    _add_scenario_options(train_cmd)
    train_cmd.add_argument("--steps", type=_count(1), default=100_000, metavar="N", help="env steps (default: 100000)")
    train_cmd.add_argument("--envs", type=_count(1, 4096), default=8, metavar="N", help="sub-envs (default: 8)")
    train_cmd.add_argument("--seed", type=_count(0, 2**62), default=None, metavar="S", help="seed (default: 0)")
    train_cmd.add_argument(
        "--seeds",
        type=_seed_list,
        metavar="S1,S2,...",
        help="train one agent per seed into --out/seed_S/, plus seeds.csv and seeds.json (instead of --seed)",
    )
    train_cmd.add_argument("--algo", choices=["ppo", "sac"], default="ppo", help="algorithm (default: ppo)")
    train_cmd.add_argument(
        "--no-normalize",
        action="store_true",
        help="train on raw observations and rewards (default: running-mean/variance normalization, VecNormalize)",
    )
    train_cmd.add_argument("--out", metavar="DIR", help="output folder (default: runs/YYYYmmdd-HHMMSS)")
    train_cmd.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    train_cmd.add_argument(
        "--eval-every", type=_count(1), default=10_000, metavar="N", help="steps between evaluations (default: 10000)"
    )
    train_cmd.add_argument(
        "--eval-seeds", type=_count(1, 10_000), default=10, metavar="N", help="held-out seeds 1000.. (default: 10)"
    )
    _add_backend_options(train_cmd, "seeds")
    train_cmd.add_argument("--quiet", action="store_true", help="print only the final summary line")
    train_cmd.set_defaults(handler=cmd_train)

    scenarios = commands.add_parser("scenarios", help="list the scenario presets and their sizes")
    scenarios.set_defaults(handler=cmd_scenarios)

    render = commands.add_parser(
        "render",
        help="record one episode as a GIF (and MP4 with an encoder)",
        description="Record one episode of a policy as an animated GIF (.mp4 needs imageio-ffmpeg).",
        epilog="example: metalore render --policy twin_first --out episode.gif",
    )
    _add_scenario_options(render)
    add_render_arguments(render)
    render.set_defaults(handler=cmd_render)

    compare_cmd = commands.add_parser(
        "compare",
        help="the published experiments: Pareto front, PPO vs the best static split, coupling, dynamic traffic",
        description=(
            "Run the four experiments of MODEL.md section 7 on fixed evaluation seeds and write plots (PNG), "
            "results.md and the CSV/JSON behind them. --quick takes about 2 minutes on 2 cores; the default "
            "(full) budget about 12 minutes with --workers 2. Budget fields can be overridden one by one."
        ),
        epilog="example: metalore compare --quick --out runs/compare",
    )
    _add_scenario_options(compare_cmd)
    compare_cmd.add_argument(
        "--dynamic-scenario",
        choices=list(PRESETS),
        default="dynamic",
        metavar="PRESET",
        help="preset with traffic phases for experiment 4 (default: dynamic)",
    )
    compare_cmd.add_argument(
        "--dynamic-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key of the dynamic scenario (repeatable), e.g. --dynamic-set episode.steps=300",
    )
    compare_cmd.add_argument("--quick", action="store_true", help="the quick budget (a few minutes on 2 cores)")
    for flag, minimum, what in (
        ("--grid", 2, "points per axis of the static grid"),
        ("--eval-seeds", 2, "evaluation episodes per policy and split"),
        ("--train-steps", 1, "PPO steps per agent on the main scenario"),
        ("--dynamic-train-steps", 1, "PPO steps per agent on the dynamic scenario"),
        ("--train-seeds", 1, "PPO agents per scenario"),
        ("--envs", 1, "sub-envs per PPO agent"),
    ):
        compare_cmd.add_argument(
            flag, type=_count(minimum), default=None, metavar="N", help=f"{what} (overrides the budget)"
        )
    _add_backend_options(compare_cmd, "grid, evaluations and training seeds")
    compare_cmd.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib needed)")
    compare_cmd.add_argument("--out", metavar="DIR", help="results folder (default: runs/YYYYmmdd-HHMMSS)")
    compare_cmd.add_argument("--quiet", action="store_true", help="no progress lines")
    compare_cmd.set_defaults(handler=cmd_compare)

    plot = commands.add_parser(
        "plot",
        help="plots (PNG) from a results folder",
        description="Write every plot a results folder's files allow (run, evaluate, grid, train).",
        epilog="example: metalore plot runs/eval --out figures",
    )
    add_plot_arguments(plot)
    plot.set_defaults(handler=cmd_plot)

    report = commands.add_parser(
        "report",
        help="a self-contained HTML report of a results folder",
        description="Gather a results folder's tables, plots, scenario and versions into one HTML page.",
        epilog="example: metalore report runs/eval",
    )
    add_report_arguments(report)
    report.set_defaults(handler=cmd_report)

    show = commands.add_parser("show-config", help="print the resolved configuration as YAML")
    _add_scenario_options(show)
    show.set_defaults(handler=cmd_show_config)
    return parser


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print("metalore: error: " + " ".join(str(message).split()), file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``metalore`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version print and exit 0
        return exc.code if isinstance(exc.code, int) else 0
    except UsageError as exc:
        return _fail(str(exc))
    try:
        return args.handler(args, argv)
    except (UsageError, ConfigError, PolicyError, ImportError, ValueError) as exc:  # user input or a missing extra
        return _fail(str(exc))
    except OSError as exc:
        target = f" {exc.filename!r}" if exc.filename else ""
        return _fail(f"cannot access{target}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        print("metalore: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.traceback:
            raise
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (this is a bug; rerun with 'metalore --traceback ...')",
            EXIT_INTERNAL,
        )
