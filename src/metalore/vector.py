"""``MetaLoreVectorEnv``: N environments stepped by one call into the batched core.

No copies of single environments and no second implementation of the dynamics: the batch
axis of ``core.BatchSimulator`` *is* the vector axis. Sub-env ``i`` reset with seed ``s + i``
replays exactly the single ``MetaLoreEnv`` reset with seed ``s + i``.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec
from gymnasium.error import ClosedEnvironmentError
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from metalore.config import Scenario, make_scenario
from metalore.core.simulator import INT_SUMMARY_KEYS, STEP_COUNT_NAMES, BatchSimulator, StepReadout
from metalore.core.state import CLASS_NAMES
from metalore.env import action_space_for, validate_action
from metalore.render import Renderer

# The info keys of StepReadout.counts, row by row.
_COUNT_KEYS = tuple(f"{name}_{cls}" for cls in CLASS_NAMES for name in STEP_COUNT_NAMES)
# The core keeps seeds as int64: a larger one would wrap round to a negative seed.
_MAX_SEED = 2**63 - 1
# Read-outs of one sub-env (methods taking its index): call(name) runs them for every sub-env.
PER_SUB_ENV_METHODS = ("episode_summary", "job_log")
# What every sub-env shares: the single env's attribute name -> this vector env's attribute.
SHARED_ATTRS = {
    "scenario": "scenario",
    "observation_space": "single_observation_space",
    "action_space": "single_action_space",
    "render_mode": "render_mode",
    "spec": "single_spec",
}
# make_vec's kwargs that are the vector env's own (max_episode_steps is the spec's field for a single env).
_VECTOR_ONLY_KWARGS = ("num_envs", "vectorization_mode", "autoreset_mode", "parallel", "max_episode_steps")


class _ClosedSimulator:
    """Stands in for the simulator of a closed vector env: any use says the env is closed."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle probe for optional special methods
            raise AttributeError(name)
        raise ClosedEnvironmentError(
            "this MetaLoreVectorEnv is closed (close() released its simulator's memory): create a new one"
        )


