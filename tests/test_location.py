"""Where a vault lives: root resolution, environments, git safety and the format version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import chatkeep
from chatkeep import location
from chatkeep.cli import cli
from chatkeep.errors import InvalidId, UnsafeLocation, VaultError, VaultNotInitialised, VaultTooNew


def invoke(*args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def ok(*args: str, input: str | None = None) -> str:
    result = invoke(*args, input=input)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result.stdout


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# -- root resolution ---------------------------------------------------------------
def test_home_option_beats_chatkeep_home(tmp_path: Path, isolated_environment: Path) -> None:
    chosen = tmp_path / "chosen"
    assert location.resolve_root(chosen) == chosen / "default"
    assert location.resolve_root(str(chosen)) == chosen / "default"
    ok("--home", str(chosen), "init")
    assert (chosen / "default" / "vault.json").is_file()
    assert not isolated_environment.exists()


def test_chatkeep_home_is_used_without_home(isolated_environment: Path) -> None:
    assert location.resolve_root() == isolated_environment / "default"
    ok("init")
    assert (isolated_environment / "default" / "vault.json").is_file()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG applies on Linux")
def test_platform_data_dir_without_chatkeep_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_home = tmp_path / "xdg-data"
    monkeypatch.delenv("CHATKEEP_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    assert location.resolve_root() == data_home / "chatkeep" / "default"
    assert location.resolve_root(env="dev") == data_home / "chatkeep" / "dev"
    ok("init", "--user", "alice")
    assert (data_home / "chatkeep" / "default" / "vault.json").is_file()
    with chatkeep.open() as vault:
        assert vault.root == data_home / "chatkeep" / "default"


def test_empty_chatkeep_home_falls_back_to_the_platform_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATKEEP_HOME", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    root = location.resolve_root()
    assert root.name == "default"
    assert root.parent.name == "chatkeep"
    assert root.is_absolute()


def test_root_is_base_slash_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "base"
    assert location.resolve_root(base, "default") == base / "default"
    assert location.resolve_root(base, "dev") == base / "dev"
    monkeypatch.setenv("CHATKEEP_ENV", "prod")
    assert location.resolve_root(base) == base / "prod"
    assert location.resolve_root(base, "dev") == base / "dev"  # explicit env wins
    monkeypatch.setenv("CHATKEEP_ENV", "")
    assert location.resolve_root(base) == base / "default"


def test_relative_and_tilde_homes_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert location.resolve_root("rel") == tmp_path / "rel" / "default"
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    assert location.resolve_root("~/vaults") == tmp_path / "user-home" / "vaults" / "default"
    monkeypatch.setenv("CHATKEEP_HOME", "~/from-env")
    assert location.resolve_root() == tmp_path / "user-home" / "from-env" / "default"


def test_env_option_and_variable_in_the_cli(
    isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("--env", "staging", "init")
    assert (isolated_environment / "staging" / "vault.json").is_file()
    monkeypatch.setenv("CHATKEEP_ENV", "qa")
    ok("init")
    assert (isolated_environment / "qa" / "vault.json").is_file()
    assert not (isolated_environment / "default").exists()
    assert json.loads(ok("--env", "staging", "init", "--json"))["created"] is False


# -- environments ------------------------------------------------------------------
def test_environments_never_share_data(
    isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATKEEP_ENV", "dev")
    ok("init", "--user", "alice")
    ok("runtime", "add", "synth")
    dev_conversation = ok("new", "--title", "dev only").strip()
    ok("append", dev_conversation, "dev secret")
    ok("config", "set", "ui.theme", "dark")

    monkeypatch.setenv("CHATKEEP_ENV", "prod")
    ok("init", "--user", "bob")
    assert [u["id"] for u in json.loads(ok("user", "ls", "--json"))] == ["bob"]
    assert json.loads(ok("runtime", "ls", "--json")) == []
    assert json.loads(ok("ls", "--json")) == []
    lookup = invoke("show", dev_conversation)
    assert lookup.exit_code == 4
    assert invoke("--user", "alice", "ls").exit_code == 4  # no alice in prod
    assert invoke("config", "get", "ui.theme").exit_code == 4

    monkeypatch.setenv("CHATKEEP_ENV", "dev")
    assert [u["id"] for u in json.loads(ok("user", "ls", "--json"))] == ["alice"]
    assert "dev secret" in ok("show", dev_conversation)

    dev_root, prod_root = isolated_environment / "dev", isolated_environment / "prod"
    assert dev_root != prod_root
    assert (dev_root / "chatkeep.db").is_file()
    assert (prod_root / "chatkeep.db").is_file()


def test_environments_in_the_library(isolated_environment: Path) -> None:
    with chatkeep.open(env="dev", create=True) as dev:
        dev.store.add_user("alice")
        dev_root = dev.root
    with chatkeep.open(env="prod", create=True) as prod:
        assert prod.store.list_users() == []
        prod.store.add_user("bob")
        prod_root = prod.root
    with chatkeep.open(env="dev") as dev:
        assert [u.id for u in dev.store.list_users()] == ["alice"]
    assert dev_root == isolated_environment / "dev"
    assert prod_root == isolated_environment / "prod"


@pytest.mark.parametrize("env", ["../x", "..", ".", "a/b", "a\\b", "Dev", "", "-x", "x" * 65])
def test_invalid_env_names_are_refused(env: str, isolated_environment: Path) -> None:
    with pytest.raises(InvalidId):
        location.resolve_root(env=env)
    with pytest.raises(InvalidId):
        chatkeep.open(env=env, create=True)
    result = invoke("--env", env, "init")
    assert result.exit_code == InvalidId.exit_code
    assert result.stderr.startswith("error: ")
    assert not isolated_environment.exists()


def test_invalid_env_variable_is_refused(
    isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATKEEP_ENV", "../escape")
    with pytest.raises(InvalidId):
        location.resolve_root()
    result = invoke("init", "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["error"]["code"] == "invalid_id"
    assert not isolated_environment.exists()
    assert not (isolated_environment.parent / "escape").exists()


# -- git safety --------------------------------------------------------------------
def make_git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(path)], check=True, capture_output=True)
    else:
        (path / ".git").mkdir()
    return path


def test_init_inside_a_git_work_tree_is_refused(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo")
    home = repo / "nested" / "home"
    result = invoke("--home", str(home), "init", "--user", "alice")
    assert result.exit_code == 8
    assert result.stderr.startswith("error: refusing to create a vault inside the git work tree")
    assert str(repo) in result.stderr
    assert "--allow-in-git" in result.stderr
    assert not (repo / "nested").exists()
    error = json.loads(invoke("--home", str(home), "init", "--json").stdout)["error"]
    assert error["code"] == "unsafe_location"
    with pytest.raises(UnsafeLocation):
        chatkeep.open(home=home, create=True)
    assert not (repo / "nested").exists()


@pytest.mark.parametrize("marker", ["directory", "file"])
def test_a_bare_git_marker_is_enough(tmp_path: Path, marker: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    if marker == "directory":
        (project / ".git").mkdir()
    else:
        (project / ".git").write_text("gitdir: ../elsewhere/.git/worktrees/project\n")
    assert location.enclosing_git_work_tree(project / "a" / "b") == project
    result = invoke("--home", str(project / "a"), "init")
    assert result.exit_code == 8
    assert not (project / "a").exists()
    assert location.enclosing_git_work_tree(tmp_path / "outside") is None


def test_allow_in_git_creates_the_vault(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo")
    home = repo / "home"
    ok("--home", str(home), "init", "--allow-in-git", "--user", "alice")
    assert (home / "default" / "vault.json").is_file()
    ok("--home", str(home), "runtime", "add", "synth")  # opening it is not refused
    with chatkeep.open(home=repo / "lib", create=True, allow_in_git=True) as vault:
        assert vault.root == repo / "lib" / "default"


def test_init_again_on_an_allowed_vault_in_git_is_harmless(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo")
    home = repo / "home"
    ok("--home", str(home), "init", "--allow-in-git", "--user", "alice")
    assert "Found vault at" in ok("--home", str(home), "init")


def test_vault_gitignore_ignores_everything(tmp_path: Path) -> None:
    ok("init", "--user", "alice")
    root = Path(os.environ["CHATKEEP_HOME"]) / "default"
    lines = (root / ".gitignore").read_text().splitlines()
    rules = [line for line in lines if line.strip() and not line.startswith("#")]
    assert rules == ["*"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_sees_nothing_of_a_vault_inside_a_repo(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo")
    home = repo / "home"
    attachment = tmp_path / "file.txt"
    attachment.write_bytes(b"attached")
    ok("--home", str(home), "init", "--allow-in-git", "--user", "alice")
    ok("--home", str(home), "runtime", "add", "synth")
    home_id = ok("--home", str(home), "route", "synth").strip()
    ok("--home", str(home), "append", home_id, "hello", "--attach", str(attachment))
    assert any((home / "default" / "blobs").rglob("*"))
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=all"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert status.stdout == ""
    (repo / "tracked.txt").write_text("x")  # the check itself can see untracked files
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=all"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert status.stdout == "?? tracked.txt\n"


def test_root_that_is_a_file_is_refused(isolated_environment: Path) -> None:
    isolated_environment.mkdir()
    (isolated_environment / "default").write_text("not a directory")
    with pytest.raises(UnsafeLocation):
        chatkeep.open(create=True)
    assert invoke("init").exit_code == 8
    assert (isolated_environment / "default").read_text() == "not a directory"


# -- missing vault -----------------------------------------------------------------
def test_missing_vault_is_not_created_by_opening(isolated_environment: Path) -> None:
    with pytest.raises(VaultNotInitialised) as raised:
        chatkeep.open()
    assert raised.value.hint is not None
    assert "chatkeep init" in raised.value.hint
    assert not isolated_environment.exists()


def test_init_twice_keeps_the_vault(isolated_environment: Path) -> None:
    ok("init", "--user", "alice")
    root = isolated_environment / "default"
    header = (root / "vault.json").read_bytes()
    assert "Found vault at" in ok("init")
    assert (root / "vault.json").read_bytes() == header
    parsed = json.loads(header)
    assert parsed["format"] == "chatkeep-vault"
    assert parsed["format_version"] == location.FORMAT_VERSION


# -- format version ----------------------------------------------------------------
@pytest.fixture
def populated_root(isolated_environment: Path, tmp_path: Path) -> Path:
    """A closed vault with a user, a runtime, a message and an attachment."""
    attachment = tmp_path / "a.bin"
    attachment.write_bytes(b"\x00\x01 bytes")
    ok("init", "--user", "alice")
    ok("runtime", "add", "synth")
    home = ok("route", "synth").strip()
    ok("append", home, "hello", "--attach", str(attachment))
    return isolated_environment / "default"


def write_header(root: Path, **changes: object) -> None:
    path = root / "vault.json"
    header = json.loads(path.read_bytes())
    header.update(changes)
    path.write_text(json.dumps(header))


def test_a_newer_format_version_is_refused_and_left_unchanged(populated_root: Path) -> None:
    write_header(populated_root, format_version=location.FORMAT_VERSION + 1)
    before = snapshot(populated_root)
    with pytest.raises(VaultTooNew) as raised:
        chatkeep.open()
    assert f"format version {location.FORMAT_VERSION + 1}" in raised.value.message
    with pytest.raises(VaultTooNew):
        chatkeep.open(create=True)
    for args in (("ls",), ("init", "--user", "bob"), ("doctor",), ("user", "add", "carol")):
        result = invoke(*args)
        assert result.exit_code == 8, args
        assert result.stderr.startswith("error: the vault at")
        assert "upgrade chatkeep" in result.stderr
    error = json.loads(invoke("user", "ls", "--json").stdout)["error"]
    assert error["code"] == "vault_too_new"
    assert snapshot(populated_root) == before


def test_an_older_or_equal_format_version_opens(populated_root: Path) -> None:
    with chatkeep.open() as vault:
        assert [u.id for u in vault.store.list_users()] == ["alice"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[1, 2]", id="list"),
        pytest.param(b'{"format": "other", "format_version": 1}', id="foreign"),
        pytest.param(b'{"format": "chatkeep-vault"}', id="no-version"),
        pytest.param(b'{"format": "chatkeep-vault", "format_version": "1"}', id="text-version"),
        pytest.param(b'{"format": "chatkeep-vault", "format_version": true}', id="bool-version"),
    ],
)
def test_a_corrupt_vault_file_is_a_clear_vault_error(populated_root: Path, content: bytes) -> None:
    (populated_root / "vault.json").write_bytes(content)
    before = snapshot(populated_root)
    with pytest.raises(VaultError) as raised:
        chatkeep.open()
    assert type(raised.value) is VaultError
    assert "vault.json" in raised.value.message
    result = invoke("ls")
    assert result.exit_code == 8
    assert result.stderr.startswith("error: ")
    assert "vault.json" in result.stderr
    assert invoke("init").exit_code == 8
    assert snapshot(populated_root) == before
