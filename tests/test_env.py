from __future__ import annotations

import copy
import pickle
import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import metalore
from metalore import MetaLoreEnv


def rollout(env: gym.Env, seed: int | None, steps: int, action_seed: int = 0):
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(rng.random(env.action_space.shape))
        trace.append((obs, reward, terminated, truncated, list(info["aori"]), list(info["aosi"])))
        if truncated:
            break
    return trace


def same(a, b) -> bool:
    return all(
        np.array_equal(x[0], y[0]) and x[1:] == y[1:] if isinstance(x, tuple) else np.array_equal(x, y)
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("env_id", metalore.registered_ids())
def test_gymnasium_check_env_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(env_id).unwrapped, skip_render_check=True)  # rendering: tests/test_render.py


@pytest.mark.parametrize("env_id", metalore.registered_ids())
def test_sb3_check_env(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    # The default Box(0, 1) action space is the paper's (MODEL.md §5); SB3 only *recommends*
    # [-1, 1], so that one recommendation is expected; any other warning fails the test.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(gym.make(env_id).unwrapped, warn=True)
    messages = [str(w.message) for w in caught]
    assert all("symmetric and normalized Box action space" in m for m in messages), messages
    # With the symmetric action range there is no warning at all.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(gym.make(env_id, config={"action": {"range": "symmetric"}}).unwrapped, warn=True)


def test_seed_readme_example_runs_with_import_metalore():
    env = gym.make("mobile-smart_city-smart_city_handler-v0")
    env.reset()
    done, steps = False, 0
    while not done:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        done = terminated or truncated
        steps += 1
    assert steps == 100 and not terminated and truncated
    assert info["summary"]["steps"] == 100
    assert env.unwrapped.scenario == gym.make("MetaLore/Paper-v0").unwrapped.scenario


def test_seeded_determinism_and_sensitivity():
    a = rollout(MetaLoreEnv(config={"episode": {"steps": 40}}), seed=7, steps=40)
    b = rollout(MetaLoreEnv(config={"episode": {"steps": 40}}), seed=7, steps=40)
    c = rollout(MetaLoreEnv(config={"episode": {"steps": 40}}), seed=8, steps=40)
    assert same(a, b)
    assert not same(a, c)


def test_reset_without_seed_uses_config_seed_then_a_fresh_episode():
    env = MetaLoreEnv(config={"episode": {"steps": 30}})
    first = rollout(env, None, 30)
    second = rollout(env, None, 30)
    assert same(first, rollout(MetaLoreEnv(config={"episode": {"steps": 30}}), 111, 30))
    assert not same(first, second)
    env2 = MetaLoreEnv(config={"episode": {"steps": 30}})
    rollout(env2, None, 30)
    assert same(second, rollout(env2, None, 30))  # the episode sequence itself is reproducible


def test_positions_and_traffic_are_fixed_by_seed_and_independent_of_actions():
    env = MetaLoreEnv(config={"episode": {"steps": 30}, "log": {"jobs": True}})
    logs = []
    for action in (np.zeros(2), np.ones(2)):
        env.reset(seed=3)
        positions = env.unwrapped.sim.state.pos_m[0].copy()
        for _ in range(30):
            env.step(action)
        logs.append((positions, env.job_log()[["kind", "device_id", "data_mbit", "compute_units", "t_generated"]]))
    assert np.array_equal(logs[0][0], logs[1][0])
    assert logs[0][1].equals(logs[1][1])  # common random numbers across policies


def test_truncation_and_reset_required():
    env = MetaLoreEnv(config={"episode": {"steps": 3}})
    env.reset(seed=0)
    flags = [env.step(np.array([0.5, 0.5]))[3] for _ in range(3)]
    assert flags == [False, False, True]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.array([0.5, 0.5]))


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.array([np.nan, 0.5]), "NaN or infinity"),
        (np.array([np.inf, 0.5]), "NaN or infinity"),
        (np.array([0.5, 0.5, 0.5]), r"shape \(3,\), expected \(2,\)"),
        (0.5, r"shape \(\), expected \(2,\)"),
        ("left", "not numeric"),
        (None, "action is None"),
        ([0.5 + 1j, 0.5], "is complex"),
    ],
)
def test_invalid_actions_raise_clear_errors(action, message):
    env = MetaLoreEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_out_of_range_actions_are_clipped():
    a, b = MetaLoreEnv(config={"episode": {"steps": 15}}), MetaLoreEnv(config={"episode": {"steps": 15}})
    a.reset(seed=1)
    b.reset(seed=1)
    for _ in range(15):
        ra = a.step(np.array([7.0, -3.0]))
        rb = b.step(np.array([1.0, 0.0]))
        assert np.array_equal(ra[0], rb[0]) and ra[1] == rb[1]


