"""Concurrency: several processes appending at once lose, duplicate and reorder nothing,
and none of them ever sees "database is locked".

Each worker (``workers/concurrent_appender.py``) opens the vault, signals that it is ready
and waits for a start file, so all of them begin appending at the same moment. Each makes
``count`` rounds of two appends, one to a conversation all workers share and one to its
own. Workers never catch or retry errors: any failure is a non-zero exit and a traceback
on stderr, which the tests require to be empty.
"""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import chatkeep

from .helpers import load_script

WORKERS = Path(__file__).parent / "workers"
APPENDER = WORKERS / "concurrent_appender.py"
USER = "alice"
RUNTIME = "busy"
READY_TIMEOUT = 60.0


appender = load_script("chatkeep_concurrent_appender", APPENDER)


@dataclass(frozen=True, slots=True)
class Outcome:
    home: Path
    shared_id: str
    own_ids: list[str]
    #: (target, index) -> message id, per process, as each worker reported them.
    reported: list[dict[tuple[str, int], str]]
    windows: list[tuple[float, float]]
    seconds: float
    slowest_append: float


def _run_appenders(tmp_path: Path, processes: int, count: int, mode: str) -> Outcome:
    """Start ``processes`` workers together, wait for all, and check how they ended."""
    home = tmp_path / "vault"
    with chatkeep.open(home=home, create=True) as vault:
        vault.store.add_user(USER)
        vault.store.create_runtime(USER, RUNTIME)
        shared_id = vault.store.create_conversation(USER, RUNTIME, title="shared").id
        own_ids = [
            vault.store.create_conversation(USER, RUNTIME, title=f"own {n}").id
            for n in range(processes)
        ]
    work = tmp_path / "work"
    work.mkdir()
    start = work / "start"
    children: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(processes):
            with (work / f"out-{n}").open("wb") as out, (work / f"err-{n}").open("wb") as err:
                args = [home, USER, shared_id, own_ids[n], n, count, work / f"ready-{n}", start]
                children.append(
                    subprocess.Popen(
                        [sys.executable, str(APPENDER), *map(str, args), mode],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                    )
                )
        deadline = time.monotonic() + READY_TIMEOUT
        while not all((work / f"ready-{n}").exists() for n in range(processes)):
            early = [n for n, c in enumerate(children) if c.poll() is not None]
            assert not early, f"workers {early} ended before starting: {_stderr(work, early)}"
            assert time.monotonic() < deadline, "workers did not all get ready"
            time.sleep(0.005)
        began = time.monotonic()
        start.touch()
        for child in children:
            child.wait(timeout=1_800)
        seconds = time.monotonic() - began
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    failed = {n: c.returncode for n, c in enumerate(children) if c.returncode != 0}
    assert not failed, f"workers failed {failed}: {_stderr(work, list(failed))}"
    for n in range(processes):
        stderr = (work / f"err-{n}").read_text(errors="replace")
        assert "locked" not in stderr.lower(), stderr
        assert stderr == "", f"worker {n} wrote to stderr:\n{stderr}"
    reported: list[dict[tuple[str, int], str]] = []
    windows = []
    slowest = 0.0
    for n in range(processes):
        *lines, window = (work / f"out-{n}").read_text().splitlines()
        tag, first, last, longest = window.split()
        assert tag == "window"
        windows.append((float(first), float(last)))
        slowest = max(slowest, float(longest))
        ids: dict[tuple[str, int], str] = {}
        for line in lines:
            target, index, message_id = line.split()
            ids[(target, int(index))] = message_id
        assert len(ids) == len(lines) == 2 * count, f"worker {n} reported {len(lines)} appends"
        reported.append(ids)
    # The workers really overlapped: each one's first append came before any one's last.
    assert max(w[0] for w in windows) < min(w[1] for w in windows), windows
    return Outcome(home, shared_id, own_ids, reported, windows, seconds, slowest)


def _stderr(work: Path, workers: list[int]) -> str:
    return "\n".join(
        f"--- worker {n}:\n{(work / f'err-{n}').read_text(errors='replace')}" for n in workers
    )


