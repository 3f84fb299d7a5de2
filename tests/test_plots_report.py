"""Plots and the HTML report of results folders written by the real CLI commands."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from metalore.cli import main  # noqa: E402  (after the optional-dependency skips)
from metalore.plots import (  # noqa: E402
    add_plot_arguments,
    make_plots,
    pareto_front,
    plot_results,
    queue_lengths,
    run_plot,
)
from metalore.report import add_report_arguments, build_report, format_number, run_report  # noqa: E402

SHORT = ["--set", "episode.steps=15", "--quiet"]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("results")
    commands = {
        "run": ["run", "--job-log", "--episodes", "2"],
        "evaluate": ["evaluate", "--policy", "random", "--policy", "static:0.5,0.5", "--seeds", "3"],
        "grid": ["grid", "--grid", "3", "--seeds", "2"],
    }
    for name, argv in commands.items():
        assert main([*argv, *SHORT, "--out", str(root / name)]) == 0
    return {name: root / name for name in commands}


def assert_readable_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 10_000, path
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert pixels.std() > 10, f"{path.name} looks blank"
    assert (pixels < 128).mean() > 0.005, f"{path.name} has almost no ink"


def test_run_folder_gives_age_queue_and_reward_plots(folders: dict[str, Path], tmp_path: Path) -> None:
    made = make_plots(folders["run"], tmp_path)
    assert [p.name for p in made.paths] == [
        "age_cdf.png",
        "age_over_time.png",
        "queues.png",
        "rewards.png",
        "allocation.png",
    ]
    for path in made.paths:
        assert path.parent == tmp_path
        assert_readable_png(path)
    notes = " ".join(made.skipped)
    assert "training.png" in notes and "pareto.png" in notes and "allocation" not in notes


def test_evaluate_and_grid_folders_give_summary_and_pareto(folders: dict[str, Path]) -> None:
    evaluated = plot_results(folders["evaluate"])
    assert [p.name for p in evaluated] == ["rewards.png", "summary.png"]
    assert all(p.parent == folders["evaluate"] / "plots" for p in evaluated)
    grid = plot_results(folders["grid"])
    assert [p.name for p in grid] == ["pareto.png"]
    for path in [*evaluated, *grid]:
        assert_readable_png(path)


def test_pareto_plot_marks_agents_of_an_evaluate_summary(folders: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "grid_and_agent"
    shutil.copytree(folders["grid"], folder)
    summary = pd.read_csv(folders["evaluate"] / "summary.csv")
    summary["policy"] = summary["policy"].replace({"static:0.5,0.5": "agent:runs/ppo"})
    summary.to_csv(folder / "summary.csv", index=False)
    plain = plot_results(folders["grid"], tmp_path / "plain")[0]
    marked = plot_results(folder, tmp_path / "marked")
    assert [p.name for p in marked] == ["summary.png", "pareto.png"]
    assert_readable_png(marked[1])
    with Image.open(plain) as a, Image.open(marked[1]) as b:
        assert np.asarray(a).shape == np.asarray(b).shape
        assert not np.array_equal(np.asarray(a), np.asarray(b)), "the agent star is missing"


def test_pareto_front_known_answer() -> None:
    table = pd.DataFrame(
        {
            "ue_throughput_mbps": [10.0, 8.0, 10.0, 5.0, 9.0],
            "aori_mean": [2.0, 1.0, 3.0, 4.0, np.nan],
            "aosi_mean": [5.0, 5.0, 5.0, 1.0, 0.0],
        }
    )
    # row 2 is dominated by row 0 (same throughput and AoSI, worse AoRI); row 4 is undefined.
    assert pareto_front(table).tolist() == [True, True, False, True, False]


def test_queue_reconstruction_known_answer() -> None:
    na = pd.NA
    log = pd.DataFrame(
        {
            "kind": ["ue", "ue", "sensor", "sensor", "ue"],
            "t_generated": [0, 1, 0, 2, 2],
            "t_tx_done": pd.array([2, na, 1, na, 2], dtype="Int64"),
            "t_proc_done": pd.array([3, na, na, na, na], dtype="Int64"),
            "drop_reason": ["", "", "", "uplink_queue_full", "mec_queue_full"],
        }
    )
    queues = queue_lengths(log, steps=4)
    assert queues["step"].tolist() == [0, 1, 2, 3]
    # UE: job 0 uplink [0, 2) then MEC [2, 3); job 1 uplink [1, end); job 4 uplink [2, 2), dropped at the MEC.
    assert queues["ue_uplink"].tolist() == [1, 2, 1, 1]
    assert queues["ue_mec"].tolist() == [0, 0, 1, 0]
    # sensor: job 2 uplink [0, 1) then MEC to the end; job 3 dropped at its uplink queue.
    assert queues["sensor_uplink"].tolist() == [1, 0, 0, 0]
    assert queues["sensor_mec"].tolist() == [0, 1, 1, 1]


def test_report_is_self_contained_with_tables_plots_and_scenario(folders: dict[str, Path], tmp_path: Path) -> None:
    for name, folder in folders.items():
        out = build_report(folder, tmp_path / f"{name}.html")
        page = out.read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page loads something remote"
        assert "<link" not in page and "<script" not in page
        assert '<img alt="' in page and 'src="data:image/png;base64,' in page
        assert "preset: paper" in page and "steps: 15" in page  # scenario.yaml
        assert '"versions"' in page and "numpy" in page  # run.json
    run_page = (tmp_path / "run.html").read_text(encoding="utf-8")
    episodes = pd.read_csv(folders["run"] / "episodes.csv")
    for value in episodes["reward"]:
        assert f"<td>{format_number(value)}</td>" in run_page
    assert run_page.count("data:image/png;base64,") == 5
    eval_page = (tmp_path / "evaluate.html").read_text(encoding="utf-8")
    summary = pd.read_csv(folders["evaluate"] / "summary.csv").set_index(["policy", "metric"])
    reward = summary.loc[("static:0.5,0.5", "reward")]
    assert f"{format_number(reward['mean'])} ± {format_number(reward['half_width'])}" in eval_page
    grid_page = (tmp_path / "grid.html").read_text(encoding="utf-8")
    grid = pd.read_csv(folders["grid"] / "grid.csv")
    assert format_number(grid["reward"].max()) in grid_page and "class=front" in grid_page


def test_report_default_path_and_number_format(folders: dict[str, Path]) -> None:
    out = build_report(folders["grid"])
    assert out == folders["grid"] / "report.html" and out.is_file()
    assert [format_number(v) for v in (3, 2.0, 571.80417, 0.0123456, float("nan"), "random")] == [
        "3",
        "2",
        "571.8",
        "0.01235",
        "–",
        "random",
    ]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); no browser check")
def test_report_renders_in_headless_chromium(folders: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "combined"
    shutil.copytree(folders["run"], folder)
    shutil.copy(folders["grid"] / "grid.csv", folder / "grid.csv")
    report = build_report(folder)
    shot = tmp_path / "report.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        report.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert shot.is_file(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    gray = pixels.mean(axis=2)
    assert gray.std() > 20, "the screenshot is blank"
    ink_rows = (gray < 200).any(axis=1)
    assert ink_rows.mean() > 0.3, "most of the page is empty: tables or plots did not render"
    colored = (np.ptp(pixels, axis=2) > 60).mean()
    assert colored > 0.002, "no coloured pixels: the embedded plots did not render"


def test_missing_or_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        plot_results(tmp_path / "nope")
    with pytest.raises(ValueError, match="does not exist"):
        build_report(tmp_path / "nope")
    (tmp_path / "scenario.yaml").write_text("preset: paper\n", encoding="utf-8")
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_results(tmp_path)
    with pytest.raises(ValueError, match="nothing to report"):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_cli_helpers_parse_and_run(folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    plot_parser, report_parser = argparse.ArgumentParser(), argparse.ArgumentParser()
    add_plot_arguments(plot_parser)
    add_report_arguments(report_parser)
    assert run_plot(plot_parser.parse_args([str(folders["grid"]), "--out", str(tmp_path / "png")])) == 0
    assert (tmp_path / "png" / "pareto.png").is_file()
    assert "skipped age_cdf.png" in capsys.readouterr().out
    html_path = tmp_path / "r.html"
    assert run_report(report_parser.parse_args([str(folders["grid"]), "--out", str(html_path)])) == 0
    assert capsys.readouterr().out.strip() == str(html_path) and html_path.is_file()
    with pytest.raises(ValueError, match="does not exist"):
        run_plot(plot_parser.parse_args([str(tmp_path / "missing")]))


def test_missing_matplotlib_names_the_install_command(
    folders: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=re.escape('pip install "metalore[render]"')):
        plot_results(folders["grid"], tmp_path)
    page = build_report(folders["grid"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "No plots" in page and "data:image/png" not in page and "0.5" in page


def test_training_curve_from_evaluations_csv(tmp_path: Path) -> None:
    from metalore.training import EVAL_COLUMNS  # the columns train() writes; no training needed here

    rows = [
        {c: (float(i) if c.endswith("_mean") else 0.5) for c in EVAL_COLUMNS} | {"step": 1000 * (i + 1), "episodes": 3}
        for i in range(4)
    ]
    pd.DataFrame(rows, columns=EVAL_COLUMNS).to_csv(tmp_path / "evaluations.csv", index=False)
    made = plot_results(tmp_path)
    assert [p.name for p in made] == ["training.png"]
    assert_readable_png(made[0])
    assert "Training evaluations" in build_report(tmp_path).read_text(encoding="utf-8")


def test_plot_and_report_commands_through_the_cli(tmp_path, capsys):
    from metalore.cli import main

    out = tmp_path / "ev"
    assert (
        main(
            [
                "evaluate",
                "--scenario",
                "small",
                "--set",
                "episode.steps=10",
                "--policy",
                "random",
                "--policy",
                "twin_first",
                "--seeds",
                "2",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["plot", str(out)]) == 0
    assert (out / "plots" / "summary.png").stat().st_size > 1000
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "twin_first" in html and "data:image/png;base64," in html
    capsys.readouterr()
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("metalore: error: results folder") and err.count("\n") == 1
