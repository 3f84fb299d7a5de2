"""The Stable-Baselines3 VecEnv adapter over the native vector env."""

from __future__ import annotations

import importlib
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

pytest.importorskip("stable_baselines3")

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    VecCheckNan,
    VecEnv,
    VecMonitor,
    VecNormalize,
)
from stable_baselines3.common.vec_env.util import dict_to_obs, obs_space_info

import metalore
from metalore import SEED_ALIAS_ID, MetaLoreVectorEnv
from metalore.sb3 import MetaLoreSB3VecEnv, make_sb3_vec_env

SHORT = {"episode": {"steps": 12}}
COUNT_KEYS = [f"{name}_{cls}" for cls in ("ue", "sensor") for name in ("generated", "sent", "completed", "dropped")]


def uniform_actions(rng: np.random.Generator, vec_env: VecEnv) -> np.ndarray:
    return rng.uniform(0.0, 1.0, (vec_env.num_envs, *vec_env.action_space.shape)).astype(np.float32)


def test_adapter_is_an_sb3_vec_env_with_single_env_spaces():
    vec_env = make_sb3_vec_env("MetaLore/MultiCell-v0", n_envs=3)
    assert isinstance(vec_env, VecEnv)
    assert vec_env.num_envs == 3
    assert vec_env.observation_space == vec_env.venv.single_observation_space
    assert vec_env.action_space.shape == (6,)
    keys, shapes, dtypes = obs_space_info(vec_env.observation_space)
    obs = vec_env.reset()
    assert keys == [None]
    assert obs.shape == (3, *shapes[None]) and obs.dtype == dtypes[None]
    np.testing.assert_array_equal(dict_to_obs(vec_env.observation_space, {None: obs}), obs)
    vec_env.close()


