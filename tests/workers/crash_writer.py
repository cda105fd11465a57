"""Crash-test worker: append messages to one conversation until killed.

Usage: ``python crash_writer.py HOME USER CONVERSATION_ID SEED``

Opens the vault at ``HOME``, prints ``ready <pid>``, then appends message 0, 1, 2, ... to
the conversation. After each ``append_message`` returns it prints one line::

    ack <index> <message id> <sha256 of the text sent> <sha256 of the attachment or ->

and flushes, so every line the parent reads names a write the store acknowledged. The
content of message ``index`` is :func:`payload` ``(seed, index)``, which the parent
regenerates to check what survived. The worker never catches an error: any exception
ends it with a non-zero status and a traceback on stderr.

It stops by itself only if its parent goes away (so an interrupted test run cannot leave
it writing forever) or after :data:`MAX_MESSAGES` messages.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from pathlib import Path
from typing import NamedTuple

MAX_MESSAGES = 100_000

#: Pieces the text is built from: ASCII, accents, CJK, emoji (also ZWJ sequences),
#: right-to-left scripts, combining marks, NUL and other control and separator characters.
FRAGMENTS = (
    "hello ",
    "a",
    "The quick brown fox. ",
    "0123456789",
    "ü",
    "ß",
    "€",
    "é",
    "e\u0301",
    "漢字",
    "日本語のテキスト",
    "😀",
    "👩\u200d💻",
    "𝄞",
    "עברית",
    "العربية",
    "Ω≈ç√",
    "\x00",
    "\x00\x00",
    "\x01\x1f\x7f",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\r\n",
    "\n",
    "\t",
    '"quoted" \\ backslash',
    "{'json': [1, 2]}",
)

#: (lowest, highest) text size in UTF-8 bytes, and how often each range is drawn.
SIZE_RANGES = ((1, 64), (64, 4_096), (4_096, 65_536), (65_536, 262_144))
SIZE_WEIGHTS = (4, 3, 2, 2)

#: Bytes every few messages attach: the same content in every run, so it deduplicates.
SHARED_ATTACHMENT = b"chatkeep shared attachment \x00\xff" * 1_000


class Attachment(NamedTuple):
    name: str
    data: bytes


class Payload(NamedTuple):
    text: str
    attachment: Attachment | None


def _text(rng: random.Random, size: int) -> str:
    pieces: list[str] = []
    length = 0
    while length < size:
        batch = rng.choices(FRAGMENTS, k=max(1, (size - length) // 4))
        pieces.extend(batch)
        length += sum(len(p.encode("utf-8")) for p in batch)
    text = "".join(pieces)
    # Trim to about ``size`` bytes without splitting a character.
    return text.encode("utf-8")[:size].decode("utf-8", errors="ignore") or "\x00"


def payload(seed: int, index: int) -> Payload:
    """The message the worker sends as number ``index`` of the run with ``seed``."""
    rng = random.Random(f"crash-payload:{seed}:{index}")
    low, high = rng.choices(SIZE_RANGES, weights=SIZE_WEIGHTS)[0]
    text = _text(rng, rng.randint(low, high))
    attachment = None
    if index % 3 == 2:
        if index % 9 == 8:
            attachment = Attachment("shared ü.bin", SHARED_ATTACHMENT)
        else:
            low, high = rng.choices(SIZE_RANGES, weights=SIZE_WEIGHTS)[0]
            attachment = Attachment(f"file-{index}.bin", rng.randbytes(rng.randint(low, high)))
    return Payload(text, attachment)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def main(argv: list[str]) -> int:
    home, user, conversation_id, seed_text = argv
    seed = int(seed_text)
    parent = os.getppid()

    import chatkeep

    vault = chatkeep.open(home=Path(home))
    out = sys.stdout
    out.write(f"ready {os.getpid()}\n")
    out.flush()
    for index in range(MAX_MESSAGES):
        if os.getppid() != parent:
            return 3  # orphaned: the test that started us is gone
        sent = payload(seed, index)
        attachments: tuple[chatkeep.NewAttachment, ...] = ()
        if sent.attachment is not None:
            attachments = (
                chatkeep.NewAttachment(name=sent.attachment.name, data=sent.attachment.data),
            )
        message = vault.store.append_message(
            user, conversation_id, chatkeep.user_message(sent.text, attachments=attachments)
        )
        attachment_sha = (
            hashlib.sha256(sent.attachment.data).hexdigest() if sent.attachment else "-"
        )
        out.write(f"ack {index} {message.id} {sha256_text(sent.text)} {attachment_sha}\n")
        out.flush()
    vault.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