def _check_store(outcome: Outcome, processes: int, count: int, *, attached: bool) -> int:
    """Exact counts, unique ids, per-process order, linear history, healthy vault.

    Returns how many times the writer changed between consecutive shared messages.
    """
    with chatkeep.open(home=outcome.home) as vault:
        store = vault.store
        shared = store.list_messages(USER, outcome.shared_id, all_branches=True)
        assert len(shared) == processes * count
        assert [m.seq for m in shared] == list(range(processes * count))
        assert len({m.id for m in shared}) == len(shared)
        # Concurrent appends continue one branch: each message's parent is the one before.
        assert [m.parent_id for m in shared] == [None] + [m.id for m in shared[:-1]]
        assert store.get_conversation(USER, outcome.shared_id).message_count == len(shared)
        writers = []
        seen: dict[int, list[int]] = {n: [] for n in range(processes)}
        for message in shared:
            process, index, target = appender.parse_text(message.parts[0].text)
            assert target == "shared"
            assert message.id == outcome.reported[process][("shared", index)]
            seen[process].append(index)
            writers.append(process)
        for process, indexes in seen.items():
            assert indexes == list(range(count)), f"process {process} order: {indexes[:20]}"
        for process, own_id in enumerate(outcome.own_ids):
            own = store.list_messages(USER, own_id, all_branches=True)
            assert [appender.parse_text(m.parts[0].text) for m in own] == [
                (process, index, "own") for index in range(count)
            ]
            assert [m.id for m in own] == [
                outcome.reported[process][("own", index)] for index in range(count)
            ]
            assert [m.seq for m in own] == list(range(count))
        every_id = [m.id for m in shared] + [
            m.id for own_id in outcome.own_ids for m in store.list_messages(USER, own_id)
        ]
        assert len(set(every_id)) == 2 * processes * count
        if attached:
            _check_attachments(vault, outcome, processes, count)
        problems = vault.doctor()
    # Nothing crashed here, so not even a warning (stray temp file, unused blob) is due.
    assert problems == []
    return sum(a != b for a, b in itertools.pairwise(writers))


def _check_attachments(vault: chatkeep.Vault, outcome: Outcome, processes: int, count: int) -> None:
    """Same content sent by every process at once is stored once and reads back intact."""
    store = vault.store
    kinds = len(appender.ATTACHMENT_SIZES)
    expected = [appender.attachment_for(kind) for kind in range(kinds)]
    digests = [hashlib.sha256(data).hexdigest() for data in expected]
    total = 0
    for conversation_id in [outcome.shared_id, *outcome.own_ids]:
        for message in store.list_messages(USER, conversation_id, all_branches=True):
            _, index, _ = appender.parse_text(message.parts[0].text)
            (attachment,) = message.attachments
            assert attachment.name == f"same-{index}.bin"
            assert attachment.sha256 == digests[index % kinds]
            assert attachment.size == len(expected[index % kinds])
            assert store.read_attachment(USER, attachment.id) == expected[index % kinds]
            total += 1
    assert total == 2 * processes * count
    # One file per distinct content, however many processes sent it at once.
    assert sorted(p.name for p in vault.paths.blobs.glob("??/*")) == sorted(digests)


def _campaign(tmp_path: Path, processes: int, count: int, mode: str) -> None:
    outcome = _run_appenders(tmp_path, processes, count, mode)
    switches = _check_store(outcome, processes, count, attached=mode == "attach")
    print(
        f"\n{mode}: {processes} processes x {count} rounds "
        f"({2 * processes * count} appends) in {outcome.seconds:.1f} s, "
        f"slowest append {outcome.slowest_append:.2f} s, "
        f"writer switched {switches} times in the shared conversation"
    )


@pytest.mark.timeout(600)
def test_concurrent_appends_lose_nothing_and_keep_order(tmp_path: Path, backend: str) -> None:
    """4 processes x 100 rounds (shared, then own conversation) started together: exact
    counts, unique ids, each process's order kept, no lock error, ``doctor`` clean."""
    _campaign(tmp_path, processes=4, count=100, mode="text")


@pytest.mark.timeout(600)
def test_concurrent_identical_attachments_are_stored_once(tmp_path: Path, backend: str) -> None:
    """4 processes x 100 rounds, every message with an attachment whose content all
    processes send at the same moment: one blob per content, every attachment intact,
    ``doctor`` clean."""
    _campaign(tmp_path, processes=4, count=100, mode="attach")


@pytest.mark.stress
@pytest.mark.timeout(3600)
def test_concurrent_appends_stress(tmp_path: Path) -> None:
    """8 processes x 500 rounds of the plain append test."""
    _campaign(tmp_path, processes=8, count=500, mode="text")


@pytest.mark.stress
@pytest.mark.timeout(3600)
def test_concurrent_identical_attachments_stress(tmp_path: Path) -> None:
    """8 processes x 200 rounds of the identical-attachment test."""
    _campaign(tmp_path, processes=8, count=200, mode="attach")
