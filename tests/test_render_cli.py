"""`digest build` and `digest init` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from urllib.parse import urlsplit

from bs4 import BeautifulSoup

from digest.audience import tokens
from digest.audience.lists import ensure_list
from digest.config import load_settings
from digest.render.templates import PACKAGE_TEMPLATES
from digest.store.articles import upsert_article
from digest.store.tables import SubscriberRow
from tests.conftest import Project
from tests.render_helpers import article


def _seed(project: Project, *, subscribers: list[tuple[str, str | None, str]] = ()) -> dict[str, int]:  # type: ignore[assignment]
    app = project.app()
    ids: dict[str, int] = {}
    try:
        with app.store.session() as s:
            for i in range(1, 5):
                upsert_article(s, article(i, published_at=datetime(2031, 3, 4, 5, i, tzinfo=UTC)))
            lst = ensure_list(s, app.settings)
            for addr, name, status in subscribers:
                row = SubscriberRow(list_id=lst.id, email=addr, email_key=addr.lower(), name=name, status=status)
                s.add(row)
                s.flush()
                ids[addr] = row.id
            ids["list"] = lst.id
    finally:
        app.close()
    return ids


def test_build_writes_four_files_for_the_first_active_subscriber(project: Project) -> None:
    ids = _seed(project, subscribers=[("pending@example.org", None, "pending"),
                                      ("Ana@Example.org", "Ana Example", "active")])
    data = project.json("build", "--date", "2031-03-04", "--out", "out")
    assert data["articles"] == 4 and data["recipient"] == "Ana@Example.org"
    assert data["date"] == "2031-03-04" and data["list"] == "daily"
    assert data["size_bytes"] < data["max_html_bytes"] == 102_000
    files = {k: Path(v) for k, v in data["files"].items()}
    assert {p.name for p in files.values()} == {f"daily-2031-03-04.{ext}" for ext in ("html", "txt", "mjml", "eml")}
    assert all(p.parent == project.root / "out" for p in files.values())
    html = files["html"].read_text(encoding="utf-8")
    assert data["size_bytes"] == len(html.encode("utf-8"))
    soup = BeautifulSoup(html, "lxml")
    assert len(soup.select("h2.headline")) == 4
    unsubscribe = soup.find("a", string="Unsubscribe")["href"]
    settings = project.app().settings
    token = urlsplit(unsubscribe).path.rsplit("/", 1)[1]
    read = tokens.read_token(settings, "unsubscribe", token)
    assert (read.subscriber_id, read.list_id) == (ids["Ana@Example.org"], ids["list"])
    assert "{{digest:" not in html and "{{digest:" not in files["txt"].read_text(encoding="utf-8")
    assert "<mj-section" in files["mjml"].read_text(encoding="utf-8")
    msg = email.message_from_bytes(files["eml"].read_bytes(), policy=policy.default)
    assert msg["To"] == "Ana Example <Ana@Example.org>"
    assert msg["List-Unsubscribe"] == f"<{unsubscribe}>"
    human = project.run("build", "--date", "2031-03-04", "--out", "out").stdout
    assert "4 articles" in human and "bytes of HTML (limit 102,000)" in human


def test_build_for_a_named_subscriber_or_the_sample_reader(project: Project) -> None:
    _seed(project, subscribers=[("a@example.org", "A", "active"), ("b@example.org", "Bea", "active")])
    data = project.json("build", "--date", "2031-03-04", "--subscriber", "B@example.org", "--out", "o")
    assert data["recipient"] == "b@example.org"
    missing = project.run("build", "--subscriber", "nobody@example.org", ok=False)
    assert missing.exit_code != 0 and "nobody@example.org" in missing.stderr


def test_build_without_subscribers_uses_fictional_reader(project: Project) -> None:
    _seed(project)
    data = project.json("build", "--date", "2031-03-04")
    assert data["recipient"] == "reader@example.org"
    eml = Path(data["files"]["eml"])
    assert eml.parent == project.root / "editions"
    assert email.message_from_bytes(eml.read_bytes(), policy=policy.default)["To"] == "reader@example.org"
    upcoming = project.json("build")  # no --date: the list's upcoming edition (nothing in its window here)
    assert upcoming["date"] >= datetime.now(UTC).date().isoformat() and upcoming["articles"] == 0
    bad = project.run("build", "--date", "04/03/2031", ok=False)
    assert bad.exit_code != 0 and "--date" in bad.stderr
    unknown = project.run("build", "--list", "nope", ok=False)
    assert unknown.exit_code != 0 and "nope" in unknown.stderr


def test_init_creates_a_newsroom_folder_and_never_overwrites(sqlite_project: Project, tmp_path: Path) -> None:
    target = tmp_path / "newsroom2"
    out = sqlite_project.run("init", str(target)).stdout
    assert "digest.toml" in out
    settings = load_settings(target / "digest.toml", environ={})
    assert len(settings.secret_key) >= 40
    assert settings.max_html_bytes == 102_000  # every other key stays commented at its default
    assert (target / "subscribers").is_dir()
    for source in PACKAGE_TEMPLATES.glob("*.j2"):
        assert (target / "templates" / source.name).read_bytes() == source.read_bytes()
    other = tmp_path / "newsroom3"
    sqlite_project.run("init", str(other))
    assert load_settings(other / "digest.toml", environ={}).secret_key != settings.secret_key
    (target / "templates" / "_footer.mjml.j2").write_text("mine", encoding="utf-8")
    before = (target / "digest.toml").read_text(encoding="utf-8")
    again = sqlite_project.run("init", str(target), ok=False)
    assert again.exit_code != 0 and "refusing to overwrite" in again.stderr
    assert (target / "digest.toml").read_text(encoding="utf-8") == before
    assert (target / "templates" / "_footer.mjml.j2").read_text(encoding="utf-8") == "mine"
    # A partly set-up folder is refused too, and nothing is added to it.
    partial = tmp_path / "partial"
    (partial / "templates").mkdir(parents=True)
    (partial / "templates" / "digest.txt.j2").write_text("x", encoding="utf-8")
    assert sqlite_project.run("init", str(partial), ok=False).exit_code != 0
    assert not (partial / "digest.toml").exists()
