"""Reading JSON members of an export: one BOM rule and one error message for all formats."""

from __future__ import annotations

import io
from typing import BinaryIO, Final

from chatkeep.errors import ImportFormatError
from chatkeep.importers.source import ExportSource

BOM: Final = b"\xef\xbb\xbf"


def open_json(source: ExportSource, name: str) -> BinaryIO:
    """A member's stream with a UTF-8 byte-order mark (left by re-saving editors) skipped."""
    handle = source.open_member(name)
    if isinstance(handle, io.BufferedReader) and handle.peek(3)[:3] == BOM:
        handle.read(3)
    return handle


def json_error(name: str, exc: Exception, *, again: str = "the export") -> ImportFormatError:
    """The error for a member that is not valid JSON, naming the file and the reason."""
    lines = str(exc).strip().splitlines()
    reason = lines[0].strip() if lines else type(exc).__name__
    return ImportFormatError(
        f"{name} is not valid JSON ({reason})",
        hint=f"the file is truncated or damaged; download {again} again",
    )
