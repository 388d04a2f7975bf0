"""How settings a process cannot start with are told: one line per problem, naming the setting,
never repeating a value given (a token, a URL)."""

from __future__ import annotations

from pydantic import ValidationError


class ConfigurationError(Exception):
    """Settings this process cannot start with. The message names the setting and what is
    wrong, and is safe to print: it never repeats a value given (a token, a URL)."""


def describe(error: ValidationError) -> str:
    """One line per problem, `SAGABANK_<FIELD>[: <where inside>]: <what is wrong>`, without
    pydantic's `input_value=...` (which would print a token)."""
    lines = []
    for e in error.errors(include_url=False, include_context=False, include_input=False):
        what = e["msg"].removeprefix("Value error, ")
        if not e["loc"]:  # a rule across settings: its message names them
            lines.append(what)
            continue
        field, *inside = (str(part) for part in e["loc"])
        where = f"SAGABANK_{field.upper()}" + (f": {'.'.join(inside)}" if inside else "")
        lines.append(f"{where}: {what}")
    return "\n".join(lines)
