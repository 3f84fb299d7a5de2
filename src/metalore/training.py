"""Training agents with Stable-Baselines3, and the ``agent:PATH`` policy that plays them.

:func:`train` runs PPO (default) or SAC on ``n_envs`` sub-envs of one batched core (the
:mod:`metalore.sb3` adapter, wrapped in ``VecMonitor``). The agent trains on the scenario with
``action.range: symmetric`` (``Box(-1, 1)``, which SB3's Gaussian policies prefer); the saved
agent is played as ``agent:PATH``, which maps its ``[-1, 1]`` output back to the split in
``[0, 1]``, so it acts in any scenario with the same observation layout, whatever its
``action.range``.

Default hyperparameters (override any with ``hyperparameters={...}``):

=====  ==========================================================================================
algo   defaults
=====  ==========================================================================================
ppo    ``n_steps`` 256 per env, ``batch_size`` 256, ``n_epochs`` 10, ``learning_rate`` 3e-4,
       ``gamma`` 0.99, ``gae_lambda`` 0.95, ``clip_range`` 0.2, MLP 64 x 64 (tanh) for policy and value
sac    ``learning_rate`` 3e-4, ``batch_size`` 256, ``buffer_size`` 100 000, ``learning_starts`` 1000,
       ``gamma`` 0.99, ``tau`` 0.005, MLP 64 x 64 (ReLU)
=====  ==========================================================================================

**Normalization** (``normalize=True``, the default; ``--no-normalize`` on the command line): the
agent sees observations and rewards scaled by running means and variances (SB3's
``VecNormalize``, clipped at ±10). MetaLore's raw observations are queue lengths in the hundreds
and its rewards tens per step; without scaling, PPO's tanh network saturates and barely moves
from its initial split (measured on the paper scenario, 60k steps: reward 1,095 raw vs 2,288
normalized; the grid's best static split earns ~2,800). The statistics are frozen into
``vecnormalize.pkl`` beside ``model.zip`` (and beside each checkpoint, for ``--resume``), and
``agent:PATH`` applies them before every prediction.

Output folder ``out_dir``:

* ``tb/``: TensorBoard logs (SB3's ``rollout/`` and ``train/`` scalars, plus ``eval/`` means);
* ``evaluations.csv``: every ``eval_every`` steps, the deterministic agent on the held-out
  ``eval_seeds`` (default 1000..1009, the seeds of ``metalore evaluate``; training episodes
  start from ``seed, seed + 1, ...``): step, wall time and the mean and 95% CI of the headline metrics;
* ``checkpoints/step_NNNNNNNNN.zip`` (the last :data:`KEEP_CHECKPOINTS`) at each evaluation,
  each written to a temporary file and renamed (``os.replace``), so an interruption never corrupts the last
  good one; ``resume=True`` continues from the newest (model, step count, SAC replay buffer);
* ``best_model.zip`` (+ ``best_model.vecnormalize.pkl``): the agent of the evaluation with the
  highest mean reward so far (``agent:DIR/best_model.zip``); PPO's evaluation reward is not
  monotone in the steps, and picking the best agent on the held-out ``eval_seeds`` is fair as
  long as the final comparison uses other seeds (``metalore compare`` does);
* ``model.zip``, ``vecnormalize.pkl`` (with normalization) and ``metadata.json``: the final
  agent; scenario, algorithm, hyperparameters, seeds, package versions, steps, observation
  layout and final evaluation.

Several seeds: :func:`train_seeds` trains one agent per seed, each exactly as :func:`train`
would, into ``out_dir/seed_S/``, and writes ``seeds.csv`` (one row per seed: its final
evaluation) and ``seeds.json`` (the mean and 95% CI of the final evaluation across seeds).
The seeds run one after another in this process, in local worker processes or as Ray tasks
(:mod:`metalore.backends`); every seed trains with one torch thread wherever it runs, so its
agent and numbers do not depend on the backend or the number of workers.

Stable-Baselines3 and torch are optional: install them with
``pip install torch==2.13.0 && pip install "metalore[sb3]"``. This module imports them only
when training or loading an agent, so importing it (which registers ``agent:PATH``) never fails.
"""

