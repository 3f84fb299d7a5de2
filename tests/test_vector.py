"""The native vector env: equivalence with single envs, autoreset, info masks, make_vec, scale."""

from __future__ import annotations

import copy
import gc
import multiprocessing
import os
import pickle
import queue as queue_module
import warnings
import weakref
from typing import Any

import gymnasium as gym
import numba as nb
import numpy as np
import pytest
from gymnasium.error import ClosedEnvironmentError
from gymnasium.vector import AutoresetMode

import metalore
from metalore import MetaLoreEnv, MetaLoreVectorEnv
from metalore.core.state import DONE_JOBS, DROP_MEC_JOBS, DROP_UL_JOBS, GEN_JOBS, SENT_JOBS

COUNT_KEYS = [f"{name}_{cls}" for cls in ("ue", "sensor") for name in ("generated", "sent", "completed", "dropped")]


def random_actions(rng: np.random.Generator, venv: MetaLoreVectorEnv) -> np.ndarray:
    return rng.uniform(0.0, 1.0, venv.action_space.shape).astype(np.float32)


def assert_sub_env_step_matches(i, single_out, vobs, vrew, vterm, vtrunc, vinfo) -> None:
    obs, reward, terminated, truncated, info = single_out
    np.testing.assert_array_equal(vobs[i], obs)
    assert vrew[i] == reward
    assert vterm[i] == terminated
    assert vtrunc[i] == truncated
    assert vinfo["_t"][i] and vinfo["t"][i] == info["t"]
    for key in COUNT_KEYS:
        assert vinfo[f"_{key}"][i]
        assert vinfo[key][i] == info[key], key
    assert vinfo.get("_aori_mean", np.zeros(len(vobs), bool))[i] == (len(info["aori"]) > 0)
    if len(info["aori"]):
        assert vinfo["aori_mean"][i] == pytest.approx(np.mean(info["aori"]), rel=1e-12)
        assert vinfo["aosi_mean"][i] == pytest.approx(np.mean(info["aosi"]), rel=1e-12)
    assert vinfo.get("_summary", np.zeros(len(vobs), bool))[i] == truncated
    if truncated:
        for key, value in info["summary"].items():
            np.testing.assert_equal(vinfo["summary"][key][i], value)


def run_vector_against_singles(preset, config, seed, num_envs, parallel=None, episodes=2) -> int:
    """Step a vector env and N single envs side by side; return how many autoresets were crossed.

    Partway through, sub-env 0 alone is reset with a new seed (``reset_mask``), so the sub-envs
    reach their episode boundaries at different steps.
    """
    venv = MetaLoreVectorEnv(num_envs, preset, config, parallel=parallel)
    singles = [MetaLoreEnv(preset, config) for _ in range(num_envs)]
    rng = np.random.default_rng(seed)
    vobs, vinfo = venv.reset(seed=seed)
    for i, env in enumerate(singles):
        obs, info = env.reset(seed=seed + i)
        np.testing.assert_array_equal(vobs[i], obs)
        assert vinfo["seed"][i] == info["seed"] == seed + i
    steps = venv.scenario.steps
    partial_reset_at = steps // 3
    ending = np.zeros(num_envs, dtype=bool)
    autoresets = 0
    for t in range(episodes * (steps + 1) + partial_reset_at):
        if t == partial_reset_at:
            mask = np.arange(num_envs) == 0
            vobs, vinfo = venv.reset(seed=10_000, options={"reset_mask": mask})
            np.testing.assert_array_equal(vinfo["_seed"], mask)
            obs, _ = singles[0].reset(seed=10_000)
            np.testing.assert_array_equal(vobs[0], obs)
            ending[0] = False
        actions = random_actions(rng, venv)
        vobs, vrew, vterm, vtrunc, vinfo = venv.step(actions)
        for i, env in enumerate(singles):
            if ending[i]:  # next-step autoreset: the single env is reset without a seed
                obs, reset_info = env.reset()
                np.testing.assert_array_equal(vobs[i], obs)
                assert vrew[i] == 0.0 and not vterm[i] and not vtrunc[i]
                # The info is the reset info (as Gymnasium's vector envs report it), no step counts.
                assert vinfo["_t"][i] and vinfo["t"][i] == reset_info["t"] == 0
                assert vinfo["_seed"][i] and vinfo["seed"][i] == reset_info["seed"]
                none = np.zeros(len(vobs), bool)  # (a key no sub-env has is absent, as in Gymnasium)
                assert not any(vinfo.get(f"_{key}", none)[i] for key in (*COUNT_KEYS, "aori_mean"))
                autoresets += 1
            else:
                assert_sub_env_step_matches(i, env.step(actions[i]), vobs, vrew, vterm, vtrunc, vinfo)
        ending = vtrunc.copy()
    return autoresets


@pytest.mark.parametrize("preset", ["paper", "small", "multicell", "dynamic"])
@pytest.mark.parametrize("seed", [0, 4242])
def test_vector_env_replays_seeded_single_envs_across_autoreset(preset, seed):
    num_envs = 3
    autoresets = run_vector_against_singles(preset, None, seed, num_envs)
    assert autoresets >= num_envs  # every sub-env crossed at least one episode boundary


