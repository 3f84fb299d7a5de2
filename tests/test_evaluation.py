"""Evaluation protocol: common seeds, batch == single env, confidence intervals, the oracle, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from _scenarios import PINNED_PAIR
from metalore import MetaLoreEnv
from metalore.cli import main, run_episode
from metalore.config import deep_merge, make_scenario
from metalore.evaluation import (
    TUNING_SEED_START,
    BruteForcePolicy,
    best_split,
    evaluate,
    grid_search,
    paired_differences,
    summarize,
    t_confidence_interval,
    t_quantile,
)
from metalore.policies import make_policy

SMALL = make_scenario("small", {"episode": {"steps": 10}})
SPECS = {"random": "random", "static": "static:0.3,0.7", "twin_first": "twin_first", "qp": "queue_proportional"}

# The oracle scenario: 1 BS, 1 static UE 10 m north and 1 static sensor 10 m south of it
# (the geometry of test_exact_scenario: log2(1 + SNR) = 19.52 bit/s/Hz), a UE request and a
# sensor update every step, every job exactly 1 Mbit and 1 compute unit. The BS has 110 kHz
# (2.15 Mbit per step in total) and 2 compute units per step, so each class needs exactly
# half of each resource: at bw 0.5 each device sends 1.07 Mbit >= 1 per step, at 0.4 only
# 0.86 Mbit; at comp 0.5 each queue serves exactly 1 unit per step, at 0.4 only 0.8.
# At (0.5, 0.5): u_0 blocks at step 0 (the twin is still empty), then u_j completes at step
# j + 1 bound to s_j: AoRI 1 (not late), AoSI 0, reward 10 each, 10 * (T - 1) = 110 for T = 12.
# Any other grid point gives one class less than it needs in one resource: short-changing the
# UE lets its backlog grow (later completions, fewer jobs, late penalties); short-changing the
# sensor leaves the twin stale (AoSI > 0, each job worth 10 * 0.9^AoSI < 10); the excess the
# other class receives cannot help, as it already had all it needed. So (0.5, 0.5) is the
# unique best split, checked below against an exhaustive single-env evaluation of the grid.
ORACLE = make_scenario(
    "paper",
    deep_merge(
        PINNED_PAIR,
        {"episode": {"steps": 12}, "bs": {"bandwidth_hz": 110e3, "compute_units_per_s": 2.0}},
    ),
)


def single_env_row(scenario, spec, seed):
    env = MetaLoreEnv(scenario)
    return run_episode(env, make_policy(spec, env, seed=seed), seed)


# --------------------------------------------------------------------------- statistics
@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706204736), (2, 4.302652730), (3, 3.182446305), (9, 2.262157163), (30, 2.042272456), (500, 1.964720)],
)
def test_t_quantile_matches_the_tables(df, expected):
    assert t_quantile(0.95, df) == pytest.approx(expected, rel=1e-6)


def test_t_quantile_other_levels():
    assert t_quantile(0.99, 4) == pytest.approx(4.604094871, rel=1e-6)
    assert t_quantile(0.90, 1) == pytest.approx(6.313751515, rel=1e-6)


def test_summarize_gives_mean_and_student_t_interval_on_a_hand_made_table():
    df = pd.DataFrame(
        {
            "policy": ["a"] * 4 + ["b"] * 3 + ["c"],
            "spec": ["x"] * 8,
            "seed": [1, 2, 3, 4, 1, 2, 3, 1],
            "reward": [1.0, 2.0, 3.0, 4.0, 5.0, math.nan, 7.0, 9.0],
        }
    )
    summary = summarize(df).set_index("policy")
    assert list(summary.index) == ["a", "b", "c"] and set(summary["metric"]) == {"reward"}
    a = summary.loc["a"]
    std = math.sqrt(5 / 3)  # deviations 1.5, 0.5, 0.5, 1.5 -> 5 / (4 - 1)
    assert a["n"] == 4 and a["mean"] == 2.5 and a["std"] == pytest.approx(std)
    assert a["half_width"] == pytest.approx(3.182446305 * std / 2)
    assert a["ci_low"] == pytest.approx(2.5 - a["half_width"]) and a["ci_high"] == pytest.approx(2.5 + a["half_width"])
    b = summary.loc["b"]  # the NaN episode (metric undefined) is left out: n = 2
    assert b["n"] == 2 and b["mean"] == 6.0 and b["half_width"] == pytest.approx(12.706204736 * math.sqrt(2) / 2**0.5)
    c = summary.loc["c"]  # one episode: no interval
    assert c["n"] == 1 and c["mean"] == 9.0 and math.isnan(c["half_width"])


def test_paired_differences_pair_by_seed():
    df = pd.DataFrame(
        {"policy": ["base"] * 3 + ["new"] * 3, "seed": [1, 2, 3] * 2, "reward": [10.0, 20.0, 30.0, 11.0, 22.0, 33.0]}
    )
    diff = paired_differences(df, "base").set_index("policy").loc["new"]
    expected = t_confidence_interval([1.0, 2.0, 3.0])
    assert diff["n"] == 3 and diff["mean"] == 2.0 and diff["half_width"] == pytest.approx(expected["half_width"])
    with pytest.raises(ValueError, match="baseline 'nope'"):
        paired_differences(df, "nope")


# --------------------------------------------------------------------------- evaluate
def test_evaluate_is_deterministic_and_common_to_all_policies():
    seeds = [5, 3, 4]
    first = evaluate(SPECS, SMALL, seeds)
    again = evaluate(SPECS, SMALL, [3, 4, 5])
    pd.testing.assert_frame_equal(first, again)
    assert list(first["policy"]) == [p for p in SPECS for _ in seeds]  # policy order, then seed
    assert list(first["seed"]) == [3, 4, 5] * len(SPECS)
    assert list(first["spec"].unique()) == ["random", "static:0.3,0.7", "twin_first:min_ue=0.1,bw=0.5",
                                            "queue_proportional:floor=0.1,bw=0.5"]  # fmt: skip
    # common random numbers: the traffic does not depend on the policy
    generated = first.pivot(index="seed", columns="policy", values="ue_generated")
    assert (generated.nunique(axis=1) == 1).all()


def test_evaluate_with_worker_processes_gives_the_same_table():
    seeds = [1, 2, 3, 4]
    specs = {"random": "random", "static": "static:0.5,0.5"}
    pd.testing.assert_frame_equal(evaluate(specs, SMALL, seeds), evaluate(specs, SMALL, seeds, workers=2))


@pytest.mark.parametrize("name", list(SPECS))
def test_batch_evaluation_equals_single_env_episodes(name):
    seeds = [11, 12, 13]
    table = evaluate({name: SPECS[name]}, SMALL, seeds)
    for row, seed in zip(table.to_dict("records"), seeds, strict=True):
        single = single_env_row(SMALL, SPECS[name], seed)
        for key, value in single.items():
            np.testing.assert_equal(row[key], value, err_msg=f"{name} seed {seed} {key}")


def test_evaluate_accepts_factories_and_rejects_bad_input():
    table = evaluate({"mine": lambda scenario, seed: make_policy("static:0.5,0.5", scenario, seed)}, SMALL, [1])
    assert table.loc[0, "spec"] == "static:0.5,0.5"
    with pytest.raises(ValueError, match="cannot be sent to worker processes"):
        evaluate({"a": lambda s, seed: None, "b": "random"}, SMALL, [1, 2], workers=2)
    with pytest.raises(ValueError, match="duplicates"):
        evaluate(SPECS, SMALL, [1, 1])
    with pytest.raises(ValueError, match="backend 'dask'"):
        evaluate(SPECS, SMALL, [1], backend="dask")
    with pytest.raises(ValueError, match="workers = 0"):
        evaluate(SPECS, SMALL, [1], workers=0)
    with pytest.raises(ValueError, match="policy spec 'nope'"):
        evaluate({"x": "nope"}, SMALL, [1])


# --------------------------------------------------------------------------- the oracle
def test_grid_search_finds_the_known_best_split_and_matches_single_env_runs():
    table = grid_search(ORACLE, 11, [0, 1])
    assert len(table) == 121 and (table["episodes"] == 2).all()
    assert best_split(table) == (0.5, 0.5)
    rewards = table.set_index(["bw_ue", "comp_ue"])["reward"]
    assert rewards[(0.5, 0.5)] == pytest.approx(110.0)  # 11 jobs, each AoRI 1, AoSI 0: 10 * 11
    assert (rewards.drop((0.5, 0.5)) < 110.0 - 1.0).all()  # unique, by a clear margin
    exhaustive = {
        (bw, comp): single_env_row(ORACLE, f"static:{bw!r},{comp!r}", 0)["reward"]
        for bw in (i / 10 for i in range(11))
        for comp in (i / 10 for i in range(11))
    }
    assert max(exhaustive, key=lambda split: (exhaustive[split], -split[0], -split[1])) == (0.5, 0.5)
    for split, reward in exhaustive.items():  # the scenario is deterministic: seed 1 == seed 0
        assert rewards[split] == pytest.approx(reward, abs=1e-9), split


def test_best_split_breaks_ties_by_lowest_bw_then_comp():
    table = pd.DataFrame(
        {"bw_ue": [0.2, 0.1, 0.1, 0.3], "comp_ue": [0.0, 0.9, 0.4, 0.0], "reward": [5.0, 5.0, 5.0, 1.0]}
    )
    assert best_split(table) == (0.1, 0.4)


def test_brute_force_policy_tunes_on_held_out_seeds_and_plays_the_best_split():
    policy = make_policy("brute_force:grid=11,seeds=2", ORACLE)
    assert isinstance(policy, BruteForcePolicy)
    assert policy.tuning_seeds == (TUNING_SEED_START, TUNING_SEED_START + 1)
    assert (policy.bw_ue, policy.comp_ue) == (0.5, 0.5) and policy.spec == "static:0.5,0.5"
    table = evaluate({"oracle": "brute_force:grid=11,seeds=2", "fixed": "static:0.5,0.5"}, ORACLE, [7, 8])
    rewards = table.groupby("policy")["reward"].mean()
    assert rewards["oracle"] == rewards["fixed"] == pytest.approx(110.0)
    with pytest.raises(ValueError, match="also evaluation seeds"):
        evaluate({"oracle": "brute_force:grid=3,seeds=2"}, ORACLE, [TUNING_SEED_START + 1])


@pytest.mark.parametrize(
    "spec", ["brute_force:grid=1", "brute_force:grid=2.5", "brute_force:seeds=0", "brute_force:x=1"]
)
def test_brute_force_spec_errors_name_the_spec(spec):
    with pytest.raises(ValueError, match="brute_force"):
        make_policy(spec, ORACLE)


# --------------------------------------------------------------------------- CLI
TINY_CLI = ["--scenario", "small", "--set", "episode.steps=10", "--seeds", "3"]


def test_cli_evaluate_end_to_end(tmp_path, capsys):
    out = tmp_path / "eval"
    policies = ["--policy", "random", "--policy", "static:0.5,0.5", "--policy", "brute_force:grid=3,seeds=1"]
    code = main(["evaluate", *TINY_CLI, *policies, "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    for name in ("episodes.csv", "summary.csv", "summary.json", "scenario.yaml", "run.json"):
        assert (out / name).is_file()
    assert not list(out.glob(".*.tmp"))
    episodes = pd.read_csv(out / "episodes.csv")
    assert len(episodes) == 9 and list(episodes["seed"][:3]) == [1000, 1001, 1002]
    expected = evaluate({"random": "random"}, make_scenario("small", {"episode": {"steps": 10}}), [1000, 1001, 1002])
    assert episodes["reward"][:3].tolist() == pytest.approx(expected["reward"].tolist(), rel=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    reward = summary["policies"]["random"]["metrics"]["reward"]
    assert reward["n"] == 3 and reward["mean"] == pytest.approx(expected["reward"].mean())
    assert "static:0.5,0.5" in stdout and "±" in stdout and "brute_force:grid=3,seeds=1 plays static:" in stdout
    run = json.loads((out / "run.json").read_text())
    assert run["seeds"] == [1000, 1001, 1002] and run["policies"][1] == "static:0.5,0.5"


def test_cli_grid_end_to_end(tmp_path, capsys):
    out = tmp_path / "grid"
    code = main(["grid", *TINY_CLI, "--grid", "3", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    table = pd.read_csv(out / "grid.csv")
    assert len(table) == 9 and list(table["bw_ue"]) == [0.0] * 3 + [0.5] * 3 + [1.0] * 3
    bw, comp = best_split(table)
    assert f"best split: static:{bw:g},{comp:g}" in stdout
    assert json.loads((out / "run.json").read_text())["best"]["spec"] == f"static:{bw:g},{comp:g}"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["evaluate", *TINY_CLI], "no policy given"),
        (["evaluate", *TINY_CLI, "--policy", "random", "--policy", "random"], "given twice"),
        (["evaluate", *TINY_CLI, "--policy", "static:2,0"], "static:2,0"),
        (["evaluate", *TINY_CLI, "--policy", "brute_force:grid=1"], "grid = 1"),
        (["evaluate", *TINY_CLI, "--policy", "random", "--workers", "0"], "--workers"),
        (["evaluate", *TINY_CLI, "--policy", "random", "--seeds", "0"], "--seeds"),
        (["evaluate", "--policy", "brute_force:grid=2,seeds=1", "--seed-start", str(TUNING_SEED_START)], "tuned on"),
        (["grid", *TINY_CLI, "--grid", "1"], "--grid"),
        (["grid", *TINY_CLI, "--set", "ue.count=-1"], "ue.count"),
    ],
)
def test_cli_errors_exit_2_with_one_line(tmp_path, capsys, args, fragment):
    code = main([*args, "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("metalore: error:") and err.count("\n") == 1 and fragment in err


def test_brute_force_is_available_without_importing_evaluation_first():
    import subprocess
    import sys

    code = (
        "import metalore\n"
        "from metalore.policies import make_policy\n"
        "env = metalore.MetaLoreEnv('small', {'episode': {'steps': 5}})\n"
        "print(make_policy('brute_force:grid=2,seeds=1', env).spec)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("static:")  # the oracle plays the best static split it found
