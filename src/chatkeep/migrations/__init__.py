"""Forward-only schema migrations, one list per database dialect.

Each migration runs in its own write transaction together with the row that records it,
so a migration that fails leaves no trace and stays pending. A database that records a
migration this code does not know was written by a newer chatkeep and is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, inspect, text

from chatkeep.errors import ChatkeepError, MigrationError, VaultTooNew


@dataclass(frozen=True, slots=True)
class Migration:
    """A named schema change; names are ``mNNNN_description``, unique and ordered."""

    name: str
    apply: Callable[[Connection], None]


_LEDGER_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " name TEXT PRIMARY KEY,"  # the migration's unique name
    " applied_at TEXT NOT NULL"  # ISO-8601 UTC, for the record
    ")"
)


def applied_migrations(engine: Engine) -> list[str]:
    """Names of the migrations recorded in the database (read-only)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_migrations"):
            return []
        return [row[0] for row in conn.execute(text("SELECT name FROM schema_migrations"))]


def pending_migrations(engine: Engine, migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations not applied yet; refuse a database newer than ``migrations``."""
    applied = set(applied_migrations(engine))
    known = {m.name for m in migrations}
    unknown = sorted(applied - known)
    if unknown:
        raise VaultTooNew(
            f"the database records migrations this chatkeep does not know: {', '.join(unknown)}",
            hint="upgrade chatkeep to open this vault; nothing was changed",
        )
    return [m for m in migrations if m.name not in applied]


def migrate(
    engine: Engine,
    migrations: Sequence[Migration],
    *,
    write_options: dict[str, str],
) -> list[str]:
    """Apply every pending migration, each in one transaction with its record."""
    done: list[str] = []
    for migration in pending_migrations(engine, migrations):
        with engine.connect().execution_options(**write_options) as conn, conn.begin():
            conn.execute(text(_LEDGER_DDL))
            # Another process may have applied it while we waited for the write lock.
            already = conn.execute(
                text("SELECT 1 FROM schema_migrations WHERE name = :name"),
                {"name": migration.name},
            ).first()
            if already is not None:
                continue
            try:
                migration.apply(conn)
            except ChatkeepError:
                raise
            except Exception as exc:
                raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
            conn.execute(
                text("INSERT INTO schema_migrations (name, applied_at) VALUES (:name, :at)"),
                {"name": migration.name, "at": datetime.now(UTC).isoformat()},
            )
        done.append(migration.name)
    return done
