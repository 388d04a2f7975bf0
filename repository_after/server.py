"""uvicorn target: `uvicorn repository_after.server:app` (settings from SAGABANK_* variables).

Settings that cannot be served (or a saga step whose service has no URL) end the import with
their message alone (`SystemExit`): no traceback, and no value of a setting repeated."""

from __future__ import annotations

from repository_after.bootstrap import check_services
from repository_after.config import ConfigurationError, ProcessRole, get_settings
from repository_after.entrypoints.app import create_app
from repository_after.entrypoints.logs import configure_logging

try:
    _settings = get_settings()
    if _settings.role in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR):
        check_services(_settings, _settings.saga_definitions())
except ConfigurationError as exc:
    raise SystemExit(f"refusing to start: {exc}") from None
configure_logging(_settings)
app = create_app(_settings)
