"""`digest build` and `digest init` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup

from digest.audience import tokens
from digest.audience.lists import ensure_list
from digest.config import load_settings
from digest.render.templates import PACKAGE_TEMPLATES
from digest.store.articles import upsert_article
from digest.store.tables import SubscriberRow
from tests.conftest import REPO, Project
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
    text = (target / "digest.toml").read_text(encoding="utf-8")
    assert '# theme = {language = "en"}' in text and "en, de, fr, es, pt-BR, it" in text
    assert settings.theme == {}  # commented: the default
    uncommented = text.replace('# theme = {language = "en"}', 'theme = {language = "de"}')
    (tmp_path / "lang.toml").write_text(uncommented, encoding="utf-8")
    assert load_settings(tmp_path / "lang.toml", environ={}).theme == {"language": "de"}
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


# Run inside the unpacked wheel: a newsroom's `digest init`, ingest, build, and the preview's own assets.
_WHEEL_PREVIEW = """
import httpx, asyncio
from digest.app import App
from digest.web.preview import create_preview_app
app = App.load()
asgi = create_preview_app(app, live=False)
async def main():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://127.0.0.1") as c:
        for path in ("/static/preview/preview.js", "/static/preview/preview.css", "/"):
            r = await c.get(path, follow_redirects=True)
            print(path, r.status_code, len(r.text))
asyncio.run(main())
app.close()
"""


@pytest.mark.slow
def test_a_wheel_install_ships_templates_and_digest_init_works_from_it(tmp_path: Path) -> None:
    """A newsroom that installed digest from a wheel has no repository: everything must come from the package."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "digest", src / "digest", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "whl"),
                            str(src)], capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((tmp_path / "whl").glob("digest-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    data_dirs = ("digest/templates", "digest/web/static", "digest/web/templates", "digest/store/migrations",
                 "digest/i18n/locales")
    shipped = [p.relative_to(REPO).as_posix() for d in data_dirs for p in (REPO / d).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    assert len(shipped) > 15 and [n for n in shipped if n not in names] == []

    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(PYTHONPATH=str(tmp_path / "site"), DIGEST_DATABASE_URL=f"sqlite:///{tmp_path / 'wheel.db'}")

    def run(*args: str, cwd: Path) -> str:
        done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    where = run("-c", "import digest; print(digest.__file__)", cwd=tmp_path).strip()
    assert Path(where).is_relative_to(tmp_path / "site"), where  # not the repository's editable install
    run("-m", "digest", "init", "newsroom", cwd=tmp_path)
    newsroom = tmp_path / "newsroom"
    assert sorted(p.name for p in (newsroom / "templates").iterdir()) == sorted(
        p.name for p in PACKAGE_TEMPLATES.glob("*.j2"))
    run("-m", "digest", "ingest", str(REPO / "samples" / "articles" / "politics"), "--published",
        "2031-03-04T05:00:00+00:00", cwd=newsroom)
    data = json.loads(run("-m", "digest", "build", "--date", "2031-03-04", "--json", cwd=newsroom))
    assert data["articles"] >= 1 and data["size_bytes"] < data["max_html_bytes"]
    html = Path(data["files"]["html"]).read_text(encoding="utf-8")
    assert Path(data["files"]["html"]).is_relative_to(newsroom / "editions")
    assert html.startswith("<!DOCTYPE html>") and 'class="headline"' in html
    served = run("-c", _WHEEL_PREVIEW, cwd=newsroom).split("\n")
    assert [line.split()[1] for line in served if line] == ["200", "200", "200"], served
