"""SpamAssassin (local rules only) scores the demo edition's .eml, and one built from a real feed with an
editor's note and topic sections, at most 1.0."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from digest.audience.lists import ensure_list
from tests.conftest import REPO, Project, require, require_tool

MAX_SCORE = 1.0


def carrying_date(project: Project) -> date:
    """The edition whose window holds articles ingested now (undated samples are stamped with "now")."""
    from digest import editions

    app = project.app()
    try:
        with app.store.session() as s:
            list_row = ensure_list(s, app.settings)
            now = datetime.now(UTC)
            day = editions.local_today(list_row, now)
            return day if editions.cutoff_for(list_row, day) > now else day + timedelta(days=1)
    finally:
        app.close()


def spam_score(eml: Path, spamassassin: str) -> tuple[float, str]:
    result = subprocess.run([spamassassin, "-L", "-t"], input=eml.read_bytes(), capture_output=True,
                            timeout=120, check=False)
    report = result.stdout.decode("utf-8", "replace")
    match = re.search(r"Content analysis details:\s+\((-?\d+(?:\.\d+)?) points", report)
    assert match, f"no score in SpamAssassin's report:\n{report[-2000:]}\n{result.stderr.decode()[-1000:]}"
    return float(match.group(1)), report[report.find("Content analysis details"):]


def test_demo_edition_scores_low(sqlite_project: Project) -> None:
    spamassassin = require_tool("spamassassin")
    samples = REPO / "samples" / "articles"
    require(samples.is_dir(), "samples/articles (from the ingest part)")
    for folder in sorted(p for p in samples.iterdir() if p.is_dir()):
        sqlite_project.run("ingest", str(folder), "--topic", folder.name)
    data = sqlite_project.json("build", "--date", carrying_date(sqlite_project).isoformat(), "--out", "out")
    assert data["articles"] >= 3, data
    score, report = spam_score(Path(data["files"]["eml"]), spamassassin)
    assert score <= MAX_SCORE, report
    # The hidden preheader once scored 0.7 as white text on a light background; it carries no colour now.
    assert "HTML_FONT_LOW_CONTRAST" not in report, report


def test_score_parser_reads_reports(tmp_path: Path) -> None:
    spamassassin = require_tool("spamassassin")
    eml = tmp_path / "spammy.eml"
    eml.write_bytes(b"From: a@example.org\r\nTo: b@example.org\r\nSubject: FREE MONEY!!! CLICK NOW\r\n\r\n"
                    b"Buy now, viagra, cialis, 100% FREE, limited time, act now, $$$ millions of dollars\r\n")
    score, _ = spam_score(eml, spamassassin)
    assert score > MAX_SCORE  # the check can fail


def test_real_feed_edition_with_note_and_sections_scores_low(sqlite_project: Project, shared_dir: Path) -> None:
    spamassassin = require_tool("spamassassin")
    sqlite_project.write_config('outbox_dir = "outbox"\n[theme]\nsections = true\n')
    sqlite_project.run("ingest", str(shared_dir / "samples" / "feeds" / "guardian_us_2018-01-31.rss"))
    sqlite_project.run("editions", "note", "--date", "2018-02-01",
                       "Good morning. Our lead is the *memo* fight; [write to the desk](mailto:desk@example.org).")
    data = sqlite_project.json("build", "--date", "2018-02-01", "--out", "out")
    assert data["articles"] >= 5, data
    score, report = spam_score(Path(data["files"]["eml"]), spamassassin)
    assert score <= MAX_SCORE, report
