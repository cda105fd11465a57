"""The ``chatkeep`` command line: parses, calls the library, formats. Nothing more.

Every :class:`~chatkeep.errors.ChatkeepError` becomes a message on stderr (or a JSON
error object on stdout with ``--json``) and the error's exit code; never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import orjson

from chatkeep import crypto, fsutil, location, render, shapes, tokens
from chatkeep.encryption import KeyFile, KeyStatus, Passphrase, Secret, read_key_file
from chatkeep.errors import ChatkeepError, InvalidInput, Locked, NotFound
from chatkeep.model import ROLES, ConversationState, NewAttachment, NewMessage, Part, UserKey
from chatkeep.search import SearchFilters
from chatkeep.store import Store
from chatkeep.vault import Vault, open_vault

F = TypeVar("F", bound=Callable[..., Any])

#: Exit code for a bug in chatkeep itself (EX_SOFTWARE).
INTERNAL_ERROR_EXIT = 70
#: Exit code of ``doctor`` when it finds problems.
DOCTOR_PROBLEMS_EXIT = 9
#: Where the passphrase of an encrypted user can come from (see ``chatkeep key --help``).
PASSPHRASE_ENV = "CHATKEEP_PASSPHRASE"  # noqa: S105 (a variable's name)
NEW_PASSPHRASE_ENV = "CHATKEEP_NEW_PASSPHRASE"  # noqa: S105


class State:
    """What the global options chose; opens the vault on first use."""

    def __init__(
        self,
        home: str | None,
        env: str | None,
        user: str | None,
        *,
        passphrase_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        self.home, self.env, self.explicit_user = home, env, user
        self.passphrase_file, self.key_file = passphrase_file, key_file
        self._vault: Vault | None = None

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = open_vault(self.home, env=self.env)
            # Asked only when an encrypted user's content is actually needed.
            self._vault.keys.provider = self.secret_for
        return self._vault

    def secret_for(self, key: UserKey) -> Secret | None:
        """The secret that opens ``key``: a key file (--key-file, $CHATKEEP_KEY_FILE),
        else a passphrase ($CHATKEEP_PASSPHRASE, --passphrase-file, or asked on a
        terminal); None when there is none to be had."""
        if key.method == "key_file":
            return None if self.key_file is None else KeyFile(read_key_file(Path(self.key_file)))
        return self.passphrase(f"Passphrase of user {key.user_id}")

    def passphrase(self, prompt: str, *, twice: bool = False) -> Passphrase | None:
        if os.environ.get(PASSPHRASE_ENV):
            return Passphrase(os.environ[PASSPHRASE_ENV])
        if self.passphrase_file is not None:
            return Passphrase(_read_passphrase_file(Path(self.passphrase_file)))
        if not sys.stdin.isatty():
            return None
        text = click.prompt(prompt, hide_input=True, confirmation_prompt=twice, err=True)
        return Passphrase(text)

    @property
    def store(self) -> Store:
        return self.vault.store

    @property
    def user(self) -> str:
        """The acting user: ``--user``, ``CHATKEEP_USER``, or the vault's only user."""
        if self.explicit_user:
            return self.explicit_user
        users = self.store.list_users()
        if len(users) == 1:
            return users[0].id
        if not users:
            raise NotFound("the vault has no users yet", hint="run 'chatkeep user add NAME'")
        raise InvalidInput(
            "the vault has several users; say which one",
            hint="pass --user NAME or set CHATKEEP_USER",
        )

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()


def _state() -> State:
    state = click.get_current_context().find_object(State)
    assert state is not None
    return state


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta["chatkeep.json"] = value
    return value


def json_option(func: F) -> F:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=_set_json,
        is_eager=True,
        help="Print machine-readable JSON (shapes in docs/json.md).",
    )(func)


def emit_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def say(text: str) -> None:
    """Print human-readable text, with control characters made visible."""
    click.echo(render.terminal_safe(text))


