"""Shared fixtures: real SQLite files and a real PostgreSQL server, a project folder, the CLI.

Tests that need a tool a laptop may lack (PostgreSQL, Chromium, SpamAssassin, Node tools, ../shared) skip
there, but fail under CI=true: `require()` is the one place that rule lives.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from digest.send.standin import StandinServer
from digest.store.db import Store

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL", "")


def require(condition: bool, what: str) -> None:
    """Skip on a developer machine, fail in CI: CI must never silently test less."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {what} is missing; .ci/run must install it")
    pytest.skip(f"{what} not available")


def require_tool(name: str, path: str | None = None) -> str:
    found = path if path and Path(path).exists() else shutil.which(name)
    require(found is not None, f"the tool {name!r}")
    return str(found)


@pytest.fixture
def shared_dir() -> Path:
    require(SHARED.is_dir(), "../shared (third-party samples)")
    return SHARED


# --- databases ------------------------------------------------------------------------------------------


class _Postgres:
    """Makes one migrated template database per test session, then a fresh copy of it per test (fast)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.sa = sa
        self.base_url = sa.engine.make_url(url)
        self.admin = sa.create_engine(self.base_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        self.template = f"digest_tmpl_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.template}"'))
        store = Store(self.url_for(self.template))
        store.dispose()

    def url_for(self, name: str) -> str:
        return self.base_url.set(database=name).render_as_string(hide_password=False)

    def fresh(self) -> str:
        name = f"digest_t_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(self.sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(self.sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self.drop(self.template)
        self.admin.dispose()


@pytest.fixture(scope="session")
def _postgres() -> Iterator[_Postgres | None]:
    if not PG_URL:
        yield None
        return
    pg = _Postgres(PG_URL)
    yield pg
    pg.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, _postgres: _Postgres | None) -> Iterator[str]:
    """A fresh, migrated database per test: a SQLite file, and a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'digest.db'}"
        return
    require(_postgres is not None, "PostgreSQL (set DIGEST_TEST_POSTGRES_URL)")
    assert _postgres is not None
    name = _postgres.fresh()
    yield _postgres.url_for(name)
    _postgres.drop(name)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.dispose()


# --- a newsroom project folder and the CLI ---------------------------------------------------------------


class Project:
    """A newsroom folder in tmp_path with its own digest.toml, and a runner for `digest` commands in it."""

    def __init__(self, root: Path, db_url: str) -> None:
        self.root = root
        self.db_url = db_url
        self.env = {
            "DIGEST_DATABASE_URL": db_url,
            "DIGEST_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
            "DIGEST_CONFIG": str(root / "digest.toml"),
        }
        (root / "digest.toml").write_text('outbox_dir = "outbox"\n', encoding="utf-8")

    def write_config(self, text: str) -> None:
        (self.root / "digest.toml").write_text(text, encoding="utf-8")

    def run(self, *args: str, input: str | bytes | None = None, ok: bool = True, env: dict[str, str] | None = None) -> Result:
        from digest.cli import main

        runner = CliRunner()
        old = os.getcwd()
        os.chdir(self.root)
        try:
            result = runner.invoke(main, list(args), input=input, env={**self.env, **(env or {})},
                                   catch_exceptions=True)
        finally:
            os.chdir(old)
        if ok and result.exit_code != 0:
            detail = result.output + (result.stderr if result.stderr_bytes else "")
            if result.exception and not isinstance(result.exception, SystemExit):
                import traceback

                detail += "".join(traceback.format_exception(result.exception))
            raise AssertionError(f"digest {' '.join(args)} exited {result.exit_code}:\n{detail}")
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        import json

        return json.loads(self.run(*args, "--json", **kwargs).stdout)

    def app(self) -> Any:
        from digest.app import App

        old = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            return App.load(str(self.root / "digest.toml"))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Project:
    root = tmp_path / "newsroom"
    root.mkdir()
    return Project(root, db_url)


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Project:
    """A project on SQLite only, for tests whose subject is not the database."""
    root = tmp_path / "newsroom"
    root.mkdir()
    return Project(root, f"sqlite:///{tmp_path / 'digest.db'}")


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    """digest's SendGrid stand-in on a free loopback port, for the tests that send through it."""
    with StandinServer() as server:
        yield server
