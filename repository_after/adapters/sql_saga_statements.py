"""The saga log's write statements (`sql_saga_log`), with `?` placeholders, as data.

Statements live at module level: they are data, not logic, and mutation testing (which mutates
only inside functions) then counts the code that picks and binds them, not the letter case of SQL
keywords. `{until}`, `{now}` and `{skip_locked}` are the backend's (`SqlSagaLog._sql`), `{rows}` a
relation of rows (`_rows`), `{excluding}` and `{keys}` are `claim`'s and `stranded`'s. The reads'
statements are in `sql_saga_reads`.

A claim's `drivable` keys and the sweep's (`stranded`) are a row-value list, `(definition,
definition_version, definition_hash) [NOT] IN (VALUES (?, ?, ?), ...)`, one row per key (a server
registers a handful), which both engines run as written. No index and no migration step for
it, by choice: nearly every saga has one of the few keys a server registers, so an index on them
would narrow nothing, and would be written with every saga. The claim reads the rows it read
before (its `status NOT IN` finds no index either: EXPLAIN shows a scan on both engines) and
compares three more columns in each; the sweep's statement is the same scan, once per ttl.
"""

from __future__ import annotations

from repository_after.adapters.sql_saga_reads import AT_REST_VALUES, TERMINAL_VALUES, marks

EVENTS_ALIAS = "e"
INSERT_EVENTS = "INSERT INTO saga_events (saga_id, seq, data) SELECT ?, e.seq, e.data FROM {rows}"
HELD_ALIAS = "held"
HELD_MATCH = (
    " FROM {rows}"
    " WHERE sagas.saga_id = held.saga_id AND sagas.owner = held.owner AND sagas.fence = held.fence"
)
CREATE = (
    "INSERT INTO sagas (saga_id, definition, definition_version, definition_hash, params,"
    " status, version, created_at, updated_at, owner, lease_until, fence)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {until}, 1) ON CONFLICT DO NOTHING"
)
APPEND = "UPDATE sagas SET version = version + ?, status = ?, updated_at = ?"
RELEASING = ", owner = NULL, lease_until = NULL"
WHERE_SAGA = " WHERE saga_id = ?"
FENCED = " AND owner = ? AND fence = ?"
RETURNING_VERSION = " RETURNING version"
CLAIM = (
    "UPDATE sagas SET owner = ?, lease_until = {until}, fence = fence + 1"
    " WHERE saga_id IN (SELECT saga_id FROM sagas"
    f" WHERE status NOT IN ({marks(AT_REST_VALUES)}) AND (owner IS NULL"
    " OR lease_until <= {now} OR (? AND owner = ?) OR ?){keys}{excluding}"
    " ORDER BY created_at LIMIT ?{skip_locked}) RETURNING saga_id, fence"
)
EXCLUDING = " AND saga_id NOT IN ({ids})"
KEY_COLUMNS = " AND (definition, definition_version, definition_hash)"
IN_KEYS = KEY_COLUMNS + " IN (VALUES {rows})"
NOT_IN_KEYS = KEY_COLUMNS + " NOT IN (VALUES {rows})"
KEY_ROW = "(?, ?, ?)"
STRANDED = (
    f"SELECT saga_id FROM sagas WHERE status NOT IN ({marks(AT_REST_VALUES)})"
    " AND (owner IS NULL OR lease_until <= {now}) AND updated_at < ?{keys}"
    " ORDER BY updated_at LIMIT ?"
)
ACQUIRE = (
    "UPDATE sagas SET owner = ?, lease_until = {until}, fence = fence + 1"
    " WHERE saga_id = ? AND (owner IS NULL OR lease_until <= {now}) RETURNING fence"
)
RENEW = "UPDATE sagas SET lease_until = {until}"
RETURNING_SAGA_ID = " RETURNING sagas.saga_id"
RELEASE = "UPDATE sagas SET owner = NULL, lease_until = NULL"
NOW = "SELECT {now}"
LIVE_LEASES = (
    "SELECT saga_id, owner, fence FROM sagas WHERE owner IS NOT NULL AND lease_until > {now}"
    " ORDER BY saga_id"
)
SETTLED_BEFORE = f"status IN ({marks(TERMINAL_VALUES)}) AND updated_at < ?"
PURGE_EVENTS = (
    f"DELETE FROM saga_events WHERE saga_id IN (SELECT saga_id FROM sagas WHERE {SETTLED_BEFORE})"
)
PURGE_SAGAS = f"DELETE FROM sagas WHERE {SETTLED_BEFORE}"
