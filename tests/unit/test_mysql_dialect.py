"""The shared SQL texts as MariaDB reads them (`adapters.mysql_dialect.translate`): each rewrite
does what its docstring says and nothing more (the contract suites run the result on a server)."""

from __future__ import annotations

from repository_after.adapters.mysql_dialect import translate, translate_schema
from repository_after.participant_kit.retention import _ADD_TOTALS
from repository_after.participant_kit.storage import RECORDS_SCHEMA
from repository_after.services.classes import SCHEMA as CLASSES
from repository_after.services.inventory import SCHEMA as INVENTORY
from repository_after.services.pupils import SCHEMA as PUPILS


def test_placeholders_become_percent_s_and_a_literal_percent_is_doubled() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE 'x%'") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%'"
    )


def test_the_column_key_is_quoted_and_nothing_else_that_spells_key() -> None:
    assert translate("SELECT key, created_key FROM t WHERE key = ? ORDER BY key") == (
        "SELECT `key`, created_key FROM t WHERE `key` = %s ORDER BY `key`"
    )
    assert "PRIMARY KEY (operation, `key`)" in translate(RECORDS_SCHEMA[0])


def test_an_upsert_on_conflict_becomes_on_duplicate_key_update() -> None:
    assert translate(_ADD_TOTALS) == (
        "INSERT INTO participant_retention (operation, purged, purged_applied) VALUES"
        " (%s, %s, %s) ON DUPLICATE KEY UPDATE purged = participant_retention.purged"
        " + VALUES(purged), purged_applied = participant_retention.purged_applied"
        " + VALUES(purged_applied)"
    )


def test_text_keys_become_varchars_other_text_longtext_and_the_table_gets_its_options() -> None:
    records = translate(RECORDS_SCHEMA[0])
    assert "operation VARCHAR(255) NOT NULL" in records
    assert "`key` VARCHAR(255) NOT NULL" in records
    assert "request LONGTEXT NOT NULL" in records
    assert "body LONGTEXT NOT NULL" in records
    assert records.endswith(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin")
    stock, reservations, lines = (translate(sql) for sql in INVENTORY)
    assert stock.startswith("CREATE TABLE IF NOT EXISTS stock (sku VARCHAR(255) PRIMARY KEY,")
    assert "state LONGTEXT NOT NULL CHECK (state IN ('reserved', 'released', 'sold'))" in (
        reservations
    )
    assert "reservation_id VARCHAR(255) NOT NULL REFERENCES reservations" in lines  # a key
    assert "sku VARCHAR(255) NOT NULL REFERENCES stock (sku)" in lines


def test_statements_other_than_create_table_keep_their_text_types() -> None:
    assert translate("SELECT CAST(x AS TEXT) FROM t") == "SELECT CAST(x AS TEXT) FROM t"


def test_a_text_column_an_index_of_the_schema_names_is_a_key_of_its_table() -> None:
    classes_table, roster, index = translate_schema(CLASSES)
    assert "class_id VARCHAR(255) NOT NULL REFERENCES classes (class_id)" in roster
    assert "enrolled_key LONGTEXT NOT NULL" in roster
    assert classes_table.startswith(
        "CREATE TABLE IF NOT EXISTS classes (class_id VARCHAR(255) PRIMARY KEY,"
    )
    assert index == "CREATE INDEX IF NOT EXISTS roster_by_class ON roster (class_id, pupil_id)"
    pupils, by_key = translate_schema(PUPILS)
    assert pupils.count("LONGTEXT") == 1  # class_id
    assert "assigned_key VARCHAR(255)," in pupils  # named by `pupils_by_key`
    assert by_key == "CREATE INDEX IF NOT EXISTS pupils_by_key ON pupils (assigned_key)"
    table, index = translate_schema(
        ("CREATE TABLE IF NOT EXISTS t (a TEXT NOT NULL, b TEXT)", "CREATE INDEX i ON t (a)")
    )
    assert "(a VARCHAR(255) NOT NULL, b LONGTEXT)" in table
    assert index == "CREATE INDEX i ON t (a)"


def test_an_insert_on_conflict_do_nothing_becomes_a_no_op_update_of_its_key() -> None:
    assert translate("INSERT INTO p (a, b) VALUES (?, ?) ON CONFLICT (a) DO NOTHING") == (
        "INSERT INTO p (a, b) VALUES (%s, %s) ON DUPLICATE KEY UPDATE a = a"
    )
