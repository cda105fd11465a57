"""Schema migrations: the schema they build, and the runner's all-or-nothing rules."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, Engine, inspect, text

import chatkeep
import chatkeep.backends
import chatkeep.migrations
from chatkeep.backends import schema
from chatkeep.backends.sqlite import WRITE_OPTIONS, create_sqlite_engine
from chatkeep.cli import cli
from chatkeep.errors import InvalidInput, MigrationError, VaultTooNew
from chatkeep.migrations import Migration, applied_migrations, migrate, pending_migrations
from chatkeep.migrations.sqlite import MIGRATIONS


# -- the schema the migrations build -----------------------------------------------
@pytest.fixture
def fresh_engine(tmp_path: Path) -> Iterator[Engine]:
    with chatkeep.open(home=tmp_path / "home", create=True) as vault:
        database = vault.paths.database
    engine = create_sqlite_engine(database)
    try:
        yield engine
    finally:
        engine.dispose()


def _is_rowid_alias(engine: Engine, table: str, column: str) -> bool:
    """An INTEGER PRIMARY KEY column is SQLite's rowid: it can never hold NULL."""
    inspector = inspect(engine)
    pk = inspector.get_pk_constraint(table)["constrained_columns"]
    declared = {c["name"]: str(c["type"]).upper() for c in inspector.get_columns(table)}
    return pk == [column] and declared[column] == "INTEGER"


def _database_nullability(engine: Engine) -> dict[tuple[str, str], bool]:
    inspector = inspect(engine)
    return {
        (table.name, column["name"]): column["nullable"]
        and not _is_rowid_alias(engine, table.name, column["name"])
        for table in schema.metadata.sorted_tables
        for column in inspector.get_columns(table.name)
    }


# The full-text index: virtual tables and their shadow tables, queried by the search
# backend directly rather than through the Core metadata.
SEARCH_TABLES = {
    f"{index}{suffix}"
    for index in ("messages_fts", "conversations_fts")
    for suffix in ("", "_config", "_data", "_docsize", "_idx", "_content")
} - {"messages_fts_content"}


def test_tables_match_the_metadata(fresh_engine: Engine) -> None:
    tables = set(inspect(fresh_engine).get_table_names())
    assert tables - {"schema_migrations"} - SEARCH_TABLES == set(schema.metadata.tables)
    assert tables >= SEARCH_TABLES
    assert "schema_migrations" in tables


@pytest.mark.parametrize("table", sorted(schema.metadata.tables))
def test_columns_match_the_metadata(fresh_engine: Engine, table: str) -> None:
    inspector = inspect(fresh_engine)
    in_database = [c["name"] for c in inspector.get_columns(table)]
    in_metadata = [c.name for c in schema.metadata.tables[table].columns]
    assert in_database == in_metadata
    database_pk = inspector.get_pk_constraint(table)["constrained_columns"]
    assert database_pk == [c.name for c in schema.metadata.tables[table].primary_key]


def test_nullability_of_non_key_columns_matches(fresh_engine: Engine) -> None:
    nullable = _database_nullability(fresh_engine)
    mismatches = [
        (table.name, column.name, nullable[table.name, column.name], column.nullable)
        for table in schema.metadata.sorted_tables
        for column in table.columns
        if not column.primary_key and nullable[table.name, column.name] != column.nullable
    ]
    assert mismatches == []


def test_primary_key_columns_are_not_null(fresh_engine: Engine) -> None:
    nullable = _database_nullability(fresh_engine)
    loose = sorted(
        f"{table.name}.{column.name}"
        for table in schema.metadata.sorted_tables
        for column in table.primary_key
        if nullable[table.name, column.name]
    )
    assert loose == []


def test_unique_message_ids(fresh_engine: Engine) -> None:
    inspector = inspect(fresh_engine)
    unique = [u["column_names"] for u in inspector.get_unique_constraints("messages")]
    assert ["id"] in unique
    assert ["conversation_id", "seq"] in unique


def test_a_fresh_vault_records_every_migration_once(fresh_engine: Engine) -> None:
    assert applied_migrations(fresh_engine) == [m.name for m in MIGRATIONS]
    assert pending_migrations(fresh_engine, MIGRATIONS) == []


def test_migration_names_are_unique_and_ordered() -> None:
    names = [m.name for m in MIGRATIONS]
    assert len(set(names)) == len(names)
    assert names == sorted(names)
    assert all(re.fullmatch(r"m\d{4}_[a-z0-9_]+", name) for name in names)


