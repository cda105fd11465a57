"""Import a large generated ChatGPT export; compare with a streaming-parse + bulk-insert floor.

    .venv/bin/python bench/import_export.py                 # 2,000 conversations, 200,000 messages
    .venv/bin/python bench/import_export.py --scale 4       # four times larger: RSS must not grow
    .venv/bin/python bench/import_export.py --quick         # 200 / 20,000, a smoke run
    .venv/bin/python bench/import_export.py --repeat 3      # medians of three pairs

Each side runs in its own process, so its peak RSS (``ru_maxrss``) is its own:

* **chatkeep**: ``chatkeep.importing.import_export`` into a fresh vault: detection,
  streaming parse, graph repair, validation, attachments, one transaction.
* **floor**: the same ``conversations.json`` streamed with ijson and every mapping node
  with a message bulk-inserted (``executemany``, one transaction) as rows of the same
  ``conversations`` and ``messages`` tables, with content encoded and hashed the same way,
  WAL and ``synchronous=FULL``. No attachments, no validation, no merge.

Targets: chatkeep wall time at most 1.3x the floor; chatkeep peak RSS at most 300 MB,
and still under it at four times the size.

On a shared machine one pair says little: ``--repeat`` runs several pairs on the same
file, each side first in turn (so a load that comes and goes hits both alike), and
reports the median of the ratios and of each side's figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHATKEEP_SIDE = textwrap.dedent(
    """
    import json, resource, sys, time
    import chatkeep
    from chatkeep.importing import import_export
    export, home = sys.argv[1], sys.argv[2]
    with chatkeep.open(home=home, create=True) as vault:
        vault.store.add_user("bench")
        start = time.perf_counter()
        result = import_export(vault, "bench", export)
        seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "rss": rss, "counts": result.record.counts}))
    """
)

FLOOR_SIDE = textwrap.dedent(
    """
    import hashlib, json, resource, sqlite3, sys, time, zipfile
    import ijson, orjson
    import chatkeep
    from chatkeep.backends.sqlite import register_functions
    export, home = sys.argv[1], sys.argv[2]
    with chatkeep.open(home=home, create=True) as vault:
        vault.store.add_user("bench")
        vault.store.create_runtime("bench", "floor")
        database = vault.paths.database
    db = sqlite3.connect(database, isolation_level=None)
    register_functions(db)  # the schema's search triggers call them, as for chatkeep
    db.execute("PRAGMA synchronous=FULL")
    start = time.perf_counter()
    count = 0
    db.execute("BEGIN")
    with zipfile.ZipFile(export) as archive, archive.open("conversations.json") as handle:
        for number, conv in enumerate(ijson.items(handle, "item", use_float=True)):
            cid = f"c_{number:026d}"
            db.execute(
                "INSERT INTO conversations (id, user_id, runtime_id, title, origin, state,"
                " message_count, total_tokens, total_cost, created_at, updated_at, source_id)"
                " VALUES (?, 'bench', 'floor', ?, 'imported', 'active', 0, 0, 0, '', '', ?)",
                (cid, conv.get("title") or "", conv["id"]),
            )
            rows = []
            ids = {}
            for node in conv["mapping"].values():
                msg = node.get("message")
                if msg is None:
                    continue
                ids[node["id"]] = f"m_{count:026d}"
                content = orjson.dumps(
                    [{"kind": "text", "text": json.dumps(msg["content"])}],
                    option=orjson.OPT_SORT_KEYS,
                )
                rows.append((
                    ids[node["id"]], cid, ids.get(node.get("parent")), len(rows),
                    msg["author"]["role"], content.decode(), hashlib.sha256(content).hexdigest(),
                    str(msg.get("create_time")), orjson.dumps(msg.get("metadata") or {}).decode(),
                    node["id"],
                ))
                count += 1
            db.executemany(
                "INSERT INTO messages (id, user_id, conversation_id, parent_id, seq, role,"
                " content, content_sha256, created_at, metadata, hidden, source_id)"
                " VALUES (?, 'bench', ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                rows,
            )
    db.execute("COMMIT")
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "rss": rss, "counts": {"messages_added": count}}))
    """
)


def run_side(script: str, export: Path, home: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", script, str(export), str(home)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark side failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_pair(export: Path, scratch: Path, number: int) -> tuple[dict[str, object], ...]:
    """(floor, chatkeep) on fresh vaults; which runs first alternates with ``number``."""
    sides = [(FLOOR_SIDE, scratch / "floor"), (CHATKEEP_SIDE, scratch / "chatkeep")]
    order = sides if number % 2 == 0 else sides[::-1]
    done = {home.name: run_side(script, export, home) for script, home in order}
    shutil.rmtree(scratch)
    return done["floor"], done["chatkeep"]


def _median_side(runs: list[dict[str, object]]) -> dict[str, object]:
    """Median seconds and peak RSS of one side's runs (RSS: the largest)."""
    return {
        "seconds": statistics.median(float(r["seconds"]) for r in runs),  # type: ignore[arg-type]
        "rss": max(int(r["rss"]) for r in runs),  # type: ignore[call-overload]
        "counts": runs[-1]["counts"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1, help="multiply the export's size")
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs; medians shown")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from gen_chatgpt_export import generate

    conversations, messages = (200, 20_000) if args.quick else (2_000, 200_000)
    conversations, messages = conversations * args.scale, messages * args.scale
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as scratch:
        export = Path(scratch) / "export.zip"
        made = generate(export, conversations, messages)
        print(f"generated {made} ({export.stat().st_size / 1e6:.1f} MB zip)", file=sys.stderr)
        pairs = [run_pair(export, Path(scratch) / f"run-{n}", n) for n in range(args.repeat)]
    ratios = [float(o["seconds"]) / float(f["seconds"]) for f, o in pairs]  # type: ignore[arg-type]
    floor, ours = _median_side([f for f, _ in pairs]), _median_side([o for _, o in pairs])
    ratio = statistics.median(ratios)
    rss_mb = int(ours["rss"]) / 1e6  # type: ignore[call-overload]
    figures = {
        "conversations": conversations,
        "messages": made["messages"],
        "chatkeep_seconds": ours["seconds"],
        "chatkeep_messages_per_second": made["messages"] / float(ours["seconds"]),  # type: ignore[arg-type]
        "chatkeep_peak_rss_mb": rss_mb,
        "floor_seconds": floor["seconds"],
        "floor_peak_rss_mb": int(floor["rss"]) / 1e6,  # type: ignore[call-overload]
        "ratio": ratio,
        "ratios": ratios,
        "counts": ours["counts"],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"import of {conversations:,} conversations / {made['messages']:,} messages")
    print(
        f"  chatkeep {float(ours['seconds']):7.1f} s  "  # type: ignore[arg-type]
        f"{figures['chatkeep_messages_per_second']:9,.0f} msg/s  peak RSS {rss_mb:6.0f} MB"
    )
    print(
        f"  floor    {float(floor['seconds']):7.1f} s  "  # type: ignore[arg-type]
        f"{made['messages'] / float(floor['seconds']):9,.0f} msg/s  "  # type: ignore[arg-type]
        f"peak RSS {figures['floor_peak_rss_mb']:6.0f} MB"
    )
    verdict = "PASS" if ratio <= 1.3 else "FAIL"
    if len(ratios) > 1:
        print(f"  medians of {len(ratios)} pairs; ratios " + " ".join(f"{r:.2f}" for r in ratios))
    print(f"  ratio chatkeep / floor = {ratio:.2f}  target <= 1.3  {verdict}")
    print(f"  peak RSS {rss_mb:.0f} MB  target <= 300 MB  {'PASS' if rss_mb <= 300 else 'FAIL'}")


if __name__ == "__main__":
    main()
