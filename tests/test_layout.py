"""One place per concern: static checks on where SQL and file writes may appear."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "chatkeep"
SQL_HOMES = {"backends", "migrations"}
SQL_CALL = re.compile(r"\.(execute|exec_driver_sql|executemany)\(|\bsqlite3\.connect\(")
FILE_WRITE = re.compile(
    r"open\([^)]*['\"][wax]b?\+?['\"]|\.write_(text|bytes)\(|os\.(replace|rename)\(|\.unlink\("
)


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_sql_runs_only_in_backends_and_migrations() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in _modules()
        if path.relative_to(PACKAGE).parts[0] not in SQL_HOMES
        and SQL_CALL.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_files_are_written_only_by_fsutil() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in _modules()
        if path.name != "fsutil.py" and FILE_WRITE.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_no_sql_is_built_from_formatted_strings() -> None:
    formatted_sql = re.compile(r"(execute|exec_driver_sql)\(\s*f[\"']")
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in _modules()
        if formatted_sql.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
