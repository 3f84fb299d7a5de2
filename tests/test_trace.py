"""The per-step trace (steps.csv) of `metalore run` and the allocation-over-time plot drawn from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metalore.cli import main
from metalore.env import MetaLoreEnv
from metalore.plots import load_step_traces, make_plots, plot_allocation
from metalore.policies import make_policy
from metalore.trace import STEP_COLUMNS, phase_starts, run_episode


def run_folder(tmp_path: Path, *argv: str) -> Path:
    out = tmp_path / "run"
    assert main(["run", *argv, "--quiet", "--out", str(out)]) == 0
    return out


def test_steps_csv_replays_the_policy_actions_and_sums_to_the_episode_rewards(tmp_path: Path) -> None:
    out = run_folder(
        tmp_path,
        "--scenario",
        "multicell",
        "--policy",
        "random",
        "--episodes",
        "2",
        "--seed",
        "5",
        "--set",
        "episode.steps=12",
    )
    steps = pd.read_csv(out / "steps.csv")
    episodes = pd.read_csv(out / "episodes.csv")
    env = MetaLoreEnv("multicell", {"episode": {"steps": 12}})
    num_bs = env.scenario.num_bs
    assert list(steps.columns) == list(STEP_COLUMNS)
    assert len(steps) == 2 * 12 * num_bs and num_bs > 1
    # replay: same seeds, same policy -> the trace holds exactly the clipped actions and the env's queues
    policy = make_policy("random", env, seed=5)  # `run` builds the policy once, with the first seed
    for episode, seed in enumerate([5, 6]):
        obs, _ = env.reset(seed=seed)
        policy.reset(seed=seed)
        rows = steps[steps["episode"] == episode]
        assert (rows["seed"] == seed).all()
        total = 0.0
        for t in range(12):
            action = policy.env_action(obs)
            obs, reward, _, _, info = env.step(action)
            total += reward
            at_t = rows[rows["t"] == t].sort_values("bs")
            split = np.clip(np.asarray(action, dtype=float).reshape(num_bs, 2), 0.0, 1.0)
            np.testing.assert_allclose(at_t[["bw_ue", "comp_ue"]].to_numpy(), split)
            np.testing.assert_array_equal(at_t[["ue_mec_queue", "sensor_mec_queue"]].to_numpy(), info["queue_lengths"])
            np.testing.assert_allclose(at_t["reward"], reward)
            assert (at_t["completed_ue"] == info["completed_ue"]).all()
            if info["aori"]:
                assert at_t["aori_mean"].iloc[0] == pytest.approx(np.mean(info["aori"]))
            else:
                assert at_t["aori_mean"].isna().all()
        per_step = rows.groupby("t")["reward"].first()
        assert per_step.sum() == pytest.approx(episodes.loc[episode, "reward"]) == pytest.approx(total)


def test_phase_column_follows_the_traffic_phases() -> None:
    env = MetaLoreEnv("dynamic")
    starts = phase_starts(env.scenario.config)
    assert starts == [0, 50, 100]
    rows: list[dict] = []
    run_episode(env, make_policy("static:0.5,0.5", env), 3, trace=rows)
    phase = pd.DataFrame(rows).set_index("t")["phase"]
    assert phase.loc[0] == 0 and phase.loc[49] == 0 and phase.loc[50] == 1 and phase.loc[99] == 1
    assert phase.loc[100] == 2 and phase.loc[149] == 2 and len(phase) == 150
    assert phase_starts(MetaLoreEnv("paper").scenario.config) == [0]


def test_allocation_plot_from_run_folders_and_a_multi_policy_trace(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    Image = pytest.importorskip("PIL.Image")
    out = run_folder(tmp_path, "--scenario", "dynamic", "--policy", "queue_proportional", "--episodes", "2")
    made = make_plots(out, tmp_path / "plots")
    assert "allocation.png" in [p.name for p in made.paths]
    traces = load_step_traces(out)
    assert traces is not None and set(traces["policy"]) == {"queue_proportional:floor=0.1,bw=0.5"}
    # two policies in one frame (as `metalore compare` writes): one line each
    env = MetaLoreEnv("dynamic")
    frames = []
    for spec in ("static:0.2,0.3", "twin_first"):
        rows: list[dict] = []
        run_episode(env, make_policy(spec, env), 4, trace=rows)
        frames.append(pd.DataFrame(rows).assign(policy=spec))
    path = plot_allocation(pd.concat(frames, ignore_index=True), tmp_path / "two.png")
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    assert pixels.shape[0] >= 600 and pixels.shape[1] >= 1000
    assert pixels.std() > 10
    # two line colours (tab10 blue and orange) are both drawn
    blue = np.all(np.abs(pixels - [31, 119, 180]) < 30, axis=-1).sum()
    orange = np.all(np.abs(pixels - [255, 127, 14]) < 30, axis=-1).sum()
    assert blue > 200 and orange > 200