VARIANTS = {
    "round_robin": {"scheduler": {"model": "round_robin"}},
    "proportional_fair": {"scheduler": {"model": "proportional_fair", "pf_ewma_weight": 0.3}},
    "umi_38901_los": {"channel": {"model": "umi_38901", "los": True}},
    "static_ues": {"ue": {"mobility": "static"}},
    "all_features": {
        "observation": {"features": ["queue_lengths", "queue_work", "uplink_backlog", "twin_age", "time"]}
    },
    "symmetric_actions": {"action": {"range": "symmetric"}},
    "full_queues": {
        "ue": {"queue_capacity": 2},
        "sensor": {"queue_capacity": 3},
        "bs": {"compute_units_per_s": 5, "queue_capacity": 4},
    },
    "short_steps": {"episode": {"step_duration_s": 0.25}},
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("preset", ["paper", "multicell"])
def test_vector_env_replays_single_envs_under_config_variants(preset, variant):
    # Schedulers, channel models, mobility, observation sets, action ranges, dropping queues
    # and another step length take other code paths in the kernel: still the same episodes.
    config = {**VARIANTS[variant], "episode": {**VARIANTS[variant].get("episode", {}), "steps": 15}}
    assert run_vector_against_singles(preset, config, 5, 3) >= 3


@pytest.mark.parametrize(
    ("preset", "config", "num_envs"),
    [
        ("paper", {"episode": {"steps": 1}}, 3),  # every other step is an autoreset
        ("paper", {"episode": {"steps": 10}}, 1),
        ("paper", {"episode": {"steps": 12}, "log": {"jobs": True, "max_jobs": 50}}, 3),  # log full, oldest dropped
        ("paper", {"episode": {"steps": 12}, "ue": {"count": 0}}, 3),  # sensors only
        ("paper", {"episode": {"steps": 12}, "sensor": {"period_steps": 3}}, 3),
        ("small", {"episode": {"steps": 12}, "ue": {"request_probability": [0.1, 0.9, 1.0]}}, 3),
    ],
    ids=["one_step_episodes", "one_sub_env", "job_log_overflowing", "no_ues", "sensor_period_3", "per_ue_probability"],
)
def test_vector_env_replays_single_envs_at_the_edges(preset, config, num_envs):
    assert run_vector_against_singles(preset, config, 11, num_envs) >= num_envs


def test_threaded_batch_replays_single_envs():
    # 64 sub-envs step on the parallel (prange) kernel by default; it must not change a bit.
    venv = MetaLoreVectorEnv(64, "paper", {"episode": {"steps": 20}})
    assert venv.sim._step_kernel.__name__ == "step_envs_parallel"
    assert run_vector_against_singles("paper", {"episode": {"steps": 20}}, 7, 64, episodes=2) >= 64


@pytest.mark.parametrize("env_id", metalore.registered_ids())
def test_make_vec_with_vector_entry_point_for_every_id(env_id):
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    assert isinstance(venv.unwrapped, MetaLoreVectorEnv)
    assert venv.num_envs == 2
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    single = gym.make(env_id)
    assert venv.single_observation_space == single.observation_space
    assert venv.single_action_space == single.action_space
    vobs, _ = venv.reset(seed=5)
    assert venv.observation_space.contains(vobs)
    actions = np.full(venv.action_space.shape, 0.5, dtype=np.float32)
    vobs, vrew, _, _, _ = venv.step(actions)
    assert venv.observation_space.contains(vobs)
    for i in range(2):
        single.reset(seed=5 + i)
        obs, reward, *_ = single.step(actions[i])
        np.testing.assert_array_equal(vobs[i], obs)
        assert vrew[i] == reward
    venv.close()


def test_make_vec_passes_config_and_autoreset_mode():
    venv = gym.make_vec(
        "MetaLore/Paper-v0",
        num_envs=2,
        vectorization_mode="vector_entry_point",
        config={"episode": {"steps": 3}},
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    venv.reset(seed=0)
    truncated = [venv.step(np.zeros((2, 2), np.float32))[3] for _ in range(3)]
    np.testing.assert_array_equal(truncated, [[False, False], [False, False], [True, True]])


def test_next_step_autoreset_returns_reset_obs_zero_reward_and_ignores_action():
    config = {"episode": {"steps": 5}}
    first, second = (MetaLoreVectorEnv(2, "paper", config) for _ in range(2))
    reference = MetaLoreEnv("paper", config)
    for venv in (first, second):
        venv.reset(seed=3)
    reference.reset(seed=3)
    half = np.full((2, 2), 0.5, np.float32)
    for _ in range(5):
        out_first, out_second = first.step(half), second.step(half)
        reference.step(half[0])
    assert out_first[3].all() and out_first[4]["_summary"].all()
    # The autoreset step: different actions, identical results, nothing stepped.
    out_first = first.step(np.zeros((2, 2), np.float32))
    out_second = second.step(np.ones((2, 2), np.float32))
    reset_obs, _ = reference.reset()
    for a, b in zip(out_first[:4], out_second[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    obs, reward, terminated, truncated, info = out_first
    np.testing.assert_array_equal(obs[0], reset_obs)
    np.testing.assert_array_equal(reward, [0.0, 0.0])
    assert not terminated.any() and not truncated.any()
    assert not {"summary", "generated_ue", "queue_lengths", "aori_mean"} & set(info)  # nothing stepped
    assert info["_seed"].all() and (info["t"] == 0).all()  # the reset info of both sub-envs
    # The ignored action left no trace: both continue identically, like the fresh single env.
    out_first, out_second = first.step(half), second.step(half)
    ref_obs, ref_reward, *_ = reference.step(half[0])
    np.testing.assert_array_equal(out_first[0], out_second[0])
    np.testing.assert_array_equal(out_first[0][0], ref_obs)
    assert out_first[1][0] == ref_reward
    assert out_first[4]["_t"].all() and (out_first[4]["t"] == 0).all()


def test_same_step_autoreset_puts_final_obs_in_info():
    config = {"episode": {"steps": 4}}
    same = MetaLoreVectorEnv(3, "small", config, autoreset_mode=AutoresetMode.SAME_STEP)
    nxt = MetaLoreVectorEnv(3, "small", config)
    same.reset(seed=9)
    nxt.reset(seed=9)
    rng = np.random.default_rng(0)
    for _ in range(3):
        actions = random_actions(rng, same)
        s_out, n_out = same.step(actions), nxt.step(actions)
        for a, b in zip(s_out[:4], n_out[:4], strict=True):
            np.testing.assert_array_equal(a, b)
        assert "final_obs" not in s_out[4]
    actions = random_actions(rng, same)
    s_obs, s_rew, _, s_trunc, s_info = same.step(actions)
    n_obs, n_rew, _, n_trunc, n_info = nxt.step(actions)
    assert s_trunc.all() and n_trunc.all()
    np.testing.assert_array_equal(s_rew, n_rew)
    np.testing.assert_array_equal(s_info["_final_obs"], s_trunc)
    np.testing.assert_array_equal(s_info["final_obs"], n_obs)
    np.testing.assert_array_equal(s_info["_final_info"], s_trunc)
    for key, values in n_info["summary"].items():
        np.testing.assert_array_equal(s_info["final_info"]["summary"][key], values)
    # SAME_STEP returns the reset observation now; NEXT_STEP returns it one step later.
    n_reset_obs, n_rew, *_ = nxt.step(actions)
    np.testing.assert_array_equal(s_obs, n_reset_obs)
    actions = random_actions(rng, same)
    np.testing.assert_array_equal(same.step(actions)[0], nxt.step(actions)[0])


def test_reset_mask_resets_only_selected_sub_envs():
    venv = MetaLoreVectorEnv(4, "paper")
    untouched = MetaLoreVectorEnv(4, "paper")
    for v in (venv, untouched):
        v.reset(seed=1)
    half = np.full((4, 2), 0.5, np.float32)
    for _ in range(10):
        venv.step(half)
        untouched.step(half)
    mask = np.array([False, True, False, True])
    obs, info = venv.reset(seed=50, options={"reset_mask": mask})
    np.testing.assert_array_equal(info["_seed"], mask)
    np.testing.assert_array_equal(info["seed"][mask], [51, 53])
    np.testing.assert_array_equal(obs[mask], 0.0)  # empty queues at an episode start
    out, ref = venv.step(half), untouched.step(half)
    np.testing.assert_array_equal(out[0][~mask], ref[0][~mask])
    np.testing.assert_array_equal(out[4]["t"], [10, 0, 10, 0])
    with pytest.raises(ValueError, match="reset_mask has shape"):
        venv.reset(options={"reset_mask": [True, False]})
    with pytest.raises(ValueError, match="reset_mask has dtype int64: pass booleans"):
        venv.reset(options={"reset_mask": np.array([0, 1, 0, 1])})
    with pytest.raises(ValueError, match="selects no sub-env"):
        venv.reset(options={"reset_mask": np.zeros(4, bool)})
    fresh = MetaLoreVectorEnv(4, "paper")
    with pytest.raises(ValueError, match=r"first reset must start every sub-env.*sub-envs \[1, 3\]"):
        fresh.reset(seed=1, options={"reset_mask": ~mask})  # sub-envs 1 and 3 would step un-started
    with pytest.raises(RuntimeError, match="call reset"):
        fresh.step(half)  # the refused reset started nothing
    fresh.reset(seed=1, options={"reset_mask": np.ones(4, bool)})  # a full mask is a full reset
    with pytest.raises(ValueError, match=r"sub-envs \[1, 2, 3, 4, 5, 6, 7, 8, \.\.\. \(11 in all\)\]"):
        MetaLoreVectorEnv(12, "paper").reset(options={"reset_mask": np.arange(12) == 0})  # a long list is cut
    reference = MetaLoreVectorEnv(4, "paper")
    reference.reset(seed=1)
    np.testing.assert_array_equal(fresh.step(half)[1], reference.step(half)[1])


def test_reset_accepts_one_seed_per_sub_env():
    venv = MetaLoreVectorEnv(3, "small")
    _, info = venv.reset(seed=[7, None, 9])
    assert info["seed"][0] == 7 and info["seed"][2] == 9
    with pytest.raises(ValueError, match="one per sub-env"):
        venv.reset(seed=[1, 2])
    _, info = venv.reset(seed=np.array(5))  # a 0-d array is one seed, as the int 5
    np.testing.assert_array_equal(info["seed"], [5, 6, 7])
    with pytest.raises(ValueError, match="non-negative"):
        venv.reset(seed=-1)


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ([4, -1, 6], "seed -1 of sub-env 1 is invalid"),
        ([True, 5, 6], "seed True of sub-env 0 is invalid"),
        ([4, 5.5, 6], "seed 5.5 of sub-env 1 is invalid"),
        (["4", 5, 6], "seed '4' of sub-env 0 is invalid"),
        ([4, 5, 2**63], "of sub-env 2 is invalid"),
        (2**63 - 2, "sub-env i takes seed \\+ i"),  # sub-env 2 would get 2**63, beyond int64
    ],
)
def test_reset_rejects_seeds_no_single_env_accepts(seed, message):
    # A negative, bool, fractional or too large seed used to reach the core (truncated, or
    # wrapped round to a negative int64): an episode no single env reset can replay.
    venv = MetaLoreVectorEnv(3, "small")
    with pytest.raises(ValueError, match=message):
        venv.reset(seed=seed)
    _, info = venv.reset(seed=2**63 - 3)  # the largest seed with every sub-env's seed + i in int64
    assert info["seed"][2] == 2**63 - 1


def test_info_is_a_dict_of_arrays_with_masks():
    venv = MetaLoreVectorEnv(8, "dynamic")
    venv.reset(seed=2)
    rng = np.random.default_rng(2)
    saw_empty_step = saw_completions = False
    for _ in range(venv.scenario.steps + 1):
        _, _, _, truncated, info = venv.step(random_actions(rng, venv))
        for key, value in info.items():
            if key.startswith("_") or key in ("summary", "final_obs", "final_info"):
                continue
            mask = info[f"_{key}"]
            assert mask.dtype == np.bool_ and mask.shape == (8,), key
            assert value.shape == ((8, venv.scenario.num_bs, 2) if key == "queue_lengths" else (8,)), key
        valid = info.get("_aori_mean", np.zeros(8, bool))
        assert ("aori_mean" in info) == valid.any()  # a key only where some sub-env has it
        if valid.any():
            assert np.isfinite(info["aori_mean"][valid]).all() and np.isfinite(info["aosi_mean"][valid]).all()
            assert (info["aori_mean"][valid] >= 0).all()
        saw_completions |= valid.any()
        saw_empty_step |= (info["_t"] & ~valid).any()
        if truncated.any():
            np.testing.assert_array_equal(info["_summary"], truncated)
            for key, values in info["summary"].items():
                assert values.shape == (8,)
                if key.startswith("_"):  # nested masks, as Gymnasium batches a dict
                    np.testing.assert_array_equal(values, truncated)
                else:
                    assert not values[~truncated].any()  # zero outside the mask
        else:
            assert "summary" not in info
    assert saw_completions and saw_empty_step


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (np.full((2, 2), np.nan), "NaN or infinity"),
        (np.full((2, 2), np.inf), "NaN or infinity"),
        (np.zeros((2, 3)), "shape"),
        (np.zeros(2), "shape"),
        ("half", "not numeric"),
        (np.full((2, 2), 0.5 + 0.5j), "is complex"),  # not the real part with a warning
    ],
)
def test_invalid_actions_raise_clear_errors(actions, message):
    venv = MetaLoreVectorEnv(2, "paper")
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        venv.step(actions)


