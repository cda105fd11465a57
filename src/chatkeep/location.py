"""Where a vault lives, and the checks that keep it out of harm's way.

The root is ``<base>/<env>``: the base from ``--home``, else ``CHATKEEP_HOME``, else the
platform's user data directory; ``<env>`` from ``CHATKEEP_ENV`` (default ``default``).
Two environments therefore never share a root, whatever the base.

A vault root holds ``vault.json`` (its format version), a ``.gitignore`` of ``*``, the
SQLite database and the blob directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson
import platformdirs

from chatkeep import fsutil
from chatkeep.errors import UnsafeLocation, VaultError, VaultNotInitialised, VaultTooNew
from chatkeep.ids import check_name

#: The on-disk format this code writes. A vault with a higher number is refused.
FORMAT_VERSION: Final = 1
VAULT_FILE: Final = "vault.json"
DATABASE_FILE: Final = "chatkeep.db"
BLOB_DIR: Final = "blobs"
DEFAULT_ENV: Final = "default"


@dataclass(frozen=True, slots=True)
class VaultPaths:
    root: Path

    @property
    def vault_file(self) -> Path:
        return self.root / VAULT_FILE

    @property
    def database(self) -> Path:
        return self.root / DATABASE_FILE

    @property
    def blobs(self) -> Path:
        return self.root / BLOB_DIR


def resolve_root(home: str | os.PathLike[str] | None = None, env: str | None = None) -> Path:
    """The vault root for ``home`` (or the environment's defaults) and ``env``."""
    environment = env if env is not None else os.environ.get("CHATKEEP_ENV") or DEFAULT_ENV
    check_name("environment", environment)
    if home is not None:
        base = Path(home)
    elif os.environ.get("CHATKEEP_HOME"):
        base = Path(os.environ["CHATKEEP_HOME"])
    else:
        base = platformdirs.user_data_path("chatkeep", appauthor=False)
    return (base.expanduser() / environment).absolute()


def enclosing_git_work_tree(path: Path) -> Path | None:
    """The top of the git work tree containing ``path`` (existing or not), if any.

    Where the path really leads counts: symbolic links are followed and ``..`` is
    resolved before looking for a ``.git`` above it.
    """
    real = path.resolve()
    for candidate in (real, *real.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def initialise(root: Path, *, allow_in_git: bool = False, backend: str = "sqlite") -> bool:
    """Create the vault's directory, ``.gitignore`` and ``vault.json``.

    Returns False when a vault was already there (its version is still checked).
    """
    paths = VaultPaths(root)
    if paths.vault_file.exists():
        read_vault_file(root)
        return False
    work_tree = enclosing_git_work_tree(root)
    if work_tree is not None and not allow_in_git:
        raise UnsafeLocation(
            f"refusing to create a vault inside the git work tree {work_tree}",
            hint="choose a --home outside any repository, or pass --allow-in-git",
        )
    if root.exists() and not root.is_dir():
        raise UnsafeLocation(f"{root} exists and is not a directory")
    fsutil.ensure_dir(root)
    fsutil.atomic_write(root / ".gitignore", b"# chatkeep vault: never commit it\n*\n")
    header = {
        "format": "chatkeep-vault",
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "backend": backend,
    }
    fsutil.atomic_write(paths.vault_file, orjson.dumps(header, option=orjson.OPT_INDENT_2))
    return True


def read_vault_file(root: Path) -> dict[str, Any]:
    """Read and check ``vault.json``; refuse a missing, foreign or too-new vault."""
    path = VaultPaths(root).vault_file
    try:
        header = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise VaultNotInitialised(
            f"no chatkeep vault at {root}",
            hint="run 'chatkeep init' (with the same --home / CHATKEEP_HOME / CHATKEEP_ENV)",
        ) from None
    except orjson.JSONDecodeError as exc:
        raise VaultError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != "chatkeep-vault":
        raise VaultError(f"{path} does not describe a chatkeep vault")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise VaultError(f"{path} has no valid format_version")
    if version > FORMAT_VERSION:
        raise VaultTooNew(
            f"the vault at {root} has format version {version}; "
            f"this chatkeep reads up to version {FORMAT_VERSION}",
            hint="upgrade chatkeep to open this vault; nothing was changed",
        )
    return header
