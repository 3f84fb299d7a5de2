"""Playing one episode, optionally recording a per-step trace (``steps.csv``).

:func:`run_episode` plays a policy for one episode in a single env. With ``trace=`` a list, it
appends one row per step and base station (:data:`STEP_COLUMNS`), which ``metalore run`` writes
to ``steps.csv`` and :func:`metalore.plots.plot_allocation` draws as "allocation over time":

==================  ===================================================================
column              meaning
==================  ===================================================================
``episode, seed``   episode index in the run and its seed
``t``               step index 0 .. ``episode.steps - 1`` (the ``t`` of the step's ``info``)
``phase``           traffic phase in force at ``t`` (0 without ``traffic.phases``)
``bs``              base station index
``bw_ue``           share of the BS's uplink bandwidth given to UEs in this step (applied,
                    after clipping; sensors get ``1 - bw_ue``)
``comp_ue``         share of the BS's MEC compute given to UEs (sensors get ``1 - comp_ue``)
``ue_mec_queue``    UE jobs in this BS's MEC queue after the step (the observation's ``l``)
``sensor_mec_queue``  sensor updates in this BS's MEC queue after the step (``l̂``)
``reward``          the env's reward of the step (the same on every BS row)
``generated_ue`` …  per-class counts of the step summed over BSs: ``generated_``, ``completed_``,
                    ``dropped_`` (uplink + MEC) for ``ue`` and ``sensor``
``aori_mean``       mean AoRI of the UE jobs completed in the step (empty if none)
``aosi_mean``       mean AoSI of those jobs (empty if none)
==================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from metalore.env import MetaLoreEnv
from metalore.policies import Policy

__all__ = ["STEP_COLUMNS", "phase_starts", "run_episode"]

STEP_COLUMNS = (
    "episode",
    "seed",
    "t",
    "phase",
    "bs",
    "bw_ue",
    "comp_ue",
    "ue_mec_queue",
    "sensor_mec_queue",
    "reward",
    "generated_ue",
    "completed_ue",
    "dropped_ue",
    "generated_sensor",
    "completed_sensor",
    "dropped_sensor",
    "aori_mean",
    "aosi_mean",
)


def phase_starts(config: Mapping[str, Any]) -> list[int]:
    """First step of each traffic phase of a scenario configuration (``[0]`` without phases)."""
    phases = config.get("traffic", {}).get("phases") or []
    return [int(p["start_step"]) for p in phases] or [0]


def run_episode(
    env: MetaLoreEnv,
    policy: Policy,
    seed: int,
    on_step: Callable[[], Any] | None = None,
    trace: list[dict[str, Any]] | None = None,
    episode: int = 0,
) -> dict[str, Any]:
    """Play one episode of ``policy`` in ``env`` (both seeded with ``seed``); return its summary.

    Args:
        env: a :class:`MetaLoreEnv` (not wrapped: the trace reads ``applied_split()``).
        policy: any :class:`metalore.policies.Policy`.
        seed: the episode seed, also given to ``policy.reset``.
        on_step: called with no argument after every step (progress bars).
        trace: when a list, one row per step and BS (:data:`STEP_COLUMNS`) is appended to it.
        episode: the ``episode`` column of the trace rows.
    """
    obs, _ = env.reset(seed=seed)
    policy.reset(seed=seed)
    starts: np.ndarray = np.array(phase_starts(env.scenario.config), dtype=np.int64)
    truncated = False
    while not truncated:
        obs, reward, _, truncated, info = env.step(policy.env_action(obs))
        if trace is not None:
            trace.extend(_rows(env, info, reward, episode, seed, int(np.searchsorted(starts, info["t"], "right")) - 1))
        if on_step is not None:
            on_step()
    return info["summary"]


def _rows(
    env: MetaLoreEnv, info: dict[str, Any], reward: float, episode: int, seed: int, phase: int
) -> list[dict[str, Any]]:
    split = env.applied_split()
    queues = info["queue_lengths"]
    aori, aosi = info["aori"], info["aosi"]
    shared = {
        "reward": reward,
        **{
            f"{what}_{cls}": info[f"{what}_{cls}"]
            for cls in ("ue", "sensor")
            for what in ("generated", "completed", "dropped")
        },
        "aori_mean": float(np.mean(aori)) if aori else float("nan"),
        "aosi_mean": float(np.mean(aosi)) if aosi else float("nan"),
    }
    return [
        {
            "episode": episode,
            "seed": seed,
            "t": info["t"],
            "phase": phase,
            "bs": m,
            "bw_ue": float(split[m, 0]),
            "comp_ue": float(split[m, 1]),
            "ue_mec_queue": int(queues[m, 0]),
            "sensor_mec_queue": int(queues[m, 1]),
            **shared,
        }
        for m in range(split.shape[0])
    ]
