"""MetaLore: AoI-aware orchestration of communication and computation for metaverse synchronization.

``import metalore`` registers one Gymnasium id per scenario preset (``MetaLore/Paper-v0``,
``MetaLore/Small-v0``, ``MetaLore/Large-v0``, ``MetaLore/MultiCell-v0``,
``MetaLore/Dynamic-v0``, ``MetaLore/Toy-v0``) and the seed project's id ``mobile-smart_city-smart_city_handler-v0``
as an alias of the paper scenario. Each id also has a native vector entry point.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import gymnasium as gym

from metalore.config import PRESETS, ConfigError, Scenario, load_config_file, make_scenario
from metalore.env import MetaLoreEnv
from metalore.vector import MetaLoreVectorEnv

try:
    __version__ = version("metalore")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

PRESET_IDS = {
    "paper": "MetaLore/Paper-v0",
    "small": "MetaLore/Small-v0",
    "large": "MetaLore/Large-v0",
    "multicell": "MetaLore/MultiCell-v0",
    "dynamic": "MetaLore/Dynamic-v0",
    "toy": "MetaLore/Toy-v0",
}
SEED_ALIAS_ID = "mobile-smart_city-smart_city_handler-v0"


def _register() -> None:
    aliases = {SEED_ALIAS_ID: "paper"}  # the seed README's id runs the paper scenario
    for env_id, preset in [*((i, p) for p, i in PRESET_IDS.items()), *aliases.items()]:
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="metalore.env:MetaLoreEnv",
            vector_entry_point="metalore.vector:MetaLoreVectorEnv",
            kwargs={"scenario": preset},
            max_episode_steps=None,
            disable_env_checker=False,
        )


def registered_ids() -> list[str]:
    """Every Gymnasium id this package registers."""
    return [*PRESET_IDS.values(), SEED_ALIAS_ID]


_register()

__all__ = [
    "PRESETS",
    "PRESET_IDS",
    "SEED_ALIAS_ID",
    "ConfigError",
    "MetaLoreEnv",
    "MetaLoreVectorEnv",
    "Scenario",
    "__version__",
    "load_config_file",
    "make_scenario",
    "registered_ids",
]