@pytest.mark.parametrize(
    ("env_id", "max_episode_steps"),
    [("MetaLore/Paper-v0", None), ("MetaLore/Dynamic-v0", None), ("MetaLore/Paper-v0", 5)],
)
def test_adapter_matches_sb3_dummy_vec_env_step_by_step(env_id, max_episode_steps):
    # SB3's own DummyVecEnv over seeded single envs is the reference for every convention;
    # max_episode_steps cuts the episodes as gymnasium.make's TimeLimit cuts the single envs'
    # (no summary at a cut: the single env reports it at the scenario's own end).
    config = SHORT if env_id != "MetaLore/Dynamic-v0" else None
    n = 3
    ours = make_sb3_vec_env(env_id, n, config, max_episode_steps=max_episode_steps)
    limit = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    reference = DummyVecEnv([lambda: gym.make(env_id, config=config, **limit) for _ in range(n)])
    assert ours.seed(31) == reference.seed(31) == [31, 32, 33]
    np.testing.assert_array_equal(ours.reset(), reference.reset())
    assert ours.reset_infos == reference.reset_infos
    rng = np.random.default_rng(31)
    steps = ours.venv.scenario.steps
    episodes_ended = 0
    for _ in range(2 * steps + 3):
        actions = uniform_actions(rng, ours)
        obs, rewards, dones, infos = ours.step(actions)
        ref_obs, ref_rewards, ref_dones, ref_infos = reference.step(actions)
        np.testing.assert_array_equal(obs, ref_obs)
        assert rewards.dtype == ref_rewards.dtype == np.float32
        np.testing.assert_array_equal(rewards, ref_rewards)
        np.testing.assert_array_equal(dones, ref_dones)
        assert ours.reset_infos == reference.reset_infos
        for info, ref_info in zip(infos, ref_infos, strict=True):
            assert info["TimeLimit.truncated"] == ref_info["TimeLimit.truncated"]
            for key in ["t", *COUNT_KEYS]:
                assert info[key] == ref_info[key], key
            np.testing.assert_array_equal(info["queue_lengths"], ref_info["queue_lengths"])
            assert ("terminal_observation" in info) == ("terminal_observation" in ref_info)
            if "terminal_observation" in info:
                episodes_ended += 1
                np.testing.assert_array_equal(info["terminal_observation"], ref_info["terminal_observation"])
            assert ("summary" in info) == ("summary" in ref_info)
            if "summary" in info:
                assert info["summary"] == pytest.approx(ref_info["summary"], nan_ok=True)
                assert {k: type(v) for k, v in info["summary"].items()} == {
                    k: type(v) for k, v in ref_info["summary"].items()
                }  # counts are ints, as in the single env
    episode_length = steps if max_episode_steps is None else min(steps, max_episode_steps)
    assert episodes_ended == n * ((2 * steps + 3) // episode_length)


def test_lean_infos_keep_what_sb3_reads_and_train_identically():
    # step_info=False: every info keeps TimeLimit.truncated, an ended sub-env's also its
    # terminal_observation and summary; the rest of the full infos is left out, and PPO (which
    # reads only those) learns bit-identically.
    n = 4
    full = make_sb3_vec_env("small", n, SHORT, seed=3)
    lean = make_sb3_vec_env("small", n, SHORT, seed=3, step_info=False)
    np.testing.assert_array_equal(full.reset(), lean.reset())
    assert full.reset_infos == lean.reset_infos
    rng = np.random.default_rng(3)
    ended = 0
    for _ in range(2 * SHORT["episode"]["steps"] + 1):
        actions = uniform_actions(rng, full)
        obs, rewards, dones, infos = full.step(actions)
        lean_obs, lean_rewards, lean_dones, lean_infos = lean.step(actions)
        np.testing.assert_array_equal(obs, lean_obs)
        np.testing.assert_array_equal(rewards, lean_rewards)
        np.testing.assert_array_equal(dones, lean_dones)
        assert full.reset_infos == lean.reset_infos
        for info, lean_info in zip(infos, lean_infos, strict=True):
            kept = {k: info[k] for k in ("TimeLimit.truncated", "terminal_observation", "summary") if k in info}
            assert set(lean_info) == set(kept)
            np.testing.assert_equal(lean_info, kept)
            ended += "terminal_observation" in lean_info
    assert ended == 2 * n
    with pytest.raises(TypeError, match="step_info must be True or False"):
        MetaLoreSB3VecEnv(MetaLoreVectorEnv(2, "small", autoreset_mode=AutoresetMode.SAME_STEP), step_info=0)
    models = []
    for step_info in (True, False):
        vec_env = VecMonitor(make_sb3_vec_env("small", n, SHORT, seed=5, step_info=step_info))
        model = PPO("MlpPolicy", vec_env, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
        models.append(model.learn(3 * 16 * n))
    for a, b in zip(models[0].policy.parameters(), models[1].policy.parameters(), strict=True):
        assert torch.equal(a, b)


def test_terminal_observation_is_the_vector_envs_last_observation():
    n = 4
    vec_env = make_sb3_vec_env("small", n, SHORT, seed=8)
    nxt = MetaLoreVectorEnv(n, "small", SHORT)
    np.testing.assert_array_equal(vec_env.reset(), nxt.reset(seed=8)[0])
    rng = np.random.default_rng(8)
    for _ in range(SHORT["episode"]["steps"] - 1):
        actions = uniform_actions(rng, vec_env)
        obs, rewards, dones, infos = vec_env.step(actions)
        n_obs, n_rewards, *_ = nxt.step(actions)
        np.testing.assert_array_equal(obs, n_obs)
        np.testing.assert_array_equal(rewards, n_rewards.astype(np.float32))
        assert not dones.any()
        assert all("terminal_observation" not in info and not info["TimeLimit.truncated"] for info in infos)
    actions = uniform_actions(rng, vec_env)
    obs, rewards, dones, infos = vec_env.step(actions)
    last_obs, n_rewards, _, n_truncated, n_info = nxt.step(actions)
    assert dones.all() and n_truncated.all()
    np.testing.assert_array_equal(rewards, n_rewards.astype(np.float32))
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].dtype == np.float32
        np.testing.assert_array_equal(info["terminal_observation"], last_obs[i])
        assert info["summary"]["reward"] == pytest.approx(n_info["summary"]["reward"][i])
        assert info["summary"]["steps"] == SHORT["episode"]["steps"]
    reset_obs, *_ = nxt.step(actions)  # NEXT_STEP shows the reset observation one step later
    np.testing.assert_array_equal(obs, reset_obs)


def reference_infos(info: dict, terminated: np.ndarray, truncated: np.ndarray, seeds: np.ndarray) -> list[dict]:
    """SB3's per-sub-env infos built one key and one sub-env at a time from the vector env's info.

    An ended sub-env's info is its last step's, which the SAME_STEP vector env keeps in
    ``final_info`` (its top level holds the reset info).
    """
    n = len(truncated)
    infos: list[dict] = [{} for _ in range(n)]
    for i in range(n):
        ended = bool(terminated[i] or truncated[i])
        source = info["final_info"] if ended else info
        for key, values in source.items():
            if key.startswith("_") or key in ("final_obs", "final_info", "summary"):
                continue
            if source[f"_{key}"][i]:
                infos[i][key] = values[i] if values.ndim > 1 else values[i].item()  # queue_lengths: (M, 2)
        infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if ended:
            infos[i]["terminal_observation"] = info["final_obs"][i]
            summary = info["final_info"]["summary"]
            infos[i]["summary"] = {k: v[i].item() for k, v in summary.items() if not k.startswith("_")}
    return infos


def test_infos_equal_a_key_by_key_split_of_the_vector_info():
    n = 6
    vec_env = make_sb3_vec_env("paper", n, SHORT, seed=2)
    same = MetaLoreVectorEnv(n, "paper", SHORT, autoreset_mode=AutoresetMode.SAME_STEP)
    vec_env.reset()
    same.reset(seed=2)
    rng = np.random.default_rng(2)
    later = np.arange(n) % 2 == 0
    partial_masks = ended = 0
    for t in range(3 * SHORT["episode"]["steps"]):
        if t == 5:  # these sub-envs start over, so episodes end at different steps
            vec_env.venv.reset(seed=50, options={"reset_mask": later})
            same.reset(seed=50, options={"reset_mask": later})
        actions = uniform_actions(rng, vec_env)
        _, _, dones, infos = vec_env.step(actions)
        _, _, terminated, truncated, info = same.step(actions)
        expected = reference_infos(info, terminated, truncated, same.sim.state.seed)
        for got, want in zip(infos, expected, strict=True):
            assert list(got) == list(want)  # same keys in the same order
            for key, value in want.items():
                assert type(got[key]) is type(value), key
                np.testing.assert_equal(got[key], value, err_msg=key)
        np.testing.assert_array_equal(dones, truncated)
        for i in np.flatnonzero(dones):
            assert vec_env.reset_infos[i] == {"t": 0, "seed": int(same.sim.state.seed[i])}
        partial_masks += 0 < info.get("_aori_mean", np.zeros(n, bool)).sum() < n
        ended += 0 < dones.sum() < n
    assert partial_masks and ended


def test_sb3_wrappers_run_on_the_adapter():
    vec_env = VecNormalize(VecMonitor(VecCheckNan(make_sb3_vec_env("paper", 4, SHORT, seed=0), raise_exception=True)))
    vec_env.reset()
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(2 * SHORT["episode"]["steps"]):
        _, rewards, dones, infos = vec_env.step(uniform_actions(rng, vec_env))
        assert np.isfinite(rewards).all()
        episodes += [info["episode"] for info, done in zip(infos, dones, strict=True) if done]
    assert len(episodes) == 8
    assert all(ep["l"] == SHORT["episode"]["steps"] for ep in episodes)
    with pytest.raises(ValueError, match="found nan in actions"):
        vec_env.step(np.full((4, 2), np.nan, np.float32))


def test_monitor_episode_return_equals_summary_reward():
    vec_env = VecMonitor(make_sb3_vec_env("paper", 2, SHORT, seed=1))
    vec_env.reset()
    for _ in range(SHORT["episode"]["steps"]):
        _, _, dones, infos = vec_env.step(np.full((2, 2), 0.6, np.float32))
    assert dones.all()
    for info in infos:
        assert info["episode"]["r"] == pytest.approx(info["summary"]["reward"], rel=1e-6)


def test_ppo_learns_a_few_steps_on_the_adapter():
    vec_env = make_sb3_vec_env("MetaLore/Paper-v0", n_envs=4, config=SHORT, seed=0)
    model = PPO("MlpPolicy", vec_env, n_steps=16, batch_size=32, n_epochs=2, seed=0, device="cpu")
    model.learn(64)
    assert model.num_timesteps == 64
    action, _ = model.predict(vec_env.reset(), deterministic=True)
    assert action.shape == (4, 2)


def test_seeding_follows_sb3_conventions():
    vec_env = make_sb3_vec_env("paper", 3)
    vec_env.seed(100)
    vec_env.reset()
    assert [info["seed"] for info in vec_env.reset_infos] == [100, 101, 102]
    vec_env.reset()  # seeds are used once; the next reset continues each sub-env's seed sequence
    assert [info["seed"] for info in vec_env.reset_infos] != [100, 101, 102]
    assert len(vec_env.seed(None)) == 3
    with pytest.raises(ValueError, match="non-negative"):
        vec_env.seed(-5)


def test_attribute_and_method_access():
    vec_env = make_sb3_vec_env("paper", 3, SHORT, seed=0)
    vec_env.reset()
    for _ in range(3):
        vec_env.step(np.full((3, 2), 0.5, np.float32))
    assert vec_env.get_attr("render_mode") == [None, None, None]
    assert vec_env.get_attr("observation_space", indices=[0]) == [vec_env.observation_space]
    assert vec_env.has_attr("scenario") and not vec_env.has_attr("no_such_attribute")
    summaries = vec_env.env_method("episode_summary", indices=[0, 2])
    assert [s["steps"] for s in summaries] == [3, 3]
    assert vec_env.env_is_wrapped(Monitor) == [False, False, False]
    vec_env.set_attr("custom_flag", 1)
    assert vec_env.get_attr("custom_flag", indices=1) == [1]
    vec_env.set_attr("custom_flag", 3)  # a custom attribute can be set again
    assert vec_env.get_attr("custom_flag") == [3, 3, 3]
    scenario, space = vec_env.get_attr("scenario")[0], vec_env.observation_space
    for own in ("scenario", "observation_space", "action_space", "spec", "render_mode", "num_envs"):
        with pytest.raises(AttributeError, match="custom attribute"):  # the core would not follow
            vec_env.set_attr(own, None)
    assert vec_env.get_attr("scenario")[0] is scenario and vec_env.get_attr("observation_space") == [space] * 3
    with pytest.raises(ValueError, match="subset"):
        vec_env.set_attr("custom_flag", 2, indices=[0])
    with pytest.raises(AttributeError, match="episode_summary"):
        vec_env.env_method("reset")
    with pytest.warns(UserWarning, match='render_mode="rgb_array"'):
        assert vec_env.get_images() == [None, None, None]
    with pytest.warns(UserWarning, match="render_mode"):
        assert vec_env.render() is None


def test_frames_equal_dummy_vec_env_of_rendering_single_envs():
    # get_images and SB3's tiled render() give DummyVecEnv's frames of the same episodes.
    pytest.importorskip("matplotlib")
    config = {"episode": {"steps": 3}}
    ours = make_sb3_vec_env("small", 2, config, seed=7, render_mode="rgb_array")
    reference = DummyVecEnv([lambda: gym.make("MetaLore/Small-v0", config=config, render_mode="rgb_array")] * 2)
    reference.seed(7)
    assert ours.render_mode == reference.render_mode == "rgb_array"
    ours.reset()
    reference.reset()
    for _ in range(4):  # across the episode end at step 3
        actions = np.full((2, 2), 0.3, np.float32)
        ours.step(actions)
        reference.step(actions)
    mine, theirs = ours.get_images(), reference.get_images()
    assert len(mine) == 2 and all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))
    assert not np.array_equal(mine[0], mine[1])
    np.testing.assert_array_equal(ours.render(), reference.render())
    ours.close()
    reference.close()


