"""`SAGABANK_SERVICES`: the services sagas call, as configuration. Each is a URL, whether it
takes `POST /batch` and its own token; the account service is added as "accounts" as before
(`SAGABANK_ACCOUNTS_URL`, or this process in role `all`) unless the map names it; the service
token goes to the account service and the participants it hosts, never to a service listed with
its own URL. Bad input refuses to start with a message that names the
setting and never repeats a token or a URL."""

from __future__ import annotations

import json

import pytest

from repository_after.config import (
    ConfigurationError,
    ProcessRole,
    Settings,
    load_settings,
)
from repository_after.service_map import ServiceConfig, check_service_url, services_without_token

TOKEN = "inv-s3cret-t0ken"


def services_env(monkeypatch: pytest.MonkeyPatch, services: object) -> None:
    raw = services if isinstance(services, str) else json.dumps(services)
    monkeypatch.setenv("SAGABANK_SERVICES", raw)


def refusal(**overrides: object) -> str:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(**overrides)
    return str(refused.value)


def test_the_services_map_is_read_from_json_with_batching_on_and_no_token_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services_env(
        monkeypatch,
        {
            "inventory": {"url": "http://10.0.0.7:8100/", "token": TOKEN},
            "orders": {"url": "https://orders.internal/api", "batching": False},
        },
    )
    services = load_settings(accounts_url="http://acc:1").resolved_services()
    assert set(services) == {"inventory", "orders", "accounts", "pupils", "classes"}
    inventory, orders = services["inventory"], services["orders"]
    assert (inventory.url, inventory.batching) == ("http://10.0.0.7:8100", True)
    assert inventory.token is not None
    assert inventory.token.get_secret_value() == TOKEN
    assert orders == ServiceConfig(url="https://orders.internal/api", batching=False, token=None)


def test_the_account_service_is_added_as_before_unless_the_map_names_it() -> None:
    inventory = {"inventory": {"url": "http://inv:1"}}
    by_url = Settings(
        role=ProcessRole.ORCHESTRATOR, accounts_url="http://acc:2/", services=inventory
    )
    assert by_url.resolved_services()["accounts"].url == "http://acc:2"
    assert by_url.resolved_accounts_url() == "http://acc:2"
    itself = Settings(role=ProcessRole.ALL, host="0.0.0.0", port=8123, services=inventory)
    assert itself.resolved_services()["accounts"].url == "http://127.0.0.1:8123"
    # Without a URL the account service is this very process, in every role (as before).
    alone = Settings(role=ProcessRole.ORCHESTRATOR, port=8124, services=inventory)
    assert alone.resolved_services()["accounts"].url == "http://127.0.0.1:8124"
    assert alone.resolved_accounts_url() == "http://127.0.0.1:8124"
    named = Settings(
        accounts_url="http://acc:2",
        services={"accounts": {"url": "http://books:3", "batching": False}},
    )
    assert named.resolved_services()["accounts"] == ServiceConfig("http://books:3", False, None)
    assert named.resolved_accounts_url() == "http://books:3"


def tokens(settings: Settings) -> dict[str, str | None]:
    return {
        name: service.token.get_secret_value() if service.token else None
        for name, service in settings.resolved_services().items()
    }


def test_the_service_token_goes_only_to_the_account_service_and_the_participants_it_hosts() -> None:
    settings = Settings(
        service_token="gl0bal",
        accounts_url="http://acc:2",
        services={"a": {"url": "http://a:1", "token": None}, "b": {"url": "http://b:1"}},
    )
    # inventory and orders, hosted in the account service's process by default, take its
    # credential; a service listed with its own URL never does, whoever runs it
    assert tokens(settings) == {
        "a": None,
        "b": None,
        "accounts": "gl0bal",
        "inventory": "gl0bal",
        "orders": "gl0bal",
        "pupils": "gl0bal",
        "classes": "gl0bal",
    }
    own = Settings(
        service_token="gl0bal",
        services={"b": {"url": "http://b:1", "token": TOKEN}, "accounts": {"url": "http://a:3"}},
    )
    assert tokens(own)["b"] == TOKEN
    assert tokens(own)["accounts"] == "gl0bal"  # the account service, even when listed
    bare = Settings(services={"a": {"url": "http://a:1", "token": ""}})
    assert tokens(bare) == {
        "a": None,
        "accounts": None,
        "inventory": None,
        "orders": None,
        "pupils": None,
        "classes": None,
    }


def test_the_hosted_participants_take_the_account_service_s_own_token() -> None:
    """Same process, same credential: the account service's entry's token, when it has one."""
    settings = Settings(
        service_token="gl0bal",
        services={"accounts": {"url": "http://books:3", "token": TOKEN}},
    )
    hosted = ("inventory", "orders", "pupils", "classes")
    assert tokens(settings) == {"accounts": TOKEN, **dict.fromkeys(hosted, TOKEN)}
    assert settings.resolved_services()["inventory"].url == "http://books:3/inventory"


