"""Training with Stable-Baselines3: learnability on the toy preset, checkpoints, resume, the agent policy, CLI."""

from __future__ import annotations

import io
import json
import pickle
import sys

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("torch")

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from metalore.cli import main
from metalore.config import make_scenario
from metalore.env import MetaLoreEnv
from metalore.evaluation import evaluate
from metalore.policies import PolicyError, make_policy
from metalore.training import train

EVAL_SEEDS = list(range(1000, 1010))
# Tiny PPO rollouts (8 envs x 32 steps = 256 steps per update) keep the fast tests to seconds.
TINY = {"n_steps": 32, "batch_size": 64, "n_epochs": 2}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine's cores are shared
    yield
    torch.set_num_threads(threads)


def tiny_train(out, steps=512, **kwargs):
    kwargs = {"n_envs": 8, "eval_every": 256, "eval_seeds": 2, "progress": False, "hyperparameters": TINY, **kwargs}
    return train("toy", out, steps, **kwargs)


@pytest.mark.slow
def test_ppo_beats_random_on_the_toy_scenario(tmp_path):
    # 61 440 steps take ~15 s; measured margins over random (247.8): 65.7, 68.8, 61.9 for seeds 0, 1, 2.
    train("toy", tmp_path, 61_440, seed=0, eval_every=20_480, eval_seeds=EVAL_SEEDS, progress=False)
    rewards = evaluate({"random": "random", "agent": f"agent:{tmp_path}"}, "toy", EVAL_SEEDS)
    mean = rewards.groupby("policy")["reward"].mean()
    assert mean["agent"] > mean["random"] + 30.0, mean.to_dict()


def test_resume_continues_the_step_count(tmp_path):
    tiny_train(tmp_path, steps=512)
    metadata = tiny_train(tmp_path, steps=1024, resume=True)
    assert metadata["total_steps"] == 1024
    steps = [int(line.split(",")[0]) for line in (tmp_path / "evaluations.csv").read_text().splitlines()[1:]]
    assert steps == [256, 512, 768, 1024]
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.zip"))
    assert checkpoints == ["step_000000512.zip", "step_000000768.zip", "step_000001024.zip"]  # the last 3 kept
    assert PPO.load(tmp_path / "checkpoints" / "step_000001024.zip").num_timesteps == 1024
    # the normalization statistics continue too: they have seen all 1,024 steps, not just the resumed 512
    with (tmp_path / "vecnormalize.pkl").open("rb") as f:
        assert 1024 <= pickle.load(f).obs_rms.count < 1024 + 2 * 8 + 1  # steps + the reset observations


def test_fresh_run_refuses_a_folder_with_checkpoints_and_resume_needs_one(tmp_path):
    with pytest.raises(ValueError, match="nothing to resume"):
        tiny_train(tmp_path / "empty", resume=True)
    tiny_train(tmp_path, steps=256)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        tiny_train(tmp_path, steps=256)
    with pytest.raises(ValueError, match="cannot resume"):
        tiny_train(tmp_path, steps=512, resume=True, seed=5)


