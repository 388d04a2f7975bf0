"""End-to-end fixtures: real `sagabank serve` processes on loopback with real SQLite files.

The `launch` fixture lives in `tests/conftest.py` (the browser tests use it too)."""

from __future__ import annotations

import pytest

from tests.conftest import Launcher

pytestmark = pytest.mark.e2e

__all__ = ["Launcher"]