def test_a_non_finite_action_in_a_large_batch_names_its_sub_env():
    venv = MetaLoreVectorEnv(64, "paper")
    venv.reset(seed=0)
    actions = np.full((64, 2), 0.5)
    actions[40, 1] = np.nan
    actions[50] = np.inf
    with pytest.raises(ValueError, match=r"sub-env 40 is \[0.5, nan\].*\(2 of 64 sub-envs") as err:
        venv.step(actions)
    assert len(str(err.value)) < 200  # the sub-env, not 128 values


def test_per_sub_env_read_outs_check_their_index():
    # The compiled read-outs index rows without bounds checks: index 3 of 3 sub-envs used to
    # return another row's numbers (or no row's). Indices work as on a list of envs.
    venv = MetaLoreVectorEnv(3, "small", {"episode": {"steps": 4}, "log": {"jobs": True}})
    venv.reset(seed=5)
    for _ in range(3):
        venv.step(np.full((3, 2), 0.5))
    singles = []
    for i in range(3):
        env = MetaLoreEnv("small", {"episode": {"steps": 4}, "log": {"jobs": True}})
        env.reset(seed=5 + i)
        for _ in range(3):
            env.step(np.full(2, 0.5))
        singles.append(env)
    for index, i in ((2, 2), (-1, 2), (-3, 0), (np.int64(1), 1)):
        np.testing.assert_equal(venv.episode_summary(index), singles[i].episode_summary())
        assert venv.job_log(index).equals(singles[i].job_log())
    for read_out in (venv.episode_summary, venv.job_log):
        for bad in (3, -4, 100):
            with pytest.raises(IndexError, match=f"sub-env index {bad} is out of range: there are 3 sub-envs"):
                read_out(bad)
        with pytest.raises(TypeError, match=r"sub-env index 1\.0 is not an integer"):
            read_out(1.0)