class ChatkeepGroup(click.Group):
    """Turns library errors into messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ChatkeepError as error:
            _fail(ctx, error)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except (click.exceptions.Exit, SystemExit, KeyboardInterrupt):
            raise
        except Exception as error:  # a bug: say so briefly, no traceback
            if os.environ.get("CHATKEEP_DEBUG"):
                raise
            click.echo(f"internal error: {type(error).__name__}: {error}", err=True)
            click.echo("hint: set CHATKEEP_DEBUG=1 for a traceback, and please report it", err=True)
            sys.exit(INTERNAL_ERROR_EXIT)


def _fail(ctx: click.Context, error: ChatkeepError) -> NoReturn:
    if ctx.meta.get("chatkeep.json"):
        emit_json({"error": error.to_dict()})
    else:
        click.echo(f"error: {render.terminal_safe(error.message)}", err=True)
        if error.hint:
            click.echo(f"hint: {error.hint}", err=True)
    ctx.exit(error.exit_code)
    raise AssertionError("unreachable")


@click.group(cls=ChatkeepGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=str),
    help="Base directory of vaults (default: $CHATKEEP_HOME, else the user data directory).",
)
@click.option(
    "--env", "env", help="Environment whose vault to use (default: $CHATKEEP_ENV or 'default')."
)
@click.option("--user", "user", envvar="CHATKEEP_USER", help="Act as this user ($CHATKEEP_USER).")
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=str),
    help="Read an encrypted user's passphrase from this file (else $CHATKEEP_PASSPHRASE, "
    "else asked on a terminal).",
)
@click.option(
    "--key-file",
    "key_file",
    envvar="CHATKEEP_KEY_FILE",
    type=click.Path(dir_okay=False, path_type=str),
    help="Key file that opens an encrypted user's key ($CHATKEEP_KEY_FILE).",
)
@click.version_option(package_name="chatkeep")
@click.pass_context
def cli(
    ctx: click.Context,
    home: str | None,
    env: str | None,
    user: str | None,
    passphrase_file: str | None,
    key_file: str | None,
) -> None:
    """chatkeep: keep every AI conversation, durably, in a vault you own.

    A vault is one directory (SQLite database + attachment blobs). Everything in it
    belongs to a user; runtimes are assistant identities, each with a pinned home
    conversation. Start with 'chatkeep init'. A user's content can be encrypted at
    rest: see 'chatkeep key --help'.
    """
    state = State(home, env, user, passphrase_file=passphrase_file, key_file=key_file)
    ctx.obj = state
    ctx.call_on_close(state.close)


# -- vault -----------------------------------------------------------------------
@cli.command()
@click.option("--allow-in-git", is_flag=True, help="Allow a vault inside a git work tree.")
@click.option("--user", "user_name", help="Also create this user (same as the global --user).")
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "files"]),
    help="Where a new vault keeps its data: one SQLite file (default; CHATKEEP_BACKEND), "
    "or plain JSON/JSONL files with a derived index. CHATKEEP_DATABASE_URL means PostgreSQL.",
)
@json_option
def init(allow_in_git: bool, user_name: str | None, backend: str | None, as_json: bool) -> None:
    """Create the vault (if missing) and, with --user, that user.

    The vault goes to <home>/<env>; creating it inside a git work tree is refused
    unless --allow-in-git is given. Running init again is harmless. A vault keeps the
    backend it was created with; 'chatkeep migrate' copies it to another.
    """
    state = _state()
    state.explicit_user = user_name or state.explicit_user
    root = location.resolve_root(state.home, state.env)
    if os.environ.get("CHATKEEP_DATABASE_URL"):
        backend = "postgresql"
    chosen = backend or os.environ.get("CHATKEEP_BACKEND") or "sqlite"
    created = location.initialise(root, allow_in_git=allow_in_git, backend=chosen)
    user_created = False
    if state.explicit_user:
        existing = {u.id for u in state.store.list_users()}
        if state.explicit_user not in existing:
            state.store.add_user(state.explicit_user)
            user_created = True
    else:
        state.store.list_users()  # open it: creates and migrates the database
    if as_json:
        emit_json({"root": str(root), "created": created, "user_created": user_created})
        return
    say(f"{'Created' if created else 'Found'} vault at {root}")
    if user_created:
        say(f"Created user {state.explicit_user}")


@cli.command()
@click.option(
    "--fix",
    is_flag=True,
    help="First clear what a killed writer left: stale temp files and unused blobs.",
)
@click.option("--rebuild", is_flag=True, help="First rebuild the search index from scratch.")
@json_option
def doctor(fix: bool, rebuild: bool, as_json: bool) -> None:
    """Check the vault: database integrity, foreign keys, trees, counters, blob hashes.

    Exits with status 9 when it finds an error (warnings alone exit 0).
    """
    vault = _state().vault
    repaired = vault.repair() if fix else None
    if rebuild:
        indexed = vault.store.rebuild_search_index()
        if not as_json:
            say(f"rebuilt the search index: {indexed} messages")
    if repaired is not None and not as_json:
        say(f"removed {repaired.temp_files} stale temp file(s) and {repaired.blobs} unused blob(s)")
    problems = vault.doctor()
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        report: dict[str, Any] = {
            "ok": not errors,
            "problems": [shapes.problem(p) for p in problems],
        }
        if repaired is not None:
            report["repaired"] = {"temp_files": repaired.temp_files, "blobs": repaired.blobs}
        emit_json(report)
    else:
        for problem in problems:
            say(f"{problem.severity}: [{problem.check}] {problem.message}")
        say("vault is healthy" if not errors else f"{len(errors)} problem(s) found")
    if errors:
        sys.exit(DOCTOR_PROBLEMS_EXIT)


# -- users -----------------------------------------------------------------------
@cli.group()
def user() -> None:
    """Add and list users."""


@user.command("add")
@click.argument("name")
@click.option("--display-name", help="How to show the user.")
@json_option
def user_add(name: str, display_name: str | None, as_json: bool) -> None:
    """Create user NAME (lower-case letters, digits, '-' and '_')."""
    created = _state().store.add_user(name, display_name=display_name)
    emit_json(shapes.user(created)) if as_json else say(created.id)


@user.command("ls")
@json_option
def user_ls(as_json: bool) -> None:
    """List users."""
    users = _state().store.list_users()
    if as_json:
        emit_json([shapes.user(u) for u in users])
        return
    for u in users:
        say(u.id + (f"  {u.display_name}" if u.display_name else ""))


# -- server ----------------------------------------------------------------------
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--secure-cookies", is_flag=True, help="Mark cookies Secure (behind an HTTPS proxy).")
def serve(host: str, port: int, secure_cookies: bool) -> None:
    """Run the HTTP API and the web UI on this vault (loopback only by default).

    Prints a login link for the acting user; it works while this server runs. API
    clients use bearer tokens ('chatkeep token create'). An assistant replies in the
    web UI when CHATKEEP_LLM_BASE_URL (and CHATKEEP_LLM_MODEL, CHATKEEP_LLM_API_KEY)
    name an OpenAI-compatible endpoint. Stop with Ctrl-C. An encrypted user unlocks
    their content for this server process with POST /api/key/unlock.
    """
    import secrets

    import uvicorn

    from chatkeep.server import ServerConfig, create_app
    from chatkeep.server.llm import LlmConfig

    state = _state()
    user_id = state.user
    code = secrets.token_urlsafe(24)
    llm = LlmConfig.from_env()
    config = ServerConfig(
        login_code=code, login_user=user_id, llm=llm, secure_cookies=secure_cookies
    )
    # Never prompt from a request thread: clients unlock with POST /api/key/unlock.
    state.vault.keys.provider = None
    app = create_app(state.vault, config)
    shown = f"[{host}]" if ":" in host else host
    say(f"chatkeep {state.vault.root} serving at http://{shown}:{port}/")
    say(f"open this in a browser to log in as {user_id}: http://{shown}:{port}/#login={code}")
    say(f"assistant: {llm.model} at {llm.base_url}" if llm else "assistant: none configured")
    if host not in _LOOPBACK:
        click.echo("warning: listening beyond this machine; put HTTPS in front of it", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


# -- moving between backends -----------------------------------------------------
@cli.command("migrate")
@click.option(
    "--from",
    "source_home",
    required=True,
    type=click.Path(file_okay=False),
    help="Home of the vault to copy (as for --home).",
)
@click.option("--from-url", help="Its PostgreSQL URL, if its data is in PostgreSQL.")
@click.option(
    "--to",
    "target_home",
    required=True,
    type=click.Path(file_okay=False),
    help="Home of the new vault (created if missing; must hold no data).",
)
@click.option("--to-url", help="PostgreSQL URL for the new vault's data (default: SQLite).")
@click.option(
    "--to-backend",
    type=click.Choice(["sqlite", "files"]),
    help="Without --to-url: SQLite (default) or plain files for the new vault.",
)
@json_option
def migrate_command(
    source_home: str,
    from_url: str | None,
    target_home: str,
    to_url: str | None,
    to_backend: str | None,
    as_json: bool,
) -> None:
    """Copy a whole vault to another backend: any of SQLite, PostgreSQL and files.

    Users, runtimes, conversations with their trees, messages, attachments, pins,
    settings, tokens and imports keep their ids and timestamps. The copy is one
    transaction (nothing is left half done) and is verified by a sha256 of every table
    on both sides. CHATKEEP_ENV chooses the environment on both sides.
    """
    from chatkeep import transfer

    env = _state().env
    with (
        open_vault(source_home, env=env, url=from_url or "") as source,
        open_vault(
            target_home,
            env=env,
            url=to_url or "",
            create=True,
            backend=None if to_url else to_backend,
        ) as target,
        _progress(as_json, "copying") as advance,
    ):
        report = transfer.copy_vault(source, target, progress=lambda _stage, n: advance(n))
    if as_json:
        emit_json(
            {
                "rows": report.rows,
                "blobs": report.blobs,
                "originals": report.originals,
                "digests": report.digests,
                "verified": True,
            }
        )
        return
    for table, count in report.rows.items():
        say(f"{table:<18} {count:>10,} rows")
    say(f"{'blobs':<18} {report.blobs:>10,} files")
    say(f"{'import originals':<18} {report.originals:>10,} files")
    say("verified: every table's sha256 matches the source")


# -- retention, usage, snapshots --------------------------------------------------
@cli.command("gc")
@click.option("--dry-run", is_flag=True, help="List what would go; change nothing.")
@json_option
def gc_command(dry_run: bool, as_json: bool) -> None:
    """Apply every user's retention policy, then reclaim space.

    By default: conversations in the trash for over 30 days, snapshots that are not
    starred after 30 days, usage events after 90 days. A user changes theirs with
    'chatkeep config set retention.trash_days N' (also retention.snapshot_days,
    retention.usage_days). Then blobs nothing uses are removed and the store compacted.
    """
    from chatkeep.lifecycle import collect_garbage

    report = collect_garbage(_state().vault, dry_run=dry_run)
    if as_json:
        emit_json(
            {
                "dry_run": report.dry_run,
                "conversations": report.conversations,
                "snapshots": report.snapshots,
                "usage_events": report.usage_events,
                "blobs": report.blobs,
            }
        )
        return
    verb = "would remove" if dry_run else "removed"
    for user, ids in report.conversations.items():
        say(f"{user}: {verb} {len(ids)} trashed conversation(s): {' '.join(ids)}")
    for user, ids in report.snapshots.items():
        say(f"{user}: {verb} {len(ids)} snapshot(s)")
    for user, count in report.usage_events.items():
        say(f"{user}: {verb} {count} usage event(s)")
    if not dry_run:
        say(f"removed {report.blobs} unused blob(s); the store is compacted")
    elif not (report.conversations or report.snapshots or report.usage_events):
        say("nothing to remove")


@cli.command("stats")
@click.option("--since", type=click.DateTime(), help="From this time on (UTC).")
@click.option("--until", type=click.DateTime(), help="Up to this time (UTC).")
@json_option
def stats_command(since: datetime | None, until: datetime | None, as_json: bool) -> None:
    """Usage per day, model and runtime: calls, tokens, cost and time."""
    state = _state()
    totals = state.store.usage_totals(
        state.user,
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
    )
    if as_json:
        emit_json([shapes.usage_total(u) for u in totals])
        return
    if not totals:
        say("no usage recorded")
        return
    say(
        f"{'day':<10}  {'model':<20} {'runtime':<16} {'calls':>6} {'tokens in':>10} "
        f"{'tokens out':>10} {'cost':>9} {'seconds':>8}"
    )
    for u in totals:
        say(
            f"{u.day:<10}  {u.model[:20]:<20} {(u.runtime_id or '-')[:16]:<16} {u.events:>6} "
            f"{u.tokens_in:>10,} {u.tokens_out:>10,} {u.cost:>9.4f} {u.duration_ms / 1000:>8.1f}"
        )


@cli.group()
def snapshot() -> None:
    """Named snapshots of saved state (starred ones outlive retention)."""


@snapshot.command("save")
@click.argument("name")
@click.argument("state_json", metavar="STATE", default="{}")
@click.option("--star", is_flag=True, help="Keep it whatever retention says.")
@json_option
def snapshot_save(name: str, state_json: str, star: bool, as_json: bool) -> None:
    """Save STATE (a JSON value) as snapshot NAME."""
    try:
        value = orjson.loads(state_json)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"STATE is not JSON: {exc}") from None
    state = _state()
    saved = state.store.save_snapshot(state.user, name, value, starred=star)
    emit_json(shapes.snapshot(saved)) if as_json else say(saved.id)


@snapshot.command("ls")
@json_option
def snapshot_ls(as_json: bool) -> None:
    """List the acting user's snapshots, oldest first."""
    state = _state()
    listed = state.store.list_snapshots(state.user)
    if as_json:
        emit_json([shapes.snapshot(s) for s in listed])
        return
    for item in listed:
        star = "*" if item.starred else " "
        say(f"{star} {item.id}  {item.created_at:%Y-%m-%d %H:%M}  {item.name}")