# -- the runner ----------------------------------------------------------------------
@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    built = create_sqlite_engine(tmp_path / "throwaway.db")
    try:
        yield built
    finally:
        built.dispose()


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def ledger(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_migrations"):
            return []
        return [
            (row[0], row[1])
            for row in conn.execute(
                text("SELECT name, applied_at FROM schema_migrations ORDER BY name")
            )
        ]


class Counter:
    """Migrations that count how often they ran."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def creating(self, name: str, table: str) -> Migration:
        def apply(conn: Connection) -> None:
            self.calls[name] = self.calls.get(name, 0) + 1
            conn.exec_driver_sql(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT)")
            conn.exec_driver_sql(f"INSERT INTO {table} (v) VALUES ('{name}')")

        return Migration(name, apply)

    def failing(
        self, name: str, table: str, error: Callable[[], Exception] = lambda: RuntimeError("boom")
    ) -> Migration:
        def apply(conn: Connection) -> None:
            self.calls[name] = self.calls.get(name, 0) + 1
            conn.exec_driver_sql(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
            conn.exec_driver_sql(f"INSERT INTO {table} (id) VALUES (1)")
            raise error()

        return Migration(name, apply)


def run(engine: Engine, migrations: list[Migration]) -> list[str]:
    return migrate(engine, migrations, write_options=WRITE_OPTIONS)


def test_migrations_apply_in_order_and_once(engine: Engine) -> None:
    counter = Counter()
    migrations = [counter.creating("m0001_a", "a"), counter.creating("m0002_b", "b")]
    assert run(engine, migrations) == ["m0001_a", "m0002_b"]
    assert {"a", "b"} <= tables(engine)
    assert [name for name, _ in ledger(engine)] == ["m0001_a", "m0002_b"]
    assert run(engine, migrations) == []
    assert counter.calls == {"m0001_a": 1, "m0002_b": 1}


def test_a_failing_migration_rolls_back_completely(engine: Engine) -> None:
    counter = Counter()
    good = counter.creating("m0001_good", "good")
    broken = counter.failing("m0002_broken", "half_done")
    after = counter.creating("m0003_after", "after")
    with pytest.raises(MigrationError) as raised:
        run(engine, [good, broken, after])
    assert "m0002_broken" in raised.value.message
    assert "boom" in raised.value.message
    assert raised.value.exit_code == 8
    assert "half_done" not in tables(engine)
    assert "after" not in tables(engine)
    assert [name for name, _ in ledger(engine)] == ["m0001_good"]
    assert [m.name for m in pending_migrations(engine, [good, broken, after])] == [
        "m0002_broken",
        "m0003_after",
    ]

    fixed = counter.creating("m0002_broken", "half_done")
    assert run(engine, [good, fixed, after]) == ["m0002_broken", "m0003_after"]
    assert run(engine, [good, fixed, after]) == []
    assert counter.calls == {"m0001_good": 1, "m0002_broken": 2, "m0003_after": 1}
    assert [name for name, _ in ledger(engine)] == ["m0001_good", "m0002_broken", "m0003_after"]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id FROM half_done")).all()
        assert len(rows) == 1  # only the fixed migration's row, none from the failed try


def test_a_failing_first_migration_leaves_no_trace(engine: Engine) -> None:
    counter = Counter()
    with pytest.raises(MigrationError):
        run(engine, [counter.failing("m0001_broken", "t")])
    assert tables(engine) == set()
    assert applied_migrations(engine) == []


def test_a_chatkeep_error_in_a_migration_passes_through_and_rolls_back(engine: Engine) -> None:
    counter = Counter()
    broken = counter.failing("m0001_refuses", "t", error=lambda: InvalidInput("bad data"))
    with pytest.raises(InvalidInput, match="bad data"):
        run(engine, [broken])
    assert "t" not in tables(engine)
    assert applied_migrations(engine) == []


def test_a_migration_applied_meanwhile_is_not_applied_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may apply a migration between the pending check and the lock."""
    counter = Counter()
    migrations = [counter.creating("m0001_a", "a"), counter.creating("m0002_b", "b")]
    run(engine, migrations[:1])
    monkeypatch.setattr(
        chatkeep.migrations, "pending_migrations", lambda _engine, wanted: list(wanted)
    )
    assert run(engine, migrations) == ["m0002_b"]
    assert counter.calls == {"m0001_a": 1, "m0002_b": 1}


def database_digest(engine: Engine, path: Path) -> str:
    engine.dispose()  # checkpoint the WAL into the main file
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_unknown_recorded_migration_is_refused_and_nothing_changes(
    engine: Engine, tmp_path: Path
) -> None:
    counter = Counter()
    newer = [counter.creating("m0001_a", "a"), counter.creating("m0002_future", "future")]
    run(engine, newer)
    before_ledger = ledger(engine)
    before = database_digest(engine, tmp_path / "throwaway.db")

    older = [counter.creating("m0001_a", "a"), counter.creating("m0002_other", "other")]
    with pytest.raises(VaultTooNew) as raised:
        run(engine, older)
    assert "m0002_future" in raised.value.message
    with pytest.raises(VaultTooNew):
        pending_migrations(engine, older[:1])
    assert "other" not in tables(engine)
    assert ledger(engine) == before_ledger
    assert database_digest(engine, tmp_path / "throwaway.db") == before
    assert counter.calls == {"m0001_a": 1, "m0002_future": 1}


# -- migrations on real vaults -------------------------------------------------------
def vault_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_vault_recording_an_unknown_migration_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with chatkeep.open(home=home, create=True) as vault:
        vault.store.add_user("alice")
        database = vault.paths.database
        root = vault.root
    future = create_sqlite_engine(database)
    with future.connect().execution_options(**WRITE_OPTIONS) as conn, conn.begin():
        conn.execute(
            text("INSERT INTO schema_migrations (name, applied_at) VALUES (:n, :at)"),
            {"n": "m9999_from_the_future", "at": "2099-01-01T00:00:00+00:00"},
        )
    future.dispose()
    before = vault_files(root)

    with pytest.raises(VaultTooNew) as raised:
        chatkeep.open(home=home)
    assert "m9999_from_the_future" in raised.value.message
    result = CliRunner().invoke(cli, ["--home", str(home), "user", "ls"])
    assert result.exit_code == 8
    assert result.stderr.startswith("error: the database records migrations")
    assert "Traceback" not in result.output
    assert vault_files(root) == before


def test_reopening_a_vault_applies_nothing_and_keeps_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied: list[list[str]] = []

    def recording_migrate(*args: object, **kwargs: object) -> list[str]:
        done = migrate(*args, **kwargs)  # type: ignore[arg-type]
        applied.append(done)
        return done

    monkeypatch.setattr(chatkeep.backends, "migrate", recording_migrate)
    home = tmp_path / "home"
    with chatkeep.open(home=home, create=True) as vault:
        vault.store.add_user("alice")
        vault.store.create_runtime("alice", "synth")
        home_id = vault.store.route("alice", "synth").id
        message = vault.store.append_message("alice", home_id, chatkeep.user_message("kept"))
        engine = create_sqlite_engine(vault.paths.database)
        first_ledger = ledger(engine)
        engine.dispose()
    assert applied == [[m.name for m in MIGRATIONS]]

    for _ in range(2):
        with chatkeep.open(home=home) as vault:
            assert [m.id for m in vault.store.list_messages("alice", home_id)] == [message.id]
            assert vault.store.get_message("alice", message.id).text == "kept"
            engine = create_sqlite_engine(vault.paths.database)
            assert ledger(engine) == first_ledger
            engine.dispose()
    assert applied == [[m.name for m in MIGRATIONS], [], []]


def test_a_failing_migration_on_open_leaves_the_vault_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    with chatkeep.open(home=home, create=True) as vault:
        vault.store.add_user("alice")
        database = vault.paths.database
    counter = Counter()
    monkeypatch.setattr(
        chatkeep.backends,
        "SQLITE_MIGRATIONS",
        [*MIGRATIONS, counter.failing("m9000_broken", "broken")],
    )
    with pytest.raises(MigrationError):
        chatkeep.open(home=home)
    result = CliRunner().invoke(cli, ["--home", str(home), "user", "ls", "--json"])
    assert result.exit_code == 8
    assert '"migration_failed"' in result.stdout
    engine = create_sqlite_engine(database)
    try:
        assert "broken" not in tables(engine)
        assert applied_migrations(engine) == [m.name for m in MIGRATIONS]
    finally:
        engine.dispose()

    monkeypatch.setattr(chatkeep.backends, "SQLITE_MIGRATIONS", MIGRATIONS)
    with chatkeep.open(home=home) as vault:
        assert [u.id for u in vault.store.list_users()] == ["alice"]
