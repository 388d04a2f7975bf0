"""`SAGABANK_BROKER_URL`: RabbitMQ on loopback by default; its vhost part names the deployment;
kept as a secret (its password never printed by the settings)."""

from __future__ import annotations

import pytest

from repository_after.config import load_settings


def test_the_broker_defaults_to_rabbitmq_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGABANK_BROKER_URL", raising=False)
    settings = load_settings()
    assert settings.broker_url.get_secret_value() == "amqp://guest:guest@127.0.0.1:5672/"


def test_the_broker_url_comes_from_the_environment_and_is_not_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "amqp://saga:s3cret@mq.internal:5672/sagabank-prod"
    monkeypatch.setenv("SAGABANK_BROKER_URL", url)
    settings = load_settings()
    assert settings.broker_url.get_secret_value() == url
    assert "s3cret" not in repr(settings)
