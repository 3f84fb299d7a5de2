"""The README's commands, the CI script and the config reference stay in sync with the code."""

from __future__ import annotations

import re
from pathlib import Path

from metalore.config import SCHEMA

ROOT = Path(__file__).resolve().parents[1]


def _leaf_keys(schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, rule in schema.items():
        key = f"{prefix}{name}"
        keys += _leaf_keys(rule, key + ".") if isinstance(rule, dict) else [key]
    return keys


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(python3 -m venv .*)\n```", readme)
    assert len(commands) == 2, commands
    install_and_run, test = commands
    assert install_and_run.endswith("pip install -e . && metalore run")
    ci = (ROOT / ".ci" / "run").read_text()
    test_tail = test.split("&& ", 2)[2]  # after creating and activating the venv
    assert test_tail in ci


def test_every_config_key_is_documented():
    reference = (ROOT / "docs" / "config.md").read_text()
    missing = [key for key in _leaf_keys(SCHEMA) if f"`{key}`" not in reference and key not in reference]
    assert not missing, f"keys missing from docs/config.md: {missing}"