def test_call_and_get_attr_answer_as_gymnasiums_sync_vector_env_of_single_envs():
    # Code written for SyncVectorEnv reads the sub-envs through call/get_attr: the read-outs
    # of each sub-env and the attributes they share give the same values from the native env.
    kwargs: dict[str, Any] = {"config": {"episode": {"steps": 6}, "log": {"jobs": True}}, "max_episode_steps": 4}
    theirs = gym.make_vec("MetaLore/Small-v0", num_envs=3, vectorization_mode="sync", **kwargs)
    ours = gym.make_vec("MetaLore/Small-v0", num_envs=3, vectorization_mode="vector_entry_point", **kwargs)
    theirs.reset(seed=9)
    ours.reset(seed=9)
    for _ in range(3):
        actions = np.full((3, 2), 0.25, np.float32)
        theirs.step(actions)
        ours.step(actions)
    summaries = ours.call("episode_summary")
    assert len(summaries) == 3 and summaries[2]["ue_generated"] != summaries[0]["ue_generated"]
    np.testing.assert_equal(summaries, theirs.call("episode_summary"))
    np.testing.assert_equal(ours.get_attr("episode_summary"), summaries)
    logs = ours.call("job_log")
    assert len(logs) == 3 and all(len(log) > 0 for log in logs)
    assert all(mine.equals(their) for mine, their in zip(logs, theirs.call("job_log"), strict=True))
    for name in ("observation_space", "action_space", "render_mode", "spec"):
        assert ours.get_attr(name) == theirs.get_attr(name), name
    assert ours.get_attr("spec")[0].max_episode_steps == 4 and "num_envs" not in ours.get_attr("spec")[0].kwargs
    scenarios = ours.get_attr("scenario")
    assert all(s is ours.unwrapped.scenario for s in scenarios) and scenarios[0].steps == 6
    with pytest.raises(AttributeError, match=r"'twin_age' is not available per sub-env: .* episode_summary, job_log"):
        ours.call("twin_age")
    with pytest.raises(TypeError, match="'scenario' is an attribute, not a method"):
        ours.call("scenario", 1)
    with pytest.raises(AttributeError, match=r"cannot set 'scenario' on the sub-envs: .* config="):
        ours.set_attr("scenario", None)
    theirs.close()
    ours.close()


def test_step_before_reset_and_bad_arguments_are_rejected():
    with pytest.raises(RuntimeError, match="reset"):
        MetaLoreVectorEnv(2, "paper").step(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="num_envs"):
        MetaLoreVectorEnv(0, "paper")
    with pytest.raises(ValueError, match="autoreset_mode 'Never' is unknown"):
        MetaLoreVectorEnv(2, "paper", autoreset_mode="Never")
    with pytest.raises(ValueError, match="render_mode"):
        MetaLoreVectorEnv(2, "paper", render_mode="human")
    with pytest.raises(ValueError, match="max_episode_steps = 0 is invalid"):
        MetaLoreVectorEnv(2, "paper", max_episode_steps=0)


def test_out_of_range_and_per_bs_actions_are_accepted():
    envs = [MetaLoreVectorEnv(2, "multicell") for _ in range(3)]
    for venv in envs:
        venv.reset(seed=4)
    rng = np.random.default_rng(4)
    for _ in range(20):
        actions = random_actions(rng, envs[0])
        stretched = np.where(actions > 0.5, actions + 3.0, actions)
        stretched = np.where(actions < 0.1, -2.0, stretched)
        clipped = np.clip(stretched, 0.0, 1.0)
        out_flat = envs[0].step(clipped)
        out_per_bs = envs[1].step(clipped.reshape(2, 3, 2))
        out_stretched = envs[2].step(stretched)
        for a, b, c in zip(out_flat[:4], out_per_bs[:4], out_stretched[:4], strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)


SCALED = {
    "area": {"width_m": 1000.0, "height_m": 1000.0},
    "bs": {"positions_m": [[500.0, 500.0]], "bandwidth_hz": 2.4e9, "compute_units_per_s": 2400.0},
    "ue": {"count": 300},
    "sensor": {"count": 300, "placement": {"min_distance_m": 20.0, "max_distance_m": 450.0, "min_separation_m": 15.0}},
    "episode": {"steps": 60},
}


def assert_jobs_conserved(venv: MetaLoreVectorEnv) -> None:
    s, p = venv.sim.state, venv.sim.params
    k = p.num_ues
    queued_on_devices = [s.dq_len[:, :k].sum(axis=1), s.dq_len[:, k:].sum(axis=1)]
    for c in range(2):
        tot = s.totals[:, c]
        np.testing.assert_array_equal(tot[:, GEN_JOBS], tot[:, DROP_UL_JOBS] + queued_on_devices[c] + tot[:, SENT_JOBS])
        at_mec = s.bq_len[:, :, c].sum(axis=1)
        np.testing.assert_array_equal(tot[:, SENT_JOBS], tot[:, DROP_MEC_JOBS] + at_mec + tot[:, DONE_JOBS])
    assert (s.dq_len >= 0).all() and (s.dq_len <= p.dev_queue_capacity).all()
    assert (s.bq_len >= 0).all() and (s.bq_len <= p.bs_queue_capacity).all()


