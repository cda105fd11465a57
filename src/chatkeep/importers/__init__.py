"""Export formats chatkeep reads, and how it recognises them.

Each importer module provides an object with ``platform`` (a short name used by
``--format``), ``description``, ``detect(source) -> bool`` (by content, cheaply) and
``parse(source) -> ParsedExport``. Detection tries them in the order of
:data:`IMPORTERS`; the first that recognises the export wins.
"""

from __future__ import annotations

from typing import Protocol

from chatkeep.errors import ImportFormatError
from chatkeep.importers.model import ParsedExport
from chatkeep.importers.source import ExportSource


class Importer(Protocol):
    platform: str
    description: str

    def detect(self, source: ExportSource) -> bool: ...

    def parse(self, source: ExportSource) -> ParsedExport: ...


def registered() -> list[Importer]:
    """Every importer, in detection order."""
    from chatkeep.importers import chatgpt, claude, gemini, vvault

    return [chatgpt.IMPORTER, claude.IMPORTER, gemini.IMPORTER, vvault.IMPORTER]


def supported() -> str:
    return ", ".join(f"{i.platform} ({i.description})" for i in registered())


def choose(source: ExportSource, platform: str | None = None) -> Importer:
    """The importer for ``source``: the one named by ``platform``, or the detected one."""
    importers = registered()
    if platform is not None:
        for importer in importers:
            if importer.platform == platform:
                return importer
        raise ImportFormatError(
            f"unknown format {platform!r}", hint=f"supported formats: {supported()}"
        )
    for importer in importers:
        if importer.detect(source):
            return importer
    raise ImportFormatError(
        f"{source.label} is not an export chatkeep recognises",
        hint=f"supported formats: {supported()}",
    )
