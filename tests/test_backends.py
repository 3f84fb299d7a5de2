"""Backends: local processes and a local two-CPU Ray cluster give the same tables, summaries and agents."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from metalore.backends import in_worker, map_tasks, open_backend
from metalore.cli import main
from metalore.config import make_scenario
from metalore.evaluation import evaluate, grid_search

SCENARIO = make_scenario("small", {"episode": {"steps": 20}})
CLI_SCENARIO = ["--scenario", "small", "--set", "episode.steps=20"]
SPECS = {"random": "random", "static": "static:0.3,0.7", "twin_first": "twin_first"}
# Two PPO updates of 8 envs x 32 steps per seed: seconds, yet the agents of different seeds differ.
TINY_PPO = {"n_steps": 32, "batch_size": 64, "n_epochs": 2}


@pytest.fixture(scope="module")
def ray_cluster():
    """One local two-CPU Ray cluster for every Ray test of this module (starting one takes seconds)."""
    ray = pytest.importorskip("ray")
    # address="local": a cluster of our own, even if `ray start` runs another one on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_map_tasks_keeps_the_task_order_on_every_backend(ray_cluster):
    tasks = [3000, 1, 200, 0, 45]  # unequal work: tasks finish out of order
    expected = [math.factorial(n) for n in tasks]
    assert map_tasks(math.factorial, tasks) == expected
    assert map_tasks(math.factorial, tasks, workers=2) == expected
    assert map_tasks(math.factorial, tasks, backend="ray", workers=2) == expected


def test_a_ray_session_uses_the_running_cluster_and_leaves_it_running(ray_cluster):
    with open_backend("ray") as session:
        assert session.slots == 2  # the cluster's CPUs
    assert ray_cluster.is_initialized()
    assert not in_worker()


def test_grid_search_is_the_same_on_every_backend(ray_cluster):
    seeds = [1, 2]
    local = grid_search(SCENARIO, 3, seeds)
    pd.testing.assert_frame_equal(local, grid_search(SCENARIO, 3, seeds, workers=2), check_exact=True)
    pd.testing.assert_frame_equal(local, grid_search(SCENARIO, 3, seeds, backend="ray", workers=2), check_exact=True)
    pd.testing.assert_frame_equal(local, grid_search(SCENARIO, 3, seeds, backend="ray"), check_exact=True)


def test_evaluate_is_the_same_on_every_backend(ray_cluster):
    seeds = [1, 2, 3]
    local = evaluate(SPECS, SCENARIO, seeds)
    pd.testing.assert_frame_equal(local, evaluate(SPECS, SCENARIO, seeds, workers=2), check_exact=True)
    pd.testing.assert_frame_equal(local, evaluate(SPECS, SCENARIO, seeds, backend="ray", workers=2), check_exact=True)


def test_cli_grid_writes_the_same_csv_with_ray(ray_cluster, tmp_path, capsys):
    argv = ["grid", *CLI_SCENARIO, "--grid", "3", "--seeds", "2", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    assert main([*argv, "--backend", "ray", "--workers", "2", "--out", str(tmp_path / "ray")]) == 0
    assert (tmp_path / "ray" / "grid.csv").read_bytes() == (tmp_path / "local" / "grid.csv").read_bytes()
    record = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert record["backend"] == "ray"


def test_multi_seed_training_is_the_same_on_every_backend(ray_cluster, tmp_path):
    pytest.importorskip("stable_baselines3")
    import torch
    from stable_baselines3 import PPO

    from metalore.training import train_seeds

    kwargs = {"n_envs": 8, "eval_every": 256, "eval_seeds": 2, "hyperparameters": TINY_PPO}
    runs = {
        "local": train_seeds("toy", tmp_path / "local", 512, [0, 1], **kwargs),
        "local2": train_seeds("toy", tmp_path / "local2", 512, [0, 1], workers=2, **kwargs),
        "ray": train_seeds("toy", tmp_path / "ray", 512, [0, 1], backend="ray", workers=2, **kwargs),
    }
    assert runs["local"] == runs["local2"] == runs["ray"]
    rewards = [row["reward_mean"] for row in runs["local"]["final_evaluations"]]
    assert rewards[0] != rewards[1]  # the seeds trained different agents
    csv = (tmp_path / "local" / "seeds.csv").read_bytes()
    for name in ("local2", "ray"):
        assert (tmp_path / name / "seeds.csv").read_bytes() == csv
        for seed in (0, 1):
            ours = PPO.load(tmp_path / "local" / f"seed_{seed}" / "model.zip").policy.state_dict()
            theirs = PPO.load(tmp_path / name / f"seed_{seed}" / "model.zip").policy.state_dict()
            assert all(torch.equal(ours[key], theirs[key]) for key in ours), (name, seed)


def test_cli_train_seeds_writes_one_folder_per_seed_and_a_summary(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    argv = ["train", "--scenario", "toy", "--steps", "512", "--envs", "2", "--eval-every", "512", "--eval-seeds", "2"]
    assert main([*argv, "--seeds", "0,3", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "seed 3: eval reward" in printed
    assert "trained ppo on 2 seeds" in printed
    assert (tmp_path / "seed_0" / "model.zip").is_file()
    assert (tmp_path / "seed_3" / "model.zip").is_file()
    table = pd.read_csv(tmp_path / "seeds.csv")
    assert list(table["seed"]) == [0, 3]
    assert "elapsed_s" not in table.columns  # wall time would make runs differ
    summary = json.loads((tmp_path / "seeds.json").read_text())
    assert summary["across_seeds"]["reward"]["n"] == 2


def test_the_local_backend_never_imports_ray(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        from metalore.cli import main
        import metalore.training
        argv = ["--scenario", "small", "--set", "episode.steps=5", "--seeds", "2", "--workers", "2", "--quiet"]
        assert main(["grid", "--grid", "2", *argv, "--out", {str(tmp_path / "grid")!r}]) == 0
        assert main(["evaluate", "--policy", "random", *argv, "--out", {str(tmp_path / "eval")!r}]) == 0
        assert "ray" not in sys.modules, "the local backend imported ray"
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_unknown_backends_bad_addresses_and_worker_counts_are_rejected(capsys):
    with pytest.raises(ValueError, match="backend 'dask' is not supported: choose one of local, ray"):
        map_tasks(abs, [1], backend="dask")
    with pytest.raises(ValueError, match="needs the Ray backend"):
        map_tasks(abs, [1], address="auto")
    with pytest.raises(ValueError, match="Ray address 'not an address' is invalid"):
        map_tasks(abs, [1], backend="ray", address="not an address")
    with pytest.raises(ValueError, match="workers = 0"):
        grid_search(SCENARIO, 2, [1], workers=0, backend="ray")
    assert main(["grid", *CLI_SCENARIO, "--backend", "dask"]) == 2
    assert "--backend: invalid choice: 'dask'" in capsys.readouterr().err
    assert main(["grid", *CLI_SCENARIO, "--ray-address", "auto"]) == 2
    assert "needs the Ray backend" in capsys.readouterr().err
    assert main(["train", "--scenario", "toy", "--backend", "ray"]) == 2
    assert "add --seeds" in capsys.readouterr().err


def test_missing_ray_fails_with_the_install_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ImportError, match=r"--backend ray needs Ray: pip install 'metalore\[ray\]'"):
        map_tasks(abs, [1], backend="ray")
    assert main(["grid", *CLI_SCENARIO, "--backend", "ray", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "metalore: error: --backend ray needs Ray: pip install 'metalore[ray]'\n"
