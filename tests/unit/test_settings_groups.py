"""`Settings` is composed of one group per component (`repository_after/config/`); composing them
must not change what a user sees: the settings' order (which orders the validation errors and the
JSON schema) and the checks across groups, first failure first."""

from __future__ import annotations

import pytest

from repository_after.config import ConfigurationError, Settings, load_settings

#: The documented order, as it was before the split (README settings table).
ORDER = [
    "database_url",
    "inventory_database_url",
    "orders_database_url",
    "pupils_database_url",
    "classes_database_url",
    "extra_sagas",
    "host",
    "port",
    "role",
    "accounts_url",
    "services",
    "admin_token",
    "service_token",
    "read_token",
    "trusted_hosts",
    "credit_failure_rate",
    "credit_failure_mode",
    "fault_seed",
    "participant_faults",
    "demo_accounts",
    "demo_balance",
    "retry_attempts",
    "settle_attempts",
    "retry_initial_backoff",
    "retry_max_backoff",
    "attempt_timeout",
    "retry_deadline",
    "settle_deadline",
    "transfer_wait",
    "participant_max_in_flight",
    "retention_days",
    "gc_threshold",
    "switch_interval_us",
    "worker_id",
    "lease_ttl",
    "claim_interval",
    "unknown_version_grace",
    "broker_url",
    "mode",
    "broker_prefix",
    "broker_delivery_limit",
    "tracker_interval",
    "relay_claim_ttl",
    "log_json",
    "log_level",
    "otel_exporter",
    "otel_endpoint",
]


def test_settings_keep_their_documented_order_across_the_groups() -> None:
    assert list(Settings.model_fields) == ORDER


def test_validation_errors_of_several_groups_are_told_in_settings_order() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(log_level=1, port=99_999, lease_ttl=0, retry_attempts=0)
    told = [line.split(":")[0] for line in str(raised.value).splitlines()]
    assert told == [
        "SAGABANK_PORT",
        "SAGABANK_RETRY_ATTEMPTS",
        "SAGABANK_LEASE_TTL",
        "SAGABANK_LOG_LEVEL",
    ]


def test_checks_across_groups_run_in_order_the_first_failure_is_told() -> None:
    with pytest.raises(ConfigurationError, match="retry_max_backoff must be >="):
        load_settings(
            retry_initial_backoff=1.0,
            retry_max_backoff=0.5,
            database_url="ftp://nowhere",
            claim_interval=6.0,
        )
    with pytest.raises(ConfigurationError, match=r"^database_url .* must be sqlite"):
        load_settings(database_url="ftp://nowhere", claim_interval=6.0)


@pytest.mark.parametrize(
    "field", ["accounts_url", "worker_id", "unknown_version_grace", "orders_database_url"]
)
def test_an_empty_value_in_any_group_means_unset(field: str) -> None:
    assert getattr(load_settings(**{field: ""}), field) is None
