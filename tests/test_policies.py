from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

from metalore import MetaLoreEnv, MetaLoreVectorEnv, make_scenario
from metalore.policies import (
    POLICIES,
    Policy,
    PolicyError,
    QueueProportionalPolicy,
    StaticPolicy,
    TwinFirstPolicy,
    make_policy,
    observation_layout,
    register_policy,
    scenario_of,
)


@pytest.fixture
def paper():
    return make_scenario("paper", {"episode": {"steps": 10}})


@pytest.fixture
def multicell():
    return make_scenario("multicell", {"episode": {"steps": 10}})


def test_observation_layout_matches_the_env():
    features = ["time", "queue_work", "twin_age", "queue_lengths", "uplink_backlog"]
    env = MetaLoreEnv("multicell", {"observation": {"features": features}})
    layout = observation_layout(env.scenario)
    assert list(layout) == features
    assert max(s.stop for s in layout.values()) == env.observation_space.shape[0]
    stepped = ["time", "twin_age", "queue_lengths"]  # values of the other features are the core's tests
    env = MetaLoreEnv("multicell", {"observation": {"features": stepped}})
    layout = observation_layout(env.scenario)
    obs, _ = env.reset(seed=3)
    for _ in range(3):
        obs, *_ = env.step(np.full(6, 0.5))
    queue = env.unwrapped.sim.state.bq_len[0].reshape(-1)
    np.testing.assert_array_equal(obs[layout["queue_lengths"]], queue)
    assert obs[layout["time"]][0] == pytest.approx(3 / 100)  # 3 of 100 steps


def test_scenario_of_accepts_envs_wrappers_vector_envs_and_scenarios(paper):
    assert scenario_of(paper) is paper
    assert scenario_of(MetaLoreEnv(paper)) is paper
    assert scenario_of(gym.make("MetaLore/Small-v0")).name == "small"
    assert scenario_of(MetaLoreVectorEnv(2, paper)) is paper
    with pytest.raises(TypeError, match="MetaLore env or Scenario"):
        scenario_of(object())


def test_static_policy_returns_the_exact_split_at_every_bs(paper, multicell):
    single = make_policy("static:0.5,0.6", paper)
    assert isinstance(single, StaticPolicy) and single.spec == "static:0.5,0.6"
    split = single.act(np.array([7.0, 3.0], dtype=np.float32))
    assert split.dtype == np.float64 and split.tolist() == [0.5, 0.6]
    multi = make_policy(" static: 0.25 , 1 ", multicell)
    assert multi.act(np.zeros(6)).tolist() == [0.25, 1.0] * 3
    assert multi.act(np.zeros((4, 6))).shape == (4, 6)  # a batch of observations


def test_random_policy_is_seeded_with_its_own_generator(paper):
    obs = np.zeros(2)
    a = make_policy("random", paper, seed=5)
    b = make_policy("random", paper, seed=5)
    c = make_policy("random", paper, seed=6)
    assert isinstance(a.rng, np.random.Generator) and a.rng is not b.rng
    first = [a.act(obs) for _ in range(5)]
    assert all(np.array_equal(x, b.act(obs)) for x in first)
    assert not np.array_equal(first[0], c.act(obs))
    a.reset(seed=5)
    assert np.array_equal(a.act(obs), first[0])
    stacked = np.stack(first)
    assert stacked.shape == (5, 2) and (stacked >= 0).all() and (stacked <= 1).all()
    assert len({tuple(x) for x in first}) == 5


def test_queue_proportional_follows_the_queues_with_a_floor(paper):
    policy = make_policy("queue_proportional", paper)
    assert isinstance(policy, QueueProportionalPolicy)
    assert policy.act([10.0, 0.0]).tolist() == [0.5, pytest.approx(0.9)]  # UE queue only: 1 - floor
    assert policy.act([0.0, 10.0]).tolist() == [0.5, pytest.approx(0.1)]  # sensor queue only: floor
    assert policy.act([0.0, 0.0]).tolist() == [0.5, 0.5]
    assert policy.act([3.0, 3.0])[1] == pytest.approx(0.5)
    comp = [policy.act([ue, 10.0])[1] for ue in range(0, 50, 5)]
    assert all(b > a for a, b in itertools.pairwise(comp))  # more UE backlog -> more UE compute
    custom = make_policy("queue_proportional:floor=0,bw=0.3", paper)
    assert custom.act([1.0, 3.0]).tolist() == [0.3, 0.25]


def test_queue_proportional_splits_each_bs_on_its_own_queues(multicell):
    policy = make_policy("queue_proportional:floor=0", multicell)
    split = policy.act([4.0, 0.0, 0.0, 4.0, 1.0, 3.0]).reshape(3, 2)
    assert split[:, 1].tolist() == [1.0, 0.0, 0.25]


def test_twin_first_drains_the_sensor_queue_and_gives_the_rest_to_ues(paper):
    policy = make_policy("twin_first", paper)
    assert isinstance(policy, TwinFirstPolicy) and policy.feature == "queue_lengths"
    job = 7.0 + np.exp(-7.0)  # E[max(Poisson(7), 1)] compute units per sensor job
    assert policy.act([5.0, 0.0]).tolist() == [0.5, 1.0]  # no sensor backlog: all compute to UEs
    assert policy.act([5.0, 4.0])[1] == pytest.approx(1.0 - 4 * job / 100.0)
    assert policy.act([0.0, 4.0])[1] == policy.act([50.0, 4.0])[1]  # the UE queue does not matter
    assert policy.act([0.0, 100.0])[1] == pytest.approx(0.1)  # overloaded: UEs keep min_ue
    comp = [policy.act([5.0, n])[1] for n in range(0, 20, 2)]
    assert all(b <= a for a, b in itertools.pairwise(comp)) and comp[0] > comp[-1]
    assert make_policy("twin_first:min_ue=0,bw=0.2", paper).act([0.0, 100.0]).tolist() == [0.2, 0.0]