def test_metadata_records_scenario_seeds_versions_and_final_evaluation(tmp_path):
    metadata = tiny_train(tmp_path, steps=256, seed=3)
    assert json.loads((tmp_path / "metadata.json").read_text()) == json.loads(json.dumps(metadata))
    assert metadata["algo"] == "ppo"
    assert metadata["seed"] == 3
    assert metadata["eval_seeds"] == [1000, 1001]
    assert metadata["total_steps"] == 256
    assert metadata["scenario"]["preset"] == "toy"
    assert metadata["scenario"]["config"]["action"]["range"] == "symmetric"
    assert metadata["observation_layout"] == {"queue_lengths": [0, 2]}
    assert set(metadata["versions"]) >= {"metalore", "stable-baselines3", "torch", "numpy"}
    assert all(metadata["versions"][k] for k in ("stable-baselines3", "torch", "numpy"))
    assert metadata["final_evaluation"]["step"] == 256
    assert np.isfinite(metadata["final_evaluation"]["reward_mean"])
    assert (tmp_path / "model.zip").is_file()
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("action_range", ["unit", "symmetric"])
def test_agent_policy_acts_in_unit_range_in_either_action_convention(tmp_path, action_range):
    tiny_train(tmp_path, steps=256)
    scenario = make_scenario("toy", {"action": {"range": action_range}})
    env = MetaLoreEnv(scenario)
    policy = make_policy(f"agent:{tmp_path}", env, seed=0)
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        split = policy.act(obs)
        assert split.shape == (2,)
        assert np.all((split >= 0.0) & (split <= 1.0))
        obs, *_ = env.step(policy.env_action(obs))
    batch = policy.act(np.zeros((4, 2)))
    assert batch.shape == (4, 2)
    model = PPO.load(tmp_path / "model.zip")
    with (tmp_path / "vecnormalize.pkl").open("rb") as f:
        stats = pickle.load(f)  # the VecNormalize of training: the agent sees (obs - mean) / std, clipped
    obs = np.array([[3.0, 7.0]], dtype=np.float32)
    scaled = np.clip((obs - stats.obs_rms.mean) / np.sqrt(stats.obs_rms.var + stats.epsilon), -10, 10)
    assert stats.clip_obs == 10.0 and not np.allclose(scaled, obs)
    raw, _ = model.predict(scaled.astype(np.float32), deterministic=True)
    np.testing.assert_allclose(policy.act(obs[0]), (np.clip(raw[0], -1, 1) + 1) / 2, rtol=1e-6)


def test_without_normalization_the_agent_sees_raw_observations(tmp_path):
    metadata = tiny_train(tmp_path, steps=256, normalize=False)
    assert metadata["normalize"] is False and not (tmp_path / "vecnormalize.pkl").exists()
    policy = make_policy(f"agent:{tmp_path}", make_scenario("toy"), seed=0)
    model = PPO.load(tmp_path / "model.zip")
    obs = np.array([[3.0, 7.0]], dtype=np.float32)
    raw, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(policy.act(obs[0]), (np.clip(raw[0], -1, 1) + 1) / 2, rtol=1e-6)


def test_normalized_agent_without_its_statistics_is_a_clear_error(tmp_path):
    tiny_train(tmp_path, steps=256)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.vecnormalize.pkl"))  # beside each checkpoint
    (tmp_path / "vecnormalize.pkl").unlink()
    with pytest.raises(PolicyError, match=r"vecnormalize\.pkl' is missing"):
        make_policy(f"agent:{tmp_path}", make_scenario("toy"), seed=0)


def test_agent_policy_rejects_another_observation_layout_and_missing_files(tmp_path):
    tiny_train(tmp_path, steps=256)
    other = make_scenario("toy", {"observation": {"features": ["queue_lengths", "twin_age"]}})
    with pytest.raises(PolicyError, match="observation layout"):
        make_policy(f"agent:{tmp_path}", other)
    with pytest.raises(PolicyError, match="does not exist"):
        make_policy(f"agent:{tmp_path / 'nope'}", make_scenario("toy"))
    with pytest.raises(PolicyError, match="needs the folder"):
        make_policy("agent:", make_scenario("toy"))


class _Interrupt(BaseCallback):
    def _on_step(self) -> bool:
        if self.num_timesteps > 600:
            raise KeyboardInterrupt
        return True


def test_interrupted_training_leaves_the_last_checkpoint_loadable_and_resumable(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        tiny_train(tmp_path, steps=2048, callback=_Interrupt())
    checkpoints = sorted((tmp_path / "checkpoints").glob("step_*.zip"))
    assert [p.name for p in checkpoints] == ["step_000000256.zip", "step_000000512.zip"]
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))  # no half-written files left behind
    assert PPO.load(checkpoints[-1]).num_timesteps == 512
    assert not (tmp_path / "model.zip").exists()
    metadata = tiny_train(tmp_path, steps=1024, resume=True)
    assert metadata["total_steps"] == 1024


