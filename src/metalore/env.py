"""The MetaLore Gymnasium environment: a thin shell over the batched core (a batch of one)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from metalore.config import ConfigError, Scenario, make_scenario
from metalore.core.simulator import BatchSimulator, clip_actions
from metalore.joblog import job_log_frame
from metalore.render import RenderMixin


def action_space_for(scenario: Scenario) -> spaces.Box:
    """The action space of a scenario: ``(bw_ue_b, comp_ue_b)`` per BS, flattened."""
    low = -1.0 if scenario.config["action"]["range"] == "symmetric" else 0.0
    return spaces.Box(low=low, high=1.0, shape=(2 * scenario.num_bs,), dtype=np.float32)


# Actions of at most this many numbers take the pure-Python path of validate_action.
_SMALL_ACTION = 8
# Batches of actions of these types are checked and clipped by one compiled call.
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _clip_small(values: Any, symmetric: bool, out: np.ndarray) -> bool:
    """Clip finite ``values`` into ``out`` as ``validate_action`` does; False (``out`` untouched) if any is not finite.

    Same IEEE operations as the numpy path (max, min, then ``(v + 1) * 0.5``), so the same result.
    """
    try:
        if not all(math.isfinite(v) for v in values):
            return False
    except OverflowError:  # an int beyond float range: the numpy path reports it
        return False
    low = -1.0 if symmetric else 0.0
    for i, v in enumerate(values):
        v = low if v <= low else 1.0 if v > 1.0 else float(v)  # <=: -0.0 becomes 0.0, as in np.maximum
        out[i] = (v + 1.0) * 0.5 if symmetric else v
    return True


def validate_action(
    action: Any,
    space: spaces.Box,
    symmetric: bool,
    batch_shape: tuple[int, ...] = (),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Check an agent's action at the boundary; return it clipped and mapped to [0, 1] as float64.

    Out-of-range values are clipped (MODEL.md §5); NaN, infinities, a wrong shape or a
    non-numeric type raise ``ValueError`` naming the value and the expected form. With
    ``out`` (a float64 array of shape ``batch_shape + space.shape``) the result is written
    there, and only once the action passed every check.
    """
    expected = batch_shape + space.shape
    if out is not None and len(expected) == 1 and expected[0] <= _SMALL_ACTION:
        # The single env's path (an action of a few numbers on every step): checking and
        # clipping Python floats costs ~1 µs where the numpy calls below cost ~5 µs.
        if type(action) is np.ndarray and action.dtype.kind == "f" and action.shape == expected:
            values = action.tolist()
        elif type(action) in (list, tuple) and len(action) == expected[0]:
            values = action if all(type(v) is float or type(v) is int for v in action) else None
        else:
            values = None
        if values is not None and _clip_small(values, symmetric, out):
            return out
    elif (
        out is not None
        and type(action) is np.ndarray
        and action.dtype in _FLOAT_DTYPES
        and action.shape == expected
        and len(expected) == 2
        and out.shape == expected  # clip_actions writes without bounds checks
        and clip_actions(action, -1.0 if symmetric else 0.0, symmetric, out)
    ):
        # The vector env's path: the checks and the clipping in one compiled call (~5 numpy
        # calls otherwise). A non-finite action falls through to the path below, which names it.
        return out
    if action is None:
        raise ValueError(f"action is None: pass a float array of shape {expected} (bw_ue, comp_ue per BS)")
    if np.iscomplexobj(action):  # (numpy would drop the imaginary parts with a warning only)
        raise ValueError(
            f"action {action!r} is complex: pass a real float array of shape {expected} (bw_ue, comp_ue per BS)"
        )
    try:
        arr = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(
            f"action {action!r} is not numeric: pass a float array of shape {expected} (bw_ue, comp_ue per BS)"
        ) from exc
    if arr.shape != expected:
        if arr.shape == (*batch_shape, space.shape[0] // 2, 2):  # (M, 2) per BS is accepted too
            arr = arr.reshape(expected)
        else:
            raise ValueError(
                f"action has shape {arr.shape}, expected {expected}: (bw_ue, comp_ue) in "
                f"[{space.low.flat[0]:g}, 1] for each of the {space.shape[0] // 2} base station(s)"
            )
    # Element-wise: a sum would also be non-finite for finite values that overflow it (1e308 +
    # 1e308), which are clipped like any out-of-range value (and numpy would warn).
    finite = np.isfinite(arr)
    if not finite.all():
        if not batch_shape:
            raise ValueError(f"action {arr.tolist()} contains NaN or infinity: every entry must be a finite number")
        # A batch: name the sub-envs (not thousands of values).
        count = int(np.prod(batch_shape))
        rows = np.flatnonzero(~finite.reshape(count, -1).all(axis=1))
        first = np.unravel_index(rows[0], batch_shape)
        where = first[0] if len(first) == 1 else tuple(int(i) for i in first)
        raise ValueError(
            f"the action of sub-env {where} is {arr[first].tolist()}, with NaN or infinity"
            f" ({rows.size} of {count} sub-envs' actions are): every entry must be a finite number"
        )
    result = np.empty(expected) if out is None else out
    assert result.shape == expected, f"out has shape {result.shape}, expected {expected}"
    np.maximum(arr, -1.0 if symmetric else 0.0, out=result)
    np.minimum(result, 1.0, out=result)
    if symmetric:  # [-1, 1] onto [0, 1]
        result += 1.0
        result *= 0.5
    return result


class MetaLoreEnv(RenderMixin, gym.Env[np.ndarray, np.ndarray]):
    """AoI-aware orchestration of uplink bandwidth and MEC compute in a smart-city sub-metaverse.

    ## Description

    One or more base stations (BS), each with an edge (MEC) server, serve mobile users (UEs)
    whose requests need fresh digital-twin data, and static IoT sensors that feed the twin.
    Each step the agent splits every BS's uplink bandwidth and MEC compute between the two
    classes. A UE request is served only once the twin holds a processed update of the
    request's nearest sensor (synchronization rule), so starving sensors stalls UEs.
    Full model: ``docs/model.md`` (MODEL.md of the project).

    ## Action Space

    ``Box(0, 1, (2 * M,), float32)`` for ``M`` base stations: ``[bw_ue_0, comp_ue_0, bw_ue_1,
    ...]``. ``bw_ue_b`` is the fraction of BS b's bandwidth given to its UEs (sensors share the
    rest); ``comp_ue_b`` the fraction of its MEC compute for the UE queue. Values outside [0, 1]
    are clipped; NaN, infinities or a wrong shape raise ``ValueError``. With
    ``config={"action": {"range": "symmetric"}}`` the space is ``Box(-1, 1)``, mapped affinely
    onto [0, 1] (what Stable-Baselines3 recommends).

    ## Observation Space

    ``Box(float32)``, the concatenation of ``observation.features`` (default: the paper's
    ``queue_lengths`` only):

    | feature | size | meaning | unit | bounds |
    |---|---|---|---|---|
    | ``queue_lengths`` (default) | 2M | ``[l_b, l^_b]``: jobs in BS b's UE, sensor MEC queue | jobs | [0, capacity] |
    | ``queue_work`` | 2M | compute still to serve in those queues | units | [0, cap x max job] |
    | ``uplink_backlog`` | 2 | data waiting in UE / sensor uplink queues | Mbit | [0, total capacity] |
    | ``twin_age`` | N | age at the last step of each sensor's newest twin data (none: steps+1) | steps | [0, steps+1] |
    | ``time`` | 1 | elapsed fraction of the episode | - | [0, 1] |

    ## Rewards

    For every UE job completed in the step: ``R_sync * gamma**AoSI + c_late * 1(AoRI > D_th)``
    (defaults 10, 0.9, -1, 2), summed. AoRI = completion step - generation step; AoSI =
    |request generation step - generation step of the sensor update it was served with|.

    ## Starting State

    Empty queues and an empty twin; UEs uniformly placed with uniform random waypoints; sensors
    uniformly (by area) in an annulus around their BS, a minimum distance apart (or pinned with
    ``positions_m``). ``reset(seed=s)`` fixes positions, traffic and mobility of the episode;
    ``reset()`` without a seed uses ``episode.seed`` the first time, then a seed derived from the
    previous one. Traffic draws never depend on the actions (common random numbers).

    ## Episode End

    Never terminated; truncated after ``episode.steps`` steps (100 in the paper scenario).

    ## Arguments

    ``gymnasium.make("MetaLore/Paper-v0", config=None, render_mode=None)``

    * ``scenario``: preset name (``paper``, ``small``, ``large``, ``multicell``, ``dynamic``);
      each has a registered id.
    * ``config``: a mapping deep-merged over the preset (keys in ``docs/config.md``), e.g.
      ``{"ue": {"count": 20}, "log": {"jobs": True}}``; unknown keys and out-of-range values
      raise ``ConfigError``.
    * ``render_mode``: ``None`` (default: no rendering work at all), ``"rgb_array"`` (``render()``
      returns a 1200x600 RGB frame: map and dashboard) or ``"human"`` (a matplotlib window,
      redrawn every step; needs a display). Both need ``pip install "metalore[render]"``.

    ``info`` after each step holds ``t``, per-class ``generated_*``, ``sent_*``,
    ``completed_*``, ``dropped_*`` counts of the step, ``queue_lengths`` (M, 2), and ``aori``
    / ``aosi``, tuples of the ages (steps) of the UE jobs completed in the step (tuples because
    their length varies: Gymnasium's ``SyncVectorEnv``/``AsyncVectorEnv`` can batch them); at the
    last step also ``summary`` (``env.unwrapped.episode_summary()``). ``env.unwrapped.job_log()``
    returns the per-job lifecycle table when ``log.jobs`` is on.

    ## Vectorized use

    ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")`` returns the
    native ``MetaLoreVectorEnv`` (one batched core, no copies); sub-env i reset with seed
    ``s + i`` replays the single env reset with seed ``s + i``.

    ## Version History

    * v0: first release (MODEL.md of 2026-11).
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 4}

    def __init__(
        self,
        scenario: str | Scenario = "paper",
        config: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(scenario, Scenario):
            self.scenario = scenario.replace(config) if config else scenario
        else:
            self.scenario = make_scenario(scenario, config)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode {render_mode!r} is not supported: use one of {self.metadata['render_modes']} or None"
            )
        self.render_mode = render_mode
        self.sim = BatchSimulator(self.scenario, batch=1, parallel=False)
        self._symmetric = self.scenario.config["action"]["range"] == "symmetric"
        self.action_space: spaces.Box = action_space_for(self.scenario)
        low, high = self.sim.observation_bounds()
        self.observation_space = spaces.Box(low=low, high=high, dtype=np.float32)
        self._action_buffer = self.sim.action  # (1, M, 2): the split the next step applies
        self._flat_action = self._action_buffer.reshape(self.action_space.shape)  # a view, for validate_action
        self._steps = self.scenario.steps
        self._episode_seed: int | None = None
        self._needs_reset = True
        if render_mode is not None:
            self._init_renderer()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``seed`` fixes it entirely, ``options`` is accepted and unused."""
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63
        ):
            raise ValueError(f"seed {seed!r} is invalid: pass a non-negative integer below 2**63, or None")
        super().reset(seed=None if seed is None else int(seed))  # numpy integers too, as the vector env
        if seed is not None:
            episode_seed = int(seed)
        elif self._episode_seed is None:
            episode_seed = int(self.scenario.config["episode"]["seed"])
        else:
            episode_seed = int(self.sim.next_seeds(np.zeros(1, np.int64))[0])
        self._episode_seed = episode_seed
        self.sim.reset([0], [episode_seed])
        self._needs_reset = False
        if self.render_mode is not None:
            self._record_render(None)
        return self.sim.observe()[0], {"t": 0, "seed": episode_seed}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` for one step; see the class docstring for its form and the info keys."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step() (and again after the episode is truncated)")
        sim = self.sim
        validate_action(action, self.action_space, self._symmetric, out=self._flat_action)
        sim.step()
        truncated = int(sim.state.t[0]) >= self._steps
        info = sim.step_info(0)
        if truncated:
            info["summary"] = sim.episode_summary(0)
            self._needs_reset = True
        if self.render_mode is not None:
            self._record_render(self._action_buffer[0])
        return sim.observe()[0], float(sim.out.reward[0]), False, truncated, info

    # ----------------------------------------------------------------- copies
    def __getstate__(self) -> dict[str, Any]:
        """``pickle`` and ``copy.deepcopy`` give an independent env in the same state (see BatchSimulator)."""
        saved = self.__dict__.copy()
        del saved["_action_buffer"], saved["_flat_action"]  # views of the simulator's action buffer
        return saved

    def __setstate__(self, saved: dict[str, Any]) -> None:
        self.__dict__.update(saved)
        self._action_buffer = self.sim.action
        self._flat_action = self._action_buffer.reshape(self.action_space.shape)

    # ----------------------------------------------------------------- read-outs
    def applied_split(self) -> np.ndarray:
        """(M, 2) split ``(bw_ue, comp_ue)`` in [0, 1] per BS that the last step applied (after clipping)."""
        return self._action_buffer[0].copy()

    def episode_summary(self) -> dict[str, float]:
        """AoRI/AoSI statistics, late fraction, throughput and drops of the episode so far."""
        return self.sim.episode_summary(0)

    def job_log(self) -> Any:
        """The per-job lifecycle of this episode as a pandas DataFrame (needs ``log.jobs: true``)."""
        return job_log_frame(self.sim, 0)

    def twin_age(self) -> np.ndarray:
        """Age (steps) of the twin's data per sensor after the last step; -1 where it has none."""
        return self.sim.twin_age(0)


__all__ = ["ConfigError", "MetaLoreEnv", "action_space_for", "validate_action"]
