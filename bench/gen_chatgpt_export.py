"""Generate a large, realistic ChatGPT export (v1 layout) for import benchmarks.

    .venv/bin/python bench/gen_chatgpt_export.py OUT.zip [--conversations 2000] [--messages 200000]

Every conversation is a ``mapping`` tree with a null root, a hidden system node, user
and assistant turns, regenerations and edited prompts (branches), code blocks,
``multimodal_text`` messages whose image pointers resolve to ``file-<id>-<name>.png``
members, ``thoughts`` nodes, unicode from several scripts, and ``current_node`` on one
of the leaves. Output is written as a stream, so any size fits in memory. The random
generator is seeded: the same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any

WORDS = [
    "schema",
    "vault",
    "branch",
    "message",
    "import",
    "durable",
    "sqlite",
    "index",
    "search",
    "runtime",
    "pin",
    "archive",
    "garden",
    "recipe",
    "travel",
    "budget",
    "poem",
    "kernel",
    "thread",
    "lock",
    "commit",
    "rollback",
    "fsync",
    "tree",
    "日本語",
    "テスト",
    "Ελληνικά",
    "δοκιμή",
    "español",
    "prueba",
    "čeština",
    "😀",
    "🚀",
    "naïve",
    "café",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _png(rng: random.Random) -> bytes:
    """A tiny valid PNG (1x1), different per call."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    pixel = zlib.compress(b"\x00" + bytes(rng.randrange(256) for _ in range(3)))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixel) + chunk(b"IEND", b"")
    )


class Builder:
    def __init__(self, rng: random.Random, start: float) -> None:
        self.rng, self.clock = rng, start
        self.images: list[tuple[str, bytes]] = []

    def _node(
        self, parent: str | None, role: str, content: dict[str, Any], **meta: Any
    ) -> dict[str, Any]:
        self.clock += self.rng.uniform(1, 90)
        node_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
        message = {
            "id": node_id,
            "author": {"role": role, "name": None, "metadata": {}},
            "create_time": self.clock,
            "update_time": None,
            "content": content,
            "status": "finished_successfully",
            "end_turn": role == "assistant",
            "weight": 1.0,
            "metadata": {"model_slug": "gpt-4o"} if role == "assistant" else {},
            "recipient": "all",
            **meta,
        }
        return {"id": node_id, "message": message, "parent": parent, "children": []}

    def _content(self, role: str) -> dict[str, Any]:
        roll = self.rng.random()
        if role == "assistant" and roll < 0.15:
            code = "\n".join(
                f"print({self.rng.randrange(1000)})  # {_text(self.rng, 3)}" for _ in range(4)
            )
            return {
                "content_type": "text",
                "parts": [f"Here:\n```python\n{code}\n```\n{_text(self.rng, 20)}"],
            }
        if role == "user" and roll < 0.05:
            file_id = f"file-{self.rng.getrandbits(64):016x}"
            name = f"photo{len(self.images)}.png"
            self.images.append((f"{file_id}-{name}", _png(self.rng)))
            pointer = {
                "content_type": "image_asset_pointer",
                "asset_pointer": f"file-service://{file_id}",
                "size_bytes": 80,
                "width": 1,
                "height": 1,
            }
            return {"content_type": "multimodal_text", "parts": [pointer, _text(self.rng, 8)]}
        if role == "assistant" and roll < 0.2:
            return {
                "content_type": "thoughts",
                "thoughts": [{"summary": "thinking", "content": _text(self.rng, 30)}],
            }
        return {"content_type": "text", "parts": [_text(self.rng, self.rng.randint(5, 80))]}

    def conversation(self, index: int, messages: int) -> dict[str, Any]:
        mapping: dict[str, dict[str, Any]] = {}
        root: dict[str, Any] = {
            "id": f"root-{index}",
            "message": None,
            "parent": None,
            "children": [],
        }
        mapping[root["id"]] = root
        system = self._node(
            root["id"], "system", {"content_type": "text", "parts": [""]}, weight=0.0
        )
        system["message"]["metadata"]["is_visually_hidden_from_conversation"] = True
        mapping[system["id"]] = system
        tips = [system["id"]]
        role = "user"
        while len(mapping) - 1 < messages:
            parent = tips[-1]
            if len(tips) > 2 and self.rng.random() < 0.06:  # a regeneration or an edit
                parent = mapping[tips[-1]]["parent"] or tips[-1]
            node = self._node(parent, role, self._content(role))
            mapping[node["id"]] = node
            mapping[parent]["children"].append(node["id"])
            tips.append(node["id"])
            role = "assistant" if role == "user" else "user"
        created = mapping[system["id"]]["message"]["create_time"]
        return {
            "id": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "conversation_id": None,
            "title": f"{_text(self.rng, 3)} #{index}",
            "create_time": created,
            "update_time": self.clock,
            "mapping": mapping,
            "current_node": tips[-1],
            "default_model_slug": "gpt-4o",
            "is_archived": self.rng.random() < 0.03,
            "moderation_results": [],
        }


def generate(out: Path, conversations: int, messages: int, seed: int = 42) -> dict[str, int]:
    rng = random.Random(seed)
    builder = Builder(rng, start=1_700_000_000.0)
    per = max(2, messages // conversations)
    written = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("conversations.json", "w", force_zip64=True) as handle:
            handle.write(b"[")
            for index in range(conversations):
                left = messages - written
                count = left if index == conversations - 1 else min(per, left)
                conversation = builder.conversation(index, max(count, 1))
                conversation["conversation_id"] = conversation["id"]
                written += len(conversation["mapping"]) - 1
                handle.write(
                    (b"," if index else b"") + json.dumps(conversation, ensure_ascii=False).encode()
                )
            handle.write(b"]")
        for name, data in builder.images:
            archive.writestr(name, data)
        archive.writestr(
            "user.json", json.dumps({"id": "user-bench", "email": "bench@example.org"})
        )
    return {"conversations": conversations, "messages": written, "images": len(builder.images)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--conversations", type=int, default=2_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(generate(args.out, args.conversations, args.messages, args.seed))


if __name__ == "__main__":
    main()