from __future__ import annotations

import csv
import io
import json
import math
import pickle
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metalore import __version__
from metalore.backends import check_backend, open_backend
from metalore.config import Scenario, make_scenario
from metalore.core.simulator import observation_layout
from metalore.evaluation import HEADLINE_METRICS, evaluate, summarize, t_confidence_interval
from metalore.io import atomic_path, package_versions, write_csv, write_json
from metalore.policies import POLICIES, Policy, PolicyError, _spec_error, register_policy, scenario_of

__all__ = [
    "ALGOS",
    "DEFAULT_HYPERPARAMETERS",
    "KEEP_CHECKPOINTS",
    "AgentPolicy",
    "load_agent",
    "seed_folder",
    "train",
    "train_seeds",
]

INSTALL_HINT = 'pip install torch==2.13.0 && pip install "metalore[sb3]"'
ALGOS = ("ppo", "sac")
DEFAULT_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "ppo": {
        "n_steps": 256,
        "batch_size": 256,
        "n_epochs": 10,
        "learning_rate": 3e-4,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "clip_range": 0.2,
        "policy_kwargs": {"net_arch": [64, 64]},
    },
    "sac": {
        "learning_rate": 3e-4,
        "batch_size": 256,
        "buffer_size": 100_000,
        "learning_starts": 1000,
        "gamma": 0.99,
        "tau": 0.005,
        "policy_kwargs": {"net_arch": [64, 64]},
    },
}
KEEP_CHECKPOINTS = 3
NORMALIZER_FILE = "vecnormalize.pkl"  # the VecNormalize statistics beside model.zip
BEST_MODEL_FILE = "best_model.zip"  # the agent of the best periodic evaluation (held-out seeds)
DEFAULT_EVAL_SEED_START = 1000  # the default seeds of `metalore evaluate`
VERSIONED_PACKAGES = ("metalore", "stable-baselines3", "torch", "numpy", "gymnasium")
_CHECKPOINT = re.compile(r"step_(\d+)\.zip")
EVAL_COLUMNS = ("step", "elapsed_s", "episodes", *(f"{m}_{s}" for m in HEADLINE_METRICS for s in ("mean", "ci95")))


def _sb3() -> Any:
    """Import Stable-Baselines3, or fail with the install command (STYLE.md §6, §9)."""
    try:
        import stable_baselines3
    except ImportError as exc:
        raise ImportError(f"training and agent policies need Stable-Baselines3 and torch: {INSTALL_HINT}") from exc
    return stable_baselines3


def _algo_class(algo: str) -> Any:
    if algo not in ALGOS:
        raise ValueError(f"algo {algo!r} is not supported: choose one of {', '.join(ALGOS)}")
    return getattr(_sb3(), algo.upper())


def _layout_record(scenario: Scenario) -> dict[str, list[int]]:
    """The observation layout as JSON: feature name -> [start, stop]."""
    return {name: [s.start, s.stop] for name, s in observation_layout(scenario).items()}


def _versions() -> dict[str, str | None]:
    found = package_versions(VERSIONED_PACKAGES)
    found["metalore"] = found["metalore"] or __version__
    return found