def test_scaled_scenario_with_hundreds_of_devices_runs_correctly():
    venv = MetaLoreVectorEnv(2, "paper", SCALED)
    obs, _ = venv.reset(seed=21)
    pos = venv.sim.state.pos_m
    k = venv.scenario.num_ues
    assert ((pos >= 0.0) & (pos <= 1000.0)).all()
    for b in range(2):
        sensors = pos[b, k:]
        radius = np.linalg.norm(sensors - 500.0, axis=1)
        assert ((radius >= 20.0 - 1e-9) & (radius <= 450.0 + 1e-9)).all()
        gaps = np.linalg.norm(sensors[:, None] - sensors[None], axis=2) + np.eye(len(sensors)) * 1e9
        assert gaps.min() >= 15.0 - 1e-9
    singles = [MetaLoreEnv("paper", SCALED) for _ in range(2)]
    for i, env in enumerate(singles):
        env.reset(seed=21 + i)
    rng = np.random.default_rng(21)
    totals = np.zeros((2, 2, 5))
    for _ in range(venv.scenario.steps):
        actions = random_actions(rng, venv)
        obs, reward, terminated, truncated, info = venv.step(actions)
        assert venv.observation_space.contains(obs)
        assert np.isfinite(reward).all()
        assert_jobs_conserved(venv)
        totals += venv.sim.out.step_counts[:, :, [GEN_JOBS, SENT_JOBS, DONE_JOBS, DROP_UL_JOBS, DROP_MEC_JOBS]]
        for i, env in enumerate(singles):
            assert_sub_env_step_matches(i, env.step(actions[i]), obs, reward, terminated, truncated, info)
    assert truncated.all()
    np.testing.assert_array_equal(
        totals, venv.sim.state.totals[:, :, [GEN_JOBS, SENT_JOBS, DONE_JOBS, DROP_UL_JOBS, DROP_MEC_JOBS]]
    )
    assert (totals[:, :, 2] > 0).all()  # both classes completed jobs at this scale
    summary = info["summary"]
    np.testing.assert_array_equal(summary["ue_completed"], totals[:, 0, 2])
    np.testing.assert_array_equal(summary["sensor_completed"], totals[:, 1, 2])


def test_scaled_multicell_scenario_with_a_thousand_devices_per_class():
    config = {
        "area": {"width_m": 3000.0, "height_m": 1000.0},
        "bs": {
            "positions_m": [[500.0, 500.0], [1500.0, 500.0], [2500.0, 500.0]],
            "bandwidth_hz": 2.7e9,
            "compute_units_per_s": 2700.0,
        },
        "ue": {"count": 1000},
        "sensor": {
            "count": 1000,
            "placement": {"min_distance_m": 20.0, "max_distance_m": 450.0, "min_separation_m": 10.0},
        },
        "episode": {"steps": 100},
    }
    venv = MetaLoreVectorEnv(2, "paper", config)
    venv.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(100):
        obs, reward, _, truncated, _ = venv.step(random_actions(rng, venv))
        assert venv.observation_space.contains(obs) and np.isfinite(reward).all()
        assert_jobs_conserved(venv)
    assert truncated.all()


