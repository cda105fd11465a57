"""Export and backup of a large vault, beside a plain recursive copy of its folder.

    .venv/bin/python bench/export_backup.py            # 200,000 messages
    .venv/bin/python bench/export_backup.py --quick    # 20,000 messages, a smoke run

The vault (SQLite) gets N messages of generated text in conversations of 100 messages
across 4 runtimes, loaded with ``store.append_messages``, and one small attachment per
1,000 messages. Then, each timed ``--runs`` times (median reported), into a fresh path:

* ``export json``: ``chatkeep.exporting.export_vault(format="json")``: one consistent
  snapshot, rows streamed as JSON, attachments base64 at the end, fsynced.
* ``export zip``: the same JSON deflated into a zip, attachments as files, one Markdown
  file per conversation (read back through the store) and a manifest of sha256s.
* ``backup``: ``chatkeep.backup.backup_vault``: JSONL per table, blobs, manifest.
* ``import json`` / ``import zip``: ``import_chatkeep_export`` of those files into an
  empty vault (validation pass, then one ``load_tables`` transaction).
* **baseline**: ``shutil.copytree`` of the vault folder (database, WAL, blobs): the
  cost of moving the bytes at all, with no snapshot, no encoding and no fsync.

Each line prints seconds, MB/s (of the vault folder's size, so the lines compare) and
the ratio to the copy measured in the same run. No target: the figures say what an
export costs against the cheapest possible copy.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chatkeep
from _common import emit, progress
from chatkeep.backup import backup_vault
from chatkeep.exporting import export_vault, import_chatkeep_export

PER_CONVERSATION = 100
RUNTIMES = ("work", "home", "study", "misc")
WORDS = [
    "".join(random.Random(i).choice("bcdfghjklmnprstvzaeiou") for _ in range(3 + i % 7))
    for i in range(5000)
]


def load(vault: chatkeep.Vault, messages: int) -> None:
    store, rng = vault.store, random.Random(7)
    store.add_user("bench")
    for runtime in RUNTIMES:
        store.create_runtime("bench", runtime)
    done, started = 0, time.perf_counter()
    while done < messages:
        runtime = RUNTIMES[(done // PER_CONVERSATION) % len(RUNTIMES)]
        title = " ".join(rng.choices(WORDS, k=4))
        conversation = store.create_conversation("bench", runtime, title=title).id
        batch = []
        for i in range(min(PER_CONVERSATION, messages - done)):
            number = done + i
            attachments = ()
            if number % 1000 == 999:
                data = rng.randbytes(16 * 1024)
                attachments = (chatkeep.NewAttachment(name=f"file-{number}.bin", data=data),)
            batch.append(
                chatkeep.NewMessage(
                    role="user" if i % 2 == 0 else "assistant",
                    parts=(
                        chatkeep.Part("text", " ".join(rng.choices(WORDS, k=rng.randint(8, 80)))),
                    ),
                    tokens=rng.randint(5, 500),
                    attachments=attachments,
                )
            )
        store.append_messages("bench", conversation, batch)
        done += len(batch)
        if done % 50_000 == 0:
            progress(f"  loaded {done:,} messages ({time.perf_counter() - started:.0f} s)")
    progress(f"loaded {messages:,} messages in {time.perf_counter() - started:.1f} s")


def folder_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(
    action: Callable[[Path], object], scratch: Path, name: str, runs: int
) -> tuple[float, int]:
    """Median seconds of ``runs`` calls, each into a new path; the output's size."""
    seconds, size = [], 0
    for run in range(runs):
        target = scratch / f"{name}-{run}"
        start = time.perf_counter()
        action(target)
        seconds.append(time.perf_counter() - start)
        size = folder_size(target)
        if run < runs - 1:
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
    return statistics.median(seconds), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=None, help="default 200,000")
    parser.add_argument("--quick", action="store_true", help="20,000 messages")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per line (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    messages = args.messages or (20_000 if args.quick else 200_000)
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as scratch_name:
        scratch = Path(scratch_name)
        with chatkeep.open(home=scratch / "home", create=True, url="") as vault:
            load(vault, messages)
            root = vault.root
            vault_bytes = folder_size(root)
            lines: dict[str, tuple[float, int]] = {}
            lines["copy (baseline)"] = timed(
                lambda out: shutil.copytree(root, out), scratch, "copy", args.runs
            )
            lines["export json"] = timed(
                lambda out: export_vault(vault, out, format="json"), scratch, "json", args.runs
            )
            lines["export zip"] = timed(
                lambda out: export_vault(vault, out, format="zip"), scratch, "zip", args.runs
            )
            lines["backup"] = timed(
                lambda out: backup_vault(vault, out), scratch, "backup", args.runs
            )

        def importer(source: Path) -> Callable[[Path], object]:
            def run(out: Path) -> None:
                with chatkeep.open(home=out, create=True, url="") as target:
                    import_chatkeep_export(target, source)

            return run

        lines["import json"] = timed(
            importer(scratch / f"json-{args.runs - 1}"), scratch, "import-json", args.runs
        )
        lines["import zip"] = timed(
            importer(scratch / f"zip-{args.runs - 1}"), scratch, "import-zip", args.runs
        )
    copy_seconds = lines["copy (baseline)"][0]
    report = [
        f"vault: {messages:,} messages, {vault_bytes / 1e6:,.1f} MB on disk; median of "
        f"{args.runs} runs",
        f"{'':<16} {'seconds':>9} {'MB/s':>9} {'x copy':>8} {'output MB':>10}",
    ]
    figures: dict[str, object] = {"messages": messages, "vault_bytes": vault_bytes, "lines": {}}
    for name, (seconds, size) in lines.items():
        rate = vault_bytes / 1e6 / seconds
        ratio = seconds / copy_seconds
        report.append(f"{name:<16} {seconds:>9.2f} {rate:>9.1f} {ratio:>8.1f} {size / 1e6:>10.1f}")
        figures["lines"][name] = {  # type: ignore[index]
            "seconds": round(seconds, 4),
            "mb_per_s": round(rate, 2),
            "ratio_to_copy": round(ratio, 2),
            "output_bytes": size,
        }
    emit(report, figures, args.json)


if __name__ == "__main__":
    main()
