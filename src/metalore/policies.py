"""Baseline policies: observation in, per-BS bandwidth/compute split out.

A :class:`Policy` is built for one scenario (from an env, a vector env or a
:class:`~metalore.config.Scenario`) and maps an observation to the split
``[bw_ue_0, comp_ue_0, bw_ue_1, ...]`` in ``[0, 1]^(2M)`` for ``M`` base stations
(MODEL.md §5). It reads the state only through the observation, whose layout it derives
from ``observation.features``; scenario *constants* (capacities, mean job sizes) are
configuration and may be used. A batch of observations ``(..., obs_size)`` gives a batch
of splits ``(..., 2M)``, so the same policy drives a vector env.

Policies are chosen by a spec string (:func:`make_policy`):

======================================  ====================================================
spec                                    rule
======================================  ====================================================
``random``                              uniform split, from the policy's own seeded generator
``static:BW,COMP``                      ``(BW, COMP)`` at every BS, every step
``queue_proportional[:floor=F,bw=B]``   compute in proportion to the MEC queue lengths
``twin_first[:min_ue=F,bw=B]``          enough compute to drain the sensor queue, rest to UEs
======================================  ====================================================

New policies (a brute-force oracle, trained agents) join with :func:`register_policy`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from metalore.config import Scenario
from metalore.core.simulator import observation_layout

__all__ = [
    "POLICIES",
    "Policy",
    "PolicyEntry",
    "PolicyError",
    "QueueProportionalPolicy",
    "RandomPolicy",
    "StaticPolicy",
    "TwinFirstPolicy",
    "make_policy",
    "observation_layout",
    "register_policy",
    "scenario_of",
    "valid_policy_forms",
]


class PolicyError(ValueError):
    """A policy spec is malformed, or a policy cannot work with the scenario's observation."""


def scenario_of(env: Any) -> Scenario:
    """The :class:`Scenario` behind a MetaLore env, a wrapped env, a vector env or a scenario."""
    if isinstance(env, Scenario):
        return env
    for candidate in (env, getattr(env, "unwrapped", None)):
        scenario = getattr(candidate, "scenario", None)
        if isinstance(scenario, Scenario):
            return scenario
    raise TypeError(f"expected a MetaLore env or Scenario to build a policy for, got {type(env).__name__}")


class Policy(ABC):
    """Maps an observation to the split ``[bw_ue_0, comp_ue_0, ...]`` in ``[0, 1]^(2M)``.

    Args:
        env: the MetaLore env (possibly wrapped), vector env or scenario the policy acts in.
        seed: seed of the policy's own randomness (ignored by deterministic policies).

    Subclasses implement :meth:`_split`; :meth:`reset` is called at the start of each episode.
    """

    spec: str = ""  # the canonical spec string, set by each subclass (e.g. "static:0.5,0.6")

    def __init__(self, env: Any, seed: int | None = None) -> None:
        self.scenario = scenario_of(env)
        self.num_bs = self.scenario.num_bs
        self.layout = observation_layout(self.scenario)
        self.observation_size = max((s.stop for s in self.layout.values()), default=0)

    def reset(self, seed: int | None = None) -> None:  # noqa: B027 - deterministic policies keep no state
        """Start an episode; ``seed`` (if given) re-seeds the policy's own randomness."""

    def act(self, observation: Any) -> np.ndarray:
        """Return the split (float64, shape ``(..., 2M)``, values in [0, 1]) for ``observation``."""
        obs = np.asarray(observation, dtype=np.float64)
        if obs.ndim == 0 or obs.shape[-1] != self.observation_size:
            raise ValueError(
                f"observation has shape {obs.shape}, expected (..., {self.observation_size}) for features "
                f"{list(self.layout)} of this scenario"
            )
        split = self._split(obs)
        assert split.shape == (*obs.shape[:-1], self.num_bs, 2), split.shape
        return np.clip(split, 0.0, 1.0).reshape(*obs.shape[:-1], 2 * self.num_bs)

    __call__ = act

    def env_action(self, observation: Any) -> np.ndarray:
        """The split mapped into the env's action space (``Box(-1, 1)`` when ``action.range`` is symmetric)."""
        split = self.act(observation)
        return 2.0 * split - 1.0 if self.scenario.config["action"]["range"] == "symmetric" else split

    @abstractmethod
    def _split(self, obs: np.ndarray) -> np.ndarray:
        """Return ``(..., M, 2)`` pairs ``(bw_ue_b, comp_ue_b)`` for observations ``(..., obs_size)``."""

    # ----------------------------------------------------------------- helpers
    def _require_feature(self, *names: str) -> str:
        """Return the first of ``names`` the observation contains; raise naming the fix if none is."""
        for name in names:
            if name in self.layout:
                return name
        wanted = " or ".join(repr(n) for n in names)
        raise PolicyError(
            f"policy {self.spec!r} needs the observation feature {wanted}, but observation.features is "
            f"{list(self.layout)}: add it, e.g. --set 'observation.features=[{names[0]}]'"
        )

    def _per_bs(self, obs: np.ndarray, feature: str) -> np.ndarray:
        """A per-BS class pair feature (``queue_lengths``, ``queue_work``) as ``(..., M, 2)``: [UE, sensor]."""
        return obs[..., self.layout[feature]].reshape(*obs.shape[:-1], self.num_bs, 2)

    def _pairs(self, obs: np.ndarray, bw_ue: float | np.ndarray, comp_ue: float | np.ndarray) -> np.ndarray:
        shape = (*obs.shape[:-1], self.num_bs)
        return np.stack([np.broadcast_to(bw_ue, shape), np.broadcast_to(comp_ue, shape)], axis=-1).astype(np.float64)


