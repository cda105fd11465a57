"""Points where a backend built on the SQL store joins its write transactions.

The file backend keeps its system of record in files and uses the SQL store (on SQLite)
as a derived index: it must write the files while the index's write transaction still
holds the lock, and undo them when that transaction does not commit.
"""

from __future__ import annotations

from typing import Any, Protocol


class WriteHooks(Protocol):
    def on_connect(self, dbapi_connection: Any) -> None:
        """A new DBAPI connection is about to be used (install per-connection state)."""

    def before_commit(self, dbapi_connection: Any) -> None:
        """The transaction's changes are complete and about to be committed; raising
        here rolls the transaction back."""

    def after_commit(self) -> None:
        """The transaction committed."""

    def after_rollback(self) -> None:
        """The transaction was rolled back (after ``before_commit`` or not)."""
