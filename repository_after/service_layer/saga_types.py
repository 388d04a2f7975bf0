"""Saga types: the registry of the definitions a server runs, each with its typed parameters.

A saga type is a `SagaDefinition` (its steps, checked when built) and a pydantic model of its
parameters. Registering one checks what the definition alone cannot:
- every parameter its steps read is a field of the model (a missing one would fail only in the
  driver, after the saga was logged, and be retried at every lease expiry);
- one (name, version) is registered once: a second definition under the same version is refused
  (a running saga must resume with the shape it started with; a new shape is a new version);
- no parameter takes a name of `VIEW_FIELDS`: the saga's JSON views spread its parameters beside
  those fields, so such a parameter would overwrite, say, the `status` a route answers by.
`parameters(name, raw)` validates a request's parameters against the model before anything is
logged (a pydantic `ValidationError`, which the HTTP edge answers with a 422), then the type's
own rules (`check`: e.g. a transfer's source is not its target, a `BusinessError`), and returns
them as plain JSON data, as the log stores them. `unserved(urls)` lists the steps whose service
has no URL, for the start-up check. `statuses(name)` lists every status a saga of the type can
be in (what a listing may be filtered by).

Versions: new sagas start on a type's latest version; a saga resumes with the version it started
under (`version(name, n)`), which the log stores with that definition's shape hash. A server
claims only the sagas of the (name, version, hash) keys it registers (`registered`). Before it
drives anything, `check_log_versions` compares the key of every unfinished saga in the log
(parked ones included: an operator may retry them) with the registry:
- a version registered here with ANOTHER SHAPE refuses the start (`DefinitionsChanged`, naming the
  type, the version, both hashes and how many sagas): that is always a deployment error (a
  definition changed without a new version number), never a rolling upgrade, and a server
  running with it would split the fleet: its sagas and the others' under one version number,
  each drivable by half of it, and a request for one of the others' that reaches this server
  parks it (`resumption`);
- a version NOT registered here is only reported (the lines returned, which the caller logs):
  this server never claims those sagas, so running beside them is safe, and it cannot tell
  whether a running server registers that version (a rolling upgrade, in either direction). A
  server that does drives them; if none does, the sweep (`stranded`) parks them after the grace.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from repository_after.domain.saga import InvalidDefinition, SagaDefinition, SagaStatus
from repository_after.service_layer.saga_ports import DefinitionInUse, DefinitionKey, SagaLog

#: What a saga's JSON views (`saga_views`) put beside its parameters, which they spread at the
#: top level (as `/transfers` always did): no parameter may take one of these names.
VIEW_FIELDS = frozenset(
    {
        "transaction_id",
        "saga",
        "version",
        "status",
        "parked_reason",
        "created_at",
        "updated_at",
        "attempts",
        "operator_actions",
    }
)
#: The engine's own statuses, in the order a saga meets them; the running statuses of a type's
#: steps come after `started` (`SagaTypes.statuses`).
_BEFORE_STEPS = (SagaStatus.STARTED.value,)
_AFTER_STEPS = tuple(
    s.value
    for s in (
        SagaStatus.COMPENSATING,
        SagaStatus.COMPLETED,
        SagaStatus.COMPENSATED,
        SagaStatus.REJECTED,
        SagaStatus.FAILED_NEEDS_ATTENTION,
        SagaStatus.RESOLVED,
    )
)


class UnknownSagaType(KeyError):
    """No saga type of that name (or version) is registered."""


class VersionNotRegistered(UnknownSagaType):
    """A saga exists, but the (type, version) it started under is not registered here (another
    server, e.g. a newer release, started it): not "no such saga", which is what a 404 would
    tell a client replaying its request (answered 409 `version_not_registered`)."""


Check = Callable[[Mapping[str, Any]], None]


def _no_rules(params: Mapping[str, Any]) -> None:
    del params


class DefinitionsChanged(Exception):
    """The log holds unfinished sagas this server cannot resume with the shape they started
    with: the server must not start (the message says which and what to do)."""

    def one_line(self) -> str:
        """The message on one line: its head, then each of its indented lines after a `;`."""
        head, *lines = str(self).splitlines()
        return head + "".join(f"{':' if i == 0 else ';'} {x.strip()}" for i, x in enumerate(lines))


@dataclass(frozen=True, slots=True)
class SagaType:
    definition: SagaDefinition
    params: type[BaseModel]
    check: Check = _no_rules


class SagaTypes:
    def __init__(self) -> None:
        self._types: dict[tuple[str, int], SagaType] = {}
        self._latest: dict[str, SagaType] = {}

    def register(
        self, definition: SagaDefinition, params: type[BaseModel], check: Check = _no_rules
    ) -> None:
        """`check(params)`: the type's rules beyond the model's, raising a `BusinessError`."""
        key = (definition.name, definition.version)
        if key in self._types:
            raise InvalidDefinition(
                f"saga {definition.name!r} version {definition.version} is registered twice"
            )
        missing = sorted(definition.parameters - set(params.model_fields))
        if missing:
            raise InvalidDefinition(
                f"saga {definition.name!r}: its steps read {missing}, which its parameter model "
                f"{params.__name__} does not have"
            )
        taken = sorted(VIEW_FIELDS & set(params.model_fields))
        if taken:
            raise InvalidDefinition(
                f"saga {definition.name!r}: its parameter model {params.__name__} has {taken}, "
                "names the saga's views use beside its parameters: rename them"
            )
        saga_type = SagaType(definition, params, check)
        self._types[key] = saga_type
        latest = self._latest.get(definition.name)
        if latest is None or latest.definition.version < definition.version:
            self._latest[definition.name] = saga_type

    def __contains__(self, name: object) -> bool:
        return name in self._latest

    def latest(self, name: str) -> SagaDefinition:
        """The definition new sagas of this type start with: its highest version."""
        return self._type(name).definition

    def version(self, name: str, version: int) -> SagaDefinition:
        """The definition a saga that started under `version` resumes with."""
        found = self._types.get((name, version))
        if found is None:
            raise UnknownSagaType(f"no saga type {name!r} version {version}")
        return found.definition

    def registered(self) -> frozenset[DefinitionKey]:
        """The key of every registered definition: exactly the sagas this server can drive."""
        return frozenset(
            DefinitionKey(d.name, d.version, d.shape_hash())
            for d in (t.definition for t in self._types.values())
        )

    def definitions(self) -> dict[str, SagaDefinition]:
        """Name -> the latest definition of each type."""
        return {name: t.definition for name, t in self._latest.items()}

    def statuses(self, name: str) -> list[str]:
        """Every status a saga of type `name` can be in, in the order a saga meets them:
        `started`, the running status of each step (every registered version's, the latest
        first), `compensating`, then the terminal and parked ones."""
        self._type(name)  # UnknownSagaType
        versions = sorted(
            (t.definition for (n, _), t in self._types.items() if n == name),
            key=lambda d: -d.version,
        )
        running = [step.running_status for d in versions for step in d.steps]
        return list(dict.fromkeys((*_BEFORE_STEPS, *running, *_AFTER_STEPS)))

    def parameters(self, name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """`raw` validated by the type's model and rules, as the JSON data the log stores."""
        saga_type = self._type(name)
        params = saga_type.params.model_validate(raw).model_dump(mode="json")
        saga_type.check(params)
        return params

    def describe(self) -> list[dict[str, Any]]:
        """Every registered type, each version, as plain data for people (the dashboard): its
        steps in order with their service, kind, operations and the parameters they read."""
        return [
            {
                "name": t.definition.name,
                "version": t.definition.version,
                "shape_hash": t.definition.shape_hash(),
                "latest": self._latest[t.definition.name] is t,
                "steps": [
                    {
                        key: value
                        for key, value in step.shape().items()
                        if key not in ("running_status", "landed", "fenced")
                    }
                    for step in t.definition.steps
                ],
            }
            for t in sorted(
                self._types.values(), key=lambda t: (t.definition.name, t.definition.version)
            )
        ]

    def shape_differs(self, name: str, version: int, shape_hash: str) -> str | None:
        """None when this registry defines `name` `version` with `shape_hash` (a saga that
        started under it resumes here as it started); else how it differs, in a few words."""
        found = self._types.get((name, version))
        if found is None:
            return "version not defined here"
        defined = found.definition.shape_hash()
        return (
            None if defined == shape_hash else f"definition changed: this server defines {defined}"
        )

    def unserved(self, urls: Collection[str]) -> list[str]:
        """One line per step (of every registered version) whose service is not in `urls`."""
        return unserved_steps((t.definition for t in self._types.values()), urls)

    def mismatches(self, in_use: Iterable[DefinitionInUse]) -> tuple[list[str], list[str]]:
        """Lines about the (name, version, hash) of unfinished sagas this registry cannot
        resume as they started: (versions registered with another shape, versions not
        registered), one line per key (see the module docstring for what each means)."""
        changed, elsewhere = [], []
        for used in in_use:
            found = self._types.get((used.definition, used.version))
            defined = None if found is None else found.definition.shape_hash()
            if defined == used.shape_hash:
                continue
            head = (
                f"saga type {used.definition!r} version {used.version}: {used.sagas} unfinished "
                f"saga{'s' if used.sagas != 1 else ''} started under shape {used.shape_hash}, "
            )
            if defined is None:
                elsewhere.append(
                    head + "a version this server does not register: left to the servers that "
                    "do (never claimed here; parked after the unknown-version grace without "
                    "progress if none drives them)"
                )
            else:
                changed.append(
                    head + f"this server defines {defined}: register the changed definition as "
                    f"a new version and keep version {used.version} as it was"
                )
        return changed, elsewhere

    def retry_horizon(self, *, forward_deadline: float, settle_deadline: float) -> float:
        """The longest retry horizon of the registered definitions (see `SagaDefinition`)."""
        return max(
            (
                t.definition.retry_horizon(
                    forward_deadline=forward_deadline, settle_deadline=settle_deadline
                )
                for t in self._types.values()
            ),
            default=0.0,
        )

    def _type(self, name: str) -> SagaType:
        found = self._latest.get(name)
        if found is None:
            raise UnknownSagaType(f"no saga type {name!r}")
        return found


async def check_log_versions(log: SagaLog, types: SagaTypes) -> list[str]:
    """Refuse to start (`DefinitionsChanged`) if some unfinished saga of `log` started under a
    version `types` defines with another shape; call it before anything is claimed. Returns a
    line per version of unfinished sagas that `types` does not register, for the caller to log."""
    changed, elsewhere = types.mismatches(await log.definitions_in_use())
    if changed:
        raise DefinitionsChanged(
            "refusing to start: the saga log holds unfinished sagas this server would resume "
            "with another shape than they started with\n" + "\n".join(f"  {x}" for x in changed)
        )
    return elsewhere


def unserved_steps(definitions: Iterable[SagaDefinition], urls: Collection[str]) -> list[str]:
    """One line per step of `definitions` whose service is not in `urls` (what
    `bootstrap.check_services` refuses to start on)."""
    return [
        f"saga {definition.name!r} step {step.name!r} calls service {step.service!r}, "
        "which has no URL"
        for definition in definitions
        for step in definition.steps
        if step.service not in urls
    ]
