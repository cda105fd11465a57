"""Replies from an OpenAI-compatible endpoint: a stub on loopback stands in for the model
(a service outside our control); the server, the store and the stream are real."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.server_helpers import Served, prepare_vault, start_server

PIECES = ["The ", "answer ", "is ", "forty-two."]


class StubModel(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions`` with ``stream: true``: a few SSE chunks.

    ``mode`` "ok" sends every piece and [DONE]; "cut" sends two pieces then drops the
    connection; "slow" pauses between pieces (for a client that leaves early)."""

    mode: ClassVar[str] = "ok"
    received: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *_args: object) -> None:  # keep the test output clean
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        request = json.loads(self.rfile.read(length))
        StubModel.received.append({"body": request, "auth": self.headers.get("authorization")})
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        pieces = PIECES[:2] if self.mode == "cut" else PIECES
        for piece in pieces:
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            if self.mode == "slow":
                time.sleep(0.3)
        if self.mode != "cut":
            self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def stub_model() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubModel)
    StubModel.mode, StubModel.received = "ok", []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _served(tmp_path: Path, servers: list[object], base_url: str) -> tuple[Served, str]:
    home = tmp_path / "home"
    secrets = prepare_vault(home, "alice")
    env = {
        "CHATKEEP_LLM_BASE_URL": base_url,
        "CHATKEEP_LLM_MODEL": "stub-1",
        "CHATKEEP_LLM_API_KEY": "sk-test",
    }
    served = start_server(home, env=env)
    servers.append(served)
    return served, secrets["alice"]


def _events(response: httpx.Response) -> list[tuple[str, Any]]:
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def _ask(client: httpx.Client, text: str) -> tuple[str, str]:
    home = client.get("/api/runtimes/synth-001/route").json()["id"]
    sent = client.post(f"/api/conversations/{home}/messages", json={"text": text}).json()
    return home, sent["id"]


def test_streamed_reply_is_stored(tmp_path: Path, servers: list[object], stub_model: str) -> None:
    served, secret = _served(tmp_path, servers, stub_model)
    with served.client(secret) as client:
        assert client.get("/api/me").json()["assistant"] is True
        home, question = _ask(client, "What is the answer?")
        response = client.post(f"/api/conversations/{home}/reply", json={"parent_id": question})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
        deltas = [data["text"] for name, data in events if name == "delta"]
        assert deltas == PIECES
        name, stored = events[-1]
        assert name == "done"
        assert stored["parts"][0]["text"] == "".join(PIECES)
        assert stored["role"] == "assistant" and stored["model"] == "stub-1"
        assert stored["parent_id"] == question
        shown = client.get(f"/api/conversations/{home}").json()["messages"]
        assert [m["id"] for m in shown] == [question, stored["id"]]
    sent = StubModel.received[-1]
    assert sent["auth"] == "Bearer sk-test"
    assert sent["body"]["stream"] is True and sent["body"]["model"] == "stub-1"
    assert sent["body"]["messages"] == [{"role": "user", "content": "What is the answer?"}]


def test_reply_cut_short_is_stored_marked_interrupted(
    tmp_path: Path, servers: list[object], stub_model: str
) -> None:
    StubModel.mode = "cut"
    served, secret = _served(tmp_path, servers, stub_model)
    with served.client(secret) as client:
        home, question = _ask(client, "Go on")
        events = _events(client.post(f"/api/conversations/{home}/reply", json={}))
        names = [name for name, _ in events]
        assert "done" in names
        stored = next(data for name, data in events if name == "done")
        assert stored["parts"][0]["text"] == "".join(PIECES[:2])
        assert stored["metadata"]["interrupted"] is True
        assert stored["parent_id"] == question


def test_reply_is_stored_when_the_client_leaves_mid_stream(
    tmp_path: Path, servers: list[object], stub_model: str
) -> None:
    StubModel.mode = "slow"
    served, secret = _served(tmp_path, servers, stub_model)
    with served.client(secret) as client:
        home, question = _ask(client, "Take your time")
        with client.stream("POST", f"/api/conversations/{home}/reply", json={}) as response:
            for _line in response.iter_lines():
                break  # the first piece arrived; the browser closes the tab
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            shown = client.get(f"/api/conversations/{home}").json()["messages"]
            if len(shown) == 2:
                break
            time.sleep(0.2)
        assert shown[-1]["parts"][0]["text"] == "".join(PIECES)
        assert shown[-1]["parent_id"] == question


def test_without_an_endpoint_the_composer_still_stores(
    tmp_path: Path, servers: list[object]
) -> None:
    home = tmp_path / "home"
    secret = prepare_vault(home, "alice")["alice"]
    served = start_server(home)
    servers.append(served)
    with served.client(secret) as client:
        assert client.get("/api/me").json()["assistant"] is False
        conversation, question = _ask(client, "anyone?")
        refused = client.post(f"/api/conversations/{conversation}/reply", json={})
        assert refused.status_code == 502
        assert refused.json()["error"]["code"] == "upstream_failed"
        shown = client.get(f"/api/conversations/{conversation}").json()["messages"]
        assert [m["id"] for m in shown] == [question]