def test_symmetric_action_range_maps_onto_unit_split():
    unit = MetaLoreEnv(config={"episode": {"steps": 15}})
    sym = MetaLoreEnv(config={"episode": {"steps": 15}, "action": {"range": "symmetric"}})
    assert sym.action_space.low.tolist() == [-1, -1]
    unit.reset(seed=2)
    sym.reset(seed=2)
    for _ in range(15):
        ru = unit.step(np.array([0.75, 0.25]))
        rs = sym.step(np.array([0.5, -0.5]))
        assert np.array_equal(ru[0], rs[0]) and ru[1] == rs[1]


def test_multicell_action_accepts_flat_and_per_bs_shapes():
    env = MetaLoreEnv("multicell")
    assert env.action_space.shape == (6,) and env.observation_space.shape == (6,)
    env.reset(seed=0)
    env.step(np.full(6, 0.5))
    env.step(np.full((3, 2), 0.5))


def test_info_counts_and_summary_agree_with_the_job_log():
    env = MetaLoreEnv(config={"episode": {"steps": 60}, "log": {"jobs": True}})
    env.reset(seed=5)
    generated = {"ue": 0, "sensor": 0}
    completed = {"ue": 0, "sensor": 0}
    aori: list[int] = []
    reward = 0.0
    for _ in range(60):
        _, r, _, truncated, info = env.step(np.array([0.4, 0.5]))
        reward += r
        for cls in generated:
            generated[cls] += info[f"generated_{cls}"]
            completed[cls] += info[f"completed_{cls}"]
        aori += info["aori"]
        assert info["queue_lengths"].shape == (1, 2)
    log = env.job_log()
    summary = info["summary"]
    assert truncated and summary["steps"] == 60
    assert (log["kind"] == "ue").sum() == generated["ue"] == summary["ue_generated"]
    assert (log["kind"] == "sensor").sum() == generated["sensor"] == summary["sensor_generated"]
    done_ue = log[(log["kind"] == "ue") & log["t_proc_done"].notna()]
    assert len(done_ue) == completed["ue"] == summary["ue_jobs_completed"] == len(aori)
    assert sorted(done_ue["aori"].astype(int).tolist()) == sorted(aori)
    assert done_ue["aori"].mean() == pytest.approx(summary["aori_mean"])
    assert np.isclose(reward, summary["reward"])
    expected_reward = (10 * 0.9 ** done_ue["aosi"].astype(float) - 1.0 * (done_ue["aori"] > 2)).sum()
    assert reward == pytest.approx(expected_reward)
    late = (done_ue["aori"] > 2).mean()
    assert summary["late_fraction"] == pytest.approx(late)
    assert summary["aori_p95"] == float(np.sort(done_ue["aori"].astype(int))[int(np.ceil(0.95 * len(done_ue))) - 1])
    # lifecycle order holds for every job that reached each stage
    stages = log.dropna(subset=["t_proc_done"])
    # (every completed job went through each stage: a missing time would compare as NA, which .all() skips)
    assert stages[["t_generated", "t_tx_done", "t_proc_start"]].notna().all().all()
    assert (stages["t_generated"] <= stages["t_tx_done"]).all()
    assert (stages["t_tx_done"] <= stages["t_proc_start"]).all()
    assert (stages["t_proc_start"] <= stages["t_proc_done"]).all()
    assert set(log.columns) >= {
        "job_id", "kind", "device_id", "sensor_id", "data_mbit", "compute_units", "t_generated", "t_tx_done",
        "t_proc_start", "t_proc_done", "sensor_update_t", "aori", "aosi", "dropped",
    }  # fmt: skip