@snapshot.command("star")
@click.argument("snapshot_id", metavar="ID")
@click.option("--off", is_flag=True, help="Remove the star instead.")
@json_option
def snapshot_star(snapshot_id: str, off: bool, as_json: bool) -> None:
    """Star a snapshot (or --off to unstar it)."""
    state = _state()
    changed = state.store.star_snapshot(state.user, snapshot_id, not off)
    emit_json(shapes.snapshot(changed)) if as_json else say(changed.id)


@snapshot.command("rm")
@click.argument("snapshot_id", metavar="ID")
def snapshot_rm(snapshot_id: str) -> None:
    """Delete a snapshot."""
    state = _state()
    state.store.delete_snapshot(state.user, snapshot_id)
    say(f"deleted {snapshot_id}")


# -- backup and restore ----------------------------------------------------------
@cli.command("backup")
@click.argument("out", type=click.Path(file_okay=False))
@json_option
def backup_command(out: str, as_json: bool) -> None:
    """Back the vault up into the new folder OUT, while writes go on.

    The rows come from one consistent snapshot; attachments and kept import originals
    are copied beside them, and manifest.json lists every file's sha256. Restore with
    'chatkeep restore OUT'.
    """
    from chatkeep.backup import backup_vault

    with _progress(as_json, "backing up") as advance:
        report = backup_vault(_state().vault, out, progress=advance)
    if as_json:
        emit_json(
            {
                "path": str(report.path),
                "rows": report.rows,
                "blobs": report.blobs,
                "originals": report.originals,
                "bytes": report.bytes,
            }
        )
        return
    say(
        f"backed up {sum(report.rows.values()):,} rows, {report.blobs:,} attachments and "
        f"{report.originals:,} import originals ({report.bytes:,} bytes) to {report.path}"
    )


# -- export ----------------------------------------------------------------------
@cli.command("export")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["json", "markdown", "zip"]),
    default="json",
    show_default=True,
    help="chatkeep JSON (re-importable), a Markdown folder, or a zip of both.",
)
@click.option("--user", "users", multiple=True, help="Only this user's data (repeatable).")
@click.option("--runtime", "runtimes", multiple=True, help="Only this runtime (repeatable).")
@click.option(
    "--conversation", "conversations", multiple=True, help="Only this conversation (repeatable)."
)
@click.option("--since", type=click.DateTime(), help="Conversations with messages from then (UTC).")
@click.option(
    "--until", type=click.DateTime(), help="Conversations with messages until then (UTC)."
)
@click.option(
    "--role",
    type=click.Choice(ROLES),
    help="Conversations with a message of this role.",
)
@click.option("--platform", help="Conversations imported from this platform (chatgpt, …).")
@click.option("--import", "import_id", help="Conversations of this import.")
@click.option("--all-branches", is_flag=True, help="Markdown: every branch, not the active one.")
@click.option("--no-vectors", is_flag=True, help="Leave the derived search vectors out.")
@json_option
def export_command(
    out: Path,
    export_format: str,
    users: tuple[str, ...],
    runtimes: tuple[str, ...],
    conversations: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    role: str | None,
    platform: str | None,
    import_id: str | None,
    all_branches: bool,
    no_vectors: bool,
    as_json: bool,
) -> None:
    """Export the vault, or a selection of it, to the new path OUT.

    json: one file any chatkeep imports back exactly ('chatkeep import OUT'); zip: that
    JSON, the attachments as files, a Markdown rendering and a manifest of sha256s;
    markdown: a folder of one .md per conversation with front matter (for Obsidian).
    Without filters, everything of every user; with filters, whole conversations that
    match (those with at least one matching message, for --since/--until/--role). The
    format and its version rules are in docs/export.md.
    """
    from chatkeep.exporting import Selection, export_vault

    selection = Selection(
        users=users,
        runtimes=runtimes,
        conversations=conversations,
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
        role=role,
        platform=platform,
        import_id=import_id,
    )
    with _progress(as_json, "exporting") as advance:
        report = export_vault(
            _state().vault,
            out,
            format=export_format,  # type: ignore[arg-type]
            selection=selection,
            all_branches=all_branches,
            vectors=not no_vectors,
            progress=advance,
        )
    if as_json:
        emit_json(
            {
                "path": str(report.path),
                "format": report.format,
                "rows": report.rows,
                "conversations": report.conversations,
                "blobs": report.blobs,
                "markdown_files": report.markdown_files,
                "bytes": report.bytes,
            }
        )
        return
    say(
        f"exported {report.conversations:,} conversations ({sum(report.rows.values()):,} rows, "
        f"{report.blobs:,} attachments, {report.bytes:,} bytes) as {report.format} to "
        f"{report.path}"
    )


# -- API tokens ------------------------------------------------------------------
@cli.group()
def token() -> None:
    """Create, list and revoke the acting user's HTTP API tokens."""