def _is_seed(value: Any) -> bool:
    """Whether ``value`` is a seed the single env accepts too: an integer (not a bool) in [0, 2**63)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and bool(0 <= value <= _MAX_SEED)


class MetaLoreVectorEnv(gym.vector.VectorEnv):
    """A native batch of ``num_envs`` MetaLore environments with one shared scenario.

    Autoreset follows Gymnasium's ``NEXT_STEP`` mode by default: the step after an episode
    ends resets that sub-env (its observation is the reset observation, reward 0, both flags
    false) and ignores its action; its info is its reset info (``seed`` of the new episode,
    ``t`` = 0), exactly what Gymnasium's ``SyncVectorEnv`` of single envs reports, and a test
    steps the two side by side. ``autoreset_mode=AutoresetMode.SAME_STEP`` resets in the
    ending step instead, again as Gymnasium's ``SyncVectorEnv`` in that mode: the returned
    observation is the reset one, the last observation is in ``info["final_obs"]`` and the
    ending step's info (with the episode ``summary``) in ``info["final_info"]`` (both masked by
    the ended sub-envs), and the top level holds the reset info of the ended sub-envs.
    ``final_obs`` is one float32 array (zero rows for the other sub-envs), not Gymnasium's
    object array. ``autoreset_mode=AutoresetMode.DISABLED`` never resets on its own: the caller
    resets the ended sub-envs with ``reset(options={"reset_mask": ended})``, and stepping a
    sub-env whose episode ended without that is an error naming it (Gymnasium's
    ``SyncVectorEnv`` fails an assertion there).

    ``max_episode_steps`` (``make_vec`` passes it on, where ``gymnasium.make`` would add a
    ``TimeLimit``) truncates episodes after that many steps, as ``TimeLimit`` truncates single
    envs: the scenario is unchanged, and the episode ``summary`` comes only at its own end
    (``episode.steps``), as in the single env's info.

    ``info`` is a dict of arrays, each with a boolean mask ``info["_key"]`` marking the
    sub-envs it is valid for: per-step counts (``generated_ue``, ``sent_sensor``, ...),
    ``t``, ``queue_lengths`` (num_envs, M, 2), ``aori_mean``/``aosi_mean`` of the UE jobs
    completed in the step (the single env reports the ages themselves, ``aori``/``aosi``), and
    at episode end ``summary`` (see ``MetaLoreEnv.episode_summary``: int64 counts, float64
    rest, zero outside its nested masks ``summary["_key"]``, as Gymnasium batches a dict). As
    in Gymnasium's batched infos, a key is present only if its mask has a true entry. Treat
    the arrays as read-only: keys valid for the same sub-envs may share one mask array.

    ``call``/``get_attr`` answer per sub-env as ``SyncVectorEnv``'s do for the single env's
    read-outs (``episode_summary``, ``job_log``) and shared attributes (``scenario``, the
    single-env spaces, ``render_mode``, ``spec``); ``set_attr`` is refused (one shared scenario).
    ``render_mode="rgb_array"`` makes ``render()`` return one frame per sub-env (see there).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | Scenario = "paper",
        config: Mapping[str, Any] | None = None,
        *,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        parallel: bool | None = None,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs = {num_envs!r} is invalid: pass an integer >= 1")
        limit = max_episode_steps
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1):
            raise ValueError(f"max_episode_steps = {limit!r} is invalid: pass an integer >= 1, or None")
        self.max_episode_steps = None if limit is None else int(limit)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"render_mode {render_mode!r} is not supported by the vector env: use 'rgb_array' or None"
                " (for a window, wrap it in gymnasium.wrappers.vector.HumanRendering, or use a single env)"
            )
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            modes = ", ".join(repr(m.value) for m in AutoresetMode)
            raise ValueError(
                f"autoreset_mode {autoreset_mode!r} is unknown: use an AutoresetMode or one of {modes}"
            ) from None
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        if isinstance(scenario, Scenario):
            self.scenario = scenario.replace(config) if config else scenario
        else:
            self.scenario = make_scenario(scenario, config)
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.sim = BatchSimulator(self.scenario, batch=self.num_envs, parallel=parallel)
        # One renderer per sub-env (cheap until the first frame: the figure is built then).
        self._renderers: list[Renderer] = []
        if render_mode is not None:
            fps = int(self.metadata["render_fps"])
            self._renderers = [Renderer(self.sim, render_mode, env_index=i, fps=fps) for i in range(self.num_envs)]
        self._symmetric = self.scenario.config["action"]["range"] == "symmetric"
        self.single_action_space: spaces.Box = action_space_for(self.scenario)
        low, high = self.sim.observation_bounds()
        self.single_observation_space = spaces.Box(low=low, high=high, dtype=np.float32)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        # Sub-envs whose episode ended in the last step, and whether there are any (NEXT_STEP,
        # DISABLED); the array is replaced, never changed, once an info mask shares it.
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)
        self._pending = False
        self._started = False
        self._all = np.arange(self.num_envs, dtype=np.int64)
        self._flat_actions = self.sim.action.reshape(self.action_space.shape)  # a view, for validate_action

    # ----------------------------------------------------------------- copies
    def __getstate__(self) -> dict[str, Any]:
        """``pickle`` and ``copy.deepcopy`` give an independent vector env in the same state."""
        saved = self.__dict__.copy()
        del saved["_flat_actions"]  # a view of the simulator's action buffer
        return saved

    def __setstate__(self, saved: dict[str, Any]) -> None:
        self.__dict__.update(saved)
        if self.closed:
            self.close_extras()  # the same closed state: a stand-in simulator that raises on use
        else:
            self._flat_actions = self.sim.action.reshape(self.action_space.shape)

    def close_extras(self, **kwargs: Any) -> None:
        """Release the simulator's memory (at 1,024 envs, hundreds of MiB once stepped).

        Gymnasium's ``close()`` calls this once; afterwards every step, reset or read-out raises
        ``gymnasium.error.ClosedEnvironmentError``, also where a wrapper or an SB3 model still
        holds the env.
        """
        self.sim = _ClosedSimulator()  # type: ignore[assignment]
        for renderer in self._renderers:
            renderer.close()
        self._renderers = []  # they hold the simulator
        self._flat_actions = np.zeros((self.num_envs, *self.single_action_space.shape))

    # ----------------------------------------------------------------- sub-env attributes
    @property
    def single_spec(self) -> EnvSpec | None:
        """The spec of one sub-env, as ``gymnasium.make`` of this env's id gives it (None without an id).

        ``gymnasium.make_vec`` gives the vector env its id's spec with the vector's own kwargs
        (``num_envs``, ``autoreset_mode``, ...) added; here they are taken out again, and
        ``max_episode_steps`` becomes the spec's field, as ``gymnasium.make(id, max_episode_steps=n)``
        records it.
        """
        spec = self.spec
        if spec is None:
            return None
        kwargs = {k: v for k, v in spec.kwargs.items() if k not in _VECTOR_ONLY_KWARGS}
        limit = spec.kwargs.get("max_episode_steps", spec.max_episode_steps)
        return dataclasses.replace(spec, kwargs=kwargs, max_episode_steps=limit)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """One result per sub-env, as Gymnasium's ``SyncVectorEnv.call`` of single envs returns them.

        The sub-envs are rows of one batched core, not ``MetaLoreEnv`` objects, so ``name`` is one
        of the single env's read-outs ``episode_summary`` and ``job_log`` (run for each sub-env
        with ``args`` and ``kwargs``) or an attribute all sub-envs share: ``scenario``,
        ``observation_space``, ``action_space`` (the single-env spaces), ``render_mode`` and
        ``spec`` (see ``single_spec``). Anything else raises ``AttributeError`` naming these.
        """
        if name in PER_SUB_ENV_METHODS:
            method = getattr(self, name)
            return tuple(method(i, *args, **kwargs) for i in range(self.num_envs))
        if name not in SHARED_ATTRS:
            available = ", ".join((*PER_SUB_ENV_METHODS, *SHARED_ATTRS))
            raise AttributeError(
                f"{name!r} is not available per sub-env: the sub-envs of a MetaLoreVectorEnv are rows of one"
                f" batched core, not MetaLoreEnv objects; use one of {available}, or the vector env's own attributes"
            )
        if args or kwargs:
            raise TypeError(f"{name!r} is an attribute, not a method: call it without arguments")
        return (getattr(self, SHARED_ATTRS[name]),) * self.num_envs

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """``call(name)``, as in Gymnasium's ``SyncVectorEnv`` (a read-out's name gives its results)."""
        return self.call(name)

    def set_attr(self, name: str, values: Any) -> None:
        """Refused: the sub-envs share one scenario and one core, so nothing can be set per sub-env."""
        raise AttributeError(
            f"cannot set {name!r} on the sub-envs: they are rows of one batched core with one shared scenario;"
            " to change the scenario, create a new vector env with config=... (the same for every sub-env)"
        )

    # ----------------------------------------------------------------- reset
    def _seeds_for(self, seed: int | Sequence[int | None] | None, ids: np.ndarray) -> np.ndarray:
        if seed is None:
            if not self._started:
                return int(self.scenario.config["episode"]["seed"]) + ids
            return self.sim.next_seeds(ids)
        if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            if not (_is_seed(seed) and seed <= _MAX_SEED - (self.num_envs - 1)):
                raise ValueError(
                    f"seed {seed!r} is invalid: pass a non-negative integer (sub-env i takes seed + i, at most"
                    " 2**63 - 1), a list of them, or None"
                )
            return int(seed) + ids
        if isinstance(seed, bool) or not isinstance(seed, Sequence | np.ndarray):
            raise ValueError(f"seed {seed!r} is invalid: pass a non-negative integer, a list of them, or None")
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} sub-envs: pass one per sub-env")
        invalid = [(i, s) for i, s in enumerate(seeds) if s is not None and not _is_seed(s)]
        if invalid:
            i, s = invalid[0]
            raise ValueError(f"seed {s!r} of sub-env {i} is invalid: pass non-negative integers below 2**63, or None")
        fallback = self._seeds_for(None, self._all)
        return np.array([fallback[i] if seeds[i] is None else int(seeds[i]) for i in ids], dtype=np.int64)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all sub-envs (or those in ``options["reset_mask"]``); seed ``s`` gives sub-env i ``s + i``.

        A list gives one seed per sub-env. ``None`` (the whole argument or a list entry) is not
        random, unlike Gymnasium's convention: before the first reset sub-env i takes the
        scenario's ``episode.seed`` + i, afterwards the seed its next episode would get on an
        autoreset, so unseeded runs are reproducible too.
        """
        ids = self._all
        if options and "reset_mask" in options:
            mask = self._reset_mask(options["reset_mask"])
            ids = self._all[mask]
            if not self._started and ids.size < self.num_envs:
                unset = np.flatnonzero(~mask).tolist()
                shown = ", ".join(map(str, unset[:8])) + (f", ... ({len(unset)} in all)" if len(unset) > 8 else "")
                raise ValueError(
                    f"the first reset must start every sub-env, but reset_mask leaves out sub-envs [{shown}]:"
                    " call reset() without reset_mask first (to seed only some sub-envs, pass a seed list with None"
                    " for the others)"
                )
        if isinstance(seed, np.ndarray) and seed.ndim == 0:  # np.array(5): one seed, like 5
            seed = seed.item()
        if seed is not None and not (isinstance(seed, int | np.integer) and not isinstance(seed, bool)):
            seeds = self._seeds_for(seed, self._all)[ids]
        else:
            seeds = self._seeds_for(seed, ids)
        self._reset_sub_envs(ids, seeds)
        self._started = True
        self._autoreset[ids] = False
        self._pending = bool(self._autoreset.any())
        reset = np.zeros(self.num_envs, dtype=np.bool_)
        reset[ids] = True
        # The single env's reset info, {"t": 0, "seed": s}, batched as Gymnasium batches it.
        info = {"t": np.zeros(self.num_envs, dtype=np.int64), "_t": reset}
        info["seed"], info["_seed"] = np.where(reset, self.sim.state.seed, 0), reset.copy()
        return self.sim.observe(), info

    def _reset_sub_envs(self, ids: np.ndarray, seeds: np.ndarray) -> None:
        """Start new episodes of the sub-envs ``ids`` (and of their dashboards' histories, if rendering)."""
        self.sim.reset(ids, seeds)
        for i in ids if self._renderers else ():
            self._renderers[i].record(None)

    def _reset_mask(self, value: Any) -> np.ndarray:
        """``options["reset_mask"]`` checked as Gymnasium checks it: (num_envs,) booleans, at least one true."""
        mask = np.asarray(value)
        if mask.dtype != np.bool_:
            raise ValueError(
                f"reset_mask has dtype {mask.dtype}: pass booleans, one per sub-env (e.g. the ended flags)"
            )
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask has shape {mask.shape}, expected ({self.num_envs},): one boolean per sub-env")
        if not mask.any():
            raise ValueError("reset_mask selects no sub-env: mark at least one True, or skip the reset")
        return mask

    # ----------------------------------------------------------------- step
    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env; see the class docstring for autoreset and the info layout."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        sim = self.sim
        validate_action(actions, self.single_action_space, self._symmetric, (self.num_envs,), out=self._flat_actions)
        mode = self.metadata["autoreset_mode"]
        if self._pending:  # some sub-envs ended in the last step (NEXT_STEP or DISABLED mode)
            resetting = self._autoreset
            if mode == AutoresetMode.DISABLED:
                ended = np.flatnonzero(resetting).tolist()
                raise RuntimeError(
                    f"sub-envs {ended} ended their episodes and autoreset_mode is DISABLED:"
                    ' reset them first with reset(options={"reset_mask": mask})'
                )
            stepping = ~resetting
            ids = np.flatnonzero(resetting)
            self._reset_sub_envs(ids, sim.next_seeds(ids))
            np.copyto(sim.active, stepping)
            sim.step(active=sim.active)
        else:  # the common step: all sub-envs step, no mask to build or copy
            resetting = None
            stepping = np.ones(self.num_envs, dtype=np.bool_)
            sim.step()
        for i in np.flatnonzero(stepping) if self._renderers else ():
            self._renderers[i].record(sim.action[i])  # the split applied, as the single env records it
        step = sim.read_step(stepping)
        truncated, reward = step.truncated, step.reward
        if self.max_episode_steps is not None:  # TimeLimit's cut; the episode summary stays at the scenario's end
            truncated = truncated | (stepping & (sim.state.t >= self.max_episode_steps))
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        info = self._step_info(stepping, step, resetting)
        any_ended = bool(truncated.any())
        if mode == AutoresetMode.SAME_STEP:
            if any_ended:
                info = self._same_step_autoreset(truncated.copy(), info)
        elif any_ended:  # NEXT_STEP resets them in the next step; DISABLED refuses to step them until reset
            self._autoreset = truncated.copy()  # the caller owns the returned array
            self._pending = True
        elif self._pending:  # the array went out in this step's info masks: start a new one
            self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)
            self._pending = False
        obs = self.sim.observe()
        return obs, reward, terminated, truncated, info

    def _same_step_autoreset(self, ended: np.ndarray, step_info: dict[str, Any]) -> dict[str, Any]:
        """Reset the ``ended`` sub-envs now; return the info Gymnasium's ``SAME_STEP`` vector envs report.

        As in Gymnasium's ``SyncVectorEnv``: the ending step's info moves to ``final_info`` (its
        masks restricted to the ended sub-envs; the episode ``summary`` is only there), the last
        observation to ``final_obs``, and the top level holds each ended sub-env's reset info
        (``seed`` of the new episode, ``t`` = 0, masked in) while the step's other keys are
        masked out there (counts zero, age means NaN). ``final_obs`` is one float32 array (zero
        rows for the others) rather than Gymnasium's object array: indexing it by sub-env works
        alike, and SB3's adapter stacks it without a copy per sub-env.
        """
        final_obs = np.where(ended[:, None], self.sim.observe(), np.float32(0.0))
        info: dict[str, Any] = {}
        final_info: dict[str, Any] = {}
        for key, value in step_info.items():  # (a key only where some sub-env has it, as in Gymnasium)
            if key.startswith("_"):
                continue
            final_mask = step_info[f"_{key}"] & ended
            if final_mask.any():
                final_info[key], final_info[f"_{key}"] = value, final_mask
            if key == "summary":
                continue
            if key == "t":
                info["t"], info["_t"] = np.where(ended, 0, value), step_info["_t"] | ended
                continue
            mask = step_info[f"_{key}"] & ~ended
            if mask.any():
                masked_out = np.nan if value.dtype.kind == "f" else 0
                rows = ended.reshape(-1, *[1] * (value.ndim - 1))  # queue_lengths is (N, M, 2)
                info[key], info[f"_{key}"] = np.where(rows, masked_out, value), mask
        ids = self._all[ended]
        self._reset_sub_envs(ids, self.sim.next_seeds(ids))
        info["seed"], info["_seed"] = np.where(ended, self.sim.state.seed, 0), ended
        info["final_obs"], info["_final_obs"] = final_obs, ended
        info["final_info"], info["_final_info"] = final_info, ended
        return info

    def _step_info(self, stepped: np.ndarray, step: StepReadout, reset: np.ndarray | None) -> dict[str, Any]:
        """The step's info; ``reset`` (B,) bool marks the sub-envs autoreset in this step (or None).

        An autoreset sub-env reports its reset info, as under Gymnasium's own vector envs (which
        merge the info of ``env.reset()`` into the step's): ``seed`` of the new episode and
        ``t`` = 0, both masked in; the step's counts are masked out (and zero), its age means
        masked out (NaN).
        """
        if reset is None:
            info: dict[str, Any] = {"t": step.t, "_t": stepped}
        else:
            info = {"t": np.where(reset, 0, step.t), "_t": stepped | reset}
        # As in Gymnasium's batched infos, a key is there only if some sub-env has it: not the
        # step's keys when every sub-env was autoreset, not the age means when no UE job completed.
        if reset is None or stepped.any():
            for key, row in zip(_COUNT_KEYS, step.counts, strict=True):
                info[key] = row
                info[f"_{key}"] = stepped
            # (M, 2) per sub-env, as the single env's info; an autoreset sub-env's queues are empty (0).
            info["queue_lengths"], info["_queue_lengths"] = step.queue_lengths, stepped
        if step.ue_done.any():
            info["aori_mean"], info["aosi_mean"] = step.aori_mean, step.aosi_mean
            info["_aori_mean"] = info["_aosi_mean"] = step.ue_done
        if reset is not None:
            info["seed"] = np.where(reset, self.sim.state.seed, 0)
            info["_seed"] = reset
        ended = step.truncated
        if ended.any():
            info["summary"] = self._summaries(np.flatnonzero(ended))
            info["_summary"] = ended.copy()
        return info

    def _summaries(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Episode summaries of the sub-envs ``ids`` as Gymnasium batches the single envs' summaries.

        One (num_envs,) array per key, int64 for the counts (ints in the single env's summary)
        and float64 for the rest, zero for the other sub-envs, each with its own mask
        ``summary["_key"]`` (nested dicts get nested masks in Gymnasium's batched infos).
        """
        summaries: dict[str, np.ndarray] = {}
        for key, values in self.sim.episode_summaries(ids).items():
            column = np.zeros(self.num_envs, dtype=np.int64 if key in INT_SUMMARY_KEYS else np.float64)
            column[ids] = values
            mask = np.zeros(self.num_envs, dtype=np.bool_)
            mask[ids] = True
            summaries[key], summaries[f"_{key}"] = column, mask
        return summaries

    # ----------------------------------------------------------------- rendering
    def render(self) -> tuple[np.ndarray, ...] | None:
        """One frame per sub-env (``render_mode="rgb_array"``), as Gymnasium's ``SyncVectorEnv`` of single envs.

        Each frame is what the single env with the same episode draws (``MetaLoreEnv.render``):
        the map and the dashboard of that sub-env, pixel for pixel. Drawing takes tens of
        milliseconds per frame with matplotlib, so keep ``num_envs`` small when rendering; the
        per-step cost of ``rgb_array`` mode without ``render()`` calls is recording the
        dashboard's history. Without a render mode it warns and returns None, as Gymnasium's
        own vector envs do.
        """
        if self.closed:
            raise ClosedEnvironmentError("this MetaLoreVectorEnv is closed: create a new one to render")
        if self.render_mode is None:
            gym.logger.warn(
                "render() was called on a MetaLoreVectorEnv without a render mode: create it with"
                ' render_mode="rgb_array" (e.g. gymnasium.make_vec(id, num_envs, render_mode="rgb_array"))'
            )
            return None
        return tuple(renderer.frame() for renderer in self._renderers)

    # ----------------------------------------------------------------- read-outs
    def episode_summary(self, index: int) -> dict[str, float]:
        """Episode statistics of sub-env ``index`` so far (negative indices count from the end)."""
        return self.sim.episode_summary(self.sub_env_index(index))

    def job_log(self, index: int) -> Any:
        """Job log of sub-env ``index`` (needs ``log.jobs: true``)."""
        from metalore.joblog import job_log_frame

        return job_log_frame(self.sim, self.sub_env_index(index))

    def sub_env_index(self, index: int) -> int:
        """``index`` as a sub-env number in ``[0, num_envs)``, as a list of envs would index it.

        The compiled read-outs index rows without bounds checks: an index past the end read
        another sub-env's row, or memory that is no sub-env's, before this check.
        """
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"sub-env index {index!r} is not an integer: pass 0 to {self.num_envs - 1}") from None
        if not -self.num_envs <= i < self.num_envs:
            raise IndexError(
                f"sub-env index {i} is out of range: there are {self.num_envs} sub-envs"
                f" (0 to {self.num_envs - 1}, or negative from the end)"
            )
        return i % self.num_envs