def test_job_log_is_bounded_oldest_rows_first_and_exports(tmp_path):
    from metalore.joblog import write_job_log

    env = MetaLoreEnv(config={"episode": {"steps": 30}, "log": {"jobs": True, "max_jobs": 50}})
    env.reset(seed=0)
    for _ in range(30):
        env.step(np.array([0.5, 0.5]))
    log = env.job_log()
    total = env.episode_summary()["ue_generated"] + env.episode_summary()["sensor_generated"]
    assert len(log) == 50 and log.attrs["rows_dropped"] == total - 50
    assert log["job_id"].tolist() == list(range(total - 50, total))
    csv = write_job_log(log, tmp_path / "jobs.csv")
    parquet = write_job_log(log, tmp_path / "jobs.parquet")
    import pandas as pd

    assert len(pd.read_csv(csv)) == 50 and len(pd.read_parquet(parquet)) == 50
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        write_job_log(log, tmp_path / "jobs.xlsx")


def test_job_log_off_by_default_says_how_to_enable():
    env = MetaLoreEnv()
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match=re.escape("'log': {'jobs': True}")):
        env.job_log()


def test_drops_are_counted_not_lost():
    cfg = {
        "episode": {"steps": 40},
        "ue": {"queue_capacity": 2},
        "sensor": {"queue_capacity": 2},
        "bs": {"queue_capacity": 3},
        "log": {"jobs": True},
    }
    env = MetaLoreEnv(config=cfg)
    env.reset(seed=0)
    dropped = 0
    for _ in range(40):
        _, _, _, _, info = env.step(np.array([0.1, 0.9]))
        dropped += info["dropped_ue"] + info["dropped_sensor"]
    summary = env.episode_summary()
    log = env.job_log()
    assert dropped > 0
    assert (
        dropped
        == log["dropped"].sum()
        == sum(summary[f"{c}_dropped_{w}"] for c in ("ue", "sensor") for w in ("uplink", "mec"))
    )
    assert set(log.loc[log["dropped"], "drop_reason"]) <= {"uplink_queue_full", "mec_queue_full"}


def test_richer_observation_features():
    env = MetaLoreEnv(
        config={"observation": {"features": ["queue_lengths", "queue_work", "uplink_backlog", "twin_age", "time"]}}
    )
    assert env.observation_space.shape == (2 + 2 + 2 + 15 + 1,)
    obs, _ = env.reset(seed=0)
    assert obs[-1] == 0.0 and (obs[6:21] == 101).all()  # empty twin: age = steps + 1
    for _ in range(10):
        obs, *_ = env.step(np.array([0.5, 0.5]))
        assert env.observation_space.contains(obs)
    assert obs[-1] == pytest.approx(0.1)
    assert (obs[6:21] < 101).any()
    ages = env.twin_age()
    assert np.array_equal(obs[6:21], np.where(ages >= 0, ages, 101))  # one definition of the twin's age
    # queue_work and uplink_backlog against the queued jobs, read one queue at a time
    sim, k = env.sim, env.scenario.num_ues
    work = [sim.mec_jobs(0, 0, c)[:, -1].sum() for c in (0, 1)]  # left_compute
    backlog = [sim.uplink_jobs(0, d)[:, -1].sum() for d in range(sim.state.dq_len.shape[1])]  # left_mbit
    assert obs[2:4] == pytest.approx(work, rel=1e-6) and work[1] > 0
    assert obs[4:6] == pytest.approx([sum(backlog[:k]), sum(backlog[k:])], rel=1e-6) and sum(backlog) > 0
    # some head job is part-sent, so the remainders are not just the jobs' sizes
    assert any(sim.uplink_jobs(0, d)[0, -1] < sim.uplink_jobs(0, d)[0, 1] for d in range(k, len(backlog)))