@token.command("create")
@click.option("--name", default="api", show_default=True, help="What the token is for.")
@json_option
def token_create(name: str, as_json: bool) -> None:
    """Create a bearer token. Its secret is printed once and never stored."""
    state = _state()
    created, secret = tokens.issue_token(state.store, state.user, name=name)
    if as_json:
        emit_json({**shapes.token(created), "secret": secret})
        return
    say(secret)
    click.echo(
        f"token {created.id} for {state.user}: keep the secret above; it is not shown again",
        err=True,
    )


@token.command("ls")
@json_option
def token_ls(as_json: bool) -> None:
    """List the acting user's tokens (never their secrets)."""
    state = _state()
    listed = state.store.list_tokens(state.user)
    if as_json:
        emit_json([shapes.token(t) for t in listed])
        return
    for item in listed:
        status = f"revoked {item.revoked_at:%Y-%m-%d %H:%M}" if item.revoked_at else "live"
        say(f"{item.id}  {item.created_at:%Y-%m-%d %H:%M}  {status:<22}  {item.name}")


@token.command("revoke")
@click.argument("token_id", metavar="TOKEN_ID")
@json_option
def token_revoke(token_id: str, as_json: bool) -> None:
    """Revoke token TOKEN_ID (from 'token ls'); it stops working at once."""
    state = _state()
    revoked = state.store.revoke_token(state.user, token_id)
    emit_json(shapes.token(revoked)) if as_json else say(f"revoked {revoked.id}")


# -- encryption at rest ---------------------------------------------------------
@cli.group()
def key() -> None:
    """Encrypt a user's content at rest, with a passphrase or a key file.

    \b
    Once 'chatkeep key init' has run for a user, their messages, attachments,
    drafts, snapshots and recordings are sealed (AES-256-GCM) under a random data
    key, itself kept only wrapped by your passphrase (scrypt) or key file. Titles,
    tags, timestamps, counts, runtime names and settings stay in clear, and search
    finds only those: message text is never indexed.

    \b
    Other commands open the key when they need content, from:
      --key-file FILE or $CHATKEEP_KEY_FILE   (a key-file user)
      $CHATKEEP_PASSPHRASE, --passphrase-file FILE, or a prompt on a terminal

    Lose the passphrase (or key file) and the content is lost: there is no recovery.
    'chatkeep key destroy' makes it unreadable on purpose (crypto-shredding).
    """


@key.command("init")
@click.option(
    "--key-file",
    "new_key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Create this key file (32 random bytes; keep it safe, outside the vault) "
    "instead of using a passphrase.",
)
@json_option
def key_init(new_key_file: Path | None, as_json: bool) -> None:
    """Turn encryption on for the user (before they store any content).

    Without --key-file the passphrase is asked twice (or read from
    $CHATKEEP_PASSPHRASE / --passphrase-file).
    """
    state = _state()
    user_id = state.user
    if new_key_file is not None:
        secret = _create_key_file(state.vault, new_key_file)
        try:
            status = state.vault.keys.init(user_id, secret)
        except BaseException:
            fsutil.remove_file(new_key_file)  # a key file of no key would only mislead
            raise
    else:
        status = state.vault.keys.init(user_id, _new_passphrase(state, PASSPHRASE_ENV))
    _show_key(status, as_json, f"encryption is on for user {user_id}")


@key.command("change")
@click.option(
    "--to-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Create this key file and open the key with it from now on.",
)
@json_option
def key_change(to_key_file: Path | None, as_json: bool) -> None:
    """Open the key with a new passphrase or key file (content is not re-encrypted).

    The current secret comes as for any command; the new passphrase from
    $CHATKEEP_NEW_PASSPHRASE, else it is asked twice. The old one stops working.
    """
    state = _state()
    user_id = state.user
    old = state.secret_for(state.vault.keys.live_key(user_id))
    if old is None:
        raise Locked(
            f"the current passphrase or key file of user {user_id} is needed",
            hint="pass --key-file, set CHATKEEP_PASSPHRASE or use --passphrase-file",
        )
    if to_key_file is None:
        new = _new_passphrase(state, NEW_PASSPHRASE_ENV, prompt="New passphrase")
        status = state.vault.keys.change(user_id, old, new)
    else:
        created = _create_key_file(state.vault, to_key_file)
        try:
            status = state.vault.keys.change(user_id, old, created)
        except BaseException:
            fsutil.remove_file(to_key_file)  # it opens nothing: the key was not changed
            raise
    _show_key(status, as_json, f"the key of user {user_id} now opens with the new secret")


@key.command("destroy")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def key_destroy(yes: bool, as_json: bool) -> None:
    """Destroy the user's key: their encrypted content becomes unreadable for good.

    The wrapped key is removed and the vault compacted, so no copy of it stays in the
    vault's files. Backups and exports made earlier still hold it.
    """
    state = _state()
    user_id = state.user
    if not yes and not as_json:
        click.confirm(
            f"Destroy the key of user {user_id}? Everything encrypted under it becomes "
            "unreadable, for good",
            abort=True,
        )
    status = state.vault.destroy_key(user_id)
    _show_key(status, as_json, f"destroyed the key of user {user_id}")


@key.command("status")
@json_option
def key_status(as_json: bool) -> None:
    """Whether the user's content is encrypted, and how the key opens."""
    state = _state()
    status = state.vault.key_status(state.user)
    if not status.encrypted:
        _show_key(status, as_json, f"user {status.user_id}: not encrypted")
        return
    when = shapes.time_text(status.destroyed_at or status.changed_at)
    how = "destroyed" if status.method == "destroyed" else f"opens with a {status.method}"
    _show_key(
        status, as_json, f"user {status.user_id}: encrypted, key {status.key_id} {how} ({when})"
    )


def _show_key(status: KeyStatus, as_json: bool, text: str) -> None:
    if as_json:
        emit_json(shapes.key_status(status))
    else:
        say(text)


def _new_passphrase(state: State, env_name: str, prompt: str = "Passphrase") -> Passphrase:
    if os.environ.get(env_name):
        return Passphrase(os.environ[env_name])
    if env_name == PASSPHRASE_ENV and state.passphrase_file is not None:
        return Passphrase(_read_passphrase_file(Path(state.passphrase_file)))
    if not sys.stdin.isatty():
        raise InvalidInput(
            "a new passphrase is needed and there is no terminal to ask on",
            hint=f"set {env_name}, or run on a terminal",
        )
    text = click.prompt(prompt, hide_input=True, confirmation_prompt=True, err=True)
    return Passphrase(text)


def _read_passphrase_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the passphrase file {path}: {exc}") from exc
    return text.rstrip("\r\n")  # the line end an editor adds is not part of it


def _create_key_file(vault: Vault, path: Path) -> KeyFile:
    """A new key file at ``path`` (never over an existing file, never in the vault)."""
    target = path.resolve()
    root = vault.root.resolve()
    if target == root or root in target.parents:
        raise InvalidInput(
            f"{path} is inside the vault: a key file beside the data protects nothing",
            hint="keep it elsewhere (a password manager, a USB key)",
        )
    if target.exists():
        raise InvalidInput(f"{path} exists already; a key file is never overwritten")
    secret = crypto.new_key_file_secret()
    fsutil.atomic_write(target, secret, mode=0o600)
    return KeyFile(secret)


@user.command("rm")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def user_rm(name: str, yes: bool, as_json: bool) -> None:
    """Delete user NAME and everything of theirs, for good.

    Every row in every table, the attachments no other user shares, the kept originals
    of their imports; then the vault is compacted so that none of it remains in its
    files. There is no undo: take a backup first if in doubt.
    """
    from chatkeep.lifecycle import delete_account

    if not yes and not as_json:
        click.confirm(f"Delete user {name} and all their conversations for good?", abort=True)
    report = delete_account(_state().vault, name)
    if as_json:
        emit_json(
            {
                "user": report.user_id,
                "rows": report.rows,
                "blobs": report.blobs,
                "originals": report.originals,
            }
        )
        return
    total = sum(report.rows.values())
    say(
        f"deleted user {report.user_id}: {total:,} rows, {report.blobs:,} attachment files, "
        f"{report.originals:,} import originals"
    )


