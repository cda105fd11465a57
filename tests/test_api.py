"""The HTTP API, against a real ``chatkeep serve`` on loopback.

One server per module (alice and bob share a vault); each test works in data of its own.
The isolation matrix calls every route that takes an id with bob's ids as alice and
checks the answer is 404 and that nothing of bob's changed.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from chatkeep import limits
from tests.conftest import FIXTURES
from tests.server_helpers import Served, prepare_vault, start_server

CHATGPT_FIXTURE = FIXTURES / "chatgpt" / "librechat" / "chatgpt-tree.json"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("api-home")
    secrets = prepare_vault(home, "alice", "bob")
    served = start_server(home)
    try:
        yield {"served": served, "secrets": secrets, "home": home}
    finally:
        served.stop()


@pytest.fixture
def alice(world: dict[str, Any]) -> Iterator[httpx.Client]:
    with world["served"].client(world["secrets"]["alice"]) as client:
        yield client


@pytest.fixture
def bob(world: dict[str, Any]) -> Iterator[httpx.Client]:
    with world["served"].client(world["secrets"]["bob"]) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    return str(body["error"]["code"])


def new_conversation(client: httpx.Client, title: str = "plans") -> str:
    created = ok(
        client.post("/api/conversations", json={"runtime_id": "synth-001", "title": title}), 201
    )
    return str(created["id"])


def wait_for_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = ok(client.get(f"/api/imports/jobs/{job_id}"))
        if job["state"] in ("done", "failed"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


# -- the document and the basics -----------------------------------------------------
def test_openapi_document_validates(world: dict[str, Any]) -> None:
    document = httpx.get(world["served"].url + "/openapi.json").json()
    validate(document)
    paths = document["paths"]
    for expected in (
        "/api/runtimes",
        "/api/runtimes/{runtime_id}/route",
        "/api/conversations/{conversation_id}",
        "/api/conversations/{conversation_id}/messages",
        "/api/search",
        "/api/imports",
        "/api/settings/{key}",
        "/api/conversations/{conversation_id}/export",
    ):
        assert expected in paths


def test_no_token_bad_token_and_revoked_token_are_401(world: dict[str, Any]) -> None:
    served: Served = world["served"]
    with served.client() as anonymous:
        assert error_code(anonymous.get("/api/runtimes"), 401) == "unauthorized"
    with served.client("ck_" + "x" * 43) as forged:
        assert error_code(forged.get("/api/runtimes"), 401) == "unauthorized"
    with served.client(world["secrets"]["alice"]) as alice:
        created = ok(alice.post("/api/tokens", json={"name": "short-lived"}), 201)
        with served.client(created["secret"]) as temporary:
            ok(temporary.get("/api/runtimes"))
            ok(alice.delete(f"/api/tokens/{created['id']}"))
            assert error_code(temporary.get("/api/runtimes"), 401) == "unauthorized"
        listed = ok(alice.get("/api/tokens"))
        assert all("secret" not in t for t in listed)
    basic = httpx.get(served.url + "/api/runtimes", headers={"Authorization": "Basic eDp5"})
    assert error_code(basic, 401) == "unauthorized"


def test_tokens_are_stored_hashed(world: dict[str, Any]) -> None:
    database = (world["home"] / "default" / "chatkeep.db").read_bytes()
    for secret in world["secrets"].values():
        assert secret.encode() not in database


def test_errors_are_json_with_stable_codes(alice: httpx.Client) -> None:
    assert error_code(alice.get("/api/conversations/not-an-id"), 400) == "invalid_id"
    missing = "c_01JD3Z0000000000000000000A"
    assert error_code(alice.get(f"/api/conversations/{missing}"), 404) == "not_found"
    assert error_code(alice.post("/api/runtimes", json={"id": "synth-001"}), 409) == "conflict"
    assert error_code(alice.post("/api/runtimes", json={}), 400) == "invalid_input"
    assert error_code(alice.get("/api/no-such-route"), 404) == "not_found"
    home = ok(alice.get("/api/runtimes/synth-001/route"))["id"]
    assert error_code(alice.post(f"/api/conversations/{home}/trash"), 409) == "conflict"


def test_security_headers(world: dict[str, Any], alice: httpx.Client) -> None:
    page = httpx.get(world["served"].url + "/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "script-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    api = alice.get("/api/runtimes")
    assert api.headers["cache-control"] == "no-store"


# -- limits ---------------------------------------------------------------------------
def test_body_over_the_limit_is_413_by_length(alice: httpx.Client) -> None:
    cid = new_conversation(alice)
    body = b'{"text": "' + b"a" * (limits.MAX_REQUEST_BYTES + 10) + b'"}'
    response = alice.post(
        f"/api/conversations/{cid}/messages",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert error_code(response, 413) == "limit_exceeded"
    assert ok(alice.get(f"/api/conversations/{cid}"))["messages"] == []


def test_body_over_the_limit_is_413_when_streamed_without_length(alice: httpx.Client) -> None:
    cid = new_conversation(alice)

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(limits.MAX_REQUEST_BYTES // (1024 * 1024) + 2):
            yield b"a" * (1024 * 1024)
        yield b'"}'

    response = alice.post(
        f"/api/conversations/{cid}/messages",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert error_code(response, 413) == "limit_exceeded"
    assert ok(alice.get(f"/api/conversations/{cid}"))["messages"] == []


# -- runtimes, conversations, messages ------------------------------------------------
def test_runtime_lifecycle_and_route(alice: httpx.Client) -> None:
    created = ok(
        alice.post("/api/runtimes", json={"id": "helper", "config": {"model": "m-1"}}), 201
    )
    assert created["primary_conversation_id"]
    home = ok(alice.get("/api/runtimes/helper/route"))
    assert home["id"] == created["primary_conversation_id"] and home["is_primary"]
    updated = ok(alice.patch("/api/runtimes/helper", json={"config": {"model": "m-2"}}))
    assert updated["config"] == {"model": "m-2"}
    assert ok(alice.get("/api/runtimes/helper"))["config"] == {"model": "m-2"}
    ok(alice.delete("/api/runtimes/helper"))
    assert error_code(alice.get("/api/runtimes/helper"), 404) == "not_found"


def test_sidebar_order_home_then_pins_then_recent(alice: httpx.Client) -> None:
    ok(alice.post("/api/runtimes", json={"id": "sidebar"}), 201)
    home = ok(alice.get("/api/runtimes/sidebar/route"))["id"]
    ids = [
        ok(alice.post("/api/conversations", json={"runtime_id": "sidebar", "title": t}), 201)["id"]
        for t in ("one", "two", "three")
    ]
    ok(alice.post(f"/api/conversations/{ids[0]}/pin"))
    listed = ok(alice.get("/api/runtimes/sidebar/conversations"))
    assert [c["id"] for c in listed] == [home, ids[0], ids[2], ids[1]]
    assert listed[0]["is_primary"] and listed[1]["pinned"]
    other = ok(alice.get("/api/runtimes/synth-001/conversations"))
    assert ids[0] not in [c["id"] for c in other]


def test_conversation_actions(alice: httpx.Client) -> None:
    cid = new_conversation(alice, "before")
    assert ok(alice.patch(f"/api/conversations/{cid}", json={"title": "after"}))["title"] == "after"
    tagged = ok(alice.post(f"/api/conversations/{cid}/tags", json={"add": ["work", "x"]}))
    assert sorted(tagged["tags"]) == ["work", "x"]
    assert ok(alice.post(f"/api/conversations/{cid}/archive"))["state"] == "archived"
    archived = ok(alice.get("/api/conversations", params={"state": "archived"}))
    assert cid in [c["id"] for c in archived]
    assert ok(alice.post(f"/api/conversations/{cid}/unarchive"))["state"] == "active"
    assert ok(alice.post(f"/api/conversations/{cid}/trash"))["state"] == "trashed"
    assert ok(alice.post(f"/api/conversations/{cid}/restore"))["state"] == "active"
    report = ok(alice.delete(f"/api/conversations/{cid}"))
    assert report["conversations"] == 1
    assert error_code(alice.get(f"/api/conversations/{cid}"), 404) == "not_found"


def test_append_continue_from_any_message_and_branches(alice: httpx.Client) -> None:
    cid = new_conversation(alice)
    first = ok(alice.post(f"/api/conversations/{cid}/messages", json={"text": "hi"}), 201)
    reply = ok(
        alice.post(
            f"/api/conversations/{cid}/messages",
            json={"role": "assistant", "text": "hello", "model": "m-1"},
        ),
        201,
    )
    assert reply["parent_id"] == first["id"]
    retry = ok(
        alice.post(
            f"/api/conversations/{cid}/messages",
            json={"role": "assistant", "text": "hello again", "parent_id": first["id"]},
        ),
        201,
    )
    shown = ok(alice.get(f"/api/conversations/{cid}", params={"html": "true"}))
    assert [m["id"] for m in shown["messages"]] == [first["id"], retry["id"]]
    assert shown["messages"][1]["sibling_ids"] == [reply["id"], retry["id"]]
    assert len(shown["branches"]) == 2
    older = ok(alice.get(f"/api/conversations/{cid}", params={"leaf": reply["id"]}))
    assert [m["id"] for m in older["messages"]] == [first["id"], reply["id"]]
    forked = ok(alice.post(f"/api/conversations/{cid}/fork", json={"message_id": reply["id"]}), 201)
    assert ok(alice.get(f"/api/conversations/{forked['id']}"))["conversation"]["message_count"] == 2
    assert ok(alice.get(f"/api/messages/{retry['id']}"))["parts"][0]["text"] == "hello again"


def test_message_html_is_rendered_safe(alice: httpx.Client) -> None:
    cid = new_conversation(alice)
    hostile = (
        "**bold** <script>alert(1)</script> <img src=x onerror=alert(1)> "
        "[link](javascript:alert(1))\n\n```python\nprint('hi')\n```"
    )
    ok(alice.post(f"/api/conversations/{cid}/messages", json={"text": hostile}), 201)
    rendered = ok(alice.get(f"/api/conversations/{cid}", params={"html": "true"}))
    body = rendered["messages"][0]["html"]
    assert "<strong>bold</strong>" in body
    assert "<script" not in body and "<img" not in body and 'href="javascript' not in body
    assert "&lt;script&gt;" in body
    assert '<pre class="hl">' in body


def test_attachment_is_a_nosniff_download(alice: httpx.Client) -> None:
    cid = new_conversation(alice)
    payload = b"<html><script>alert(1)</script></html>"
    sent = ok(
        alice.post(
            f"/api/conversations/{cid}/messages",
            json={
                "text": "see file",
                "attachments": [
                    {
                        "name": "page.html",
                        "mime_type": "text/html",
                        "data_base64": base64.b64encode(payload).decode(),
                    }
                ],
            },
        ),
        201,
    )
    attachment = sent["attachments"][0]
    download = alice.get(f"/api/attachments/{attachment['id']}")
    assert download.status_code == 200 and download.content == payload
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment;")


def test_export_conversation(alice: httpx.Client) -> None:
    cid = new_conversation(alice, "exported")
    ok(alice.post(f"/api/conversations/{cid}/messages", json={"text": "keep me"}), 201)
    markdown = alice.get(f"/api/conversations/{cid}/export")
    assert markdown.status_code == 200 and "keep me" in markdown.text
    assert markdown.headers["content-disposition"].startswith("attachment;")
    as_json = alice.get(f"/api/conversations/{cid}/export", params={"format": "json"}).json()
    assert as_json["messages"][0]["parts"][0]["text"] == "keep me"


def test_settings_round_trip(alice: httpx.Client) -> None:
    ok(alice.put("/api/settings/ui.theme", json={"value": "dark"}))
    ok(alice.put("/api/settings/ui.layout", json={"value": {"sidebar": 280}}))
    assert ok(alice.get("/api/settings/ui.theme"))["value"] == "dark"
    assert ok(alice.get("/api/settings", params={"prefix": "ui"})) == {
        "ui.layout": {"sidebar": 280},
        "ui.theme": "dark",
    }
    ok(alice.delete("/api/settings/ui.layout"))
    assert error_code(alice.get("/api/settings/ui.layout"), 404) == "not_found"
    assert error_code(alice.put("/api/settings/nodots", json={"value": 1}), 400) == "invalid_id"


# -- search ---------------------------------------------------------------------------
def test_search_with_filters_and_paging(alice: httpx.Client, bob: httpx.Client) -> None:
    cid = new_conversation(alice, "zebra notes")
    for n in range(5):
        ok(alice.post(f"/api/conversations/{cid}/messages", json={"text": f"quagga fact {n}"}), 201)
    ok(
        alice.post(
            f"/api/conversations/{cid}/messages", json={"role": "assistant", "text": "quagga reply"}
        ),
        201,
    )
    bob_cid = new_conversation(bob)
    ok(bob.post(f"/api/conversations/{bob_cid}/messages", json={"text": "quagga of bob"}), 201)
    page = ok(alice.get("/api/search", params={"q": "quagga", "limit": 4}))
    assert len(page["hits"]) == 4 and page["has_more"]
    rest = ok(alice.get("/api/search", params={"q": "quagga", "limit": 4, "offset": 4}))
    seen = [h["message_id"] for h in page["hits"] + rest["hits"]]
    assert len(seen) == len(set(seen)) == 6
    assert all(h["conversation_id"] == cid for h in page["hits"] + rest["hits"])
    by_role = ok(alice.get("/api/search", params={"q": "quagga", "role": "assistant"}))
    assert [h["role"] for h in by_role["hits"]] == ["assistant"]
    hit = page["hits"][0]
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end].lower() == "quagga"
    assert error_code(alice.get("/api/search", params={"q": "x", "role": "boss"}), 400) == (
        "invalid_input"
    )
    hostile = ok(alice.get("/api/search", params={"q": '"unbalanced OR (NEAR -* body:x \x00'}))
    assert isinstance(hostile["hits"], list)
    ok(alice.post(f"/api/conversations/{cid}/trash"))
    assert ok(alice.get("/api/search", params={"q": "quagga"}))["hits"] == []


def test_recall(alice: httpx.Client) -> None:
    cid = new_conversation(alice)
    ok(
        alice.post(f"/api/conversations/{cid}/messages", json={"text": "my cat is named Okapi"}),
        201,
    )
    found = ok(alice.get("/api/recall", params={"q": "what is my cat named", "chars": 500}))
    assert any("Okapi" in item["text"] for item in found)


# -- imports --------------------------------------------------------------------------
def test_import_upload_runs_as_a_job(alice: httpx.Client) -> None:
    if not CHATGPT_FIXTURE.is_file():
        pytest.skip(f"fixture missing: {CHATGPT_FIXTURE}")
    job = ok(
        alice.post(
            "/api/imports",
            params={"filename": CHATGPT_FIXTURE.name},
            content=CHATGPT_FIXTURE.read_bytes(),
        ),
        202,
    )
    assert job["state"] in ("queued", "running", "done")
    finished = wait_for_job(alice, job["id"])
    assert finished["state"] == "done", finished
    result = finished["result"]
    assert result["platform"] == "chatgpt" and result["counts"]["messages_added"] > 0
    runtime = result["runtime_id"]
    home = ok(alice.get(f"/api/runtimes/{runtime}/route"))
    assert home["is_primary"]
    assert ok(alice.get(f"/api/imports/{result['id']}"))["id"] == result["id"]
    again = wait_for_job(
        alice,
        ok(
            alice.post(
                "/api/imports",
                params={"filename": CHATGPT_FIXTURE.name},
                content=CHATGPT_FIXTURE.read_bytes(),
            ),
            202,
        )["id"],
    )
    assert again["result"]["already_imported"] is True
    assert job["id"] in [j["id"] for j in ok(alice.get("/api/imports/jobs"))]


def test_bad_uploads_fail_clearly_and_change_nothing(alice: httpx.Client) -> None:
    before = ok(alice.get("/api/imports"))
    assert error_code(alice.post("/api/imports", content=b""), 400) == "invalid_input"
    garbage = wait_for_job(
        alice,
        ok(alice.post("/api/imports", params={"filename": "x.json"}, content=b"{not json"), 202)[
            "id"
        ],
    )
    assert garbage["state"] == "failed" and garbage["error"]["code"] == "import_format"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape.json", "[]")
    escaping = wait_for_job(
        alice,
        ok(
            alice.post(
                "/api/imports", params={"filename": "../../evil.zip"}, content=buffer.getvalue()
            ),
            202,
        )["id"],
    )
    assert escaping["state"] == "failed" and escaping["error"]["code"] == "unsafe_archive"
    assert escaping["file_name"] == "evil.zip"
    assert ok(alice.get("/api/imports")) == before


def test_large_upload_streams_to_disk(world: dict[str, Any], alice: httpx.Client) -> None:
    """An upload far over the JSON limit streams through; the server's peak memory
    grows by much less than the upload (it is never held whole)."""
    pid = world["served"].process.pid
    size = 256 * 1024 * 1024

    def peak_rss() -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    before = peak_rss()

    def chunks() -> Iterator[bytes]:
        block = b"x" * (1024 * 1024)
        for _ in range(size // len(block)):
            yield block

    job = ok(alice.post("/api/imports", params={"filename": "big.json"}, content=chunks()), 202)
    finished = wait_for_job(alice, job["id"])
    assert finished["state"] == "failed"  # not an export; what matters is it got through
    assert peak_rss() - before < size // 4
    assert not list((world["home"] / "default" / "uploads").glob("*/*")), "spool left behind"


# -- isolation ------------------------------------------------------------------------
def _dump(client: httpx.Client) -> str:
    """Everything a user can read, as one canonical string."""
    parts: dict[str, Any] = {
        "snapshots": ok(client.get("/api/snapshots")),
        "usage": ok(client.get("/api/usage")),
        "runtimes": ok(client.get("/api/runtimes")),
        "settings": ok(client.get("/api/settings")),
        "tokens": ok(client.get("/api/tokens")),
        "imports": ok(client.get("/api/imports")),
    }
    for state in ("active", "archived", "trashed"):
        listed = ok(client.get("/api/conversations", params={"state": state, "limit": 1000}))
        parts[state] = [
            {
                "read": ok(
                    client.get(f"/api/conversations/{c['id']}", params={"all_branches": "true"})
                ),
                "draft": ok(client.get(f"/api/conversations/{c['id']}/draft")),
                "events": ok(client.get(f"/api/conversations/{c['id']}/events")),
            }
            for c in listed
        ]
    return json.dumps(parts, sort_keys=True)


def _bob_world(bob: httpx.Client) -> dict[str, str]:
    ok(bob.post("/api/runtimes", json={"id": "bob-only"}), 201)
    cid = ok(
        bob.post("/api/conversations", json={"runtime_id": "bob-only", "title": "secret"}), 201
    )["id"]
    message = ok(
        bob.post(
            f"/api/conversations/{cid}/messages",
            json={
                "text": "bob's secret",
                "attachments": [{"name": "s.txt", "data_base64": base64.b64encode(b"s").decode()}],
            },
        ),
        201,
    )
    ok(bob.put("/api/settings/bob.only", json={"value": 1}))
    ok(bob.put(f"/api/conversations/{cid}/draft", json={"text": "bob's draft"}))
    ok(bob.post(f"/api/conversations/{cid}/events", json={"kind": "typing"}), 201)
    snapshot = ok(bob.post("/api/snapshots", json={"name": "bob's", "state": {"a": 1}}), 201)
    token = ok(bob.post("/api/tokens", json={"name": "bob's"}), 201)
    job = ok(bob.post("/api/imports", params={"filename": "x.json"}, content=b"[]"), 202)
    finished = wait_for_job(bob, job["id"])
    imports = ok(bob.get("/api/imports"))
    return {
        "runtime_id": "bob-only",
        "conversation_id": cid,
        "message_id": message["id"],
        "attachment_id": message["attachments"][0]["id"],
        "key": "bob.only",
        "snapshot_id": snapshot["id"],
        "token_id": token["id"],
        "job_id": finished["id"],
        "import_id": imports[0]["id"] if imports else "i_01JD3Z0000000000000000000A",
    }


#: A valid body for each route that takes one, so that only ownership can fail.
_BODIES: dict[tuple[str, str], Any] = {
    ("patch", "/api/runtimes/{runtime_id}"): {"name": "mine now"},
    ("patch", "/api/conversations/{conversation_id}"): {"title": "mine now"},
    ("post", "/api/conversations/{conversation_id}/tags"): {"add": ["mine"]},
    ("post", "/api/conversations/{conversation_id}/fork"): {"message_id": "{message_id}"},
    ("post", "/api/conversations/{conversation_id}/messages"): {"text": "injected"},
    ("post", "/api/conversations/{conversation_id}/reply"): {},
    ("put", "/api/settings/{key}"): {"value": "mine"},
    ("put", "/api/conversations/{conversation_id}/draft"): {"text": "mine"},
    ("post", "/api/snapshots/{snapshot_id}/star"): {"starred": False},
    ("post", "/api/conversations/{conversation_id}/events"): {"kind": "typing"},
}
#: Routes where an id names something in the caller's own namespace, not an object of
#: another user's: PUT of a setting key creates the caller's own setting.
_OWN_NAMESPACE = {("put", "/api/settings/{key}")}


def test_isolation_matrix_every_route_with_an_id(
    world: dict[str, Any], alice: httpx.Client, bob: httpx.Client
) -> None:
    ids = _bob_world(bob)
    document = httpx.get(world["served"].url + "/openapi.json").json()
    routes = [
        (method, path)
        for path, operations in document["paths"].items()
        if "{" in path
        for method in operations
    ]
    assert len(routes) >= 25
    routes.sort(key=lambda route: route in _OWN_NAMESPACE)  # they would create alice's own
    before = _dump(bob)
    checked = []
    for method, path in routes:
        url = path.format(**ids)
        body = _BODIES.get((method, path))
        if isinstance(body, dict):
            body = {k: (v.format(**ids) if isinstance(v, str) else v) for k, v in body.items()}
        response = alice.request(method.upper(), url, json=body)
        if (method, path) in _OWN_NAMESPACE:
            assert response.status_code == 200, (method, path, response.text)
        else:
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "not_found"
        checked.append((method, path))
    assert _dump(bob) == before, "a call as alice changed bob's data"
    assert "secret" not in json.dumps(ok(alice.get("/api/search", params={"q": "secret"})))
    assert len(checked) == len(routes)


def test_drafts_snapshots_usage_and_recordings_over_http(alice: httpx.Client) -> None:
    cid = new_conversation(alice, "drafting")
    assert ok(alice.get(f"/api/conversations/{cid}/draft"))["text"] == ""
    ok(alice.put(f"/api/conversations/{cid}/draft", json={"text": "half written"}))
    assert ok(alice.get(f"/api/conversations/{cid}/draft"))["text"] == "half written"
    saved = ok(alice.post("/api/snapshots", json={"name": "s", "state": {"open": cid}}), 201)
    assert ok(alice.post(f"/api/snapshots/{saved['id']}/star", json={}))["starred"] is True
    assert ok(alice.get(f"/api/snapshots/{saved['id']}"))["state"] == {"open": cid}
    ok(alice.post("/api/usage", json={"model": "m-9", "tokens_in": 7, "cost": 0.5}), 201)
    assert any(u["model"] == "m-9" and u["tokens_in"] == 7 for u in ok(alice.get("/api/usage")))
    for kind in ("typing", "message", "done"):
        ok(alice.post(f"/api/conversations/{cid}/events", json={"kind": kind}), 201)
    assert [e["kind"] for e in ok(alice.get(f"/api/conversations/{cid}/events"))] == [
        "typing",
        "message",
        "done",
    ]
    ok(alice.delete(f"/api/snapshots/{saved['id']}"))
    assert error_code(alice.get(f"/api/snapshots/{saved['id']}"), 404) == "not_found"