class RandomPolicy(Policy):
    """Uniform split in ``[0, 1]^(2M)`` from the policy's own :class:`numpy.random.Generator`.

    ``reset(seed)`` re-seeds it, so an episode run with the same env and policy seed repeats.
    """

    spec = "random"

    def __init__(self, env: Any, seed: int | None = None) -> None:
        super().__init__(env, seed)
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the generator when ``seed`` is given."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def _split(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.random((*obs.shape[:-1], self.num_bs, 2))


class StaticPolicy(Policy):
    """The same ``(bw_ue, comp_ue)`` at every BS and every step (the paper's static baselines)."""

    def __init__(self, env: Any, bw_ue: float, comp_ue: float, seed: int | None = None) -> None:
        super().__init__(env, seed)
        for name, value in (("bw_ue", bw_ue), ("comp_ue", comp_ue)):
            if not 0.0 <= value <= 1.0:
                raise PolicyError(f"static policy {name} = {value!r} is invalid: expected a number in [0, 1]")
        self.bw_ue, self.comp_ue = float(bw_ue), float(comp_ue)
        self.spec = f"static:{self.bw_ue:g},{self.comp_ue:g}"

    def _split(self, obs: np.ndarray) -> np.ndarray:
        return self._pairs(obs, self.bw_ue, self.comp_ue)


class QueueProportionalPolicy(Policy):
    """Compute follows the backlog: each BS's MEC compute is split in proportion to its queue lengths.

    ``comp_ue_b = floor + (1 - 2 floor) * l_b / (l_b + l^_b)`` (0.5 when both queues are empty),
    so each class always keeps at least ``floor`` of the compute and neither is starved.
    Bandwidth is fixed at ``bw`` (default 0.5): the observed queues are the MEC queues, which
    say nothing about which class is waiting for the uplink.

    Needs the ``queue_lengths`` observation feature.
    """

    def __init__(self, env: Any, floor: float = 0.1, bw: float = 0.5, seed: int | None = None) -> None:
        self.spec = f"queue_proportional:floor={floor:g},bw={bw:g}"
        super().__init__(env, seed)
        if not 0.0 <= floor <= 0.5:
            raise PolicyError(f"queue_proportional floor = {floor!r} is invalid: expected a number in [0, 0.5]")
        if not 0.0 <= bw <= 1.0:
            raise PolicyError(f"queue_proportional bw = {bw!r} is invalid: expected a number in [0, 1]")
        self.floor, self.bw = float(floor), float(bw)
        self._require_feature("queue_lengths")

    def _split(self, obs: np.ndarray) -> np.ndarray:
        lengths = self._per_bs(obs, "queue_lengths")
        total = lengths.sum(axis=-1)
        ue_share = np.divide(lengths[..., 0], total, out=np.full(total.shape, 0.5), where=total > 0)
        return self._pairs(obs, self.bw, self.floor + (1.0 - 2.0 * self.floor) * ue_share)


