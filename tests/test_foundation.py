"""Settings, the store on both databases, and the CLI's promises (every command has help and is documented)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

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

from .conftest import REPO, require


def test_defaults_then_file_then_environment(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('backend = "smtp"\nsmtp_port = 2525\ndefault_list = "morning"\n')
    settings = load_settings(cwd=tmp_path, environ={"DIGEST_SMTP_PORT": "1025"})
    assert settings.backend == "smtp"  # from the file
    assert settings.smtp_port == 1025  # environment wins over the file
    assert settings.default_list == "morning"
    assert settings.catch_up_hours == 6  # default
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'subscribers' / 'digest.db'}"


def test_each_setting_says_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('backend = "smtp"\nsmtp_port = 2525\n')
    settings = load_settings(cwd=tmp_path, environ={"DIGEST_SMTP_PORT": "1025"})
    assert settings.origin("backend") == str(tmp_path / "digest.toml")
    assert settings.origin("smtp_port") == "DIGEST_SMTP_PORT"
    assert settings.origin("catch_up_hours") == "default"  # not in the file: a default, not the file's
    assert settings.replace(max_articles=5).origin("backend") == str(tmp_path / "digest.toml")
    assert load_settings(cwd=tmp_path / "none", environ={}).origin("backend") == "default"


def test_config_errors_name_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("no_such_key = 1\n")
    with pytest.raises(ConfigError, match=r"digest.toml: unknown key 'no_such_key'"):
        load_settings(cwd=tmp_path, environ={})
    (tmp_path / "digest.toml").write_text("smtp_port = 'abc'\n")
    with pytest.raises(ConfigError, match="smtp_port must be a int"):
        load_settings(cwd=tmp_path, environ={})
    with pytest.raises(ConfigError, match="^DIGEST_BACKEND: backend must be file, smtp or sendgrid, not 'pigeon'"):
        load_settings(cwd=tmp_path / "nowhere", environ={"DIGEST_BACKEND": "pigeon"})
    (tmp_path / "digest.toml").write_text('smtp_security = "tls"\n')
    with pytest.raises(ConfigError, match=r"digest.toml: smtp_security must be none, starttls or ssl, not 'tls'"):
        load_settings(cwd=tmp_path, environ={})


def test_default_zone_and_send_time_are_checked_when_settings_load(tmp_path: Path) -> None:
    """The default list is made from them without a command to check them, so loading settings does."""
    with pytest.raises(ConfigError, match="^DIGEST_TIMEZONE: timezone: unknown time zone 'Mars/Base'"):
        load_settings(cwd=tmp_path, environ={"DIGEST_TIMEZONE": "Mars/Base"})
    (tmp_path / "digest.toml").write_text('send_time = "7am"\n')
    with pytest.raises(ConfigError, match=r"digest.toml: send_time: invalid send time '7am'"):
        load_settings(cwd=tmp_path, environ={})
    (tmp_path / "digest.toml").write_text('send_time = "7:05"\ntimezone = " Europe/Paris "\n')
    settings = load_settings(cwd=tmp_path, environ={})
    assert (settings.send_time, settings.timezone) == ("07:05", "Europe/Paris")
    with pytest.raises(ConfigError, match="^DIGEST_FROM_EMAIL: from_email: "):
        load_settings(cwd=tmp_path, environ={"DIGEST_FROM_EMAIL": "not an address"})
    with pytest.raises(ConfigError, match="^DIGEST_REPLY_TO: reply_to: "):
        load_settings(cwd=tmp_path, environ={"DIGEST_REPLY_TO": "desk@"})


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


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_processes_opening_a_fresh_store_at_once_all_succeed(kind: str, tmp_path: Path, _postgres: Any) -> None:
    """A scheduler and a command starting together on an empty database: one migrates, the others wait."""
    name = None
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        require(_postgres is not None, "PostgreSQL (set DIGEST_TEST_POSTGRES_URL)")
        name = f"digest_race_{uuid.uuid4().hex[:10]}"
        with _postgres.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # empty: not a copy of the migrated template
        url = _postgres.url_for(name)
    try:
        code = "import sys; from digest.store.db import Store; s = Store(sys.argv[1]); print(s.current_revision())"
        procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        assert all(code == 0 for code, _, _ in results), [err[-500:] for _, _, err in results]
        probe = Store(url, upgrade=False)
        assert {out.strip() for _, out, _ in results} == {probe.head_revision()} == {probe.current_revision()}
        probe.dispose()
    finally:
        if name is not None:
            _postgres.drop(name)


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


def test_ids_of_deleted_rows_are_never_handed_out_again(store: Store) -> None:
    # A reused subscriber id would make the old person's delivery rows and links look like the new person's.
    from digest.store.tables import MailingListRow, SubscriberRow

    with store.session() as s:
        lst = MailingListRow(name="daily", from_email="news@example.org", from_name="News")
        s.add(lst)
        s.flush()
        first = SubscriberRow(list_id=lst.id, email="a@example.org", email_key="a@example.org")
        s.add(first)
        s.flush()
        first_id, list_id = first.id, lst.id
        s.delete(first)
    with store.session() as s:
        second = SubscriberRow(list_id=list_id, email="b@example.org", email_key="b@example.org")
        s.add(second)
        s.flush()
        assert second.id > first_id


def test_tables_print_titles_literally(capsys: pytest.CaptureFixture[str]) -> None:
    from digest.cli.output import print_table

    print_table(["title"], [["[Update] Council vote :abc: [bold]x[/bold]"]])
    out = capsys.readouterr().out
    assert "[Update]" in out and ":abc:" in out and "[bold]x[/bold]" in out