def test_indices_are_checked_as_dummy_vec_env_checks_them():
    # DummyVecEnv indexes a list of envs: negative indices count from the end, others past the
    # end raise IndexError. The batched core reads rows without bounds checks, so an unchecked
    # index past the end returned another row's (or no row's) statistics.
    vec_env = make_sb3_vec_env("paper", 3, SHORT, seed=0)
    vec_env.reset()
    vec_env.step(np.full((3, 2), 0.5, np.float32))
    last = vec_env.env_method("episode_summary", indices=2)
    np.testing.assert_equal(vec_env.env_method("episode_summary", indices=[-1]), last)  # NaN means
    for bad in (3, [0, -4], [100]):
        with pytest.raises(IndexError, match="3 sub-envs"):
            vec_env.env_method("episode_summary", indices=bad)
        with pytest.raises(IndexError, match="3 sub-envs"):
            vec_env.get_attr("render_mode", indices=bad)
    vec_env.set_attr("custom_flag", 1, indices=[-1, 0, 1, 1])  # every sub-env, as in DummyVecEnv


def test_a_none_action_is_named_in_the_error():
    vec_env = make_sb3_vec_env("paper", 2, SHORT, seed=0)
    vec_env.reset()
    with pytest.raises(ValueError, match="action is None"):
        vec_env.step(None)