class TwinFirstPolicy(Policy):
    """Keep the digital twin fresh first: sensors get the compute to drain their MEC queue, UEs the rest.

    Per BS, the sensor work ``W_b`` waiting at the MEC is read from the ``queue_work`` feature
    when observed, else estimated as ``l^_b * E[sensor job]`` with ``E[max(Poisson(λ), 1)] =
    λ + e^-λ`` for ``λ = sensor.compute_units_mean``. Then
    ``comp_ue_b = max(min_ue, 1 - W_b / C)`` with ``C`` the compute served per step
    (``bs.compute_units_per_s * episode.step_duration_s``): UEs keep at least ``min_ue``
    (default 0.1) so they are never starved outright. Sensor jobs that arrive during the step
    are not yet visible, so the rule lags the sensor load by one step. Bandwidth is fixed at
    ``bw`` (default 0.5).

    Needs the ``queue_work`` or the ``queue_lengths`` observation feature.
    """

    def __init__(self, env: Any, min_ue: float = 0.1, bw: float = 0.5, seed: int | None = None) -> None:
        self.spec = f"twin_first:min_ue={min_ue:g},bw={bw:g}"
        super().__init__(env, seed)
        for name, value in (("min_ue", min_ue), ("bw", bw)):
            if not 0.0 <= value <= 1.0:
                raise PolicyError(f"twin_first {name} = {value!r} is invalid: expected a number in [0, 1]")
        self.min_ue, self.bw = float(min_ue), float(bw)
        self.feature = self._require_feature("queue_work", "queue_lengths")
        cfg = self.scenario.config
        self.capacity_units = cfg["bs"]["compute_units_per_s"] * cfg["episode"]["step_duration_s"]
        lam = cfg["sensor"]["compute_units_mean"]
        self.sensor_job_units = lam + math.exp(-lam)

    def _split(self, obs: np.ndarray) -> np.ndarray:
        sensor = self._per_bs(obs, self.feature)[..., 1]
        work = sensor if self.feature == "queue_work" else sensor * self.sensor_job_units
        comp_ue = np.maximum(self.min_ue, 1.0 - np.minimum(work / self.capacity_units, 1.0))
        return self._pairs(obs, self.bw, comp_ue)


# --------------------------------------------------------------------------- registry and specs
PolicyFactory = Callable[[str, str, Any, int | None], Policy]  # (spec, args after ':', env, seed) -> Policy


@dataclass(frozen=True)
class PolicyEntry:
    """How to build a policy from the arguments of its spec, and how the spec is written."""

    build: PolicyFactory
    usage: str  # the spec's form, e.g. "static:BW,COMP"
    summary: str  # one line for help texts


POLICIES: dict[str, PolicyEntry] = {}


def register_policy(name: str, build: PolicyFactory, usage: str, summary: str) -> None:
    """Make ``name[:ARGS]`` a valid spec for :func:`make_policy` (``build`` parses ARGS and raises PolicyError)."""
    if name in POLICIES:
        raise ValueError(f"policy {name!r} is already registered")
    POLICIES[name] = PolicyEntry(build, usage, summary)


def valid_policy_forms() -> str:
    """The accepted spec forms, for error and help messages."""
    return ", ".join(entry.usage for entry in POLICIES.values())


def _spec_error(spec: str, reason: str) -> PolicyError:
    return PolicyError(f"policy spec {spec!r} is invalid: {reason}. Valid forms: {valid_policy_forms()}")