# -- runtimes --------------------------------------------------------------------
@cli.group()
def runtime() -> None:
    """Add, list and show runtimes (assistant identities)."""


@runtime.command("add")
@click.argument("name")
@click.option("--display-name", help="Display name (default: NAME).")
@click.option("--model", help="Model the runtime uses.")
@click.option("--instructions", help="Instructions / persona.")
@click.option("--config", "config_json", help="Full configuration as a JSON object.")
@json_option
def runtime_add(
    name: str,
    display_name: str | None,
    model: str | None,
    instructions: str | None,
    config_json: str | None,
    as_json: bool,
) -> None:
    """Create runtime NAME with its home conversation chat_with_NAME."""
    config = _parse_json_object(config_json, "--config") if config_json else {}
    if model:
        config["model"] = model
    if instructions:
        config["instructions"] = instructions
    state = _state()
    created = state.store.create_runtime(state.user, name, name=display_name, config=config)
    if as_json:
        emit_json(shapes.runtime(created))
    else:
        say(f"{created.id}  home: {created.primary_conversation_id}")


@runtime.command("ls")
@json_option
def runtime_ls(as_json: bool) -> None:
    """List the user's runtimes."""
    state = _state()
    runtimes = state.store.list_runtimes(state.user)
    if as_json:
        emit_json([shapes.runtime(r) for r in runtimes])
        return
    for r in runtimes:
        say(f"{r.id}  {r.name}  home: {r.primary_conversation_id}")


@runtime.command("show")
@click.argument("name")
@json_option
def runtime_show(name: str, as_json: bool) -> None:
    """Show a runtime's configuration."""
    state = _state()
    found = state.store.get_runtime(state.user, name)
    if as_json:
        emit_json(shapes.runtime(found))
        return
    say(f"runtime: {found.id} ({found.name}), origin {found.origin}")
    say(f"home:    {found.primary_conversation_id}")
    say("config:  " + orjson.dumps(found.config, option=orjson.OPT_INDENT_2).decode())


@cli.command()
@click.argument("runtime_name", metavar="RUNTIME")
@json_option
def route(runtime_name: str, as_json: bool) -> None:
    """Print the id of RUNTIME's home conversation (re-created if missing)."""
    state = _state()
    home = state.store.route(state.user, runtime_name)
    emit_json(shapes.conversation(home)) if as_json else say(home.id)


# -- conversations ---------------------------------------------------------------
@cli.command()
@click.option("--runtime", "runtime_name", help="Runtime (default: the user's only runtime).")
@click.option("--title", help="Title.")
@click.option("--model", help="Model.")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@json_option
def new(
    runtime_name: str | None,
    title: str | None,
    model: str | None,
    tags: Sequence[str],
    as_json: bool,
) -> None:
    """Start a conversation; prints its id."""
    state = _state()
    runtime_id = runtime_name or _only_runtime(state)
    created = state.store.create_conversation(
        state.user, runtime_id, title=title, model=model, tags=tags
    )
    emit_json(shapes.conversation(created)) if as_json else say(created.id)


def _only_runtime(state: State) -> str:
    runtimes = state.store.list_runtimes(state.user)
    if len(runtimes) == 1:
        return runtimes[0].id
    if not runtimes:
        raise NotFound("you have no runtimes yet", hint="run 'chatkeep runtime add NAME'")
    raise InvalidInput("you have several runtimes; say which one", hint="pass --runtime NAME")


@cli.command()
@click.argument("conversation")
@click.argument("text", required=False)
@click.option("--role", default="user", show_default=True, help="system, user, assistant or tool.")
@click.option(
    "--parent", help="Continue from this message (a new branch); default: the active branch."
)
@click.option("--root", is_flag=True, help="Start a new root message.")
@click.option("--model", help="Model that produced the message.")
@click.option("--author", help="Author name.")
@click.option("--tokens", type=int, help="Token count.")
@click.option("--cost", type=float, help="Cost.")
@click.option("--hidden", is_flag=True, help="Mark the message hidden.")
@click.option(
    "--attach",
    "attachments",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Attach a file (repeatable).",
)
@json_option
def append(
    conversation: str,
    text: str | None,
    role: str,
    parent: str | None,
    root: bool,
    model: str | None,
    author: str | None,
    tokens: int | None,
    cost: float | None,
    hidden: bool,
    attachments: Sequence[Path],
    as_json: bool,
) -> None:
    """Append a message to CONVERSATION; prints the new message's id.

    TEXT comes from the argument or, when it is omitted, from standard input. The
    message is durable when the command returns.
    """
    if text is None:
        if attachments:
            text = ""  # attachments alone make a message; never wait on stdin for text
        elif sys.stdin.isatty():
            raise InvalidInput("no text given", hint="pass TEXT or pipe it on standard input")
        else:
            text = _read_stdin_text()
    state = _state()
    message = NewMessage(
        role=role,
        parts=(Part(kind="text", text=text),) if text else (),
        parent_id=parent,
        root=root,
        author=author,
        model=model,
        tokens=tokens,
        cost=cost,
        hidden=hidden,
        attachments=tuple(
            NewAttachment(name=path.name, path=str(path), mime_type=_guess_mime(path))
            for path in attachments
        ),
    )
    stored = state.store.append_message(state.user, conversation, message)
    emit_json(shapes.message(stored)) if as_json else say(stored.id)


def _read_stdin_text() -> str:
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"standard input is not UTF-8 text (bad byte at offset {exc.start})",
            hint="convert it first, e.g. with iconv -t UTF-8",
        ) from None


