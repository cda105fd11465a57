"""Two ``chatkeep serve`` processes on one store, appending to the same conversations at
once through HTTP: nothing is lost, nothing duplicated, each client's order is kept.

On PostgreSQL this is the deployment the backend exists for (several API processes on
one database); on SQLite it is two processes on one vault file.
"""

from __future__ import annotations

import threading
from pathlib import Path

import chatkeep
from tests.server_helpers import prepare_vault, start_server

CLIENTS_PER_SERVER = 3
APPENDS_PER_CLIENT = 40


def test_two_servers_append_to_the_same_conversations(
    tmp_path: Path, servers: list[object], backend: str
) -> None:
    home = tmp_path / "home"
    secret = prepare_vault(home, "alice")["alice"]
    first, second = start_server(home), start_server(home)
    servers.extend([first, second])
    with first.client(secret) as client:
        shared = [
            client.post("/api/conversations", json={"runtime_id": "synth-001", "title": t}).json()[
                "id"
            ]
            for t in ("shared one", "shared two")
        ]
    acknowledged: dict[str, list[tuple[str, str]]] = {}
    failures: list[str] = []

    def client_loop(name: str, served: object) -> None:
        mine: list[tuple[str, str]] = []
        with served.client(secret) as http:  # type: ignore[attr-defined]
            for n in range(APPENDS_PER_CLIENT):
                target = shared[n % 2]
                answer = http.post(
                    f"/api/conversations/{target}/messages", json={"text": f"{name} #{n}"}
                )
                if answer.status_code != 201:
                    failures.append(f"{name}: {answer.status_code} {answer.text}")
                    return
                mine.append((target, answer.json()["id"]))
        acknowledged[name] = mine

    threads = [
        threading.Thread(target=client_loop, args=(f"{label}{k}", served))
        for label, served in (("a", first), ("b", second))
        for k in range(CLIENTS_PER_SERVER)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert len(acknowledged) == 2 * CLIENTS_PER_SERVER

    with chatkeep.open(home=home) as vault:
        stored = {cid: vault.store.list_messages("alice", cid, all_branches=True) for cid in shared}
        assert vault.doctor() == []
    every = [m for messages in stored.values() for m in messages]
    ids = [m.id for m in every]
    assert len(ids) == len(set(ids)) == 2 * CLIENTS_PER_SERVER * APPENDS_PER_CLIENT
    assert set(ids) == {mid for mine in acknowledged.values() for _, mid in mine}
    for name, mine in acknowledged.items():
        for cid in shared:
            texts = [m.text for m in stored[cid] if m.text.startswith(f"{name} #")]
            numbers = [int(t.split("#")[1]) for t in texts]
            assert numbers == sorted(numbers), f"{name}'s order changed in {cid}"
            assert len(numbers) == sum(1 for target, _ in mine if target == cid)
    for messages in stored.values():
        assert [m.seq for m in messages] == list(range(len(messages)))