def test_bad_construction_is_rejected_with_the_fix():
    with pytest.raises(ValueError, match="SAME_STEP"):
        MetaLoreSB3VecEnv(MetaLoreVectorEnv(2, "paper"))
    with pytest.raises(TypeError, match="make_sb3_vec_env"):
        MetaLoreSB3VecEnv(gym.make("MetaLore/Paper-v0"))
    with pytest.raises(ValueError, match="MetaLore/Paper-v0"):
        make_sb3_vec_env("CartPole-v1", 2)
    assert make_sb3_vec_env(metalore.SEED_ALIAS_ID, 2).venv.scenario.name == "paper"
    vec_env = MetaLoreSB3VecEnv(MetaLoreVectorEnv(2, "small", autoreset_mode=AutoresetMode.SAME_STEP))
    with pytest.raises(RuntimeError, match="step_async"):
        vec_env.step_wait()


def test_missing_stable_baselines3_names_the_install_command(monkeypatch):
    for name in [m for m in sys.modules if m == "stable_baselines3" or m.startswith("stable_baselines3.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "metalore.sb3")
    with pytest.raises(ImportError, match=r'pip install "metalore\[sb3\]"'):
        importlib.import_module("metalore.sb3")


@pytest.mark.parametrize(
    ("env_id", "config", "max_episode_steps"),
    [("MetaLore/Paper-v0", SHORT, None), ("MetaLore/MultiCell-v0", None, 5), (SEED_ALIAS_ID, None, None)],
)
def test_get_attr_spec_is_dummy_vec_envs(env_id, config, max_episode_steps):
    kwargs = {} if config is None else {"config": config}
    dummy = DummyVecEnv([lambda: gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)])
    ours = make_sb3_vec_env(env_id, 2, config, max_episode_steps=max_episode_steps)
    assert ours.get_attr("spec") == dummy.get_attr("spec") * 2
    # from gymnasium.make_vec: the single env's spec, without the vector env's own kwargs
    venv = gym.make_vec(
        env_id, num_envs=2, vectorization_mode="vector_entry_point", autoreset_mode=AutoresetMode.SAME_STEP,
        max_episode_steps=max_episode_steps, **kwargs,
    )  # fmt: skip
    assert MetaLoreSB3VecEnv(venv).get_attr("spec", indices=[1]) == dummy.get_attr("spec")
