"""Crash safety: a writer killed with SIGKILL at a random moment loses nothing it was told
was stored, and leaves a vault that ``doctor`` finds healthy.

Each run starts ``workers/crash_writer.py`` in a child process, which appends messages
(a few bytes to 256 KiB of text with Unicode and NUL characters, an attachment every third
message) and prints one line per acknowledged ``append_message``. The parent kills it with
SIGKILL after a delay drawn from ``random.Random(seed)``, reopens the vault and checks every
acknowledged message byte for byte against the content it regenerates from the seed.

A vault serves :data:`RUNS_PER_VAULT` consecutive runs (a new conversation each), so the
database is recovered after one kill and written again before the next; a passed batch's
vault is removed to keep ``tmp_path`` small.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import chatkeep

from .helpers import load_script

WORKERS = Path(__file__).parent / "workers"
WRITER = WORKERS / "crash_writer.py"
USER = "alice"
RUNTIME = "crashy"
RUNS_PER_VAULT = 10
#: Share of runs killed straight after ``ready``, before the first append can finish.
EARLY_SHARE = 0.25
EARLY_DELAY = (0.0, 0.004)
MID_DELAY = (0.05, 0.4)
READY_TIMEOUT = 60.0


writer = load_script("chatkeep_crash_writer", WRITER)


@dataclass(frozen=True, slots=True)
class Ack:
    index: int
    message_id: str
    text_sha256: str
    attachment_sha256: str | None


@dataclass(slots=True)
class Tally:
    runs: int = 0
    early: int = 0  # killed before the first acknowledgement
    mid_stream: int = 0  # killed after at least one acknowledgement
    acknowledged: int = 0
    unacknowledged_but_stored: int = 0  # committed, killed before the ack line
    during_attachment: int = 0  # killed while sending a message with an attachment
    attachments: int = 0
    warnings: set[tuple[str, str]] = field(default_factory=set)  # distinct (check, message)


class Child:
    """The writer process, with a thread draining its stdout line by line."""

    def __init__(self, home: Path, conversation_id: str, seed: int, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self.lines: list[str] = []
        self.ready = threading.Event()
        with stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(WRITER), str(home), USER, conversation_id, str(seed)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("ascii")
            if line.startswith("ready "):
                self.ready.set()
            else:
                self.lines.append(line)
        self.ready.set()  # EOF: unblock the waiter, who then sees the exit

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def _parse_acks(lines: list[str], seed: int) -> list[Ack]:
    acks = []
    for number, line in enumerate(lines):
        # A killed writer cannot leave half a line: each line is one small write().
        assert line.endswith("\n"), f"seed {seed}: torn output line {line!r}"
        tag, index, message_id, text_sha, attachment_sha = line.split()
        assert tag == "ack" and int(index) == number, f"seed {seed}: odd line {line!r}"
        acks.append(
            Ack(number, message_id, text_sha, None if attachment_sha == "-" else attachment_sha)
        )
    return acks


def _new_conversation(home: Path, create: bool) -> str:
    with chatkeep.open(home=home, create=create) as vault:
        if create:
            vault.store.add_user(USER)
            vault.store.create_runtime(USER, RUNTIME)
        return vault.store.create_conversation(USER, RUNTIME, title="crash target").id


def _verify(home: Path, conversation_id: str, seed: int, acks: list[Ack], tally: Tally) -> None:
    """Every acknowledged message is stored exactly as sent; the vault is healthy."""
    with chatkeep.open(home=home) as vault:
        store = vault.store
        stored = store.list_messages(USER, conversation_id, all_branches=True)
        acknowledged, kept = len(acks), len(stored)
        context = f"seed {seed}: {acknowledged} acknowledged, {kept} stored"
        # Everything acknowledged, plus at most the one append the kill interrupted
        # after its commit but before its ack line.
        assert acknowledged <= kept <= acknowledged + 1, context
        previous_id = None
        for index, message in enumerate(stored):
            sent = writer.payload(seed, index)
            attachment_sha = (
                hashlib.sha256(sent.attachment.data).hexdigest() if sent.attachment else None
            )
            if index < len(acks):
                ack = acks[index]
                assert message.id == ack.message_id, context
                # The parent regenerates exactly what the child sent.
                assert writer.sha256_text(sent.text) == ack.text_sha256, context
                assert attachment_sha == ack.attachment_sha256, context
            else:
                tally.unacknowledged_but_stored += 1
            assert message.seq == index, context
            assert message.parent_id == previous_id, context
            previous_id = message.id
            assert message.parts[0].kind == "text", context
            assert message.parts[0].text == sent.text, f"{context}: text of message {index}"
            if sent.attachment is None:
                assert message.attachments == (), context
            else:
                (attachment,) = message.attachments
                assert attachment.name == sent.attachment.name, context
                assert attachment.sha256 == attachment_sha, context
                assert attachment.size == len(sent.attachment.data), context
                data = store.read_attachment(USER, attachment.id)
                assert data == sent.attachment.data, f"{context}: bytes of attachment {index}"
                tally.attachments += 1
        conversation = store.get_conversation(USER, conversation_id)
        assert conversation.message_count == len(stored), context
        assert conversation.active_leaf_id == previous_id, context
        problems = vault.doctor()
    errors = [p for p in problems if p.severity == "error"]
    assert not errors, f"seed {seed}: doctor found {errors}"
    tally.warnings.update((p.check, p.message) for p in problems)
    tally.acknowledged += len(acks)


def _one_run(home: Path, first_in_vault: bool, seed: int, tally: Tally, logs: Path) -> None:
    rng = random.Random(seed)
    early = rng.random() < EARLY_SHARE
    delay = rng.uniform(*(EARLY_DELAY if early else MID_DELAY))
    conversation_id = _new_conversation(home, create=first_in_vault)
    child = Child(home, conversation_id, seed, logs / f"writer-{seed}.stderr")
    try:
        assert child.ready.wait(READY_TIMEOUT), f"seed {seed}: writer never became ready"
        time.sleep(delay)
        assert child.process.poll() is None, (
            f"seed {seed}: writer ended before the kill:\n{child.stderr()}"
        )
    finally:
        child.kill()
    assert child.process.returncode == -signal.SIGKILL, child.stderr()
    acks = _parse_acks(child.lines, seed)
    _verify(home, conversation_id, seed, acks, tally)
    tally.runs += 1
    tally.during_attachment += writer.payload(seed, len(acks)).attachment is not None
    if acks:
        tally.mid_stream += 1
    else:
        tally.early += 1


def _crash_campaign(tmp_path: Path, seeds: Iterable[int], *, rotate: bool = True) -> Tally:
    """Runs on a fresh vault every RUNS_PER_VAULT runs (``rotate``), or all on one (a
    PostgreSQL schema holds one vault's data)."""
    tally = Tally()
    logs = tmp_path / "logs"
    logs.mkdir()
    home = tmp_path / "vault-0"
    for number, seed in enumerate(seeds):
        if rotate and number % RUNS_PER_VAULT == 0:
            if number:
                shutil.rmtree(home)  # its runs all passed
            home = tmp_path / f"vault-{number // RUNS_PER_VAULT}"
        first = number % RUNS_PER_VAULT == 0 if rotate else number == 0
        _one_run(home, first, seed, tally, logs)
    # The delays must really spread the kills: some before any write was acknowledged,
    # most in the middle of the stream.
    assert tally.early >= 1, tally
    assert tally.mid_stream >= tally.runs // 2, tally
    kinds = Counter(check for check, _ in tally.warnings)
    print(
        f"\ncrash runs={tally.runs} early={tally.early} mid_stream={tally.mid_stream} "
        f"acknowledged={tally.acknowledged} "
        f"stored_unacknowledged={tally.unacknowledged_but_stored} "
        f"attachments={tally.attachments} killed_during_attachment={tally.during_attachment} "
        f"doctor_warnings={dict(kinds)}"
    )
    return tally


def test_payloads_cover_the_required_shapes() -> None:
    """The writer really sends what the crash test claims: tiny to ~256 KiB texts with
    Unicode beyond the BMP and NUL characters, attachments, and repeated attachment
    content."""
    payloads = [writer.payload(0, index) for index in range(60)]
    sizes = [len(p.text.encode("utf-8")) for p in payloads]
    assert min(sizes) <= 64
    assert max(sizes) >= 128 * 1024
    assert max(sizes) <= 256 * 1024
    assert any("\x00" in p.text for p in payloads)
    assert any(any(ord(ch) > 0xFFFF for ch in p.text) for p in payloads)
    attached = [p.attachment for p in payloads if p.attachment is not None]
    assert len(attached) == 20
    assert len({a.data for a in attached}) < len(attached)  # some content repeats


@pytest.mark.timeout(600)
def test_sigkill_never_loses_an_acknowledged_message(tmp_path: Path, backend: str) -> None:
    """Seeded runs (50 on SQLite, 20 on PostgreSQL and on files): SIGKILL at a random
    moment (early or mid-stream) never loses or alters an acknowledged message or attachment, and
    ``doctor`` reports no error."""
    if backend == "postgres":
        _crash_campaign(tmp_path, range(2_000, 2_020), rotate=False)
    elif backend == "files":  # each run reopens, and may undo, a journal: slower
        _crash_campaign(tmp_path, range(3_000, 3_020))
    else:
        _crash_campaign(tmp_path, range(50))


@pytest.mark.stress
@pytest.mark.timeout(3600)
def test_sigkill_never_loses_an_acknowledged_message_stress(tmp_path: Path) -> None:
    """The same as the default crash test over 300 other seeds."""
    _crash_campaign(tmp_path, range(1_000, 1_300))