def test_a_listed_service_that_does_not_say_its_token_is_named_only_with_a_service_token() -> None:
    listed = {
        "inventory": {"url": "http://inv:1"},  # says nothing: refused at start-up
        "orders": {"url": "http://ord:1", "token": None},  # takes none, on purpose
        "shipping": {"url": "http://shp:1", "token": ""},  # the same, as an empty string
        "pay": {"url": "http://pay:1", "token": TOKEN},
        "accounts": {"url": "http://acc:1"},  # the account service: the service token
    }
    guarded = Settings(service_token="gl0bal", services=listed)
    assert services_without_token(guarded.services, service_token=guarded.service_token) == [
        "inventory"
    ]
    open_ = Settings(services=listed)
    assert services_without_token(open_.services, service_token=open_.service_token) == []


def test_batching_off_for_the_process_is_off_for_every_service() -> None:
    settings = Settings(participant_max_in_flight=0, services={"a": {"url": "http://a:1"}})
    assert {s.batching for s in settings.resolved_services().values()} == {False}
    on = Settings(participant_max_in_flight=1, services={"a": {"url": "http://a:1"}})
    assert {s.batching for s in on.resolved_services().values()} == {True}


SCHEME = "must be an http:// or https:// URL with a host"
USER = "must not carry a user or password (the token goes in `token`)"
QUERY = "must not carry a query or a fragment"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://inv:21", SCHEME),
        ("inv:8100", SCHEME),
        ("http:///inventory", SCHEME),
        ("http://ops:hunter2@inv:8100", USER),
        ("http://inv:8100/?k=hunter2", QUERY),
        ("http://inv:8100/#hunter2", QUERY),
        ("http://inv:8100/?", QUERY),
        ("http://inv:8100/#", QUERY),  # an empty fragment: urlsplit sees none
        ("http://inv:port", "not a URL"),
    ],
)
def test_a_bad_service_url_refuses_to_start_naming_the_service_not_the_url(
    monkeypatch: pytest.MonkeyPatch, url: str, why: str
) -> None:
    services_env(monkeypatch, {"inventory": {"url": url, "token": TOKEN}})
    message = refusal()
    assert message == f"SAGABANK_SERVICES: inventory.url: {why}"
    assert url not in message
    assert "hunter2" not in message
    assert TOKEN not in message


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://BOX/", "http://BOX"),
        ("https://inv:8100//", "https://inv:8100"),
        ("http://inv:8100/api", "http://inv:8100/api"),
    ],
)
def test_a_service_url_loses_its_trailing_slashes_and_nothing_else(url: str, kept: str) -> None:
    assert check_service_url(url) == kept


def test_a_bad_accounts_url_is_refused_the_same_way() -> None:
    message = refusal(accounts_url="http://ops:hunter2@acc:1")
    assert message.startswith("SAGABANK_ACCOUNTS_URL: ")
    assert "hunter2" not in message


@pytest.mark.parametrize("name", ["in ventory", "", "x" * 65, "inv/1", "inv\n"])
def test_a_service_name_outside_the_id_alphabet_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    services_env(monkeypatch, {name: {"url": "http://inv:1", "token": TOKEN}})
    message = refusal()
    assert message.startswith("SAGABANK_SERVICES: service name ")
    assert "letters, digits or '._:-'" in message
    assert TOKEN not in message


def test_valid_names_use_the_id_alphabet() -> None:
    names = ["inventory", "pay.v2", "a_b:c-d", "x" * 64]
    settings = Settings(services={n: {"url": "http://s:1"} for n in names})
    # "orders", "pupils", "classes" are added where the account service hosts them;
    # "inventory" is named here
    hosted = {"orders", "pupils", "classes"}
    assert set(settings.resolved_services()) == {*names, "accounts", *hosted}
    assert settings.resolved_services()["inventory"].url == "http://s:1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"inventory": {"url": "http://inv:1", "tokn": "' + TOKEN + '"}}', "inventory.tokn"),
        ('{"inventory": {"token": "' + TOKEN + '"}}', "inventory.url"),
        ('{"inventory": {"url": "http://inv:1", "token": 12345}}', "inventory.token"),
        ('{"inventory": {"url": "http://inv:1", "batching": "' + TOKEN + '"}}', "batching"),
        ('["' + TOKEN + '"]', "SAGABANK_SERVICES: "),
        ('{"inventory": "' + TOKEN, "SAGABANK_SERVICES: not valid JSON"),
    ],
)
def test_malformed_services_are_refused_without_echoing_what_was_given(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: str
) -> None:
    services_env(monkeypatch, raw)
    message = refusal()
    assert expected in message
    assert TOKEN not in message
    assert "12345" not in message
    assert "input_value" not in message


def test_a_rule_across_settings_is_refused_with_its_own_words() -> None:
    assert refusal(retry_initial_backoff=1.0, retry_max_backoff=0.5) == (
        "retry_max_backoff must be >= retry_initial_backoff"
    )


def test_tokens_never_show_in_a_repr_or_a_dump() -> None:
    settings = Settings(
        service_token="gl0bal-s3cret",
        services={"a": {"url": "http://a:1", "token": TOKEN}, "b": {"url": "http://b:1"}},
    )
    views = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        repr(settings.resolved_services()),
    ]
    for view in views:
        assert TOKEN not in view
        assert "gl0bal-s3cret" not in view
    assert "http://a:1" in views[0]  # the map is shown, its secrets are not
