"""HTTP load: appends and reads through ``chatkeep serve`` with 1, 8 and 32 concurrent
clients on loopback, beside the library's own append rate measured in the same run.

* **server**: ``python -m chatkeep serve`` in a child process (uvicorn, one worker) on a
  fresh vault in a temp directory, bound to 127.0.0.1.
* **clients**: N concurrent asyncio workers on one ``httpx.AsyncClient`` (keep-alive).
  *append*: each worker POSTs short user messages to a conversation of its own.
  *read*: each worker GETs a 20-message conversation (``GET /api/conversations/{id}``).
  Each series runs for a fixed number of requests after a short warm-up.
* **baseline**: ``store.append_message`` in-process on another fresh vault, one
  caller: the rate the library itself sustains (every append is a durable commit).

The clients share the machine's two cores with the server, so at 32 clients part of
what is measured is the client; the figures are for comparing runs on the same machine.

Run: ``.venv/bin/python bench/http_load.py [--quick] [--json]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import chatkeep
from _common import emit, progress, summarise, summary_dict
from chatkeep import tokens

USER = "bench"
LEVELS = (1, 8, 32)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _prepare(home: Path, conversations: int) -> tuple[str, list[str], str]:
    """A vault with a user, a token, ``conversations`` empty ones and a 20-message one."""
    with chatkeep.open(home=home, create=True) as vault:
        store = vault.store
        store.add_user(USER)
        store.create_runtime(USER, "bench")
        _token, secret = tokens.issue_token(store, USER, name="bench")
        ids = [store.create_conversation(USER, "bench").id for _ in range(conversations)]
        readable = store.create_conversation(USER, "bench", title="read me").id
        store.append_messages(
            USER,
            readable,
            [chatkeep.user_message(f"message {n} " + "lorem ipsum " * 20) for n in range(20)],
        )
    return secret, ids, readable


def _start(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "CHATKEEP_USER": USER}
    process = subprocess.Popen(
        [sys.executable, "-m", "chatkeep", "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/openapi.json", timeout=1).raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


async def _series(
    url: str, secret: str, clients: int, requests: int, op: str, targets: list[str], readable: str
) -> tuple[list[int], float]:
    """(latencies in ns, requests per second) for ``requests`` calls over ``clients``."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {secret}"}
    latencies: list[int] = []
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=60
    ) as client:

        async def call(worker: int, n: int) -> None:
            if op == "append":
                target = targets[worker % len(targets)]
                response = await client.post(
                    f"/api/conversations/{target}/messages", json={"text": f"hello {n}"}
                )
            else:
                response = await client.get(f"/api/conversations/{readable}")
            response.raise_for_status()

        async def worker(index: int, count: int, record: bool) -> None:
            for n in range(count):
                start = time.perf_counter_ns()
                await call(index, n)
                if record:
                    latencies.append(time.perf_counter_ns() - start)

        await asyncio.gather(*(worker(i, 3, False) for i in range(clients)))  # warm-up
        per_worker = max(1, requests // clients)
        began = time.perf_counter()
        await asyncio.gather(*(worker(i, per_worker, True) for i in range(clients)))
        elapsed = time.perf_counter() - began
    return latencies, len(latencies) / elapsed


def _library_appends(home: Path, count: int) -> tuple[list[int], float]:
    with chatkeep.open(home=home, create=True) as vault:
        store = vault.store
        store.add_user(USER)
        store.create_runtime(USER, "bench")
        target = store.create_conversation(USER, "bench").id
        for n in range(10):
            store.append_message(USER, target, chatkeep.user_message(f"warm {n}"))
        latencies = []
        began = time.perf_counter()
        for n in range(count):
            start = time.perf_counter_ns()
            store.append_message(USER, target, chatkeep.user_message(f"hello {n}"))
            latencies.append(time.perf_counter_ns() - start)
        elapsed = time.perf_counter() - began
    return latencies, count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    requests = 160 if args.quick else 1600
    figures: dict[str, Any] = {"requests_per_series": requests, "series": []}
    report = [f"HTTP load on loopback, {requests} requests per series (p50/p99 in ms)", ""]
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as scratch:
        root = Path(scratch)
        progress("library baseline ...")
        lib_latencies, lib_rate = _library_appends(root / "library", requests)
        lib = summarise(lib_latencies)
        figures["library_append"] = {**summary_dict(lib), "per_second": round(lib_rate, 1)}
        secret, targets, readable = _prepare(root / "served", max(LEVELS))
        process, url = _start(root / "served")
        try:
            report.append(f"{'clients':>7} {'op':<7} {'p50':>8} {'p99':>8} {'req/s':>9}")
            for clients in LEVELS:
                for op in ("append", "read"):
                    progress(f"{clients} clients, {op} ...")
                    latencies, rate = asyncio.run(
                        _series(url, secret, clients, requests, op, targets, readable)
                    )
                    summary = summarise(latencies)
                    figures["series"].append(
                        {
                            "clients": clients,
                            "op": op,
                            **summary_dict(summary),
                            "per_second": round(rate, 1),
                        }
                    )
                    report.append(
                        f"{clients:>7} {op:<7} {summary.p50_ms:>8.2f} {summary.p99_ms:>8.2f}"
                        f" {rate:>9.0f}"
                    )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
    report += [
        "",
        f"library append (in-process, 1 caller): p50 {lib.p50_ms:.2f} ms, "
        f"p99 {lib.p99_ms:.2f} ms, {lib_rate:.0f}/s",
    ]
    best_append = max(s["per_second"] for s in figures["series"] if s["op"] == "append")
    report.append(
        f"best HTTP append rate {best_append:.0f}/s = {best_append / lib_rate:.2f}x the library's"
    )
    emit(report, figures, args.json)


if __name__ == "__main__":
    main()
