"""MariaDB / MySQL plumbing shared by the adapters: the driver, URLs, sessions, migrations.

Driver: PyMySQL, the pure-Python MySQL protocol library (MIT, kept by the PyMySQL organisation,
the driver SQLAlchemy and Django document for MySQL without a C toolchain). It is synchronous,
as psycopg's sync API is for the PostgreSQL account store: `mysql_transactions.MysqlDatabase`
runs each transaction in a worker thread, so the event loop stays free; the saga log runs its
plans the same way (`sql_plan.drive`), so one driver serves every component.

URLs: `mysql://user:password@host:port/database` (also `mariadb://`, the same thing).

Sessions (`SESSION`): READ COMMITTED, as PostgreSQL's default: every statement sees what others
committed before it (a use case serialised behind a lock then reads the winner's record), and
InnoDB takes no gap locks, so inserts of distinct keys never block each other. Serialisation is
by locks the SQL takes: `SELECT ... FOR UPDATE` on rows, `GET_LOCK` per key (`LOCK_KEY`), and
`FOR UPDATE SKIP LOCKED` for claims. UTC for `NOW()`; strict SQL mode (a value too long is an
error, never truncated); a lock waited for longer than `LOCK_WAIT_S` is an error (1205); on
MariaDB a session idle in a transaction for `IDLE_TRANSACTION_S` is ended by the server, so a
paused (SIGSTOPped) process cannot hold its locks for ever (PostgreSQL:
`idle_in_transaction_session_timeout`). Durability is a server setting here, not a session
one: a server that does not flush its log at every commit (`innodb_flush_log_at_trx_commit` not
1) is refused at start-up, as a commit it acknowledges could be lost in a crash.

Errors: a duplicate key (1062), a deadlock (1213) or a lock wait timeout (1205) retries the whole
transaction once (it then sees the winner's rows); any other driver error, or the second race,
becomes `StorageError` (an unknown outcome: 503). A deadlock rolls back the WHOLE transaction,
savepoints included, so undoing a nested scope after one must not replace the deadlock by the
savepoint's own error (1305): `undo_to_savepoint`. DDL commits implicitly in MySQL, so a
migration step is not atomic: every step is written to be re-run (`IF NOT EXISTS`), serialised
across processes by a named lock, and recorded once complete.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

import pymysql
from pymysql.constants import CLIENT

from repository_after.adapters import migrations
from repository_after.service_layer.ports import StorageError

Conn: TypeAlias = "pymysql.connections.Connection[Any]"

SCHEMES = ("mysql://", "mariadb://")
#: Duplicate key, lock wait timeout, deadlock: races a second run resolves.
RETRYABLE_CODES = frozenset({1062, 1205, 1213})
LOCK_WAIT_S = 10
IDLE_TRANSACTION_S = 5
#: Every table's collation: binary and NO PAD, so keys differing in case or trailing spaces
#: stay distinct (the default `utf8mb4_general_ci` would merge `A-1` and `a-1`).
COLLATION = "utf8mb4_nopad_bin"
TABLE_OPTIONS = f" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={COLLATION}"
SESSION = (
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET SESSION time_zone = '+00:00',"
    " sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO',"
    f" innodb_lock_wait_timeout = {LOCK_WAIT_S}",
)
#: A key's named lock (`GET_LOCK` names are server-wide and at most 64 characters): the
#: database's name and the key, hashed.
LOCK_KEY = f"SELECT GET_LOCK(MD5(CONCAT(DATABASE(), CHAR(0), %s)), {LOCK_WAIT_S})"


def is_mysql(database_url: str) -> bool:
    return database_url.startswith(SCHEMES)


def connect_args(database_url: str) -> dict[str, Any]:
    """`mysql://` or `mariadb://` URL -> PyMySQL's connection arguments."""
    url = urlsplit(database_url)
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 3306,
        "user": unquote(url.username or "root"),
        "password": unquote(url.password or ""),
        "database": url.path.lstrip("/") or None,
        "charset": "utf8mb4",
        "autocommit": False,
        # UPDATE's row count is the rows MATCHED, as on SQLite and PostgreSQL (not "changed").
        "client_flag": CLIENT.FOUND_ROWS,
        "connect_timeout": 5,
    }


def connect(database_url: str) -> Conn:
    conn: Conn = pymysql.connect(**connect_args(database_url))
    with conn.cursor() as cursor:
        for sql in SESSION:
            cursor.execute(sql)
        cursor.execute("SELECT @@innodb_flush_log_at_trx_commit, VERSION()")
        flush, version = cursor.fetchone()
        if "mariadb" in str(version).lower():
            cursor.execute(f"SET SESSION idle_transaction_timeout = {IDLE_TRANSACTION_S}")
    if int(flush) != 1:
        conn.close()
        raise StorageError("mysql: innodb_flush_log_at_trx_commit must be 1 (durable commits)")
    return conn


def migrate_url(database_url: str, component: str) -> list[int]:
    """Bring `component` up to date, one step at a time, under a named lock."""
    try:
        conn = connect(database_url)
        try:
            with conn.cursor() as cursor:
                cursor.execute(LOCK_KEY, (f"migrations:{migrations.PG_MIGRATION_LOCK}",))
                if cursor.fetchone()[0] != 1:
                    raise StorageError("mysql: timed out waiting for another migration")
                cursor.execute(migrations.MYSQL_BOOKKEEPING)
                cursor.execute(
                    "SELECT version FROM schema_migrations WHERE component = %s", (component,)
                )
                applied = {int(v) for (v,) in cursor.fetchall()}

                def execute(sql: str, params: Any) -> None:
                    cursor.execute(sql, tuple(params) or None)
                    if sql.startswith("INSERT INTO schema_migrations"):
                        conn.commit()  # the step is complete: record it

                now = datetime.now(UTC).isoformat(timespec="microseconds")
                return migrations.run(execute, component, "mysql", applied, now)
        finally:
            conn.close()  # and with it the named lock
    except pymysql.Error as exc:
        raise StorageError(f"mysql: {exc}") from exc


def error_code(exc: pymysql.Error) -> int:
    code = exc.args[0] if exc.args else 0
    return code if isinstance(code, int) else 0


def undo_to_savepoint(execute: Callable[[str], object], name: str, cause: BaseException) -> None:
    """Undo the scope of savepoint `name`, which `cause` left (the caller re-raises `cause`).

    After a deadlock (1213) InnoDB has already rolled the whole transaction back and the savepoint
    is gone: `ROLLBACK TO SAVEPOINT` fails (1305). When `cause` is itself a driver error, it is
    the one that counts (`MysqlDatabase` retries a deadlock; the transaction is rolled back
    anyway), so the undo's failure is dropped; after any other cause (a refusal, whose record
    must not keep the handler's writes) the undo is required, and its failure is raised."""
    try:
        execute(f"ROLLBACK TO SAVEPOINT {name}")
        execute(f"RELEASE SAVEPOINT {name}")
    except pymysql.Error:
        if not isinstance(cause, pymysql.Error):
            raise