def test_threaded_episode_start_equals_the_serial_one():
    from metalore.config import make_scenario
    from metalore.core import kernels
    from metalore.core.simulator import BatchSimulator

    scenario = make_scenario("multicell")
    serial, threaded = BatchSimulator(scenario, batch=12), BatchSimulator(scenario, batch=12)
    ids = np.array([0, 3, 4, 7, 11], dtype=np.int64)
    seeds = np.array([5, 99, 7, 123456, 0], dtype=np.int64)
    assert kernels.init_envs(ids, seeds, *serial._init_args) == -1
    assert kernels.init_envs_parallel(ids, seeds, *threaded._init_args) == -1
    for name, a, b in zip(serial.state._fields, serial.state, threaded.state, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert np.count_nonzero(threaded.state.seed) == 4  # the listed environments only (seed 0 stays 0)


def test_threaded_episode_start_reports_an_infeasible_placement():
    from metalore.config import make_scenario
    from metalore.core import kernels
    from metalore.core.simulator import BatchSimulator

    placement = {"min_distance_m": 20, "max_distance_m": 30, "min_separation_m": 20}
    crowded = {"sensor": {"count": 60, "placement": placement}}
    sim = BatchSimulator(make_scenario("paper", crowded), batch=3)
    ids = np.array([2, 0], dtype=np.int64)
    assert kernels.init_envs_parallel(ids, np.array([1, 2], dtype=np.int64), *sim._init_args) == 2


def test_changing_the_returned_truncated_array_does_not_cancel_the_autoreset():
    venv = MetaLoreVectorEnv(2, "small", {"episode": {"steps": 3}})
    venv.reset(seed=0)
    actions = np.full((2, 2), 0.5, dtype=np.float32)
    for _ in range(3):
        _, _, _, truncated, _ = venv.step(actions)
    assert truncated.all()
    truncated[:] = False  # the caller's array; the env must keep its own record of the episode end
    _, reward, _, truncated, info = venv.step(actions)
    assert not truncated.any() and np.all(reward == 0.0)
    assert "generated_ue" not in info and "_generated_ue" not in info  # the autoreset step steps no sub-env
    assert info["_seed"].all()
    assert venv.sim.state.t.tolist() == [0, 0]


def assert_infos_agree(tinfo: dict, oinfo: dict, num_envs: int) -> np.ndarray:
    """Gymnasium's batched info of single envs (``tinfo``) against the native one; return who stepped.

    The same keys (a key only where some sub-env has it), except the single env's age tuples
    ``aori``/``aosi``, which the native info reports as means, present when some are non-empty.
    """
    own = {"aori_mean", "_aori_mean", "aosi_mean", "_aosi_mean"}
    assert set(oinfo) - own == set(tinfo) - {"aori", "_aori", "aosi", "_aosi"}
    stepped = oinfo.get("_generated_ue", np.zeros(num_envs, bool))
    completed = [i for i in np.flatnonzero(stepped) if tinfo["aori"][i]]
    assert ("aori_mean" in oinfo) == ("aosi_mean" in oinfo) == bool(completed)
    for key in ("t", "seed"):  # the step's, or an autoreset sub-env's reset info
        mask = oinfo.get(f"_{key}", np.zeros(num_envs, bool))
        np.testing.assert_array_equal(tinfo.get(f"_{key}", np.zeros(num_envs, bool)), mask, err_msg=key)
        if mask.any():
            np.testing.assert_array_equal(tinfo[key][mask], oinfo[key][mask], err_msg=key)
    for key in (*COUNT_KEYS, "queue_lengths"):
        np.testing.assert_array_equal(tinfo.get(f"_{key}", np.zeros(num_envs, bool)), stepped, err_msg=key)
        if stepped.any():
            np.testing.assert_array_equal(tinfo[key][stepped], oinfo[key][stepped], err_msg=key)
            assert tinfo[key].dtype == oinfo[key].dtype and tinfo[key].shape == oinfo[key].shape, key
    if completed:  # variable-length ages: one tuple per sub-env
        np.testing.assert_array_equal(np.flatnonzero(oinfo["_aori_mean"]), completed)
        for i in completed:
            assert oinfo["aori_mean"][i] == pytest.approx(np.mean(tinfo["aori"][i]), rel=1e-12)
            assert oinfo["aosi_mean"][i] == pytest.approx(np.mean(tinfo["aosi"][i]), rel=1e-12)
    return stepped


def assert_summaries_agree(tinfo: dict, oinfo: dict, num_envs: int) -> None:
    """The episode summaries of both infos: at the scenario's own episode end only (not at a TimeLimit's).

    Whole arrays, dtypes and nested masks included: Gymnasium batches the single envs'
    summary dicts into int64 and float64 arrays with zeros elsewhere and a mask per key.
    """
    none = np.zeros(num_envs, bool)
    ended = oinfo.get("_summary", none)
    np.testing.assert_array_equal(tinfo.get("_summary", none), ended)
    assert ("summary" in oinfo) == ("summary" in tinfo) == bool(ended.any())
    if ended.any():
        assert set(tinfo["summary"]) == set(oinfo["summary"])
        for key, values in oinfo["summary"].items():
            np.testing.assert_array_equal(tinfo["summary"][key], values, err_msg=key)
            assert tinfo["summary"][key].dtype == values.dtype, key


def step_both(theirs: gym.vector.VectorEnv, ours: gym.vector.VectorEnv, actions: np.ndarray) -> tuple:
    """Step both vector envs; assert equal observations, rewards and flags; return (truncated, their info, our info)."""
    tobs, trew, tterm, ttrunc, tinfo = theirs.step(actions)
    oobs, orew, oterm, otrunc, oinfo = ours.step(actions)
    np.testing.assert_array_equal(tobs, oobs)
    np.testing.assert_array_equal(trew, orew)
    np.testing.assert_array_equal(tterm, oterm)
    np.testing.assert_array_equal(ttrunc, otrunc)
    return ttrunc, tinfo, oinfo


def gymnasium_vector_against_native(
    kind: str,
    env_id: str,
    num_envs: int,
    steps: int,
    seed: int,
    mode: AutoresetMode = AutoresetMode.NEXT_STEP,
    masked_resets: bool = False,
    max_episode_steps: int | None = None,
) -> int:
    """Step Gymnasium's own vector env of single MetaLore envs beside the native one; return episode ends seen.

    Both use the same autoreset mode, and Gymnasium seeds sub-env i with ``seed + i`` and
    resets it later without a seed, as the native vector env does: observations, rewards,
    flags and every info key both report must agree, reset infos included; in SAME_STEP mode
    also the last observations and the ending steps' infos (``final_obs``, ``final_info``). In
    DISABLED mode the driver resets the ended sub-envs itself (``reset_mask``, no seed). With
    ``masked_resets`` it also resets random subsets every 9 steps, mid-episode or not, with one
    seed (sub-env i gets seed + i) or a list of seeds and ``None``s, and after each episode end
    (in SAME_STEP mode that resets the new episode, in NEXT_STEP mode it replaces the pending
    autoreset). ``max_episode_steps`` goes to both through ``make``/``make_vec`` (a ``TimeLimit``
    on each single env).
    """
    kwargs: dict[str, Any] = {"config": {"episode": {"steps": 12}}}
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    make_single = [lambda: gym.make(f"metalore:{env_id}", **kwargs)] * num_envs  # module: id, for spawned workers
    theirs: gym.vector.VectorEnv
    if kind == "sync":
        theirs = gym.vector.SyncVectorEnv(make_single, autoreset_mode=mode)
    else:
        theirs = gym.vector.AsyncVectorEnv(make_single, context="spawn", autoreset_mode=mode)
    ours = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", autoreset_mode=mode, **kwargs
    )

    def reset_both(seed: Any, mask: np.ndarray | None) -> None:
        # Gymnasium pops reset_mask from the options it is given: one dict each.
        def options() -> dict | None:
            return None if mask is None else {"reset_mask": mask.copy()}

        tobs, tinfo = theirs.reset(seed=seed, options=options())
        oobs, oinfo = ours.reset(seed=seed, options=options())
        np.testing.assert_array_equal(tobs, oobs)
        reset = np.ones(num_envs, bool) if mask is None else mask
        for key in ("t", "seed"):  # the single env's reset info, batched
            np.testing.assert_array_equal(tinfo[f"_{key}"], reset, err_msg=key)
            np.testing.assert_array_equal(oinfo[f"_{key}"], reset, err_msg=key)
            np.testing.assert_array_equal(tinfo[key][reset], oinfo[key][reset], err_msg=key)

    try:
        reset_both(seed, None)
        rng = np.random.default_rng(seed)
        ends = pending_resets = 0
        ttrunc = np.zeros(num_envs, bool)
        for step in range(steps):
            if mode == AutoresetMode.DISABLED and ttrunc.any():
                reset_both(None, ttrunc)  # the caller's autoreset, with the seeds the envs pick
            pending = ttrunc.any() and mode != AutoresetMode.DISABLED
            if masked_resets and (step % 9 == 4 or pending):  # mid-episode, and sub-envs awaiting their autoreset
                mask = rng.random(num_envs) < 0.5
                mask[np.flatnonzero(ttrunc)[0] if pending else rng.integers(num_envs)] = True
                pending_resets += int((mask & ttrunc).any())
                seeds = [None if rng.random() < 0.5 else int(s) for s in rng.integers(0, 1000, num_envs)]
                reset_both(int(rng.integers(1000)) if step % 2 else seeds, mask)
            actions = rng.uniform(0.0, 1.0, ours.action_space.shape).astype(np.float32)
            ttrunc, tinfo, oinfo = step_both(theirs, ours, actions)
            stepped = assert_infos_agree(tinfo, oinfo, num_envs)
            if mode == AutoresetMode.DISABLED:
                assert stepped.all()  # nothing resets inside step()
                ends += int(ttrunc.sum())
                assert_summaries_agree(tinfo, oinfo, num_envs)
            elif mode == AutoresetMode.NEXT_STEP:
                ends += int((~stepped).sum())  # the autoreset steps
                assert_summaries_agree(tinfo, oinfo, num_envs)
            elif ttrunc.any():
                ends += int(ttrunc.sum())
                assert "summary" not in oinfo  # it belongs to the ended episode: in final_info
                for key in ("final_obs", "final_info"):
                    np.testing.assert_array_equal(tinfo[f"_{key}"], oinfo[f"_{key}"], err_msg=key)
                for i in np.flatnonzero(ttrunc):
                    np.testing.assert_array_equal(tinfo["final_obs"][i], oinfo["final_obs"][i])
                final_stepped = assert_infos_agree(tinfo["final_info"], oinfo["final_info"], num_envs)
                np.testing.assert_array_equal(final_stepped, ttrunc)
                assert_summaries_agree(tinfo["final_info"], oinfo["final_info"], num_envs)
        assert not masked_resets or mode == AutoresetMode.DISABLED or pending_resets >= 2
        return ends
    finally:
        theirs.close()
        ours.close()