def test_starving_sensors_stalls_ues():
    env = MetaLoreEnv(config={"episode": {"steps": 50}})
    env.reset(seed=0)
    total = sum(env.step(np.array([0.5, 1.0]))[1] for _ in range(50))  # all compute to UEs
    assert total == 0.0 and env.episode_summary()["ue_jobs_completed"] == 0


def _copy(env, how: str):
    return copy.deepcopy(env) if how == "deepcopy" else pickle.loads(pickle.dumps(env))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize(
    ("env_id", "config"),
    [("MetaLore/Paper-v0", {"log": {"jobs": True}}), ("MetaLore/Dynamic-v0", None), ("MetaLore/MultiCell-v0", None)],
)
def test_a_copied_env_continues_exactly_as_the_original_and_independently(how, env_id, config):
    def run(env, actions):
        out = []
        for a in actions:
            obs, reward, _, truncated, info = env.step(a)
            out.append((obs, reward, truncated, info["aori"], info["aosi"], info["queue_lengths"].tolist()))
        return out

    env = gym.make(env_id, config=config)
    twin = gym.make(env_id, config=config)  # replays what the copy must do
    env.reset(seed=3)
    twin.reset(seed=3)
    rng = np.random.default_rng(1)
    first = [rng.random(env.action_space.shape) for _ in range(10)]
    run(env, first)
    run(twin, first)
    copied = _copy(env, how)
    mine = [rng.random(env.action_space.shape) for _ in range(30)]
    theirs = [rng.random(env.action_space.shape) for _ in range(30)]
    from_original = run(env, theirs)  # the original moves on with other actions first
    from_copy = run(copied, mine)
    replay = run(twin, mine)
    assert len(from_copy) == 30 and same(from_copy, replay)
    assert not same(from_original, from_copy)  # different actions, different episode: they do not share state
    assert copied.unwrapped.applied_split().tolist() == twin.unwrapped.applied_split().tolist()
    if config:
        a, b = copied.unwrapped.job_log(), twin.unwrapped.job_log()
        assert len(a) > 0 and a.equals(b)
    # the next episode, seeded by the copy's own state, is the replay's too
    assert same(rollout(copied, None, 40), rollout(twin, None, 40))


def test_a_scenario_pickles_to_an_equal_frozen_scenario():
    scenario = metalore.make_scenario("multicell", {"ue": {"request_probability": 0.5}})
    back = pickle.loads(pickle.dumps(scenario))
    assert back == scenario and back.to_dict() == scenario.to_dict()
    with pytest.raises(TypeError):
        back.config["ue"]["count"] = 3  # still read-only


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64, 1.5, True, "3"])
def test_seeds_outside_the_episode_seed_range_are_rejected_by_name(seed):
    env = MetaLoreEnv("small")
    message = f"seed {seed!r} is invalid: pass a non-negative integer below 2**63"
    with pytest.raises(ValueError, match=re.escape(message)):
        env.reset(seed=seed)


def test_numpy_and_largest_seeds_are_accepted():
    env = MetaLoreEnv("small")
    assert env.reset(seed=np.int64(5))[1]["seed"] == 5
    assert same(rollout(env, np.uint32(5), 10), rollout(MetaLoreEnv("small"), 5, 10))
    assert env.reset(seed=2**63 - 1)[1]["seed"] == 2**63 - 1
    env.step(env.action_space.sample())
