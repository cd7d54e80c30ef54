"""What `digest send` says and refuses: an edition whose every delivery failed is `failed`, not `sent`; a --date
whose window is still open is not frozen early without --now or --yes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from digest.audience.lists import ensure_list
from digest.editions import cutoff_for
from digest.send.standin import Behaviour, StandinServer
from digest.store.tables import EditionRow

from .send_support import DAY, add_articles, add_subscribers, delivery_statuses, sendgrid_env


def test_an_edition_whose_deliveries_all_failed_is_failed(project: Any, standin: StandinServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    app = sendgrid_env(project, standin, monkeypatch, send_batch_size=2)
    add_articles(app, 3)
    add_subscribers(app, 4)
    refusal = "The from email does not contain a valid address."
    standin.state.script(Behaviour(status=400, message=refusal), Behaviour(status=400, message=refusal))
    result = project.run("send", "--date", DAY.isoformat(), ok=False)
    assert result.exit_code == 1
    assert "status failed" in result.output and "status sent" not in result.output
    assert delivery_statuses(app) == {"failed": 4}
    # Once the cause is fixed, the retry sends them and the edition is sent.
    retried = project.json("send", "--date", DAY.isoformat(), "--retry-failed")
    assert retried["status"] == "sent" and retried["sent"] == 4


def test_a_date_whose_window_is_still_open_needs_now_or_yes(project: Any) -> None:
    app = project.app()
    day = datetime.now(UTC).date() + timedelta(days=2)
    with app.store.session() as s:
        cutoff = cutoff_for(ensure_list(s, app.settings), day)
    add_articles(app, 3, before=cutoff)
    add_subscribers(app, 2)
    refused = project.run("send", "--date", day.isoformat(), ok=False)
    assert refused.exit_code == 2
    assert "collects articles until" in refused.output and "--now" in refused.output
    with app.store.session() as s:
        assert s.scalar(select(EditionRow.frozen_at)) is None  # nothing frozen, nothing planned
    assert delivery_statuses(app) == {}
    early = project.run("send", "--date", day.isoformat(), "--now", ok=False)
    assert "collects articles until" not in early.output
    with app.store.session() as s:
        assert s.scalar(select(EditionRow.frozen_at)) is not None  # --now: frozen at this moment, as asked
    # Resuming a frozen edition freezes nothing early: no question asked.
    assert project.run("send", "--date", day.isoformat()).exit_code == 0