@pytest.mark.parametrize("env_id", ["MetaLore/Paper-v0", "MetaLore/Small-v0", "MetaLore/MultiCell-v0"])
def test_gymnasium_sync_vector_env_of_single_envs_equals_the_native_one(env_id):
    # Gymnasium batches array infos into fixed-shape arrays: a variable-length array info (the
    # ages of the jobs completed in a step) used to make SyncVectorEnv raise here.
    assert gymnasium_vector_against_native("sync", env_id, 3, 40, seed=21) >= 3


@pytest.mark.parametrize("env_id", ["MetaLore/Paper-v0", "MetaLore/MultiCell-v0"])
def test_gymnasium_sync_vector_env_in_same_step_mode_equals_the_native_one(env_id):
    # Same-step autoreset: the ending step returns the reset observation and the reset info at
    # the top level; the last observation and the step's info (with the summary) are final_*.
    assert gymnasium_vector_against_native("sync", env_id, 3, 40, seed=8, mode=AutoresetMode.SAME_STEP) >= 3


@pytest.mark.parametrize("env_id", ["MetaLore/Paper-v0", "MetaLore/MultiCell-v0"])
def test_gymnasium_sync_vector_env_in_disabled_mode_equals_the_native_one(env_id):
    # No autoreset: the caller resets the ended sub-envs with reset_mask, as with SyncVectorEnv.
    assert gymnasium_vector_against_native("sync", env_id, 3, 40, seed=13, mode=AutoresetMode.DISABLED) >= 3


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_masked_resets_with_seeds_mid_run_equal_gymnasiums_sync_vector_env(mode):
    # Resets of random subsets, mid-episode, of sub-envs waiting for their autoreset, with one
    # seed or a list mixing seeds and None: the same episodes as Gymnasium's vector env.
    assert gymnasium_vector_against_native("sync", "MetaLore/Small-v0", 4, 45, seed=3, mode=mode, masked_resets=True)


@pytest.mark.parametrize("max_episode_steps", [5, 20])
@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_max_episode_steps_truncates_as_gymnasiums_time_limit(mode, max_episode_steps):
    # make_vec(..., max_episode_steps=n) passes n on to the vector entry point (a TypeError
    # before), where gymnasium.make wraps each single env in a TimeLimit: the same episode ends,
    # before the scenario's 12 steps (5) or at them (20, the summary then reported).
    ends = gymnasium_vector_against_native(
        "sync", "MetaLore/Small-v0", 3, 30, 6, mode, max_episode_steps=max_episode_steps
    )
    assert ends >= 3 * (30 // (min(max_episode_steps, 12) + 1))


def wrapped_vector_env(venv: gym.vector.VectorEnv) -> gym.vector.VectorEnv:
    """The usual stack of Gymnasium's vector wrappers, outermost last."""
    from gymnasium.wrappers import vector as vector_wrappers

    venv = vector_wrappers.RecordEpisodeStatistics(venv)
    venv = vector_wrappers.NormalizeObservation(venv)
    venv = vector_wrappers.NormalizeReward(venv)
    venv = vector_wrappers.RescaleAction(venv, np.float32(-1.0), np.float32(1.0))
    venv = vector_wrappers.ClipAction(venv)
    return vector_wrappers.DictInfoToList(venv)


def test_gymnasiums_vector_wrappers_see_the_native_env_as_its_sync_vector_env():
    # Episode statistics, running observation and reward normalisation, action rescaling and
    # list infos all read the vector env's autoreset mode, masks and info layout: over the
    # native env they must report what they report over Gymnasium's own vector env.
    kwargs: dict[str, Any] = {"config": {"episode": {"steps": 7}}}
    theirs = wrapped_vector_env(gym.make_vec("MetaLore/Small-v0", num_envs=3, vectorization_mode="sync", **kwargs))
    ours = wrapped_vector_env(
        gym.make_vec("MetaLore/Small-v0", num_envs=3, vectorization_mode="vector_entry_point", **kwargs)
    )
    assert isinstance(ours.unwrapped, MetaLoreVectorEnv)
    try:
        tobs, tinfo = theirs.reset(seed=17)
        oobs, oinfo = ours.reset(seed=17)
        np.testing.assert_array_equal(tobs, oobs)
        assert tinfo == oinfo
        rng = np.random.default_rng(17)
        episodes = completed = 0
        for _ in range(24):
            actions = rng.uniform(-1.5, 1.5, (3, 2))  # beyond the rescaled bounds: ClipAction's job
            _, tinfo, oinfo = step_both(theirs, ours, actions)
            assert len(oinfo) == 3
            for i in range(3):
                # The single env reports the ages of the step's completed UE jobs (a tuple, empty if
                # none), the vector env their means where there are any.
                ages = {"aori": "aori_mean", "aosi": "aosi_mean"}
                done = len(tinfo[i].get("aori", ())) > 0
                expected = {ages.get(key, key) for key in tinfo[i] if key not in ages or done}
                assert set(oinfo[i]) == expected
                for key in ("t", "generated_ue", "queue_lengths", "summary"):
                    if key in tinfo[i]:
                        np.testing.assert_equal(tinfo[i][key], oinfo[i][key], err_msg=key)
                for key, mean in ages.items():
                    if done:
                        completed += 1
                        assert oinfo[i][mean] == np.mean(tinfo[i][key])
                if "episode" in tinfo[i]:  # RecordEpisodeStatistics: return and length (not the wall time)
                    episodes += 1
                    assert oinfo[i]["episode"]["r"] == tinfo[i]["episode"]["r"]
                    assert oinfo[i]["episode"]["l"] == tinfo[i]["episode"]["l"] == 7
        assert episodes == 9  # episodes end at steps 7, 15 and 23 (each followed by an autoreset step)
        assert completed > 0
    finally:
        theirs.close()
        ours.close()


def test_disabled_autoreset_refuses_to_step_an_ended_sub_env_until_it_is_reset():
    venv = MetaLoreVectorEnv(3, "small", {"episode": {"steps": 2}}, autoreset_mode=AutoresetMode.DISABLED)
    venv.reset(seed=0)
    half = np.full((3, 2), 0.5, np.float32)
    venv.step(half)
    _, _, _, truncated, info = venv.step(half)
    assert truncated.all() and info["_summary"].all()
    with pytest.raises(RuntimeError, match=r"sub-envs \[0, 1, 2\] ended .* DISABLED"):
        venv.step(half)
    venv.reset(options={"reset_mask": np.array([True, False, True])})
    with pytest.raises(RuntimeError, match=r"sub-envs \[1\] ended"):
        venv.step(half)
    venv.reset(options={"reset_mask": np.array([False, True, False])})
    _, _, _, truncated, info = venv.step(half)
    assert info["_t"].all() and info["t"].tolist() == [0, 0, 0] and not truncated.any()


@pytest.mark.slow
def test_gymnasium_async_vector_env_of_single_envs_equals_the_native_one():
    assert gymnasium_vector_against_native("async", "MetaLore/Paper-v0", 2, 30, seed=5) >= 2


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED])
def test_returned_arrays_around_episode_ends_stay_unchanged_by_later_steps_and_resets(mode):
    # The env's record of ended sub-envs is shared with the masks of the autoreset step's info;
    # later steps and masked resets must replace it, never write into what the caller holds.
    venv = MetaLoreVectorEnv(3, "small", {"episode": {"steps": 3}}, autoreset_mode=mode)
    venv.reset(seed=4)
    half = np.full((3, 2), 0.5, np.float32)
    kept = []
    for t in range(9):
        if mode == AutoresetMode.DISABLED and t % 3 == 0 and t:
            venv.reset(options={"reset_mask": np.array([True, True, True])})
        out = venv.step(half)
        info = {k: v for k, v in out[4].items() if k != "summary"}
        kept.append((out, [np.copy(x) for x in out[:4]], {k: np.copy(v) for k, v in info.items()}))
    if mode == AutoresetMode.NEXT_STEP:
        venv.reset(seed=9, options={"reset_mask": np.array([False, True, False])})
    for out, arrays, info in kept:
        for a, b in zip(out[:4], arrays, strict=True):
            np.testing.assert_array_equal(a, b)
        for key, value in info.items():
            np.testing.assert_array_equal(out[4][key], value, err_msg=key)
    assert any(o[4].get("_seed", np.zeros(3, bool)).any() for o, _, _ in kept) == (mode == AutoresetMode.NEXT_STEP)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("parallel", [False, True])