def test_cli_train_writes_the_agent_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--scenario", "toy", "--steps", "2048", "--envs", "4", "--eval-every", "1024"]
    assert main([*argv, "--eval-seeds", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "step 1024/2048" in printed
    assert "trained ppo for 2048 steps" in printed
    assert (out / "model.zip").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--scenario", "toy", "--resume"], "--resume needs --out"),
        (["train", "--scenario", "toy", "--steps", "0"], "--steps"),
        (["train", "--scenario", "toy", "--algo", "dqn"], "--algo"),
        (["train", "--scenario", "toy", "--set", "ue.count=-1"], "ue.count"),
        (["run", "--scenario", "toy", "--policy", "agent:/definitely/not/here"], "does not exist"),
    ],
)
def test_cli_errors_are_one_line_with_exit_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("metalore: error: ")
    assert err.count("\n") == 1
    assert message in err


def test_cli_resume_without_checkpoints_and_out_file_are_errors(tmp_path, capsys):
    assert main(["train", "--scenario", "toy", "--resume", "--out", str(tmp_path)]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    file = tmp_path / "file"
    file.write_text("x")
    assert main(["train", "--scenario", "toy", "--out", str(file)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_best_model_is_the_agent_of_the_best_evaluation_and_loads_like_the_final_one(tmp_path):
    metadata = tiny_train(tmp_path, steps=1024)
    rows = [line.split(",") for line in (tmp_path / "evaluations.csv").read_text().splitlines()[1:]]
    rewards = {int(r[0]): float(r[3]) for r in rows}  # step -> reward_mean
    best_step = max(rewards, key=lambda k: (rewards[k], -k))  # ties: the earlier
    assert metadata["best_evaluation"] == {
        "step": best_step,
        "reward_mean": rewards[best_step],
        "file": "best_model.zip",
    }
    best = PPO.load(tmp_path / "best_model.zip")
    assert best.num_timesteps == best_step
    assert (tmp_path / "best_model.vecnormalize.pkl").is_file()
    # the best agent, a checkpoint and the final agent all load as policies (metadata found beside or one up)
    for spec in ("best_model.zip", "checkpoints/step_000001024.zip", ""):
        policy = make_policy(f"agent:{tmp_path / spec}", make_scenario("toy"), seed=0)
        assert policy.act(np.array([1.0, 2.0])).shape == (2,)
    # replaying the best agent on the evaluation seeds of training reproduces its evaluation row
    replay = evaluate({"best": f"agent:{tmp_path / 'best_model.zip'}"}, "toy", [1000, 1001])
    assert replay["reward"].mean() == pytest.approx(rewards[best_step], rel=1e-9)


def test_sac_trains_checkpoints_its_replay_buffer_and_resumes(tmp_path):
    tiny_sac = {"learning_starts": 64, "batch_size": 32, "buffer_size": 2_000}
    first = train("toy", tmp_path, 256, algo="sac", n_envs=4, eval_every=128, eval_seeds=2, progress=False,
                  hyperparameters=tiny_sac)  # fmt: skip
    assert first["algo"] == "sac" and first["total_steps"] == 256
    assert (tmp_path / "checkpoints" / "step_000000256.replay.pkl").is_file()
    resumed = train("toy", tmp_path, 512, algo="sac", n_envs=4, eval_every=128, eval_seeds=2, progress=False,
                    hyperparameters=tiny_sac, resume=True)  # fmt: skip
    assert resumed["total_steps"] == 512
    from stable_baselines3 import SAC

    model = SAC.load(tmp_path / "model.zip")
    assert model.num_timesteps == 512
    policy = make_policy(f"agent:{tmp_path}", make_scenario("toy"), seed=0)
    split = policy.act(np.array([4.0, 1.0]))
    assert split.shape == (2,) and np.all((split >= 0) & (split <= 1))


def test_progress_bar_on_a_terminal_and_evaluation_lines_on_stdout(tmp_path, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    tiny_train(tmp_path, steps=512, progress=True)
    out = capsys.readouterr().out
    assert out.count("eval reward") == 2  # steps 256 and 512
    bar = terminal.getvalue()
    assert "ppo:" in bar and "512/512" in bar
