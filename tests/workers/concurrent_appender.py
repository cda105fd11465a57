"""Concurrency-test worker: one of several processes appending at the same time.

Usage: ``python concurrent_appender.py HOME USER SHARED_ID OWN_ID PROCESS COUNT READY START MODE``

Opens the vault at ``HOME``, creates the file ``READY``, waits until the file ``START``
exists (so every worker starts appending at the same moment), then makes ``COUNT`` rounds
of two appends: one to the conversation every worker shares, one to its own. Each
message's text is :func:`message_text` ``(PROCESS, index, target)``. With ``MODE`` ``attach``
every message also carries :func:`attachment_for` ``(index)``, content that all workers
send at the same time, so the store must deduplicate it under contention.

When done it prints ``<target> <index> <message id>`` for each append, then
``window <start> <end> <slowest>``: the wall-clock times of its first and last append and
the longest one append took (seconds). It never
catches or retries an error: any exception (``database is locked`` included) ends it
with a non-zero status and a traceback on stderr.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from pathlib import Path

START_TIMEOUT_SECONDS = 120.0

#: Distinct attachment contents; message ``index`` carries number ``index % len``.
ATTACHMENT_SIZES = (1, 4_096, 100_000, 262_144)

_TEXT_RE = re.compile(r"proc=(\d+) index=(\d+) target=(shared|own) ü漢😀\x00")


def message_text(process: int, index: int, target: str) -> str:
    return f"proc={process} index={index} target={target} ü漢😀\x00"


def parse_text(text: str) -> tuple[int, int, str]:
    """(process, index, target) of a text made by :func:`message_text`."""
    found = _TEXT_RE.fullmatch(text)
    if found is None:
        raise ValueError(f"not a worker message: {text[:80]!r}")
    return int(found[1]), int(found[2]), found[3]


def attachment_for(index: int) -> bytes:
    size = ATTACHMENT_SIZES[index % len(ATTACHMENT_SIZES)]
    block = hashlib.sha256(f"shared-attachment-{size}".encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def main(argv: list[str]) -> int:
    home, user, shared_id, own_id, process_text, count_text, ready, start, mode = argv
    process, count = int(process_text), int(count_text)
    if mode not in ("text", "attach"):
        raise SystemExit(f"unknown mode {mode!r}")

    import chatkeep

    vault = chatkeep.open(home=Path(home))
    Path(ready).touch()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not Path(start).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"worker {process}: no start signal within {START_TIMEOUT_SECONDS} s")
        time.sleep(0.001)

    lines: list[str] = []
    slowest = 0.0
    began = time.time()
    for index in range(count):
        for target, conversation_id in (("shared", shared_id), ("own", own_id)):
            before = time.monotonic()
            attachments: tuple[chatkeep.NewAttachment, ...] = ()
            if mode == "attach":
                attachments = (
                    chatkeep.NewAttachment(name=f"same-{index}.bin", data=attachment_for(index)),
                )
            text = message_text(process, index, target)
            message = vault.store.append_message(
                user, conversation_id, chatkeep.user_message(text, attachments=attachments)
            )
            slowest = max(slowest, time.monotonic() - before)
            lines.append(f"{target} {index} {message.id}\n")
    ended = time.time()
    vault.close()
    sys.stdout.writelines(lines)
    sys.stdout.write(f"window {began!r} {ended!r} {slowest!r}\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