def _guess_mime(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@cli.command("ls")
@click.option("--runtime", "runtime_name", help="Only this runtime (sidebar order).")
@click.option("--archived", is_flag=True, help="List archived conversations.")
@click.option("--trashed", is_flag=True, help="List the trash.")
@click.option("--limit", default=50, show_default=True, help="Page size.")
@click.option("--offset", default=0, show_default=True, help="Skip this many.")
@json_option
def ls(
    runtime_name: str | None, archived: bool, trashed: bool, limit: int, offset: int, as_json: bool
) -> None:
    """List conversations in sidebar order.

    For each runtime (or only --runtime): its home conversation (⌂), then its pins (*),
    then the rest by last activity. --limit and --offset page each runtime's list.
    """
    if archived and trashed:
        raise InvalidInput("choose one of --archived and --trashed")
    state = _state()
    wanted: ConversationState = "archived" if archived else "trashed" if trashed else "active"
    if wanted == "active" and runtime_name is None:
        # One sidebar per runtime, each in its own order (home, pins, recent).
        runtime_ids = [r.id for r in state.store.list_runtimes(state.user)]
    else:
        runtime_ids = [runtime_name]  # type: ignore[list-item]
    conversations = [
        c
        for runtime_id in runtime_ids
        for c in state.store.list_conversations(
            state.user, runtime_id=runtime_id, state=wanted, limit=limit, offset=offset
        )
    ]
    if as_json:
        emit_json([shapes.conversation(c) for c in conversations])
        return
    for c in conversations:
        marker = "⌂" if c.is_primary else "*" if c.pinned else " "
        when = f"{c.updated_at:%Y-%m-%d %H:%M}"
        say(f"{marker} {c.id}  {c.runtime_id:<16} {c.message_count:>6}  {when}  {c.title}")


@cli.command()
@click.argument("conversation")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print a Markdown transcript.")
@click.option("--branch", type=int, help="Show branch N (see 'chatkeep branches').")
@click.option("--all-branches", is_flag=True, help="Show every message of every branch.")
@click.option("--raw", is_flag=True, help="Do not escape control characters.")
@json_option
def show(
    conversation: str,
    as_markdown: bool,
    branch: int | None,
    all_branches: bool,
    raw: bool,
    as_json: bool,
) -> None:
    """Show a conversation: its active branch by default."""
    if branch is not None and all_branches:
        raise InvalidInput("choose one of --branch and --all-branches")
    state = _state()
    found = state.store.get_conversation(state.user, conversation)
    leaf = None
    if branch is not None:
        branches = state.store.list_branches(state.user, conversation)
        if not 1 <= branch <= len(branches):
            raise NotFound(f"no branch {branch}; the conversation has {len(branches)}")
        leaf = branches[branch - 1].leaf_id
    messages = state.store.list_messages(
        state.user, conversation, leaf_id=leaf, all_branches=all_branches
    )
    if as_json:
        emit_json(
            {
                "conversation": shapes.conversation(found),
                "messages": [shapes.message(m) for m in messages],
            }
        )
        return
    text = render.conversation_markdown(found, messages)
    if raw:
        # Not click.echo: it strips escape sequences when stdout is not a terminal.
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        click.echo(render.terminal_safe(text), nl=False)
    _ = as_markdown  # the human form is Markdown already; the flag states it explicitly


@cli.command()
@click.argument("conversation")
@json_option
def branches(conversation: str, as_json: bool) -> None:
    """List a conversation's branches (root-to-leaf paths)."""
    state = _state()
    found = state.store.list_branches(state.user, conversation)
    if as_json:
        emit_json([shapes.branch(b) for b in found])
        return
    for b in found:
        say(f"{'>' if b.active else ' '} {b.index}  {b.length:>5} messages  leaf {b.leaf_id}")


@cli.command()
@click.argument("conversation")
@click.argument("message")
@click.option("--title", help="Title of the new conversation.")
@json_option
def fork(conversation: str, message: str, title: str | None, as_json: bool) -> None:
    """Copy CONVERSATION up to MESSAGE into a new conversation; prints its id."""
    state = _state()
    created = state.store.fork_conversation(state.user, conversation, message, title=title)
    emit_json(shapes.conversation(created)) if as_json else say(created.id)


@cli.command()
@click.argument("conversation")
@click.argument("title")
@json_option
def rename(conversation: str, title: str, as_json: bool) -> None:
    """Rename a conversation."""
    state = _state()
    _print_conversation(state.store.rename_conversation(state.user, conversation, title), as_json)


@cli.command()
@click.argument("conversation")
@click.option("--add", "add", multiple=True, help="Tag to add (repeatable).")
@click.option("--remove", "remove", multiple=True, help="Tag to remove (repeatable).")
@json_option
def tag(conversation: str, add: Sequence[str], remove: Sequence[str], as_json: bool) -> None:
    """Add or remove tags."""
    state = _state()
    _print_conversation(
        state.store.tag_conversation(state.user, conversation, add=add, remove=remove), as_json
    )


def _print_conversation(conversation: Any, as_json: bool) -> None:
    if as_json:
        emit_json(shapes.conversation(conversation))
    else:
        say(f"{conversation.id}  {conversation.state}  {conversation.title}")


def _for_each(
    conversations: Sequence[str],
    action: Callable[[str], Any],
    to_json: Callable[[str, Any], dict[str, Any]],
    to_text: Callable[[str, Any], str],
    as_json: bool,
) -> None:
    """Apply ``action`` to every id, saying what happened to each.

    One failing id does not stop the others; the command then exits with the first
    failure's code. With a single id, a failure is reported like any other error.
    """
    if len(conversations) == 1:
        result = action(conversations[0])
        emit_json([to_json(conversations[0], result)]) if as_json else say(
            to_text(conversations[0], result)
        )
        return
    shapes_out: list[dict[str, Any]] = []
    first_error: ChatkeepError | None = None
    for conversation_id in conversations:
        try:
            result = action(conversation_id)
        except ChatkeepError as error:
            first_error = first_error or error
            shapes_out.append({"id": conversation_id, "error": error.to_dict()})
            if not as_json:
                where = render.terminal_safe(conversation_id)
                click.echo(f"error: {where}: {render.terminal_safe(error.message)}", err=True)
            continue
        shapes_out.append(to_json(conversation_id, result))
        if not as_json:
            say(to_text(conversation_id, result))
    if as_json:
        emit_json(shapes_out)
    if first_error is not None:
        sys.exit(first_error.exit_code)


def _conversation_line(_id: str, conversation: Any) -> str:
    return f"{conversation.id}  {conversation.state}  {conversation.title}"


def _lifecycle(name: str, method: str, doc: str) -> None:
    @cli.command(name, help=doc)
    @click.argument("conversations", nargs=-1, required=True, metavar="CONVERSATION...")
    @json_option
    def command(conversations: Sequence[str], as_json: bool) -> None:
        state = _state()
        _for_each(
            conversations,
            lambda c: getattr(state.store, method)(state.user, c),
            lambda _id, c: shapes.conversation(c),
            _conversation_line,
            as_json,
        )


_lifecycle("pin", "pin_conversation", "Pin conversations in their runtime's sidebar.")
_lifecycle("unpin", "unpin_conversation", "Unpin conversations.")
_lifecycle("archive", "archive_conversation", "Archive conversations (hidden from the sidebar).")
_lifecycle("unarchive", "unarchive_conversation", "Bring archived conversations back.")
_lifecycle("trash", "trash_conversation", "Move conversations to the trash.")
_lifecycle("untrash", "restore_conversation", "Restore conversations from the trash.")


@cli.command("restore")
@click.argument("targets", nargs=-1, required=True, metavar="BACKUP | CONVERSATION...")
@click.option("--url", help="Restore a backup into PostgreSQL at this URL (default: SQLite).")
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "files"]),
    help="Without --url: restore into SQLite (default) or plain files.",
)
@json_option
def restore_command(
    targets: Sequence[str], url: str | None, backend: str | None, as_json: bool
) -> None:
    """Restore a backup folder into a new, empty vault, or conversations from the trash.

    With a backup folder (from 'chatkeep backup'), the vault chosen by --home / --env is
    created from it: every file is checked against the backup's manifest before
    anything is written, and the result is checked with doctor. With conversation ids,
    they come back from the trash (as 'chatkeep untrash').
    """
    if len(targets) == 1 and (Path(targets[0]) / "manifest.json").is_file():
        _restore_backup(targets[0], url, None if url else backend, as_json)
        return
    state = _state()
    _for_each(
        targets,
        lambda c: state.store.restore_conversation(state.user, c),
        lambda _id, c: shapes.conversation(c),
        _conversation_line,
        as_json,
    )


def _restore_backup(backup: str, url: str | None, backend: str | None, as_json: bool) -> None:
    from chatkeep.backup import restore_vault

    state = _state()
    with _progress(as_json, "restoring") as advance:
        report = restore_vault(
            backup,
            state.home,
            env=state.env,
            url=url,
            backend=backend,
            progress=lambda _t, n: advance(n),
        )
    if as_json:
        emit_json(
            {
                "root": str(report.root),
                "rows": report.rows,
                "blobs": report.blobs,
                "originals": report.originals,
                "problems": [shapes.problem(p) for p in report.problems],
            }
        )
    else:
        say(
            f"restored {sum(report.rows.values()):,} rows and {report.blobs:,} attachments "
            f"into {report.root}"
        )
        for problem in report.problems:
            say(f"{problem.severity}: {problem.message}")
    if any(p.severity == "error" for p in report.problems):
        sys.exit(DOCTOR_PROBLEMS_EXIT)


