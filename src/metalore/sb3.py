"""Stable-Baselines3 ``VecEnv`` over the native vector environment (an optional integration).

``MetaLoreSB3VecEnv`` lets SB3 algorithms use ``N`` MetaLore environments stepped by one call
into the batched core, without ``N`` processes or ``N`` Python env objects. It follows SB3's
conventions: ``step_wait`` returns ``(obs, rewards, dones, infos)`` with float32 rewards and a
list of one info dict per sub-env; an ending sub-env is reset in the same step and its last
observation is in ``infos[i]["terminal_observation"]``, and at the end of a MetaLore episode
its statistics are in ``infos[i]["summary"]`` (with the single env's types: counts are ints);
every info has ``"TimeLimit.truncated"`` (true at every episode end: a MetaLore episode always
ends by truncation, at ``episode.steps`` or at ``max_episode_steps``). The other info keys are
the vector env's: the single env's ``aori``/``aosi`` tuples come as their means
``aori_mean``/``aosi_mean`` (only in steps that completed UE jobs). ``seed(s)`` makes the next
``reset()`` give sub-env i the seed ``s + i``, i.e. exactly the episode of a single
``MetaLoreEnv`` reset with seed ``s + i``.

Usage::

    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor
    from metalore.sb3 import make_sb3_vec_env

    vec_env = VecMonitor(make_sb3_vec_env("MetaLore/Paper-v0", n_envs=16, seed=0))
    PPO("MlpPolicy", vec_env).learn(100_000)

Wrap the adapter in ``VecMonitor`` for SB3's ``rollout/ep_rew_mean`` logging.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode

try:
    from stable_baselines3.common.vec_env import VecEnv
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn
except ImportError as exc:  # an optional extra (STYLE.md §9)
    raise ImportError(
        'metalore.sb3 needs Stable-Baselines3: install it with `pip install "metalore[sb3]"`'
        " (it needs torch: run `pip install torch==2.13.0` first)"
    ) from exc

from metalore import PRESET_IDS, SEED_ALIAS_ID
from metalore.config import PRESETS
from metalore.vector import PER_SUB_ENV_METHODS, MetaLoreVectorEnv

# Info keys that the adapter handles itself instead of copying them per sub-env.
_SPECIAL_INFO_KEYS = frozenset({"final_obs", "final_info", "summary"})
# Attributes whose per-sub-env value is the vector env's single-env counterpart.
_SINGLE_ENV_ATTRS = {"observation_space": "single_observation_space", "action_space": "single_action_space"}


class MetaLoreSB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` view of a ``MetaLoreVectorEnv`` running in ``SAME_STEP`` autoreset mode.

    Args:
        venv: the native vector env; it must have been created with
            ``autoreset_mode=AutoresetMode.SAME_STEP`` (``make_sb3_vec_env`` does this).
        step_info: False keeps only what SB3's algorithms and wrappers read in the infos:
            ``"TimeLimit.truncated"`` in every info, and at an episode end
            ``"terminal_observation"`` and the ``"summary"`` (the step's counts, queue
            lengths and age means are left out). SB3 wants one dict per sub-env and step, and
            at 1,024 sub-envs building the full ones costs about as much as the step itself.

    All sub-envs share one scenario, so ``set_attr`` applies to every sub-env at once and
    ``get_attr`` returns the shared value once per requested index (``observation_space`` and
    ``action_space`` give the single-env spaces and ``spec`` the single env's spec, as for SB3's
    ``DummyVecEnv`` of ``gymnasium.make`` envs).
    ``env_method`` supports the per-sub-env read-outs ``episode_summary`` and ``job_log``.
    With a vector env made with ``render_mode="rgb_array"``, ``get_images`` returns one frame per
    sub-env and SB3's ``render()`` tiles them (as for ``DummyVecEnv``).

    Seeding: after ``seed(s)`` the next ``reset()`` gives sub-env i the seed ``s + i``; a
    ``reset()`` without seeds starts sub-env i from ``episode.seed + i`` the first time and
    from a seed derived from its previous one afterwards (as ``MetaLoreEnv.reset()`` does).
    """

    def __init__(self, venv: MetaLoreVectorEnv, *, step_info: bool = True) -> None:
        if not isinstance(venv, MetaLoreVectorEnv):
            raise TypeError(f"venv must be a MetaLoreVectorEnv, got {type(venv).__name__}: use make_sb3_vec_env()")
        if venv.metadata["autoreset_mode"] != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"venv has autoreset_mode {venv.metadata['autoreset_mode']!r}, but SB3 resets in the ending step:"
                " create it with MetaLoreVectorEnv(..., autoreset_mode=AutoresetMode.SAME_STEP)"
            )
        if not isinstance(step_info, bool):
            raise TypeError(f"step_info must be True or False, got {step_info!r}")
        self.venv = venv
        self.step_info = step_info
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._waiting = False  # step_async was called and step_wait not yet (None is an action too)
        self._custom_attrs: set[str] = set()  # names set_attr added (the vector env's own are refused)
        # The single env's spec (get_attr("spec")): make_sb3_vec_env sets it from the id; a vector
        # env from gymnasium.make_vec carries its id's spec with the vector's own kwargs added.
        self.single_spec: EnvSpec | None = venv.single_spec

    # ----------------------------------------------------------------- reset / step
    def reset(self) -> VecEnvObs:
        """Reset every sub-env, using (once) the seeds set by ``seed()`` and the options of ``set_options()``."""
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, info = self.venv.reset(seed=seeds)
        self.reset_infos = [{"t": 0, "seed": int(s)} for s in info["seed"]]  # as MetaLoreEnv.reset
        # MetaLore's reset takes no per-sub-env options (MetaLoreEnv accepts and ignores them).
        self._reset_seeds()
        self._reset_options()
        self._actions, self._waiting = None, False
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions ``(num_envs, 2 * M)`` for the next ``step_wait``."""
        self._actions, self._waiting = actions, True

    def step_wait(self) -> VecEnvStepReturn:
        """Step all sub-envs; ending ones are reset at once (their last observation is in the infos)."""
        if not self._waiting:
            raise RuntimeError("call step_async(actions) before step_wait() (and reset() before the first step)")
        actions, self._actions, self._waiting = self._actions, None, False
        obs, reward, terminated, truncated, info = self.venv.step(actions)
        dones = terminated | truncated
        time_limit = truncated & ~terminated  # in every info, as SB3's DummyVecEnv puts it
        if self.step_info:
            infos = _split_info({**info, "TimeLimit.truncated": time_limit})
        else:  # (a sub-env that did not end was not truncated)
            infos = [{"TimeLimit.truncated": False} for _ in range(self.num_envs)]
        ended = np.flatnonzero(dones)
        if ended.size:
            # An ended sub-env's info is its last step's (SB3's convention), which the vector env
            # keeps in final_info; the top level holds its reset info, which goes to reset_infos.
            # Only the ended rows are split (episodes may end in a few sub-envs at a time).
            final = info["final_info"]
            if self.step_info:
                columns = {k: v[ended] for k, v in final.items() if k not in ("summary", "_summary")}
                finals = _split_info({**columns, "TimeLimit.truncated": time_limit[ended]})
            else:
                finals = [{"TimeLimit.truncated": flag} for flag in time_limit[ended].tolist()]
            seeds = info["seed"][ended].tolist()
            for i, last, seed in zip(ended.tolist(), finals, seeds, strict=True):
                infos[i] = last
                infos[i]["terminal_observation"] = info["final_obs"][i]
                self.reset_infos[i] = {"t": 0, "seed": seed}
            # The summary comes at the scenario's own episode end, not at a max_episode_steps cut.
            with_summary = np.flatnonzero(final.get("_summary", np.zeros(self.num_envs, np.bool_)))
            if with_summary.size:
                # (int64 counts become ints; the summary's nested masks stay out)
                summary_columns = {k: v[with_summary] for k, v in final["summary"].items() if not k.startswith("_")}
                summaries = _rows(summary_columns)
                for i, summary in zip(with_summary.tolist(), summaries, strict=True):
                    infos[i]["summary"] = summary
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        """Release the vector env."""
        self.venv.close()

    # ----------------------------------------------------------------- attributes and methods
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The shared value of ``attr_name`` once per sub-env in ``indices``."""
        if attr_name == "spec":  # each sub-env's spec, as DummyVecEnv's gymnasium.make envs have it
            value: Any = self.single_spec
        else:
            value = getattr(self.venv, _SINGLE_ENV_ATTRS.get(attr_name, attr_name))
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set a custom attribute ``attr_name`` on the shared vector env; ``indices`` must select every sub-env.

        New names (a curriculum flag, say) are stored for ``get_attr``. The vector env's own
        attributes (``scenario``, the spaces, ``spec``, ``render_mode``, ...) are refused, as the
        vector env's ``set_attr`` refuses them: the batched core would not follow the change.
        """
        if set(self._get_indices(indices)) != set(range(self.num_envs)):
            raise ValueError(
                f"cannot set {attr_name!r} on a subset of sub-envs: they share one MetaLoreVectorEnv;"
                " pass indices=None to set it for all"
            )
        target = _SINGLE_ENV_ATTRS.get(attr_name, attr_name)
        if attr_name == "spec" or (hasattr(self.venv, target) and target not in self._custom_attrs):
            raise AttributeError(
                f"cannot set {attr_name!r}: it belongs to the shared MetaLoreVectorEnv, whose batched core"
                " would not follow the change; create a new env (make_sb3_vec_env with config=...) instead."
                " Only new, custom attribute names can be set"
            )
        self._custom_attrs.add(target)
        setattr(self.venv, target, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a per-sub-env read-out (``episode_summary``, ``job_log``) for each sub-env in ``indices``."""
        if method_name not in PER_SUB_ENV_METHODS:
            raise AttributeError(
                f"env_method({method_name!r}) is not available: the sub-envs share one batched core;"
                f" per-sub-env methods are {', '.join(PER_SUB_ENV_METHODS)}"
            )
        method = getattr(self.venv, method_name)
        return [method(int(i), *method_args, **method_kwargs) for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Always false: the sub-envs are rows of one batched core, not wrapped ``gym.Env`` objects."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One frame per sub-env, as ``DummyVecEnv`` gives them (Nones and a warning without ``rgb_array``)."""
        if self.venv.render_mode != "rgb_array":
            warnings.warn(
                f"The render mode is {self.venv.render_mode}, but this method assumes it is `rgb_array` to obtain"
                ' images: create the env with render_mode="rgb_array"',
                stacklevel=2,
            )
            return [None for _ in range(self.num_envs)]
        return list(self.venv.render() or ())

    def _get_indices(self, indices: VecEnvIndices) -> list[int]:
        """The sub-envs ``indices`` selects, checked as ``DummyVecEnv``'s list of envs checks them.

        Negative indices count from the end; others out of range raise ``IndexError`` (the
        batched core reads a row without bounds checks, so a bad index would read garbage).
        """
        return [self.venv.sub_env_index(i) for i in super()._get_indices(indices)]

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Make the next ``reset()`` give sub-env i the seed ``seed + i`` (a random base if None)."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
            raise ValueError(f"seed {seed!r} is invalid: pass a non-negative integer or None")
        return super().seed(None if seed is None else int(seed))


def _rows(columns: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One dict per row of equally long columns, with Python scalars.

    ``map``/``zip`` build the dicts without a Python-level loop: at 1,024 sub-envs this runs
    a thousand times per step.
    """
    # Python scalars per row; a column of arrays (queue_lengths, (N, M, 2)) gives one array per row.
    values = [list(column) if np.ndim(column) > 1 else np.asarray(column).tolist() for column in columns.values()]
    return list(map(dict, map(zip, itertools.repeat(list(columns)), zip(*values, strict=True))))


def _split_info(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Turn the vector env's dict of masked arrays into SB3's list of per-sub-env dicts."""
    columns = {k: v for k, v in info.items() if not k.startswith("_") and k not in _SPECIAL_INFO_KEYS}
    infos = _rows(columns)
    # A key is left out of the sub-envs its mask excludes. Most keys share one mask array (the
    # stepped sub-envs) that is usually all true: find each distinct mask's exclusions once.
    excluded: dict[int, list[int]] = {}
    for key in columns:
        mask = info.get(f"_{key}")
        if mask is None:
            continue
        rows = excluded.get(id(mask))
        if rows is None:
            rows = excluded[id(mask)] = [] if mask.all() else np.flatnonzero(~mask).tolist()
        for i in rows:
            del infos[i][key]
    return infos


def _preset_of(env_id_or_preset: str) -> str:
    if env_id_or_preset in PRESETS:
        return env_id_or_preset
    ids = {**{env_id: preset for preset, env_id in PRESET_IDS.items()}, SEED_ALIAS_ID: "paper"}
    if env_id_or_preset in ids:
        return ids[env_id_or_preset]
    raise ValueError(
        f"unknown MetaLore environment {env_id_or_preset!r}: pass a registered id"
        f" ({', '.join(ids)}) or a preset name ({', '.join(PRESETS)})"
    )


def make_sb3_vec_env(
    env_id_or_preset: str = "MetaLore/Paper-v0",
    n_envs: int = 1,
    config: Mapping[str, Any] | None = None,
    seed: int | None = None,
    max_episode_steps: int | None = None,
    step_info: bool = True,
    render_mode: str | None = None,
) -> MetaLoreSB3VecEnv:
    """Build an SB3 ``VecEnv`` of ``n_envs`` MetaLore environments over one batched core.

    Args:
        env_id_or_preset: a registered id (``MetaLore/Paper-v0``, ...) or a preset name (``paper``, ...).
        n_envs: number of sub-envs.
        config: overrides deep-merged over the preset (as for ``gymnasium.make``).
        seed: if given, the first ``reset()`` gives sub-env i the seed ``seed + i``.
        max_episode_steps: if given, episodes are cut after that many steps (as Gymnasium's
            ``TimeLimit`` cuts a single env); the scenario's own ``episode.steps`` is unchanged.
        step_info: False for infos with only what SB3 reads (see ``MetaLoreSB3VecEnv``):
            much faster with many sub-envs.
        render_mode: ``"rgb_array"`` for frames (``get_images``, SB3's ``render()``), or None.
    """
    venv = MetaLoreVectorEnv(
        n_envs,
        _preset_of(env_id_or_preset),
        config,
        autoreset_mode=AutoresetMode.SAME_STEP,
        max_episode_steps=max_episode_steps,
        render_mode=render_mode,
    )
    vec_env = MetaLoreSB3VecEnv(venv, step_info=step_info)
    env_id = env_id_or_preset if env_id_or_preset in gym.registry else PRESET_IDS[_preset_of(env_id_or_preset)]
    spec = gym.spec(env_id)
    vec_env.single_spec = dataclasses.replace(
        spec,
        kwargs={**spec.kwargs, **({"config": config} if config is not None else {})},
        max_episode_steps=spec.max_episode_steps if max_episode_steps is None else max_episode_steps,
    )
    if seed is not None:
        vec_env.seed(seed)
    return vec_env


__all__ = ["MetaLoreSB3VecEnv", "make_sb3_vec_env"]
