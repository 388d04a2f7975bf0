"""The A → B → C saga type is opt-in (`SAGABANK_EXTRA_SAGAS=abc`): a default server registers
exactly the built-in types, one that asks registers `abc` with its parameter model, and a name
that is no opt-in type refuses the settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from repository_after.bootstrap import saga_types
from repository_after.config import ConfigurationError, load_settings
from repository_after.domain.abc import ABC
from repository_after.domain.sagas import DEFINITIONS
from repository_after.entrypoints.app import create_app


def test_a_default_server_runs_the_built_in_types_alone() -> None:
    settings = load_settings(extra_sagas="")
    assert settings.saga_definitions() == DEFINITIONS
    assert ABC.name not in saga_types(settings.extra_saga_names()).definitions()


def test_extra_sagas_abc_registers_the_abc_type_with_its_parameters() -> None:
    settings = load_settings(extra_sagas=" abc ,abc")
    assert settings.extra_saga_names() == ("abc",)
    assert settings.saga_definitions() == {**DEFINITIONS, "abc": ABC}
    types = saga_types(settings.extra_saga_names())
    assert types.definitions() == settings.saga_definitions()
    assert types.parameters("abc", {"ref": "r-1", "amount": 5}) == {"ref": "r-1", "amount": 5}
    with pytest.raises(ValidationError):
        types.parameters("abc", {"ref": "r-1", "amount": 0})


def test_a_name_that_is_no_opt_in_type_refuses_the_settings() -> None:
    refused = "SAGABANK_EXTRA_SAGAS: no opt-in saga type 'transfer'"
    with pytest.raises(ConfigurationError, match=refused):
        load_settings(extra_sagas="abc,transfer")


def test_a_server_registering_abc_refuses_to_start_without_urls_for_a_b_c() -> None:
    settings = load_settings(extra_sagas="abc", database_url="memory://", services={})
    with pytest.raises(ConfigurationError, match="step 'a' calls service 'A', which has no URL"):
        create_app(settings)
    create_app(load_settings(extra_sagas="", database_url="memory://", services={}))
