"""Test configuration shared by all test packages."""

from __future__ import annotations

import pytest

from phiwarden.policy import Policy


@pytest.fixture
def default_policy() -> Policy:
    return Policy()
