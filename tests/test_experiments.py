"""`metalore compare` end to end on a tiny budget: every artifact, and numbers that agree with each other."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from metalore.cli import main  # noqa: E402  (after the optional-dependency skips)
from metalore.evaluation import best_split, grid_table, paired_differences, t_confidence_interval  # noqa: E402
from metalore.experiments import BUDGETS, Budget  # noqa: E402
from metalore.report import build_report, markdown_html  # noqa: E402

TINY = ["--grid", "3", "--eval-seeds", "3", "--train-steps", "512", "--dynamic-train-steps", "512", "--envs", "2"]
PNGS = ("pareto.png", "ppo_vs_static.png", "coupling.png", "dynamic_phases.png", "allocation_dynamic.png")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "c"
    assert main(["compare", "--quick", *TINY, "--quiet", "--out", str(out)]) == 0
    return out


def test_every_artifact_is_written(folder: Path) -> None:
    record = json.loads((folder / "compare.json").read_text())
    run = json.loads((folder / "run.json").read_text())
    assert record["budget"] == {
        **vars(BUDGETS["quick"]),
        "grid": 3,
        "eval_seeds": 3,
        "train_steps": 512,
        "dynamic_train_steps": 512,
        "n_envs": 2,
    }
    assert run["command"].startswith("metalore compare --quick") and run["budget"] == record["budget"]
    for name in record["files"]:
        assert (folder / name).is_file(), name
    for name in PNGS:
        with Image.open(folder / name) as image:
            pixels = np.asarray(image.convert("L"), dtype=float)
        assert pixels.shape[0] > 300 and pixels.std() > 10, name
    for agent in ("agents/seed_0", "dynamic/agents/seed_0"):
        assert (folder / agent / "model.zip").is_file() and (folder / agent / "training.png").is_file()
    text = (folder / "results.md").read_text()
    for heading in ("## 1. Static splits", "## 2. PPO", "## 3. Synchronization coupling", "## 4. Dynamic traffic"):
        assert heading in text
    assert not list(folder.rglob("*.tmp"))


def test_grid_best_split_and_pareto_front_agree_with_the_episodes(folder: Path) -> None:
    episodes = pd.read_csv(folder / "grid_episodes.csv")
    table = pd.read_csv(folder / "grid.csv")
    assert len(table) == 9 and sorted(episodes["seed"].unique()) == [1000, 1001, 1002]
    pd.testing.assert_frame_equal(table, grid_table(episodes), check_dtype=False)
    record = json.loads((folder / "compare.json").read_text())
    assert record["best_static"] == "static:{:g},{:g}".format(*best_split(table))
    front = pd.read_csv(folder / "pareto_front.csv")
    assert record["pareto_front"] == [f"static:{r.bw_ue:g},{r.comp_ue:g}" for r in front.itertuples()]
    for row in front.itertuples():  # nothing in the grid dominates a front point
        others = table.dropna(subset=["aori_mean"])
        dominates = (
            (others["ue_throughput_mbps"] >= row.ue_throughput_mbps)
            & (others["aori_mean"] <= row.aori_mean)
            & (others["aosi_mean"] <= row.aosi_mean)
            & (
                (others["ue_throughput_mbps"] > row.ue_throughput_mbps)
                | (others["aori_mean"] < row.aori_mean)
                | (others["aosi_mean"] < row.aosi_mean)
            )
        )
        assert not dominates.any()


def test_ppo_gap_is_the_paired_difference_on_the_common_seeds(folder: Path) -> None:
    episodes = pd.read_csv(folder / "episodes.csv")
    record = json.loads((folder / "compare.json").read_text())
    best = record["best_static"]
    assert list(dict.fromkeys(episodes["policy"])) == [
        "agent:ppo-seed0",
        best,
        "random",
        "queue_proportional",
        "twin_first",
    ]
    static = episodes[episodes["policy"] == best].set_index("seed")["reward"]
    grid = pd.read_csv(folder / "grid_episodes.csv")
    bw, comp = (float(v) for v in best.split(":")[1].split(","))
    in_grid = grid[(grid["bw_ue"] == bw) & (grid["comp_ue"] == comp)].set_index("seed")["reward"]
    pd.testing.assert_series_equal(static, in_grid, check_names=False)  # same seeds, same episodes
    agent = episodes[episodes["policy"] == "agent:ppo-seed0"].set_index("seed")["reward"]
    ci = t_confidence_interval(agent - static)
    gap = record["ppo_gap_vs_best_static"]["agent:ppo-seed0"]
    assert gap["mean"] == pytest.approx(ci["mean"]) and gap["ci_low"] == pytest.approx(ci["ci_low"])
    assert f"{ci['mean']:+.1f}" in (folder / "results.md").read_text()


def test_coupling_rows_are_paired_differences_of_the_grid_episodes(folder: Path) -> None:
    coupling = pd.read_csv(folder / "coupling.csv")
    grid = pd.read_csv(folder / "grid_episodes.csv")
    assert set(coupling["split"]) >= {"static:1,1"}
    base = coupling["baseline"].iloc[0]
    bw, comp = (float(v) for v in base.split(":")[1].split(","))
    assert 0 < bw < 1 and 0 < comp < 1  # an interior split
    labelled = grid.assign(policy=[f"static:{b:g},{c:g}" for b, c in zip(grid["bw_ue"], grid["comp_ue"], strict=True)])
    diffs = paired_differences(labelled[labelled["policy"].isin(set(coupling["split"]) | {base})], base, ["reward"])
    for row in coupling[coupling["metric"] == "reward"].itertuples():
        expected = diffs[diffs["policy"] == row.split].iloc[0]
        assert row.difference == pytest.approx(expected["mean"]) and row.n == 3


def test_dynamic_phase_table_and_phase_rewards_add_up(folder: Path) -> None:
    grid = pd.read_csv(folder / "dynamic" / "grid_episodes.csv")
    phase_columns = ["reward_phase0", "reward_phase1", "reward_phase2"]
    np.testing.assert_allclose(grid[phase_columns].sum(axis=1), grid["reward"])
    phases = pd.read_csv(folder / "dynamic" / "phases.csv")
    assert list(dict.fromkeys(phases["phase"].astype(str))) == ["0", "1", "2", "overall"]
    means = grid.groupby(["bw_ue", "comp_ue"])[[*phase_columns, "reward"]].mean()
    for row in phases[phases["reference"] == "best static of this phase"].itertuples():
        column = "reward" if row.phase == "overall" else f"reward_phase{row.phase}"
        assert row.reference_reward == pytest.approx(means[column].max())
    steps = pd.read_csv(folder / "dynamic" / "steps.csv")
    assert steps["policy"].iloc[0] == "agent:ppo-seed0" and set(steps["phase"]) == {0, 1, 2}


def test_report_of_a_comparison_embeds_results_and_figures(folder: Path, tmp_path: Path) -> None:
    page = build_report(folder, tmp_path / "r.html").read_text()
    assert "<h3>2. PPO (observing the two queue lengths) vs the grid's best split</h3>" in page
    assert page.count("data:image/png;base64,") >= len(PNGS)
    assert "<code>agent:ppo-seed0</code>" in page


def test_markdown_tables_become_html_tables() -> None:
    out = markdown_html("# T\n\ntext `x`\nmore\n\n| a | b |\n|---|---|\n| 1 | `2` |\n")
    assert out == (
        "<h2>T</h2><p>text <code>x</code> more</p><div class=scroll><table><thead><tr><th class=text>a</th>"
        "<th class=text>b</th></tr></thead><tbody><tr><td class=text>1</td><td class=text><code>2</code></td>"
        "</tr></tbody></table></div>"
    )


def test_budget_overrides_are_checked() -> None:
    assert BUDGETS["quick"].replace(grid=4, eval_seeds=None).grid == 4
    with pytest.raises(ValueError, match="grid = 1 is invalid"):
        BUDGETS["quick"].replace(grid=1)
    with pytest.raises(ValueError, match="no field 'steps'"):
        BUDGETS["quick"].replace(steps=3)
    assert isinstance(BUDGETS["full"], Budget)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--dynamic-scenario", "paper"], "has no traffic.phases"),
        (["--grid", "1"], "--grid: expected an integer >= 2"),
        (["--dynamic-set", "ue.count=-1"], "ue.count"),
    ],
)
def test_bad_input_is_a_one_line_error(argv: list[str], fragment: str, tmp_path: Path, capsys) -> None:
    code = main(["compare", "--quick", *argv, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_results_tables_are_well_formed_and_every_claim_has_a_verdict(folder: Path) -> None:
    text = (folder / "results.md").read_text()
    lines = text.splitlines()
    tables = [
        list(block) for is_table, block in itertools.groupby(lines, key=lambda line: line.startswith("|")) if is_table
    ]
    for block in tables:
        assert all(row.count("|") == block[0].count("|") for row in block), block
    assert len(tables) >= 5
    claims = [line for line in lines if line[:3] in {"1. ", "2. ", "3. ", "4. "}]
    assert len(claims) == 4
    for claim in (claims[0], claims[2], claims[3]):
        assert "reproduced" in claim  # "reproduced" or "not reproduced", read off the intervals
    # the coupling claim on this tiny grid: starving sensors completes no UE job at all
    assert "not reproduced" not in claims[2]