# --------------------------------------------------------------------------- the agent as a policy
class AgentPolicy(Policy):
    """A trained SB3 agent acting deterministically; its ``[-1, 1]`` action becomes the split in ``[0, 1]``.

    Args:
        env: the MetaLore env, vector env or scenario to act in; its observation layout must be
            the one the agent was trained on (``trained_layout``).
        model: the SB3 model (``PPO``/``SAC``).
        trained_layout: feature name -> ``[start, stop]`` of the training scenario's observation.
        spec: the policy's spec string.
        normalizer: the training run's ``VecNormalize`` (its frozen observation statistics scale
            the observation before ``model.predict``), or ``None`` if it trained on raw observations.
    """

    acts_on_batch = True  # a deterministic function of the observation

    def __init__(
        self,
        env: Any,
        model: Any,
        trained_layout: Mapping[str, Sequence[int]],
        spec: str = "agent",
        seed: int | None = None,
        normalizer: Any = None,
    ) -> None:
        super().__init__(env, seed)
        self.spec = spec
        self.normalizer = normalizer
        layout = _layout_record(self.scenario)
        trained = {name: list(span) for name, span in trained_layout.items()}
        if layout != trained:
            raise PolicyError(
                f"policy {spec!r} was trained on observation layout {trained} but this scenario's is {layout}:"
                " set observation.features (and the device counts) as in the training scenario"
            )
        expected = (2 * self.num_bs,)
        if tuple(model.action_space.shape) != expected:
            raise PolicyError(
                f"policy {spec!r} outputs actions of shape {tuple(model.action_space.shape)}, but this scenario"
                f" has {self.num_bs} base station(s) and needs {expected}"
            )
        self.model = model

    def _split(self, obs: np.ndarray) -> np.ndarray:
        flat = obs.reshape(-1, self.observation_size).astype(np.float32)
        if self.normalizer is not None:
            flat = self.normalizer.normalize_obs(flat)
        action, _ = self.model.predict(flat, deterministic=True)
        split = (np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) + 1.0) / 2.0
        return split.reshape(*obs.shape[:-1], self.num_bs, 2)


def normalizer_path(model_path: Path) -> Path:
    """Where :func:`train` keeps the ``VecNormalize`` statistics of a saved model file.

    ``model.zip`` -> ``vecnormalize.pkl``; any other ``NAME.zip`` (``best_model.zip``, checkpoints
    ``step_N.zip``) -> ``NAME.vecnormalize.pkl`` beside it.
    """
    return (
        model_path.with_name(NORMALIZER_FILE)
        if model_path.name == "model.zip"
        else model_path.with_suffix(".vecnormalize.pkl")
    )