@cli.command()
@click.argument("conversations", nargs=-1, required=True, metavar="CONVERSATION...")
@click.option(
    "--hard", is_flag=True, help="Delete for good: messages, attachments and unused blobs."
)
@json_option
def rm(conversations: Sequence[str], hard: bool, as_json: bool) -> None:
    """Move conversations to the trash, or with --hard delete them for good.

    Each id is handled on its own: one that fails does not stop the others, and the
    exit status is then that of the first failure.
    """
    state = _state()
    if not hard:
        _for_each(
            conversations,
            lambda c: state.store.trash_conversation(state.user, c),
            lambda _id, c: shapes.conversation(c),
            lambda _id, c: f"{c.id}  moved to the trash (use --hard to delete for good)",
            as_json,
        )
        return
    _for_each(
        conversations,
        lambda c: state.store.delete_conversation(state.user, c),
        lambda cid, r: {"id": cid, **shapes.delete_report(r)},
        lambda cid, r: (
            f"{cid}  deleted: {r.messages} messages, {r.attachments} attachments, {r.blobs} blobs"
        ),
        as_json,
    )


# -- search ----------------------------------------------------------------------
@cli.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--runtime", "runtime_name", help="Only this runtime.")
@click.option(
    "--origin", type=click.Choice(["native", "imported"]), help="Only native or imported."
)
@click.option("--platform", help="Only conversations imported from this platform (chatgpt, ...).")
@click.option("--import", "import_id", help="Only conversations from this import (i_...).")
@click.option("--role", type=click.Choice(ROLES), help="Only messages of this role.")
@click.option("--model", help="Only messages from this model.")
@click.option("--since", type=click.DateTime(), help="Only messages from this time on (UTC).")
@click.option("--until", type=click.DateTime(), help="Only messages up to this time (UTC).")
@click.option("--tag", help="Only conversations with this tag.")
@click.option("--conversation", "conversation_id", help="Only this conversation.")
@click.option("--archived", is_flag=True, help="Include archived conversations.")
@click.option("--semantic", is_flag=True, help="Search by meaning (run 'chatkeep index' first).")
@click.option("--hybrid", is_flag=True, help="Fuse full-text and by-meaning rankings.")
@click.option("--limit", default=20, show_default=True, help="Results per page.")
@click.option("--offset", default=0, show_default=True, help="Skip this many results.")
@json_option
def search(
    query: Sequence[str],
    runtime_name: str | None,
    origin: str | None,
    platform: str | None,
    import_id: str | None,
    role: str | None,
    model: str | None,
    since: datetime | None,
    until: datetime | None,
    tag: str | None,
    conversation_id: str | None,
    archived: bool,
    semantic: bool,
    hybrid: bool,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """Search your messages and conversation titles, best matches first.

    Words must all appear; "an exact phrase"; prefix*; -excluded; a OR b. Trashed
    conversations never appear, archived ones only with --archived.
    """
    state = _state()
    filters = SearchFilters(
        runtime_id=runtime_name,
        origin=origin,
        platform=platform,
        import_id=import_id,
        role=role,
        model=model,
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
        tag=tag,
        conversation_id=conversation_id,
        include_archived=archived,
    )
    if semantic and hybrid:
        raise InvalidInput("choose one of --semantic and --hybrid")
    text = " ".join(query)
    if semantic or hybrid:
        from chatkeep.semantic import hybrid_search, semantic_search

        run = semantic_search if semantic else hybrid_search
        page = run(state.store, state.user, text, filters=filters, limit=limit, offset=offset)
    else:
        page = state.store.search(state.user, text, filters=filters, limit=limit, offset=offset)
    if as_json:
        emit_json(shapes.search_page(page))
        return
    if not page.hits:
        say("no matches")
        return
    for hit in page.hits:
        when = f"{hit.created_at:%Y-%m-%d %H:%M}" if hit.created_at else "----------------"
        where = hit.message_id or "(title)"
        click.echo(
            f"{render.terminal_safe(hit.conversation_title)}  "
            f"[{hit.conversation_id} {where} {hit.role or ''} {when}]"
        )
        click.echo("  " + _highlighted(hit.snippet, hit.highlights))
    if page.has_more:
        say(f"more: --offset {page.offset + page.limit}")


@cli.command("index")
@json_option
def index_command(as_json: bool) -> None:
    """Embed new messages for search by meaning (incremental: only what is new).

    Uses the all-MiniLM-L6-v2 model when chatkeep was installed with the 'semantic'
    extra, else a hashed n-gram embedder that needs nothing more. Nothing is downloaded.
    """
    from chatkeep.search_embed import default_embedder
    from chatkeep.semantic import index_pending

    store = _state().store
    embedder = default_embedder()
    if as_json or not sys.stderr.isatty():
        done = index_pending(store, embedder)
    else:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"embedding with {embedder.name}", total=None)

            def update(finished: int, total: int) -> None:
                bar.update(task, completed=finished, total=total)

            done = index_pending(store, embedder, progress=update)
    if as_json:
        emit_json({"embedder": embedder.name, "indexed": done})
    else:
        say(f"indexed {done} new message(s) with {embedder.name}")


@cli.command("recall")
@click.argument("question", nargs=-1, required=True)
@click.option("--runtime", "runtime_name", help="Only this runtime's conversations.")
@click.option("--chars", "budget_chars", type=int, help="Budget in characters (default 4000).")
@click.option("--tokens", "budget_tokens", type=int, help="Budget in tokens (~4 characters each).")
@click.option(
    "--exclude", "exclude_id", help="Leave out this conversation (the one being answered)."
)
@json_option
def recall_command(
    question: Sequence[str],
    runtime_name: str | None,
    budget_chars: int | None,
    budget_tokens: int | None,
    exclude_id: str | None,
    as_json: bool,
) -> None:
    """Print the past messages most relevant to QUESTION, within a budget.

    What an assistant needs to build its context from earlier sessions: any of the
    question's significant words match, best first, until the budget is full.
    """
    from chatkeep.recall import recall

    state = _state()
    found = recall(
        state.store,
        state.user,
        " ".join(question),
        runtime_id=runtime_name,
        budget_chars=budget_chars,
        budget_tokens=budget_tokens,
        exclude_conversation_id=exclude_id,
    )
    if as_json:
        emit_json([shapes.recalled(item) for item in found])
        return
    for item in found:
        when = f"{item.created_at:%Y-%m-%d}" if item.created_at else "undated"
        say(f"## {item.conversation_title} · {item.role} · {when} · {item.message_id}")
        say(item.text + (" …" if item.truncated else ""))
        say("")


def _highlighted(snippet: str, spans: Sequence[tuple[int, int]]) -> str:
    out, last = [], 0
    for start, end in spans:
        out.append(render.terminal_safe(snippet[last:start]).replace("\n", " "))
        out.append(click.style(render.terminal_safe(snippet[start:end]), bold=True, fg="yellow"))
        last = end
    out.append(render.terminal_safe(snippet[last:]).replace("\n", " "))
    return "".join(out)