def _number(spec: str, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _spec_error(spec, f"{name} = {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise _spec_error(spec, f"{name} = {text.strip()!r} must be a finite number")
    return value


def _keywords(spec: str, args: str, allowed: Mapping[str, float]) -> dict[str, float]:
    """Parse ``key=value,key=value`` arguments, all optional, against ``allowed`` (name -> default)."""
    values = dict(allowed)
    for item in filter(None, (part.strip() for part in args.split(","))):
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or key not in allowed:
            raise _spec_error(spec, f"{item!r} is not one of {', '.join(f'{k}=NUMBER' for k in allowed)}")
        values[key] = _number(spec, key, text)
    return values


def _in_range(spec: str, name: str, value: float, lo: float, hi: float) -> float:
    if not lo <= value <= hi:
        raise _spec_error(spec, f"{name} = {value:g} is out of range: values must be in [{lo:g}, {hi:g}]")
    return value


def _build_random(spec: str, args: str, env: Any, seed: int | None) -> Policy:
    if args:
        raise _spec_error(spec, "'random' takes no arguments")
    return RandomPolicy(env, seed)


def _build_static(spec: str, args: str, env: Any, seed: int | None) -> Policy:
    parts = args.split(",") if args else []
    if len(parts) != 2:
        raise _spec_error(spec, "static needs exactly two values BW,COMP, e.g. static:0.5,0.6")
    bw, comp = (_in_range(spec, n, _number(spec, n, t), 0.0, 1.0) for n, t in zip(("BW", "COMP"), parts, strict=True))
    return StaticPolicy(env, bw, comp, seed)


def _build_queue_proportional(spec: str, args: str, env: Any, seed: int | None) -> Policy:
    kw = _keywords(spec, args, {"floor": 0.1, "bw": 0.5})
    return QueueProportionalPolicy(
        env, _in_range(spec, "floor", kw["floor"], 0.0, 0.5), _in_range(spec, "bw", kw["bw"], 0.0, 1.0), seed
    )


def _build_twin_first(spec: str, args: str, env: Any, seed: int | None) -> Policy:
    kw = _keywords(spec, args, {"min_ue": 0.1, "bw": 0.5})
    return TwinFirstPolicy(
        env, _in_range(spec, "min_ue", kw["min_ue"], 0.0, 1.0), _in_range(spec, "bw", kw["bw"], 0.0, 1.0), seed
    )


register_policy("random", _build_random, "random", "uniform random split (seeded)")
register_policy("static", _build_static, "static:BW,COMP (each in [0,1])", "the same split at every BS and step")
register_policy(
    "queue_proportional",
    _build_queue_proportional,
    "queue_proportional[:floor=F,bw=B]",
    "compute split in proportion to the MEC queue lengths, each class >= floor (0.1); bandwidth fixed at bw (0.5)",
)
register_policy(
    "twin_first",
    _build_twin_first,
    "twin_first[:min_ue=F,bw=B]",
    "sensors get the compute to drain their queue, UEs the rest (>= min_ue, 0.1); bandwidth fixed at bw (0.5)",
)


def make_policy(spec: str, env: Any, seed: int | None = None) -> Policy:
    """Build the policy named by ``spec`` (``NAME[:ARGS]``, see the module docstring) for ``env``.

    Raises:
        PolicyError: (a ``ValueError``) naming the spec and listing the valid forms, when the
            spec is malformed or the policy needs an observation feature the scenario lacks.
    """
    if not isinstance(spec, str):
        raise PolicyError(f"policy spec must be a string, got {type(spec).__name__}: {spec!r}")
    import metalore.evaluation  # registers brute_force; imported here: it imports this module
    import metalore.training  # noqa: F401  (registers agent:PATH; it imports Stable-Baselines3 only when used)

    name, _, args = spec.strip().partition(":")
    entry = POLICIES.get(name.strip())
    if entry is None:
        raise _spec_error(spec, f"unknown policy {name.strip()!r}")
    return entry.build(spec, args.strip(), env, seed)
