"""The shared SQL texts, as MariaDB / MySQL reads them: the few rewrites between the dialects.

The adapters write their statements once, for SQLite and PostgreSQL (`?` placeholders,
`ON CONFLICT`, `TEXT` keys); `translate` turns one into MySQL's, once per text (cached):
- `?` -> `%s`, and a literal `%` doubled (PyMySQL formats with `%`);
- the column `key` (a reserved word in MySQL) quoted: `` `key` ``; keywords are written in
  capitals in every shared text, so the lower-case word is always the column;
- `ON CONFLICT (...) DO UPDATE SET c = t.c + excluded.c` -> `ON DUPLICATE KEY UPDATE
  c = t.c + VALUES(c)` (every such statement here has exactly one unique key to conflict on);
  `ON CONFLICT (c, ...) DO NOTHING` -> `ON DUPLICATE KEY UPDATE c = c`, a no-op on a duplicate
  key only (`INSERT IGNORE` would also swallow other errors: a value too long, a CHECK);
- `CREATE TABLE`: MySQL cannot index a `TEXT` column without a length, so a `TEXT` column that
  is a key (`PRIMARY KEY`, `UNIQUE`, `REFERENCES`) becomes `VARCHAR(255)` (utf8mb4: 1020 bytes,
  three of them fit InnoDB's 3072-byte key), every other `TEXT` `LONGTEXT` (a recorded answer
  may pass 64 KiB); and the table gets InnoDB, utf8mb4 and the binary NO PAD collation
  (`mysql_db.COLLATION`). A participant's business tables are given by its service as
  portable SQL (`services.inventory.SCHEMA`), so they are translated here, not rewritten;
  `translate_schema` reads a whole schema, so a column a later `CREATE INDEX` names is a key
  too (`services.classes.SCHEMA`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from repository_after.adapters.mysql_db import TABLE_OPTIONS

KEY_TEXT = "VARCHAR(255)"
_KEY_COLUMN = re.compile(r"(?<![\w`])key(?![\w`])")
_ON_CONFLICT_UPDATE = re.compile(r"ON CONFLICT \([^)]*\) DO UPDATE SET")
_EXCLUDED = re.compile(r"\bexcluded\.(\w+)")
_ON_CONFLICT_NOTHING = re.compile(r"ON CONFLICT \((\w+)[^)]*\) DO NOTHING")
_TABLE_KEYS = re.compile(r"^\s*(?:PRIMARY KEY|UNIQUE)\s*\(([^)]*)\)")
_TABLE_NAME = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)")
_INDEX = re.compile(r"CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?\w+ ON (\w+) \(([^)]*)\)")


def _parts(body: str) -> list[str]:
    """`body`'s comma-separated parts at nesting depth 0."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    return [*parts, body[start:]]


def create_table(sql: str, indexed: frozenset[str] = frozenset()) -> str:
    """A portable `CREATE TABLE` as MySQL's (see the module docstring); `indexed`: its columns
    an index names elsewhere in the schema."""
    head, _, rest = sql.partition("(")
    body, _, tail = rest.rpartition(")")
    parts = _parts(body)
    keys = set(indexed) | {
        name.strip()
        for part in parts
        if (found := _TABLE_KEYS.match(part))
        for name in found.group(1).split(",")
    }
    columns = []
    for part in parts:
        words = part.split()
        is_column = bool(words) and not _TABLE_KEYS.match(part) and words[1:2] == ["TEXT"]
        if is_column:
            is_key = words[0] in keys or "PRIMARY KEY" in part or "REFERENCES" in part
            part = part.replace(" TEXT", " " + (KEY_TEXT if is_key else "LONGTEXT"), 1)
        columns.append(part)
    return f"{head}({','.join(columns)}){tail}{TABLE_OPTIONS}"


def translate_schema(statements: Sequence[str]) -> list[str]:
    """A whole portable schema as MySQL's: `translate` of each statement, where a `TEXT` column
    an index of the schema names is a key of its table."""
    indexed: dict[str, set[str]] = {}
    for sql in statements:
        if found := _INDEX.search(sql):
            indexed.setdefault(found[1], set()).update(c.strip() for c in found[2].split(","))
    translated = []
    for sql in statements:
        table = _TABLE_NAME.match(sql.lstrip())
        if table is not None and table[1] in indexed:
            sql = create_table(sql.lstrip(), frozenset(indexed[table[1]]))
        translated.append(translate(sql))
    return translated


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """A shared statement (`?` placeholders) as MySQL's."""
    if sql.lstrip().startswith("CREATE TABLE") and not sql.endswith(TABLE_OPTIONS):
        sql = create_table(sql)
    sql = _ON_CONFLICT_UPDATE.sub("ON DUPLICATE KEY UPDATE", sql)
    sql = _EXCLUDED.sub(r"VALUES(\1)", sql)
    sql = _ON_CONFLICT_NOTHING.sub(r"ON DUPLICATE KEY UPDATE \1 = \1", sql)
    sql = _KEY_COLUMN.sub("`key`", sql)
    return sql.replace("%", "%%").replace("?", "%s")