def load_agent(path: str | Path, env: Any, spec: str | None = None) -> AgentPolicy:
    """Load an agent saved by :func:`train`.

    ``path`` is the training folder (its final ``model.zip``) or a model file in it:
    ``DIR/best_model.zip`` (the evaluation-best agent) or ``DIR/checkpoints/step_N.zip``; the
    training's ``metadata.json`` is looked up beside the file, then one folder up.
    """
    path = Path(path)
    spec = spec or f"agent:{path}"
    model_path = path / "model.zip" if path.is_dir() else path
    metadata_path = model_path.with_name("metadata.json")
    if not metadata_path.is_file() and model_path.parent.with_name("metadata.json").is_file():
        metadata_path = model_path.parent.with_name("metadata.json")  # a checkpoint in DIR/checkpoints/
    for needed in (model_path, metadata_path):
        if not needed.is_file():
            raise PolicyError(
                f"policy {spec!r}: {str(needed)!r} does not exist; pass the output folder of `metalore train`"
                " (it holds model.zip and metadata.json)"
            )
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        algo, layout = metadata["algo"], metadata["observation_layout"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PolicyError(f"policy {spec!r}: {str(metadata_path)!r} is not a metalore training metadata file") from exc
    model = _algo_class(algo).load(model_path, device="cpu")
    normalizer = None
    if metadata.get("normalize"):
        stats = normalizer_path(model_path)
        if not stats.is_file():
            raise PolicyError(
                f"policy {spec!r}: the agent was trained on normalized observations but {str(stats)!r} is missing;"
                " copy it from the training folder beside model.zip"
            )
        normalizer = _load_normalizer(stats)
    return AgentPolicy(env, model, layout, spec, normalizer=normalizer)


def _load_normalizer(path: Path) -> Any:
    """A pickled ``VecNormalize`` (its statistics; not attached to an env), as ``VecNormalize.save`` writes it."""
    with path.open("rb") as f:
        return pickle.load(f)


def _build_agent(spec: str, args: str, env: Any, seed: int | None) -> Policy:
    if not args:
        raise _spec_error(spec, "agent needs the folder written by `metalore train`, e.g. agent:runs/toy-ppo")
    return load_agent(args, env, spec)


if "agent" not in POLICIES:  # importing this module twice (reload) must not fail
    register_policy("agent", _build_agent, "agent:PATH", "a trained agent (folder of `metalore train`), deterministic")


# --------------------------------------------------------------------------- checkpoints
def _checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    folder = out_dir / "checkpoints"
    found = [(int(m.group(1)), p) for p in folder.glob("step_*.zip") if (m := _CHECKPOINT.fullmatch(p.name))]
    return sorted(found)


def _save_atomically(path: Path, save: Any) -> None:
    """Call ``save(file)`` on a temporary file beside ``path``, then rename it into place."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        save(f)


def _save_normalizer(model: Any, path: Path) -> None:
    """Pickle the model's ``VecNormalize`` (if any) to ``path`` atomically, as ``VecNormalize.save`` would."""
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:
        _save_atomically(path, lambda f: pickle.dump(normalizer, f))


def _save_checkpoint(model: Any, out_dir: Path) -> Path:
    path = out_dir / "checkpoints" / f"step_{model.num_timesteps:09d}.zip"
    # statistics first: a checkpoint's .zip exists only once everything it needs to resume does
    _save_normalizer(model, normalizer_path(path))
    if hasattr(model, "replay_buffer"):  # off-policy: resuming needs the buffer too
        _save_atomically(path.with_suffix(".replay.pkl"), model.save_replay_buffer)
    _save_atomically(path, model.save)
    for _, old in _checkpoints(out_dir)[:-KEEP_CHECKPOINTS]:
        old.unlink()
        old.with_suffix(".replay.pkl").unlink(missing_ok=True)
        old.with_suffix(".vecnormalize.pkl").unlink(missing_ok=True)
    return path


# --------------------------------------------------------------------------- evaluation log
def _evaluation_row(model: Any, scenario: Scenario, layout: Mapping[str, Any], seeds: list[int]) -> dict[str, float]:
    """Mean and 95% CI half-width of the headline metrics of the deterministic agent on ``seeds``."""
    agent = AgentPolicy(scenario, model, layout, "agent", normalizer=model.get_vec_normalize_env())
    episodes = evaluate({"agent": lambda s, _seed: agent}, scenario, seeds)
    stats = summarize(episodes, list(HEADLINE_METRICS)).set_index("metric")
    row: dict[str, float] = {"episodes": len(seeds)}
    for metric in HEADLINE_METRICS:
        row[f"{metric}_mean"] = float(stats.loc[metric, "mean"])
        row[f"{metric}_ci95"] = float(stats.loc[metric, "half_width"])
    return row


def _read_evaluations(path: Path, up_to_step: int) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        rows = [{k: float(v) if v else math.nan for k, v in row.items()} for row in csv.DictReader(f)]
    return [
        {**row, "step": int(row["step"]), "episodes": int(row["episodes"])} for row in rows if row["step"] <= up_to_step
    ]


def _write_evaluations(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EVAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def _make_callback(base: Any) -> Any:
    class EvaluateAndCheckpoint(base):
        """Every ``eval_every`` steps: evaluate on the held-out seeds, log, save a checkpoint."""

        def __init__(self, trainer: _Trainer) -> None:
            super().__init__()
            self.trainer = trainer

        def _on_rollout_start(self) -> None:
            # At the start of a rollout the previous update is done: the checkpoint holds the
            # model as it is after num_timesteps steps (mid-rollout, PPO's update would be missing).
            if self.num_timesteps >= self.trainer.next_eval:
                self.trainer.evaluate_and_checkpoint(self.model)

        def _on_step(self) -> bool:
            self.trainer.advance(self.num_timesteps)
            return True

    return EvaluateAndCheckpoint


class _Trainer:
    """The bookkeeping of one :func:`train` call: evaluation rows, checkpoints, progress lines."""

    def __init__(self, out_dir: Path, scenario: Scenario, layout: dict, seeds: list[int], every: int, total: int):
        self.out_dir, self.scenario, self.layout, self.seeds = out_dir, scenario, layout, seeds
        self.every, self.total = every, total
        self.rows: list[dict[str, Any]] = []
        self.next_eval = every
        self.clock = time.perf_counter()
        self.elapsed_before = 0.0
        self.progress = True
        self.best_reward, self.best_step = -math.inf, -1
        self.bar: Any = None

    def start_at(self, step: int) -> None:
        self.rows = _read_evaluations(self.out_dir / "evaluations.csv", step)
        self.elapsed_before = float(self.rows[-1]["elapsed_s"]) if self.rows else 0.0
        if self.rows:  # best_model.zip was saved at the best of these rows
            best = max(self.rows, key=lambda r: r["reward_mean"])
            self.best_reward, self.best_step = float(best["reward_mean"]), int(best["step"])
        self.next_eval = (step // self.every + 1) * self.every

    def evaluate_and_checkpoint(self, model: Any) -> dict[str, Any]:
        step = int(model.num_timesteps)
        elapsed = self.elapsed_before + time.perf_counter() - self.clock
        row = {
            "step": step,
            "elapsed_s": round(elapsed, 2),
            **_evaluation_row(model, self.scenario, self.layout, self.seeds),
        }
        self.rows.append(row)
        _write_evaluations(self.out_dir / "evaluations.csv", self.rows)
        for metric in ("reward", "aori_mean", "aosi_mean", "late_fraction"):
            model.logger.record(f"eval/{metric}", row[f"{metric}_mean"])
        _save_checkpoint(model, self.out_dir)
        if row["reward_mean"] > self.best_reward:  # strictly better: ties keep the earlier agent
            self.best_reward, self.best_step = row["reward_mean"], step
            _save_normalizer(model, normalizer_path(self.out_dir / BEST_MODEL_FILE))
            _save_atomically(self.out_dir / BEST_MODEL_FILE, model.save)
        self.next_eval = (step // self.every + 1) * self.every
        if self.progress:
            line = (
                f"step {step}/{self.total}: eval reward {row['reward_mean']:.2f} ± {row['reward_ci95']:.2f}"
                f" on {len(self.seeds)} seeds ({elapsed:.0f} s)"
            )
            if self.bar is not None:
                self.bar.write(line, file=sys.stdout)  # above the bar, which stays on stderr
            else:
                print(line, flush=True)
        return row

    def open_bar(self, start: int, label: str) -> None:
        """A progress bar of the training steps on stderr (only when it is a terminal)."""
        from tqdm import tqdm

        if self.progress and sys.stderr.isatty():
            self.bar = tqdm(total=self.total, initial=start, unit="step", desc=label, file=sys.stderr)

    def advance(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --------------------------------------------------------------------------- training
def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} = {value!r} is invalid: pass an integer >= {minimum}")
    return int(value)


def _eval_seed_list(eval_seeds: int | Sequence[int]) -> list[int]:
    if isinstance(eval_seeds, int | np.integer) and not isinstance(eval_seeds, bool):
        count = _check_count("eval_seeds", eval_seeds, 1)
        return [DEFAULT_EVAL_SEED_START + i for i in range(count)]
    if isinstance(eval_seeds, bool) or not isinstance(eval_seeds, Sequence | np.ndarray):
        raise ValueError(f"eval_seeds = {eval_seeds!r} is invalid: pass a count >= 1 or a list of seeds")
    return [int(s) for s in eval_seeds]


def _training_scenario(scenario: str | Scenario) -> tuple[Scenario, Scenario]:
    """(the scenario as given, without the job log; the same with the symmetric action range)."""
    user = make_scenario(scenario) if isinstance(scenario, str) else scenario_of(scenario)
    user = user.replace({"log": {"jobs": False}})
    return user, user.replace({"action": {"range": "symmetric"}})


def _check_out_dir(out_dir: Path, resume: bool) -> list[tuple[int, Path]]:
    """The checkpoints in ``out_dir``, after checking that a fresh run or a resumed one may use it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} exists and is not a folder: choose another path")
    checkpoints = _checkpoints(out_dir)
    if checkpoints and not resume:
        raise ValueError(
            f"{str(out_dir)!r} already holds checkpoints of a training run:"
            " resume it (--resume) or choose another folder"
        )
    if resume and not checkpoints:
        raise ValueError(f"nothing to resume: {str(out_dir / 'checkpoints')!r} holds no step_*.zip checkpoint")
    return checkpoints


def train(
    scenario: str | Scenario,
    out_dir: str | Path,
    total_steps: int,
    n_envs: int = 8,
    seed: int = 0,
    algo: str = "ppo",
    eval_every: int = 10_000,
    eval_seeds: int | Sequence[int] = 10,
    resume: bool = False,
    progress: bool = True,
    hyperparameters: Mapping[str, Any] | None = None,
    callback: Any = None,
    normalize: bool = True,
) -> dict[str, Any]:
    """Train an SB3 agent on ``scenario``; write logs, evaluations, checkpoints and the final agent to ``out_dir``.

    Args:
        scenario: preset name or :class:`Scenario` (its ``action.range`` does not matter: the
            agent trains with the symmetric range and acts in either).
        out_dir: output folder (see the module docstring); created if missing.
        total_steps: environment steps to train for, summed over sub-envs (SB3's
            ``total_timesteps``; PPO finishes its last rollout, so it may run a little longer).
        n_envs: sub-envs stepped together in one batched core.
        seed: seed of the agent and of the first training episodes (sub-env i: ``seed + i``).
        algo: ``"ppo"`` or ``"sac"``.
        eval_every: steps between evaluations (each also writes a checkpoint).
        eval_seeds: held-out episode seeds, or a count ``N`` for seeds 1000..1000+N-1.
        resume: continue from the newest checkpoint in ``out_dir`` (with the same scenario and algo).
        progress: print one line per evaluation, and show a progress bar on stderr when it is a terminal.
        hyperparameters: overrides of :data:`DEFAULT_HYPERPARAMETERS` for ``algo``.
        callback: an extra SB3 callback (or list of them) passed to ``learn``.
        normalize: train on running-mean/variance normalized observations and rewards
            (SB3's ``VecNormalize``); the statistics are saved with the agent.

    Returns:
        The contents of ``metadata.json``.
    """
    sb3 = _sb3()
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from metalore.sb3 import make_sb3_vec_env

    algo_class = _algo_class(algo)
    total_steps = _check_count("total_steps", total_steps, 1)
    n_envs = _check_count("n_envs", n_envs, 1)
    seed = _check_count("seed", seed, 0)
    eval_every = _check_count("eval_every", eval_every, 1)
    seeds = _eval_seed_list(eval_seeds)
    user_scenario, train_scenario = _training_scenario(scenario)
    layout = _layout_record(user_scenario)
    out_dir = Path(out_dir)
    checkpoints = _check_out_dir(out_dir, resume)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {**DEFAULT_HYPERPARAMETERS[algo], **(hyperparameters or {})}
    config_path = out_dir / "training.json"
    if not isinstance(normalize, bool):
        raise ValueError(f"normalize = {normalize!r} is invalid: pass True or False")
    config_record = {
        "algo": algo,
        "n_envs": n_envs,
        "seed": seed,
        "normalize": normalize,
        "scenario": train_scenario.to_dict(),
    }
    if resume:
        previous = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else None
        if previous != json.loads(json.dumps(config_record)):
            raise ValueError(
                f"cannot resume {str(out_dir)!r}: its training.json records another scenario, algo, seed,"
                " normalization or number of envs; pass the same options as the first run"
            )
    else:
        write_json(config_path, config_record)

    trainer = _Trainer(out_dir, user_scenario, layout, seeds, eval_every, total_steps)
    trainer.progress = progress
    start_step = checkpoints[-1][0] if resume else 0
    vec_env: Any = VecMonitor(
        make_sb3_vec_env(train_scenario.name, n_envs, train_scenario.to_dict(), seed=seed + start_step)
    )
    if normalize and resume:
        vec_env = VecNormalize.load(str(checkpoints[-1][1].with_suffix(".vecnormalize.pkl")), vec_env)
    elif normalize:
        vec_env = VecNormalize(vec_env, norm_obs=True, norm_reward=True, gamma=float(params.get("gamma", 0.99)))
    tb_dir = str(out_dir / "tb")
    if resume:
        latest = checkpoints[-1][1]
        model = algo_class.load(latest, env=vec_env, device="cpu", tensorboard_log=tb_dir)
        replay = latest.with_suffix(".replay.pkl")
        if hasattr(model, "replay_buffer") and replay.is_file():
            model.load_replay_buffer(replay)
        trainer.start_at(int(model.num_timesteps))
    else:
        model = algo_class("MlpPolicy", vec_env, seed=seed, device="cpu", tensorboard_log=tb_dir, verbose=0, **params)
    extra = callback if isinstance(callback, list) else [callback] if callback is not None else []
    remaining = max(total_steps - int(model.num_timesteps), 0)
    trainer.open_bar(int(model.num_timesteps), algo)
    try:
        if remaining:
            model.learn(
                remaining,
                callback=[_make_callback(BaseCallback)(trainer), *extra],
                reset_num_timesteps=not resume,
                tb_log_name=algo,
            )
        final = trainer.rows[-1] if trainer.rows and int(trainer.rows[-1]["step"]) == model.num_timesteps else None
        final = final or trainer.evaluate_and_checkpoint(model)
    finally:
        trainer.close_bar()
        vec_env.close()
    _save_normalizer(model, out_dir / NORMALIZER_FILE)
    _save_atomically(out_dir / "model.zip", model.save)
    metadata = {
        "algo": algo,
        "normalize": normalize,
        "scenario": {"preset": train_scenario.name, "config": train_scenario.to_dict()},
        "action_range_trained": "symmetric",
        "observation_layout": layout,
        "hyperparameters": params,
        "n_envs": n_envs,
        "seed": seed,
        "eval_seeds": seeds,
        "total_steps": int(model.num_timesteps),
        "requested_steps": total_steps,
        "final_evaluation": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in final.items()},
        "best_evaluation": {"step": trainer.best_step, "reward_mean": trainer.best_reward, "file": BEST_MODEL_FILE},
        "versions": {**_versions(), "stable-baselines3": sb3.__version__, "python": sys.version.split()[0]},
    }
    write_json(out_dir / "metadata.json", metadata)
    return metadata


# --------------------------------------------------------------------------- several seeds
SeedTask = tuple[str, dict[str, Any], str, int, int, dict[str, Any]]  # (preset, config, out_dir, steps, seed, options)


def _train_seed(task: SeedTask) -> dict[str, Any]:
    """One seed of :func:`train_seeds`; a module-level function, so it can run in a worker process or Ray task."""
    import torch

    preset, config, out_dir, total_steps, seed, options = task
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float sums depend on the thread count: one thread gives the same agent everywhere
    try:
        return train(make_scenario(preset, base=config), out_dir, total_steps, seed=seed, progress=False, **options)
    finally:
        torch.set_num_threads(threads)


def _check_seed_list(seeds: Sequence[int]) -> list[int]:
    checked = [_check_count("seed", seed, 0) for seed in seeds]
    if not checked:
        raise ValueError("seeds is empty: pass at least one training seed")
    if len(set(checked)) != len(checked):
        raise ValueError(f"seeds {checked} contain duplicates: list each training seed once")
    return checked


def seed_folder(out_dir: str | Path, seed: int) -> Path:
    """The folder of seed ``seed`` in the output of :func:`train_seeds`."""
    return Path(out_dir) / f"seed_{seed}"


def train_seeds(
    scenario: str | Scenario,
    out_dir: str | Path,
    total_steps: int,
    seeds: Sequence[int],
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    n_envs: int = 8,
    algo: str = "ppo",
    eval_every: int = 10_000,
    eval_seeds: int | Sequence[int] = 10,
    resume: bool = False,
    hyperparameters: Mapping[str, Any] | None = None,
    normalize: bool = True,
) -> dict[str, Any]:
    """Train one agent per seed (each as :func:`train` with that ``seed``); summarise their final evaluations.

    Args:
        scenario: preset name or :class:`Scenario`, as in :func:`train`.
        out_dir: output folder: ``seed_S/`` per seed (a :func:`train` folder), ``seeds.csv``, ``seeds.json``.
        total_steps: environment steps per seed, as in :func:`train`.
        seeds: distinct non-negative training seeds.
        backend: ``"local"`` or ``"ray"`` (see :mod:`metalore.backends`).
        workers: seeds trained at once (local: processes, ``None`` or 1 for this process; Ray:
            CPUs of the local cluster, default all cores).
        address: the Ray cluster to connect to; default: start a local one.
        n_envs: sub-envs per seed, as in :func:`train`.
        algo: ``"ppo"`` or ``"sac"``.
        eval_every: steps between evaluations, as in :func:`train`.
        eval_seeds: held-out episode seeds (or their count), the same for every seed.
        resume: continue every seed from its newest checkpoint.
        hyperparameters: overrides of :data:`DEFAULT_HYPERPARAMETERS`, the same for every seed.
        normalize: as in :func:`train`.

    Returns:
        The contents of ``seeds.json``: the seeds, their folders, each seed's final evaluation
        and, per headline metric, the mean and 95% Student-t interval of the final means across seeds.
    """
    import pandas as pd

    _sb3()  # fail here, not in every worker, when the sb3 extra is missing
    _algo_class(algo)
    workers = check_backend(backend, workers, address)
    seeds = _check_seed_list(seeds)
    total_steps = _check_count("total_steps", total_steps, 1)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} exists and is not a folder: choose another path")
    for seed in seeds:
        _check_out_dir(seed_folder(out_dir, seed), resume)
    user_scenario, _ = _training_scenario(scenario)
    options = {
        "n_envs": n_envs,
        "algo": algo,
        "eval_every": eval_every,
        "eval_seeds": eval_seeds if isinstance(eval_seeds, int | np.integer) else [int(s) for s in eval_seeds],
        "resume": resume,
        "hyperparameters": dict(hyperparameters or {}),
        "normalize": normalize,
    }
    config = user_scenario.to_dict()
    tasks = [
        (user_scenario.name, config, str(seed_folder(out_dir, seed)), total_steps, seed, options) for seed in seeds
    ]
    with open_backend(backend, workers, address) as session:
        runs = session.map(_train_seed, tasks)
    # wall time (elapsed_s) is left out: everything in seeds.csv depends on the seed alone
    rows = [
        {"seed": seed, "total_steps": run["total_steps"]}
        | {k: v for k, v in run["final_evaluation"].items() if k != "elapsed_s"}
        for seed, run in zip(seeds, runs, strict=True)
    ]
    table = pd.DataFrame(rows)
    write_csv(out_dir / "seeds.csv", table)
    summary = {
        "seeds": seeds,
        "folders": [seed_folder(out_dir, seed).name for seed in seeds],
        "final_evaluations": rows,
        "across_seeds": {metric: t_confidence_interval(table[f"{metric}_mean"]) for metric in HEADLINE_METRICS},
    }
    write_json(out_dir / "seeds.json", summary)
    return summary
