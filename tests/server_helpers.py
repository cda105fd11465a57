"""A real ``chatkeep serve`` in a child process, for the API, UI and LLM tests.

The server binds to 127.0.0.1 on a free port, and stops by itself: ``stop()`` sends
SIGTERM (uvicorn shuts down cleanly), and the child also gets SIGTERM from the kernel
if the test process dies first (``PR_SET_PDEATHSIG``), so no server outlives a test run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import chatkeep
from chatkeep import tokens

_PR_SET_PDEATHSIG = 1
STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def prepare_vault(home: Path, *users: str) -> dict[str, str]:
    """A vault at ``home`` with ``users`` (each with runtime ``synth-001``); returns a
    fresh API token secret per user."""
    secrets: dict[str, str] = {}
    with chatkeep.open(home=home, create=True) as vault:
        known = {u.id for u in vault.store.list_users()}
        for user in users:
            if user not in known:
                vault.store.add_user(user)
                vault.store.create_runtime(user, "synth-001")
            _token, secrets[user] = tokens.issue_token(vault.store, user, name="tests")
    return secrets


@dataclass
class Served:
    """A running server: its base URL, the login link it printed, and its process."""

    url: str
    login_url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def client(self, secret: str | None = None, **options: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **options)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.reader is not None:
            self.reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_server(
    home: Path, *, user: str = "alice", env: Mapping[str, str] | None = None
) -> Served:
    """``chatkeep --home HOME serve`` as ``user`` on a free loopback port, once it answers."""
    port = free_port()
    child_env = {**os.environ, "CHATKEEP_USER": user, **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "chatkeep", "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env,
        preexec_fn=_die_with_parent,
    )
    lines: queue.Queue[str] = queue.Queue()
    served = Served(url=f"http://127.0.0.1:{port}", login_url="", process=process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            served.output.append(line)
            lines.put(line)

    served.reader = threading.Thread(target=pump, daemon=True)
    served.reader.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not served.login_url:
        if process.poll() is not None or time.monotonic() > deadline:
            served.stop()
            raise RuntimeError("chatkeep serve did not start:\n" + "".join(served.output))
        with contextlib.suppress(queue.Empty):
            line = lines.get(timeout=0.2)
            if "#login=" in line:
                served.login_url = line.split()[-1]
    while True:
        try:
            httpx.get(served.url + "/openapi.json", timeout=2).raise_for_status()
            return served
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                served.stop()
                raise RuntimeError(
                    "chatkeep serve did not answer:\n" + "".join(served.output)
                ) from None
            time.sleep(0.1)
