"""Shared fixtures: small, fast scenarios."""

from __future__ import annotations

import pytest


@pytest.fixture
def short_config() -> dict:
    """The paper scenario cut to 20 steps (keeps tests fast)."""
    return {"episode": {"steps": 20}}
