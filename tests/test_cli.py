from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

import metalore
from metalore import MetaLoreEnv, cli, load_config_file, make_scenario
from metalore.cli import main, parse_set_options
from metalore.policies import make_policy

SHORT = ["--scenario", "small", "--set", "episode.steps=10"]


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def play_directly(spec, seed, steps=10):
    """The reference: the env and the policy driven by hand, without the CLI."""
    env = MetaLoreEnv("small", {"episode": {"steps": steps}})
    policy = make_policy(spec, env, seed=seed)
    obs, _ = env.reset(seed=seed)
    total, truncated = 0.0, False
    while not truncated:
        obs, reward, _, truncated, info = env.step(policy.act(obs))
        total += reward
    return total, info["summary"]


def env_log(spec, seed, steps=10):
    env = MetaLoreEnv("small", {"episode": {"steps": steps}, "log": {"jobs": True}})
    policy = make_policy(spec, env, seed=seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        obs, *_ = env.step(policy.act(obs))
    return env.job_log()


@pytest.mark.parametrize("spec", ["random", "twin_first"])
def test_run_writes_every_file_and_matches_the_env_run_directly(tmp_path, capsys, spec):
    out_dir = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "run", *SHORT, "--policy", spec, "--episodes", "2", "--seed", "7", "--out", str(out_dir), "--job-log"
    )
    assert code == 0, err
    assert err == ""  # no progress bar when stderr is not a terminal
    for name in ("episodes.csv", "episodes.json", "scenario.yaml", "run.json"):
        assert (out_dir / name).is_file()
    assert not list(out_dir.glob(".*.tmp"))  # atomic writes leave no temporary files

    data = json.loads((out_dir / "episodes.json").read_text())
    table = pd.read_csv(out_dir / "episodes.csv")
    assert table["seed"].tolist() == [7, 8] and table["episode"].tolist() == [0, 1]
    for i, row in enumerate(data["episodes"]):
        reward, summary = play_directly(spec, 7 + i)
        assert row["reward"] == pytest.approx(reward) and row["seed"] == 7 + i
        for key, value in summary.items():
            assert row[key] == value or (math.isnan(value) and row[key] is None), key
            assert table[key][i] == pytest.approx(value, nan_ok=True), key
        log = pd.read_csv(out_dir / f"job_log_{i:03d}.csv")
        if importlib.util.find_spec("pyarrow") is not None:
            pd.testing.assert_frame_equal(pd.read_parquet(out_dir / f"job_log_{i:03d}.parquet"), env_log(spec, 7 + i))
        assert len(log) == summary["ue_generated"] + summary["sensor_generated"]
        assert (log["aori"].dropna() >= 0).all()
    assert data["mean"]["reward"] == pytest.approx(np.mean([r["reward"] for r in data["episodes"]]))
    assert data["mean"]["ue_completed"] == pytest.approx(table["ue_completed"].mean())

    run = json.loads((out_dir / "run.json").read_text())
    assert run["seeds"] == [7, 8] and run["episodes"] == 2 and run["scenario"] == "small"
    assert run["policy_arg"] == spec and run["policy"].startswith(spec)
    assert run["command"].startswith("metalore run --scenario small")
    assert run["versions"]["metalore"] == metalore.__version__
    assert {"numpy", "gymnasium", "numba"} <= set(run["versions"]) and run["started_at"]
    assert run["job_log"] is True and "job_log_001.csv" in run["files"]

    assert "AoRI mean" in out and "sensor Mbit/s" in out and f"results: {out_dir}" in out
    mean_line = next(line for line in out.splitlines() if line.lstrip().startswith("mean"))
    assert f"{data['mean']['reward']:.2f}" in mean_line


