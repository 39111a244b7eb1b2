"""Suite-wide pytest configuration: markers, and tagging end-to-end tests.

Tests under tests/e2e/ get the `e2e` marker automatically, so `-m "not e2e"`
runs the fast unit suite alone. The `kubectl_skew` marker is declared here so it
is known even when only unit tests are collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_E2E_DIR = Path(__file__).parent / "e2e"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kubectl_skew(*versions): also run this end-to-end test with other kubectl "
        "versions (default: every supported one, 1.32, 1.33 and 1.34)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_E2E_DIR):
            item.add_marker(pytest.mark.e2e)
