"""Settings, the store on both databases, and the CLI's promises (every command has help and is documented)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from digest.cli import main
from digest.config import KEYS, load_settings, render_toml_template
from digest.errors import ConfigError
from digest.store.db import Store
from digest.store.tables import Base

from .conftest import REPO


def test_defaults_then_file_then_environment(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('backend = "smtp"\nsmtp_port = 2525\ndefault_list = "morning"\n')
    settings = load_settings(cwd=tmp_path, environ={"DIGEST_SMTP_PORT": "1025"})
    assert settings.backend == "smtp"  # from the file
    assert settings.smtp_port == 1025  # environment wins over the file
    assert settings.default_list == "morning"
    assert settings.catch_up_hours == 6  # default
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'subscribers' / 'digest.db'}"


def test_config_errors_name_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("no_such_key = 1\n")
    with pytest.raises(ConfigError, match=r"digest.toml: unknown key 'no_such_key'"):
        load_settings(cwd=tmp_path, environ={})
    (tmp_path / "digest.toml").write_text("smtp_port = 'abc'\n")
    with pytest.raises(ConfigError, match="smtp_port must be a int"):
        load_settings(cwd=tmp_path, environ={})
    with pytest.raises(ConfigError, match="DIGEST_BACKEND|backend must be"):
        load_settings(cwd=tmp_path / "nowhere", environ={"DIGEST_BACKEND": "pigeon"})


def test_init_template_lists_every_key() -> None:
    text = render_toml_template()
    for key in KEYS:
        assert f"# {key.name} = " in text


def test_readme_documents_every_config_key() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [k.name for k in KEYS if f"`{k.name}`" not in readme]
    assert not missing, f"README.md does not document config keys: {missing}"


def test_migrations_match_tables_and_run_on_both_databases(store: Store) -> None:
    assert store.current_revision() == store.head_revision()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"tables.py and the migrations differ; run `make migration`: {diff}"
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"articles", "lists", "subscribers", "editions", "deliveries", "events"} <= names


def test_store_reopens_without_migrating_again(db_url: str) -> None:
    first = Store(db_url)
    first.dispose()
    second = Store(db_url)
    assert second.current_revision() == "0001" or second.current_revision() == second.head_revision()
    second.dispose()


def _all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix} {name}".strip()
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out.extend(_all_commands(cmd, full))
    return out


def test_every_command_has_help_text() -> None:
    missing = [name for name, cmd in _all_commands(main) if not (cmd.help or "").strip()]
    assert not missing, f"commands without --help text: {missing}"


def test_every_command_is_documented_in_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [name for name, _ in _all_commands(main) if f"digest {name}" not in readme]
    assert not missing, f"README.md does not mention: {missing}"


def test_python_dash_m_digest_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "digest", "--help"], capture_output=True, text=True, check=True)
    assert "ingest → rank → render → send" in result.stdout