def test_twin_first_uses_the_exact_queue_work_when_observed(paper):
    scenario = paper.replace({"observation": {"features": ["queue_work"]}})
    policy = make_policy("twin_first", scenario)
    assert policy.feature == "queue_work"
    assert policy.act([80.0, 30.0])[1] == pytest.approx(0.7)  # 30 of 100 units/step to sensors


@pytest.mark.parametrize("spec", ["queue_proportional", "twin_first"])
def test_heuristics_refuse_an_observation_without_their_feature(paper, spec):
    scenario = paper.replace({"observation": {"features": ["time", "twin_age"]}})
    with pytest.raises(PolicyError, match=r"needs the observation feature .*'queue_lengths'.*observation.features"):
        make_policy(spec, scenario)
    make_policy("static:0.5,0.5", scenario)  # blind policies do not care
    make_policy("random", scenario)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("static:1.5,0.2", "BW = 1.5 is out of range: values must be in [0, 1]"),
        ("static:0.5,-0.1", "COMP = -0.1 is out of range: values must be in [0, 1]"),
        ("static:0.5", "exactly two values BW,COMP"),
        ("static", "exactly two values BW,COMP"),
        ("static:0.1,0.2,0.3", "exactly two values BW,COMP"),
        ("static:a,0.2", "BW = 'a' is not a number"),
        ("static:nan,0.2", "BW = 'nan' must be a finite number"),
        ("random:3", "'random' takes no arguments"),
        ("greedy", "unknown policy 'greedy'"),
        ("", "unknown policy ''"),
        ("queue_proportional:floor=0.6", "floor = 0.6 is out of range: values must be in [0, 0.5]"),
        ("queue_proportional:flor=0.2", "'flor=0.2' is not one of floor=NUMBER, bw=NUMBER"),
        ("queue_proportional:0.2", "'0.2' is not one of floor=NUMBER"),
        ("twin_first:min_ue=-0.1", "min_ue = -0.1 is out of range"),
        ("twin_first:bw=x", "bw = 'x' is not a number"),
    ],
)
def test_make_policy_rejects_bad_specs_naming_spec_and_valid_forms(paper, spec, fragment):
    with pytest.raises(PolicyError) as err:
        make_policy(spec, paper)
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert f"policy spec {spec!r} is invalid" in message and fragment in message
    assert "Valid forms: random, static:BW,COMP" in message and "twin_first" in message
    assert "\n" not in message


def test_direct_construction_checks_ranges_too(paper):
    with pytest.raises(PolicyError, match=r"bw_ue = 2 .*\[0, 1\]"):
        StaticPolicy(paper, 2, 0.5)
    with pytest.raises(PolicyError, match="floor"):
        QueueProportionalPolicy(paper, floor=0.7)


def test_wrong_observation_shape_is_a_clear_error(paper):
    policy = make_policy("static:0.5,0.5", paper)
    with pytest.raises(ValueError, match=r"observation has shape \(3,\), expected \(..., 2\)"):
        policy.act(np.zeros(3))


def test_env_action_maps_the_split_into_a_symmetric_action_space(paper):
    scenario = paper.replace({"action": {"range": "symmetric"}})
    policy = make_policy("static:0.25,1", scenario)
    assert policy.act([0.0, 0.0]).tolist() == [0.25, 1.0]
    assert policy.env_action([0.0, 0.0]).tolist() == [-0.5, 1.0]
    assert make_policy("static:0.25,1", paper).env_action([0.0, 0.0]).tolist() == [0.25, 1.0]


@pytest.mark.parametrize("spec", ["random", "static:0.3,0.7", "queue_proportional", "twin_first"])
def test_policies_drive_single_and_vector_envs(spec, multicell):
    env = MetaLoreEnv(multicell)
    policy = make_policy(spec, env, seed=1)
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        action = policy.act(obs)
        assert action.shape == (6,) and env.action_space.contains(action.astype(np.float32))
        obs, *_ = env.step(action)
    vec = MetaLoreVectorEnv(3, multicell)
    obs, _ = vec.reset(seed=1)
    for _ in range(5):
        obs, *_ = vec.step(policy.act(obs))


def test_registry_accepts_new_policies(paper):
    class Alternate(Policy):
        spec = "alternate"

        def _split(self, obs):
            return np.broadcast_to([1.0, 0.0], (*obs.shape[:-1], self.num_bs, 2))

    register_policy("alternate", lambda spec, args, env, seed: Alternate(env, seed), "alternate", "test only")
    try:
        assert make_policy("alternate", paper).act([0.0, 0.0]).tolist() == [1.0, 0.0]
        with pytest.raises(PolicyError, match=r"Valid forms: .*alternate"):
            make_policy("nope", paper)
        with pytest.raises(ValueError, match="already registered"):
            register_policy("alternate", lambda *a: Alternate(paper), "alternate", "again")
    finally:
        POLICIES.pop("alternate")