def test_scenario_yaml_reloads_to_the_same_scenario(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, _, _ = run_cli(capsys, "run", *SHORT, "--set", "ue.count=2", "--quiet", "--out", str(out_dir))
    assert code == 0
    preset, overrides = load_config_file(out_dir / "scenario.yaml")
    expected = make_scenario("small", {"episode": {"steps": 10}, "ue": {"count": 2}})
    assert make_scenario(preset, overrides) == expected
    # ... and running from it replays the same episode
    code, _, _ = run_cli(
        capsys, "run", "--config", str(out_dir / "scenario.yaml"), "--quiet", "--out", str(tmp_path / "b")
    )
    first = json.loads((out_dir / "episodes.json").read_text())["episodes"]
    second = json.loads((tmp_path / "b" / "episodes.json").read_text())["episodes"]
    assert code == 0 and first == second


def test_quiet_prints_only_the_results_folder_and_seed_defaults_to_the_scenario(tmp_path, capsys):
    code, out, err = run_cli(capsys, "run", *SHORT, "--quiet", "--out", str(tmp_path / "q"))
    assert code == 0 and out == f"{tmp_path / 'q'}\n" and err == ""
    assert json.loads((tmp_path / "q" / "run.json").read_text())["seeds"] == [111]
    code, _, _ = run_cli(capsys, "run", *SHORT, "--set", "episode.seed=42", "--quiet", "--out", str(tmp_path / "s"))
    assert json.loads((tmp_path / "s" / "run.json").read_text())["seeds"] == [42]
    assert not (tmp_path / "q" / "job_log_000.csv").exists()  # no job log unless asked


def test_default_out_folder_is_a_fresh_timestamped_folder_under_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folders = []
    for _ in range(2):
        code, out, _ = run_cli(capsys, "run", *SHORT, "--quiet")
        assert code == 0
        folders.append(out.strip())
    assert folders[0] != folders[1]
    for folder in folders:
        assert folder.startswith("runs/") and (tmp_path / folder / "episodes.json").is_file()


def test_config_file_preset_and_precedence(tmp_path, capsys):
    config = tmp_path / "study.yaml"
    config.write_text("preset: small\nue: {count: 2}\nepisode: {steps: 10}\n")
    code, out, _ = run_cli(capsys, "show-config", "--config", str(config), "--set", "ue.count=4")
    shown = yaml.safe_load(out)
    assert code == 0 and shown["preset"] == "small" and shown["ue"]["count"] == 4  # --set beats the file
    assert shown["bs"]["compute_units_per_s"] == 25.0  # small preset values under the file
    code, out, _ = run_cli(capsys, "show-config", "--config", str(config), "--scenario", "multicell")
    shown = yaml.safe_load(out)
    assert shown["preset"] == "multicell" and len(shown["bs"]["positions_m"]) == 3 and shown["ue"]["count"] == 2
    toml = tmp_path / "study.toml"
    toml.write_text('preset = "large"\n[episode]\nsteps = 7\n')
    shown = yaml.safe_load(run_cli(capsys, "show-config", "--config", str(toml))[1])
    assert shown["preset"] == "large" and shown["episode"]["steps"] == 7


def test_show_config_defaults_to_the_paper_scenario(capsys):
    code, out, _ = run_cli(capsys, "show-config")
    shown = yaml.safe_load(out)
    assert code == 0 and shown.pop("preset") == "paper"
    assert make_scenario("paper", shown) == make_scenario("paper")


def test_set_values_are_yaml_with_numbers_taken_as_numbers():
    overrides = parse_set_options(
        [
            "ue.count=20",
            "bs.bandwidth_hz=50e6",
            "log.jobs=true",
            "bs.positions_m=[[1, 2]]",
            "ue.speed_mps=2",
            "ue.mobility=static",
        ]
    )
    assert overrides == {
        "ue": {"count": 20, "speed_mps": 2, "mobility": "static"},
        "bs": {"bandwidth_hz": 50e6, "positions_m": [[1, 2]]},
        "log": {"jobs": True},
    }


def test_scenarios_lists_every_preset_with_its_sizes(capsys):
    code, out, _ = run_cli(capsys, "scenarios")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:5] == ["preset", "gymnasium", "id", "BS", "UEs"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == set(metalore.PRESETS)
    assert rows["multicell"][1:5] == ["MetaLore/MultiCell-v0", "3", "15", "20"]
    assert rows["small"][2:5] == ["1", "3", "3"]


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"metalore {metalore.__version__}"


def test_help_exits_zero(capsys):
    code, out, _ = run_cli(capsys, "run", "--help")
    assert code == 0 and "--policy" in out and "static:BW,COMP" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--set", "ue.cout=3"], "unknown config key 'ue.cout'; did you mean 'count'?"),
        (["run", "--set", "ue.count=-1"], "config key 'ue.count' = -1 is invalid"),
        (["run", "--set", "ue.count"], "--set 'ue.count' is invalid: expected KEY=VALUE"),
        (["run", "--set", "ue..count=3"], "expected KEY=VALUE with a dotted key"),
        (["run", "--set", "ue.count=[1,"], "is not a valid YAML value"),
        (["run", "--policy", "static:1.5,0.2"], "policy spec 'static:1.5,0.2' is invalid: BW = 1.5 is out of range"),
        (["run", "--policy", "greedy"], "unknown policy 'greedy'. Valid forms: random, static:BW,COMP"),
        (["run", "--set", "observation.features=[time]", "--policy", "twin_first"], "needs the observation feature"),
        (["run", "--config", "missing.yaml"], "config file 'missing.yaml' does not exist"),
        (["run", "--episodes", "-1"], "argument --episodes: expected an integer >= 1, got -1"),
        (["run", "--episodes", "0"], "got 0"),
        (["run", "--seed", "-3"], "argument --seed: expected an integer >= 0"),
        (["run", "--seed", str(2**63)], "argument --seed: expected an integer <= 4611686018427387904"),
        (["run", "--scenario", "huge"], "invalid choice: 'huge'"),
        (["run", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["show-config", "--set", "reward.aosi_discount=2"], "'reward.aosi_discount' = 2.0 is invalid"),
        (["teleport"], "invalid choice: 'teleport'"),
        ([], "required: COMMAND"),
        (["run", "--set", "sensor.count=400", "--set", "episode.steps=2"], "cannot place 400 sensors"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(tmp_path, capsys, args, fragment):
    code, out, err = run_cli(capsys, *args, *(["--out", str(tmp_path / "o")] if args[:1] == ["run"] else []))
    assert code == 2
    assert err.startswith("metalore: error: ") and err.count("\n") == 1 and fragment in err
    assert "Traceback" not in err and out == ""


def test_invalid_input_is_rejected_before_any_output_is_written(tmp_path, capsys):
    code, _, _ = run_cli(capsys, "run", "--policy", "bogus", "--out", str(tmp_path / "o"))
    assert code == 2 and not (tmp_path / "o").exists()


def test_out_path_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = run_cli(capsys, "run", *SHORT, "--out", str(target))
    assert code == 2 and "exists and is not a folder" in err and err.count("\n") == 1


def test_unexpected_failures_are_one_line_unless_traceback_is_asked(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "run_episode", broken)
    code, _, err = run_cli(capsys, "run", *SHORT, "--out", str(tmp_path / "o"))
    assert code == 1 and err.startswith("metalore: error: unexpected RuntimeError: boom") and err.count("\n") == 1
    with pytest.raises(RuntimeError, match="boom"):
        main(["--traceback", "run", *SHORT, "--out", str(tmp_path / "o")])


def test_python_dash_m_metalore_runs_the_console_script(tmp_path):
    out_dir = tmp_path / "sub"
    done = subprocess.run(
        [sys.executable, "-m", "metalore", "run", *SHORT, "--policy", "static:0.5,0.6", "--out", str(out_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "static:0.5,0.6" in done.stdout and "AoRI mean" in done.stdout
    reward, _ = play_directly("static:0.5,0.6", 111)
    assert json.loads((out_dir / "episodes.json").read_text())["episodes"][0]["reward"] == pytest.approx(reward)
    failed = subprocess.run(
        [sys.executable, "-m", "metalore", "run", "--policy", "static:1.5,0.2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1
    assert failed.stderr.startswith("metalore: error: policy spec 'static:1.5,0.2' is invalid")
