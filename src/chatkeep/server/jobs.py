"""Import jobs: an uploaded export, spooled to disk, imported on a worker thread.

The upload never sits whole in memory: the route streams it into a spool file under
``<vault>/uploads/``. One worker thread runs imports one after another (an import holds
the store's write lock for its transaction anyway). A job's progress and report are kept
in memory for this process; the import record itself is in the vault for good.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from chatkeep import fsutil, limits, shapes
from chatkeep.errors import ChatkeepError, NotFound
from chatkeep.ids import check_id, check_name, new_id
from chatkeep.importing import import_export
from chatkeep.timeutil import utcnow
from chatkeep.vault import Vault

UPLOADS_DIR: Final = "uploads"
_UNSAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._ -]")
JobState = Literal["queued", "running", "done", "failed"]


def upload_name(name: str | None) -> str:
    """A file name from the client, cut down to something harmless that keeps its
    extension (format detection looks at it): no path, no control characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = _UNSAFE_NAME.sub("_", base).strip(" .")[:200]
    return clean or "export.zip"


@dataclass(slots=True)
class ImportJob:
    id: str
    user_id: str
    file_name: str
    options: dict[str, Any]
    state: JobState = "queued"
    done: int = 0
    total: int = 0
    created_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def shape(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "file_name": self.file_name,
            "progress": {"done": self.done, "total": self.total},
            "created_at": shapes.time_text(self.created_at),
            "finished_at": shapes.time_text(self.finished_at),
            "result": self.result,
            "error": self.error,
        }


class ImportJobs:
    """The jobs of one server process."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatkeep-import")

    @property
    def spool_dir(self) -> Path:
        return self._vault.root / UPLOADS_DIR

    def submit(
        self,
        user_id: str,
        spooled: Path,
        *,
        platform: str | None = None,
        again: bool = False,
        dry_run: bool = False,
    ) -> ImportJob:
        """Queue the import of the spooled upload; the job owns (and removes) it."""
        check_name("user", user_id)
        job = ImportJob(
            id=new_id("job"),
            user_id=user_id,
            file_name=spooled.name,
            options={"platform": platform, "again": again, "dry_run": dry_run},
        )
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        self._worker.submit(self._run, job, spooled)
        return job

    def get(self, user_id: str, job_id: str) -> ImportJob:
        check_id("job", job_id)
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.user_id != user_id:
            raise NotFound(f"no import job {job_id}")
        return job

    def list(self, user_id: str) -> list[ImportJob]:
        with self._lock:
            return [job for job in reversed(self._jobs.values()) if job.user_id == user_id]

    def shutdown(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: ImportJob, spooled: Path) -> None:
        job.state = "running"

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        try:
            outcome = import_export(
                self._vault,
                job.user_id,
                spooled,
                platform=job.options["platform"],
                again=job.options["again"],
                dry_run=job.options["dry_run"],
                progress=progress,
            )
            job.result = {
                **shapes.import_record(outcome.record),
                "already_imported": outcome.already_imported,
                "dry_run": outcome.dry_run,
            }
            job.done = job.total
            job.state = "done"
        except ChatkeepError as error:
            job.error, job.state = error.to_dict(), "failed"
        except Exception as error:  # a bug: report it on the job, keep the worker alive
            job.error = {"code": "internal", "message": f"{type(error).__name__}: {error}"}
            job.state = "failed"
        finally:
            job.finished_at = utcnow()
            fsutil.remove_tree(spooled.parent)

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in ("done", "failed")]
        while len(self._jobs) > limits.MAX_REMEMBERED_JOBS and finished:
            self._jobs.pop(finished.pop(0), None)
