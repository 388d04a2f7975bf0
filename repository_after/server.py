"""uvicorn target: `uvicorn repository_after.server:app` (settings from SAGABANK_* variables)."""

from __future__ import annotations

from repository_after.config import get_settings
from repository_after.entrypoints.app import create_app
from repository_after.entrypoints.logs import configure_logging

configure_logging(get_settings())
app = create_app(get_settings())
