"""Shared fixtures.

Every test runs with an isolated environment: ``CHATKEEP_HOME`` points into the test's
``tmp_path`` and ``CHATKEEP_ENV`` / ``CHATKEEP_USER`` are unset, so no test can touch a
real vault.

``store`` is parametrised over the backends. A later backend joins the whole contract
suite by adding its name to ``BACKENDS`` and a branch to ``make_vault``.

PostgreSQL tests run against ``CHATKEEP_TEST_POSTGRES_URL`` (``.ci/run`` sets it to the
machine's server), each test in a schema of its own that is dropped afterwards. Without
the variable they skip, saying how to enable them; in CI a skip would be a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import chatkeep
from chatkeep.store import Store

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.register_profile(
    "stress",
    deadline=None,
    max_examples=5_000,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("CHATKEEP_HYPOTHESIS_PROFILE", "default"))

BACKENDS = ["sqlite", "postgres", "files"]
POSTGRES_URL = os.environ.get("CHATKEEP_TEST_POSTGRES_URL", "")

#: The shared export samples (../shared/fixtures beside the checkout, or $CHATKEEP_FIXTURES).
FIXTURES = Path(
    os.environ.get(
        "CHATKEEP_FIXTURES", Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
    )
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Locally, tests that need the shared fixtures skip without them; in CI they must run."""
    if os.environ.get("CI") and not FIXTURES.is_dir():
        raise pytest.UsageError(
            f"CI run without the shared fixtures at {FIXTURES}: the import tests would skip"
        )


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "chatkeep-home"
    monkeypatch.setenv("CHATKEEP_HOME", str(home))
    for name in (
        "CHATKEEP_ENV",
        "CHATKEEP_USER",
        "CHATKEEP_DATABASE_URL",
        "CHATKEEP_DEBUG",
        "CHATKEEP_BACKEND",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


def postgres_schema_url() -> tuple[str, Callable[[], None]]:
    """A fresh schema in the test database: its URL, and how to drop it."""
    if not POSTGRES_URL:
        message = (
            "PostgreSQL tests need a server: set CHATKEEP_TEST_POSTGRES_URL, e.g. "
            "postgresql://postgres@127.0.0.1:5432/test"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run them)")
        pytest.skip(message)
    import psycopg

    schema = f"ck_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}", drop


def make_vault(backend: str, home: Path) -> chatkeep.Vault:
    if backend == "sqlite":
        return chatkeep.open(home=home, create=True)
    if backend == "files":
        return chatkeep.open(home=home, create=True, backend="files")
    raise AssertionError(f"unknown backend {backend}")


@pytest.fixture(params=BACKENDS)
def vault(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[chatkeep.Vault]:
    if request.param == "postgres":
        url, drop = postgres_schema_url()
        monkeypatch.setenv("CHATKEEP_DATABASE_URL", url)  # for the CLI a test runs
        try:
            opened = chatkeep.open(home=tmp_path / "vault-home", create=True, url=url)
        except BaseException:
            drop()
            raise
        try:
            yield opened
        finally:
            opened.close()
            drop()
        return
    opened = make_vault(request.param, tmp_path / "vault-home")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The backend name, with the environment set so that every ``chatkeep.open`` of
    this test (child processes included) uses it: for PostgreSQL, a fresh schema."""
    if request.param == "files":
        monkeypatch.setenv("CHATKEEP_BACKEND", "files")  # new vaults of this test
    if request.param != "postgres":
        yield request.param
        return
    url, drop = postgres_schema_url()
    monkeypatch.setenv("CHATKEEP_DATABASE_URL", url)
    try:
        yield request.param
    finally:
        drop()


@pytest.fixture
def store(vault: chatkeep.Vault) -> Store:
    return vault.store


@pytest.fixture
def alice(store: Store) -> str:
    store.add_user("alice")
    return "alice"


@pytest.fixture
def bob(store: Store) -> str:
    store.add_user("bob")
    return "bob"


@pytest.fixture
def servers() -> Iterator[list[object]]:
    """Servers a test starts (``server_helpers.start_server``) are stopped at its end."""
    from tests.server_helpers import Served

    started: list[object] = []
    yield started
    for server in started:
        assert isinstance(server, Served)
        server.stop()