# -- imports ---------------------------------------------------------------------
@cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--user", "user_name", help="Import for this user (same as the global --user).")
@click.option(
    "--format",
    "platform",
    type=click.Choice(["chatgpt", "claude", "gemini", "vvault"]),
    help="Skip detection: read the export as this format.",
)
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option(
    "--again",
    is_flag=True,
    help="Merge a file imported before anyway (brings back what you deleted since).",
)
@json_option
def import_command(
    path: Path,
    user_name: str | None,
    platform: str | None,
    dry_run: bool,
    again: bool,
    as_json: bool,
) -> None:
    """Import an export from ChatGPT, Claude, Gemini, a VVAULT tree, or chatkeep itself.

    PATH is the zip as downloaded, an extracted folder, or a bare JSON/HTML file. The
    format is detected by content. Conversations go to an imported runtime of their
    own (e.g. chatgpt-alice-001), never into your native ones; importing a newer export
    of the same account adds only what is new, and the same file twice changes nothing.

    A chatkeep export ('chatkeep export') is checked whole first, then fills an empty
    vault exactly, or adds to this one only what it does not hold yet; its rows keep
    their own users.
    """
    from chatkeep.exporting import is_chatkeep_export
    from chatkeep.importing import import_export

    if platform is None and is_chatkeep_export(path):
        _import_chatkeep(path, dry_run=dry_run, as_json=as_json)
        return
    state = _state()
    state.explicit_user = user_name or state.explicit_user
    with _import_progress(enabled=not as_json) as progress:
        result = import_export(
            state.vault,
            state.user,
            path,
            platform=platform,
            dry_run=dry_run,
            again=again,
            progress=progress,
        )
    shape = {
        **shapes.import_record(result.record),
        "dry_run": result.dry_run,
        "already_imported": result.already_imported,
    }
    if as_json:
        emit_json(shape)
        return
    record = result.record
    if result.already_imported:
        say(f"{path.name} was imported already ({record.id}, {record.platform}); nothing changed")
        say("(--again merges it anyway, bringing back anything deleted since)")
        return
    verb = "Would import" if dry_run else "Imported"
    say(f"{verb} {record.platform} export {record.file_name} into runtime {record.runtime_id}")
    _say_record(record, most_warnings=20)
    if not dry_run:
        say(f"Open it with: chatkeep ls --runtime {record.runtime_id}")


def _import_chatkeep(path: Path, *, dry_run: bool, as_json: bool) -> None:
    """A chatkeep export: its rows keep their own users (the vault's operator imports)."""
    from chatkeep.exporting import import_chatkeep_export

    with _progress(as_json, "importing") as advance:
        report = import_chatkeep_export(_state().vault, path, dry_run=dry_run, progress=advance)
    if as_json:
        emit_json(
            {
                "format": "chatkeep-export",
                "file": {"name": path.name, "size": report.file_size, "sha256": report.file_sha256},
                "mode": report.mode,
                "dry_run": report.dry_run,
                "exported_at": report.exported_at,
                "rows": report.rows,
                "added": report.added,
                "blobs": report.blobs,
            }
        )
        return
    if dry_run:
        say(f"{path.name} is a valid chatkeep export of {sum(report.rows.values()):,} rows")
        say(f"importing it would {'fill the empty vault' if report.mode == 'load' else 'merge'}")
        return
    verb = "Loaded" if report.mode == "load" else "Merged"
    say(f"{verb} chatkeep export {path.name} (exported {report.exported_at})")
    for table, count in report.added.items():
        if report.rows.get(table):
            say(f"  {table.replace('_', ' ')}: {count:,} added of {report.rows[table]:,}")
    say(f"  attachments stored: {report.blobs:,}")


@contextlib.contextmanager
def _progress(quiet: bool, description: str) -> Iterator[Callable[[int], None]]:
    """A spinner with a running count on a terminal; nothing with --json or when piped."""
    if quiet or not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}: {task.completed:,.0f} items"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(description)
        yield lambda n: bar.advance(task, n)


@contextlib.contextmanager
def _import_progress(*, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task("reading the export")

        def update(conversations: int, messages: int) -> None:
            bar.update(task, description=f"{conversations} conversations, {messages} messages")

        yield update


@cli.group(invoke_without_command=True)
@json_option
@click.pass_context
def imports(ctx: click.Context, as_json: bool) -> None:
    """List the imports into your vault (or 'imports show ID')."""
    if ctx.invoked_subcommand is not None:
        return
    state = _state()
    records = state.store.list_imports(state.user)
    if as_json:
        emit_json([shapes.import_record(r) for r in records])
        return
    for r in records:
        added = r.counts.get("conversations_added", 0)
        say(f"{r.id}  {r.platform:<8} {r.runtime_id:<24} {added:>6} new  {r.file_name}")


@imports.command("rm")
@click.argument("import_id", metavar="ID")
@json_option
def imports_rm(import_id: str, as_json: bool) -> None:
    """Delete what import ID brought (the conversations it last wrote) and its kept
    original. The imported runtime and its home conversation stay."""
    from chatkeep.lifecycle import delete_import

    state = _state()
    report = delete_import(state.vault, state.user, import_id)
    if as_json:
        emit_json({"id": import_id, **shapes.delete_report(report)})
        return
    say(
        f"{import_id}  deleted: {report.conversations} conversations, {report.messages} "
        f"messages, {report.attachments} attachments, {report.blobs} blobs"
    )


@imports.command("show")
@click.argument("import_id")
@json_option
def imports_show(import_id: str, as_json: bool) -> None:
    """Show one import's record: file, counts and warnings."""
    state = _state()
    record = state.store.get_import(state.user, import_id)
    if as_json:
        emit_json(shapes.import_record(record))
        return
    say(f"{record.id}: {record.platform} export {record.file_name} -> {record.runtime_id}")
    say(f"file: {record.file_size} bytes, sha256 {record.file_sha256}")
    say(f"kept at: {record.stored_path or '(not kept)'}")
    _say_record(record, most_warnings=None)


def _say_record(record: Any, *, most_warnings: int | None) -> None:
    """An import record's counts and warnings (the first ``most_warnings`` of them)."""
    for key, value in record.counts.items():
        say(f"  {key.replace('_', ' ')}: {value}")
    shown = record.warnings if most_warnings is None else record.warnings[:most_warnings]
    for warning in shown:
        say(f"  warning: {warning}")
    if len(record.warnings) > len(shown):
        say(f"  ... {len(record.warnings) - len(shown)} more warnings (see --json)")


# -- settings --------------------------------------------------------------------
@cli.group()
def config() -> None:
    """Get and set per-user settings (namespaced keys, JSON values)."""


@config.command("get")
@click.argument("key")
@json_option
def config_get(key: str, as_json: bool) -> None:
    """Print the value of KEY (e.g. ui.theme)."""
    state = _state()
    value = state.store.get_setting(state.user, key)
    if as_json:
        emit_json({"key": key, "value": value})
    else:
        say(value if isinstance(value, str) else orjson.dumps(value).decode())


@config.command("set")
@click.argument("key")
@click.argument("value")
@json_option
def config_set(key: str, value: str, as_json: bool) -> None:
    """Set KEY to VALUE. VALUE is read as JSON when it parses, else as a string."""
    try:
        # The standard json module keeps big integers exact (orjson turns them into
        # floats), so a number that cannot be stored is refused, never rounded.
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    state = _state()
    state.store.set_setting(state.user, key, parsed)
    if as_json:
        emit_json({"key": key, "value": parsed})


@config.command("unset")
@click.argument("key")
@json_option
def config_unset(key: str, as_json: bool) -> None:
    """Remove KEY."""
    state = _state()
    state.store.delete_setting(state.user, key)
    if as_json:
        emit_json({"key": key, "removed": True})


@config.command("ls")
@click.option("--prefix", help="Only keys in this namespace.")
@json_option
def config_ls(prefix: str | None, as_json: bool) -> None:
    """List settings."""
    state = _state()
    values = state.store.list_settings(state.user, prefix=prefix)
    if as_json:
        emit_json(values)
        return
    for key, value in values.items():
        say(f"{key} = {orjson.dumps(value).decode()}")


def _parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


def main() -> None:
    """Entry point of the ``chatkeep`` script."""
    cli(prog_name="chatkeep")