def test_a_copied_vector_env_continues_exactly_as_the_original_across_autoresets(how, parallel):
    venv = MetaLoreVectorEnv(3, "small", {"episode": {"steps": 20}}, parallel=parallel)
    venv.reset(seed=5)
    venv.reset(seed=77, options={"reset_mask": np.array([False, True, False])})  # sub-envs out of phase
    rng = np.random.default_rng(0)
    for _ in range(13):
        venv.step(random_actions(rng, venv))
    copied = copy.deepcopy(venv) if how == "deepcopy" else pickle.loads(pickle.dumps(venv))
    actions = [random_actions(rng, venv) for _ in range(45)]  # across two episode ends of every sub-env
    ends = 0
    for a in actions:
        original, duplicate = venv.step(a), copied.step(a)
        for x, y in zip(original[:4], duplicate[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        assert original[4].keys() == duplicate[4].keys()
        for key in original[4]:
            np.testing.assert_equal(original[4][key], duplicate[4][key])
        ends += int(original[3].sum())
    assert ends >= 6
    # independent: stepping the copy alone leaves the original where it was
    before = venv.sim.state.t.copy()
    copied.step(actions[0])
    np.testing.assert_array_equal(venv.sim.state.t, before)


def _rewards(venv: MetaLoreVectorEnv, steps: int = 30) -> list[float]:
    venv.reset(seed=0)
    return [float(venv.step(np.full((venv.num_envs, 2), 0.5))[1].sum()) for _ in range(steps)]


def _forked_child(queue: Any, inherited: MetaLoreVectorEnv) -> None:
    try:
        own = _rewards(MetaLoreVectorEnv(128, "paper"))  # auto: threaded unless forked from GNU OpenMP
        try:
            MetaLoreVectorEnv(128, "paper", parallel=True)
            refused = ""
        except RuntimeError as exc:
            refused = str(exc)
        queue.put((_rewards(inherited), own, refused, inherited.sim._step_kernel.__name__))
    except BaseException as exc:  # report, do not hang the parent
        queue.put(repr(exc))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_process_forked_after_threaded_steps_steps_serially_with_the_same_results():
    venv = MetaLoreVectorEnv(128, "paper", parallel=True)
    expected = _rewards(venv)  # the parent's thread pool has run
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: "multi-threaded ... fork()"
        child = context.Process(target=_forked_child, args=(queue, venv))
        child.start()
    while True:
        try:
            outcome = queue.get(timeout=1)
            break
        except queue_module.Empty:
            assert child.is_alive(), f"the forked child died (exit code {child.exitcode})"
    child.join(30)
    assert child.exitcode == 0 and isinstance(outcome, tuple), outcome
    inherited, own, refused, kernel = outcome
    assert inherited == expected and own == expected
    if nb.threading_layer() == "omp":  # GNU OpenMP cannot run after a fork: serial, and parallel=True is refused
        assert kernel == "step_envs" and "forked from one that ran numba's GNU OpenMP thread pool" in refused
    else:  # a fork-safe layer keeps its threads
        assert kernel == "step_envs_parallel" and refused == ""
    assert _rewards(venv) == expected and venv.sim._step_kernel.__name__ == "step_envs_parallel"  # parent unchanged


def test_close_releases_the_simulator_and_later_use_says_the_env_is_closed():
    venv = gym.make_vec("MetaLore/Paper-v0", num_envs=4, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    venv.step(np.full((4, 2), 0.5))
    released = weakref.ref(venv.sim)
    venv.close()
    venv.close()  # a second close is a no-op, as in Gymnasium
    gc.collect()
    assert venv.closed and released() is None
    for use in (
        lambda: venv.step(np.full((4, 2), 0.5)),
        lambda: venv.reset(seed=1),
        lambda: venv.episode_summary(0),
        lambda: venv.job_log(0),
    ):
        with pytest.raises(ClosedEnvironmentError, match=r"is closed .* create a new one"):
            use()
    copied = pickle.loads(pickle.dumps(venv))  # a closed env copies as a closed env
    assert copied.closed
    with pytest.raises(ClosedEnvironmentError, match="is closed"):
        copied.step(np.full((4, 2), 0.5))
