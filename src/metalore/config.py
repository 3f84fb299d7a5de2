"""Scenario configuration: defaults, presets, deep merge, validation.

A scenario is a nested mapping (MODEL.md §8). User input enters here and only here: every
key is checked against the schema below, unknown keys are rejected with the closest valid
name, and values out of range raise :class:`ConfigError` naming the dotted key, the value
and the allowed range. The result is a frozen :class:`Scenario`.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import tomllib

__all__ = [
    "OBSERVATION_FEATURES",
    "PRESETS",
    "ConfigError",
    "Scenario",
    "deep_merge",
    "load_config_file",
    "make_scenario",
]


class ConfigError(ValueError):
    """A scenario configuration, config file or CLI value is invalid."""


# --------------------------------------------------------------------------- schema
# Each leaf is a checker: (dotted_key, value) -> normalised value, raising ConfigError.
Checker = Callable[[str, Any], Any]


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"config key '{key}' = {value!r} is invalid: expected {allowed}")


def _number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Checker:
    def check(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(key, value, "a number")
        value = float(value)
        if not math.isfinite(value):
            raise _fail(key, value, "a finite number")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise _fail(key, value, f"a number {'>' if lo_open else '>='} {lo}")
        if hi is not None and value > hi:
            raise _fail(key, value, f"a number <= {hi}")
        return value

    return check


def _integer(lo: int | None = None, hi: int | None = None) -> Checker:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _fail(key, value, "an integer")
        if lo is not None and value < lo:
            raise _fail(key, value, f"an integer >= {lo}")
        if hi is not None and value > hi:
            raise _fail(key, value, f"an integer <= {hi}")
        return int(value)

    return check


def _choice(*options: str) -> Checker:
    def check(key: str, value: Any) -> str:
        if value not in options:
            raise _fail(key, value, "one of " + ", ".join(repr(o) for o in options))
        return str(value)

    return check


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, value, "true or false")
    return value


def _points_or_null(key: str, value: Any) -> tuple[tuple[float, float], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise _fail(key, value, "null (sample positions) or a non-empty list of [x, y] pairs in metres")
    points = []
    for i, p in enumerate(value):
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise _fail(f"{key}[{i}]", p, "an [x, y] pair in metres")
        points.append((_number()(f"{key}[{i}][0]", p[0]), _number()(f"{key}[{i}][1]", p[1])))
    return tuple(points)


def _points(key: str, value: Any) -> tuple[tuple[float, float], ...]:
    points = _points_or_null(key, value)
    if points is None:
        raise _fail(key, value, "a non-empty list of [x, y] pairs in metres")
    return points


def _probability_or_list(key: str, value: Any) -> float | tuple[float, ...]:
    if isinstance(value, list | tuple):
        if not value:
            raise _fail(key, value, "a probability in [0, 1] or a non-empty list of them (one per UE)")
        return tuple(_number(0.0, 1.0)(f"{key}[{i}]", v) for i, v in enumerate(value))
    return _number(0.0, 1.0)(key, value)


OBSERVATION_FEATURES = (
    "queue_lengths",
    "queue_work",
    "uplink_backlog",
    "twin_age",
    "time",
)


def _features(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise _fail(key, value, "a non-empty list drawn from " + ", ".join(OBSERVATION_FEATURES))
    for i, name in enumerate(value):
        if name not in OBSERVATION_FEATURES:
            raise _fail(f"{key}[{i}]", name, "one of " + ", ".join(OBSERVATION_FEATURES))
    if len(set(value)) != len(value):
        raise _fail(key, value, "a list without repeated features")
    return tuple(value)


_PHASE_SCHEMA: dict[str, Checker] = {
    "start_step": _integer(0),
    "request_probability": _number(0.0, 1.0),
    "sensor_period_steps": _integer(1),
}


def _phases(key: str, value: Any) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list | tuple):
        raise _fail(key, value, "a list of phases {start_step, request_probability, sensor_period_steps}")
    phases = []
    for i, phase in enumerate(value):
        if not isinstance(phase, Mapping):
            raise _fail(f"{key}[{i}]", phase, "a mapping {start_step, request_probability, sensor_period_steps}")
        phases.append(MappingProxyType(_validate_section(f"{key}[{i}]", phase, _PHASE_SCHEMA, require_all=True)))
    starts = [p["start_step"] for p in phases]
    if starts and (starts[0] != 0 or any(b <= a for a, b in itertools.pairwise(starts))):
        raise _fail(key, starts, "phases whose start_step values begin at 0 and strictly increase")
    return tuple(phases)


SCHEMA: dict[str, dict[str, Any]] = {
    # Step indices are stored as int32 in queued jobs and the job log: episode length < 2**31.
    "episode": {
        "steps": _integer(1, 2**31 - 1),
        "step_duration_s": _number(0.0, lo_open=True),
        "seed": _integer(0, 2**63 - 1),
    },
    "area": {"width_m": _number(0.0, lo_open=True), "height_m": _number(0.0, lo_open=True)},
    "bs": {
        "positions_m": _points,
        "bandwidth_hz": _number(0.0, lo_open=True),
        "frequency_mhz": _number(0.0, lo_open=True),
        "tx_power_dbm": _number(-100.0, 100.0),
        "height_m": _number(0.0, lo_open=True),
        "compute_units_per_s": _number(0.0, lo_open=True),
        "queue_capacity": _integer(1, 1_000_000),
    },
    "ue": {
        "count": _integer(0, 100_000),
        "height_m": _number(0.0, lo_open=True),
        "noise_w": _number(0.0, lo_open=True),
        "snr_threshold": _number(0.0),
        "mobility": _choice("random_waypoint", "static"),
        "speed_mps": _number(0.0),
        "positions_m": _points_or_null,
        "request_probability": _probability_or_list,
        "data_mbit_mean": _number(0.0, 100_000.0, lo_open=True),
        "compute_units_mean": _number(0.0, 100_000.0, lo_open=True),
        "queue_capacity": _integer(1, 1_000_000),
    },
    "sensor": {
        "count": _integer(0, 100_000),
        "height_m": _number(0.0, lo_open=True),
        "noise_w": _number(0.0, lo_open=True),
        "snr_threshold": _number(0.0),
        "period_steps": _integer(1),
        "data_mbit_mean": _number(0.0, 100_000.0, lo_open=True),
        "compute_units_mean": _number(0.0, 100_000.0, lo_open=True),
        "positions_m": _points_or_null,
        "placement": {
            "min_distance_m": _number(0.0),
            "max_distance_m": _number(0.0, lo_open=True),
            "min_separation_m": _number(0.0),
        },
        "queue_capacity": _integer(1, 1_000_000),
    },
    "channel": {"model": _choice("okumura_hata", "umi_38901"), "los": _boolean},
    "scheduler": {
        "model": _choice("resource_fair", "round_robin", "proportional_fair"),
        "pf_ewma_weight": _number(0.0, 1.0, lo_open=True),
    },
    "reward": {
        "sync_reward": _number(),
        "aosi_discount": _number(0.0, 1.0),
        "late_penalty": _number(),
        "e2e_delay_threshold_steps": _integer(0),
    },
    "traffic": {"phases": _phases},
    "observation": {"features": _features},
    "action": {"range": _choice("unit", "symmetric")},
    "log": {"jobs": _boolean, "max_jobs": _integer(1, 100_000_000)},
}

PAPER: dict[str, Any] = {
    "episode": {"steps": 100, "step_duration_s": 1.0, "seed": 111},
    "area": {"width_m": 200.0, "height_m": 200.0},
    "bs": {
        "positions_m": [[100.0, 100.0]],
        "bandwidth_hz": 100.0e6,
        "frequency_mhz": 3500.0,
        "tx_power_dbm": 40.0,
        "height_m": 40.0,
        "compute_units_per_s": 100.0,
        "queue_capacity": 1024,
    },
    "ue": {
        "count": 10,
        "height_m": 1.5,
        "noise_w": 1.0e-12,
        "snr_threshold": 2.0e-8,
        "mobility": "random_waypoint",
        "speed_mps": 1.5,
        "positions_m": None,
        "request_probability": 0.7,
        "data_mbit_mean": 50.0,
        "compute_units_mean": 5.0,
        "queue_capacity": 1024,
    },
    "sensor": {
        "count": 15,
        "height_m": 1.5,
        "noise_w": 1.0e-12,
        "snr_threshold": 2.0e-8,
        "period_steps": 1,
        "data_mbit_mean": 70.0,
        "compute_units_mean": 7.0,
        "positions_m": None,
        "placement": {"min_distance_m": 20.0, "max_distance_m": 90.0, "min_separation_m": 20.0},
        "queue_capacity": 1024,
    },
    "channel": {"model": "okumura_hata", "los": False},
    "scheduler": {"model": "resource_fair", "pf_ewma_weight": 0.1},
    "reward": {"sync_reward": 10.0, "aosi_discount": 0.9, "late_penalty": -1.0, "e2e_delay_threshold_steps": 2},
    "traffic": {"phases": []},
    "observation": {"features": ["queue_lengths"]},
    "action": {"range": "unit"},
    "log": {"jobs": False, "max_jobs": 1_000_000},
}

# Presets are overrides of the paper scenario. Each keeps demand above the MEC capacity so
# that the bandwidth/compute split stays a real trade-off.
_PRESET_OVERRIDES: dict[str, dict[str, Any]] = {
    "paper": {},
    # The smallest published scenario: 1 BS, 3 UEs, 3 sensors.
    "small": {
        "bs": {"bandwidth_hz": 30.0e6, "compute_units_per_s": 25.0},
        "ue": {"count": 3},
        "sensor": {"count": 3},
    },
    # A large single cell: 50 UEs and 60 sensors on 400 m x 400 m.
    "large": {
        "area": {"width_m": 400.0, "height_m": 400.0},
        "bs": {"positions_m": [[200.0, 200.0]], "bandwidth_hz": 400.0e6, "compute_units_per_s": 450.0},
        "ue": {"count": 50},
        "sensor": {
            "count": 60,
            "placement": {"min_distance_m": 20.0, "max_distance_m": 180.0, "min_separation_m": 15.0},
        },
    },
    # Three cells in a row (the published 3 BS / 15 UE / 20 sensor benchmark size).
    "multicell": {
        "area": {"width_m": 600.0, "height_m": 200.0},
        "bs": {"positions_m": [[100.0, 100.0], [300.0, 100.0], [500.0, 100.0]]},
        "ue": {"count": 15},
        "sensor": {"count": 20},
    },
    # Load that changes during the episode: UE-heavy, then sensor-heavy, then the paper mix.
    "dynamic": {
        "episode": {"steps": 150},
        "traffic": {
            "phases": [
                {"start_step": 0, "request_probability": 0.95, "sensor_period_steps": 3},
                {"start_step": 50, "request_probability": 0.2, "sensor_period_steps": 1},
                {"start_step": 100, "request_probability": 0.7, "sensor_period_steps": 1},
            ]
        },
    },
    # A tiny scenario with an obvious best split, for learnability tests (STYLE.md §8): pinned
    # devices, 20-step episodes, sensors needing ~70% of the MEC compute and UEs ~20%. Giving
    # sensors just enough compute (comp_ue 0.2) earns ~320 per episode; a uniform random split
    # ~250, comp_ue 0.9 ~160, and comp_ue 0 or 1 (or bw_ue 0 or 1) nothing.
    "toy": {
        "episode": {"steps": 20},
        "area": {"width_m": 100.0, "height_m": 100.0},
        "bs": {"positions_m": [[50.0, 50.0]], "bandwidth_hz": 30.0e6, "compute_units_per_s": 20.0},
        "ue": {
            "count": 2,
            "mobility": "static",
            "positions_m": [[30.0, 50.0], [70.0, 50.0]],
            "request_probability": 0.9,
            "data_mbit_mean": 10.0,
            "compute_units_mean": 2.0,
        },
        "sensor": {
            "count": 2,
            "positions_m": [[50.0, 30.0], [50.0, 70.0]],
            "placement": {"min_distance_m": 10.0, "max_distance_m": 40.0, "min_separation_m": 10.0},
        },
    },
}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in; nested mappings merge, other values replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {name: MappingProxyType(deep_merge(PAPER, override)) for name, override in _PRESET_OVERRIDES.items()}
)


def _unknown_key(key: str, name: str, allowed: list[str]) -> ConfigError:
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint} Valid keys here: {', '.join(sorted(allowed))}")


def _validate_section(prefix: str, section: Any, schema: Mapping[str, Any], *, require_all: bool) -> dict[str, Any]:
    if not isinstance(section, Mapping):
        raise _fail(prefix, section, "a mapping with keys " + ", ".join(schema))
    out: dict[str, Any] = {}
    for name, value in section.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in schema:
            raise _unknown_key(key, str(name), list(schema))
        rule = schema[name]
        if isinstance(rule, Mapping):
            out[name] = MappingProxyType(_validate_section(key, value, rule, require_all=require_all))
        else:
            out[name] = rule(key, value)
    if require_all:
        missing = [n for n in schema if n not in section]
        if missing:
            raise ConfigError(f"config section '{prefix}' is missing key(s): {', '.join(missing)}")
    return out


def _check_consistency(cfg: Mapping[str, Any]) -> None:
    """Cross-field rules that a per-key check cannot see."""
    width, height = cfg["area"]["width_m"], cfg["area"]["height_m"]

    def inside(key: str, points: tuple[tuple[float, float], ...]) -> None:
        for i, (x, y) in enumerate(points):
            if not (0.0 <= x <= width and 0.0 <= y <= height):
                raise _fail(f"{key}[{i}]", [x, y], f"a point inside the area [0, {width}] x [0, {height}] m")

    inside("bs.positions_m", cfg["bs"]["positions_m"])
    for kind in ("ue", "sensor"):
        points = cfg[kind]["positions_m"]
        if points is not None:
            if len(points) != cfg[kind]["count"]:
                raise _fail(
                    f"{kind}.positions_m",
                    f"{len(points)} points",
                    f"exactly {kind}.count = {cfg[kind]['count']} points (or null to sample them)",
                )
            inside(f"{kind}.positions_m", points)
    p = cfg["ue"]["request_probability"]
    if isinstance(p, tuple) and len(p) != cfg["ue"]["count"]:
        raise _fail("ue.request_probability", list(p), f"a scalar or exactly ue.count = {cfg['ue']['count']} values")
    placement = cfg["sensor"]["placement"]
    if placement["min_distance_m"] >= placement["max_distance_m"]:
        raise _fail(
            "sensor.placement.min_distance_m",
            placement["min_distance_m"],
            f"a distance below sensor.placement.max_distance_m = {placement['max_distance_m']}",
        )
    phases = cfg["traffic"]["phases"]
    if phases and phases[-1]["start_step"] >= cfg["episode"]["steps"]:
        steps = cfg["episode"]["steps"]
        raise _fail("traffic.phases", phases[-1]["start_step"], f"start steps below episode.steps = {steps}")


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Scenario:
    """A validated, frozen scenario: the preset name it came from and every config value."""

    name: str
    config: Mapping[str, Any]

    @property
    def num_bs(self) -> int:
        """Number of base stations (each with its MEC server)."""
        return len(self.config["bs"]["positions_m"])

    @property
    def num_ues(self) -> int:
        """Number of mobile UEs."""
        return int(self.config["ue"]["count"])

    @property
    def num_sensors(self) -> int:
        """Number of IoT sensors."""
        return int(self.config["sensor"]["count"])

    @property
    def steps(self) -> int:
        """Episode length in steps."""
        return int(self.config["episode"]["steps"])

    def to_dict(self) -> dict[str, Any]:
        """Return the full configuration as plain, JSON/YAML-serialisable containers."""
        return _thaw(self.config)

    def replace(self, overrides: Mapping[str, Any]) -> Scenario:
        """Return a new scenario with ``overrides`` deep-merged in and validated."""
        return make_scenario(self.name, overrides, base=self.to_dict())

    def __reduce__(self) -> tuple[Any, tuple[str, dict[str, Any]]]:
        # The frozen mappings (``MappingProxyType``) cannot be pickled: a scenario travels as
        # its plain config (to ``AsyncVectorEnv`` workers, Ray actors, ``copy.deepcopy``) and is
        # frozen again on arrival. It was validated when made, so it is not validated twice.
        return (_unpickle_scenario, (self.name, self.to_dict()))


def _unpickle_scenario(name: str, config: dict[str, Any]) -> Scenario:
    return Scenario(name=name, config=_freeze(config))


def make_scenario(
    preset: str = "paper",
    config: Mapping[str, Any] | None = None,
    *,
    base: Mapping[str, Any] | None = None,
) -> Scenario:
    """Validate ``config`` deep-merged over a preset (or over ``base``) into a :class:`Scenario`."""
    if base is None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown scenario preset {preset!r}: choose one of {', '.join(PRESETS)}")
        base = _thaw(PRESETS[preset])
    if config is not None and not isinstance(config, Mapping):
        raise ConfigError(f"config must be a mapping of sections (got {type(config).__name__})")
    merged = deep_merge(base, config or {})
    validated = _validate_section("", merged, SCHEMA, require_all=True)
    _check_consistency(validated)
    return Scenario(name=preset, config=_freeze(validated))


def load_config_file(path: str | Path) -> tuple[str | None, dict[str, Any]]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) scenario file.

    Returns ``(preset, overrides)``: the optional top-level ``preset`` key names the preset the
    file's sections are merged over (default: the caller's choice, usually ``paper``).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            with path.open("rb") as f:
                data: Any = tomllib.load(f)
        elif suffix in (".yaml", ".yml"):
            import yaml

            with path.open("r", encoding="utf-8") as f:
                data = yaml.safe_load(f)
        else:
            raise ConfigError(f"config file {str(path)!r} has suffix {suffix!r}: use .yaml, .yml or .toml")
    except ConfigError:
        raise
    except Exception as exc:  # yaml/toml parse errors: report file and reason in one line
        raise ConfigError(f"cannot parse config file {str(path)!r}: {exc}") from exc
    if data is None:
        return None, {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {str(path)!r} must contain a mapping of sections, not {type(data).__name__}")
    overrides = dict(data)
    preset = overrides.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"config key 'preset' = {preset!r} is invalid: expected one of {', '.join(PRESETS)}")
    return preset, overrides
