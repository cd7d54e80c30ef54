"""The editor's desk in the preview: in-process routes (httpx over ASGI) on SQLite and PostgreSQL, the password
gate, and in Chromium an editor clicking "Pin" and "Leave out" and seeing the email change.

Every article, subscriber and address here is fictional.
"""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import timedelta
from email import message_from_string
from email.message import EmailMessage
from email.policy import default as default_policy

import httpx
import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from digest.errors import ConfigError
from digest.send.dispatch import send_edition
from digest.store.tables import ArticleRow
from digest.web.preview import create_preview_app
from digest.web.preview_desk import desk_fingerprint
from tests.conftest import Project
from tests.desk_support import CONFIG, Newsroom, desk_audit, seed, selection_ids
from tests.test_preview_app import HOST, Client, _csrf
from tests.test_preview_server import (  # noqa: F401 - browser_page: the Chromium fixture
    Server,
    _events,
    _wait_for_frame_text,
    browser_page,
)

ORIGIN = {"Origin": f"http://{HOST}"}


def _setup(project: Project) -> tuple[Client, str, Newsroom]:
    project.write_config(CONFIG + 'desk_editor = "Night Editor"\n')
    newsroom = seed(project.app())
    return Client(newsroom.app), f"/l/daily/{newsroom.day.isoformat()}", newsroom


def _buttons(html: str, article: str) -> list[str]:
    soup = BeautifulSoup(html, "lxml")
    item = soup.select_one(f"#desk-articles li[data-article='{article}'], #desk-candidates li[data-article='{article}']")
    assert item is not None, f"the desk lists {article}"
    return [b.get_text(strip=True) for b in item.select("button") if not b.has_attr("disabled")]


def test_the_desk_shows_every_control_for_the_upcoming_edition(project: Project) -> None:
    client, base, _ = _setup(project)
    page = client.get(base)
    assert page.status_code == 200 and "Editor's desk" in page.text
    assert _buttons(page.text, "d2") == ["Pin", "Move up", "Move down", "Leave out", "Leave out everywhere"]
    assert _buttons(page.text, "d1") == ["Pin", "Move down", "Leave out", "Leave out everywhere"]  # first
    assert _buttons(page.text, "d6") == ["Add"]  # below the limit
    soup = BeautifulSoup(page.text, "lxml")
    assert "below the limit" in soup.select_one("#desk-candidates li[data-article='d6']").get_text()  # type: ignore[union-attr]
    assert "Council approves harbour bridge budget" in soup.select_one("#desk-subject").get_text()  # type: ignore[union-attr]
    # The reason field of "Leave out" is labelled.
    field = soup.select_one("#desk-articles li[data-article='d2'] input[name='reason']")
    assert field is not None and soup.select_one(f"label[for='{field['id']}']") is not None
    # The fragment live reload fetches is the same desk.
    part = client.get(base + "/desk")
    assert part.status_code == 200 and _buttons(part.text, "d2")[0] == "Pin"


def test_changes_need_the_csrf_token_and_the_preview_origin(project: Project) -> None:
    client, base, newsroom = _setup(project)
    token = _csrf(client.get(base).text)
    for data, headers in (({"article": "d3"}, ORIGIN), ({"article": "d3", "csrf": token + "x"}, ORIGIN),
                          ({"article": "d3", "csrf": token}, {"Origin": "http://evil.example.net"})):
        refused = client.post(base + "/desk/pin", data=data, headers=headers)
        assert refused.status_code == 403
    assert desk_audit(newsroom.app) == []
    assert client.get(base + "/desk/pin").status_code == 405  # never a state change on GET


def test_each_button_changes_the_stored_edition_and_the_email(project: Project) -> None:
    client, base, newsroom = _setup(project)
    app, day = newsroom.app, newsroom.day
    token = _csrf(client.get(base).text)

    def post(action: str, **data: str) -> httpx.Response:
        return client.post(base + f"/desk/{action}", data={"csrf": token, **data}, headers=ORIGIN,
                           follow_redirects=False)

    fingerprint = desk_fingerprint(app.store)
    pinned = post("pin", article="d3")
    assert pinned.status_code == 303 and pinned.headers["location"] == base
    assert desk_fingerprint(app.store) != fingerprint  # what the live-reload poll watches
    assert selection_ids(app, day) == ["d3", "d1", "d2", "d4"]
    assert post("leave-out", article="d1", reason="Fictional: needs a second source").status_code == 303
    assert selection_ids(app, day) == ["d3", "d2", "d4", "d5"]
    assert post("move-down", article="d2").status_code == 303
    assert selection_ids(app, day) == ["d3", "d4", "d2", "d5"]
    assert post("move-up", article="d5").status_code == 303
    assert selection_ids(app, day) == ["d3", "d4", "d5", "d2"]
    assert post("add", article="d6").status_code == 303
    assert selection_ids(app, day) == ["d3", "d4", "d5", "d6"]
    assert post("unpin", article="d3").status_code == 303

    email = client.get(base + "/text").text
    assert "Orchard growers expect record apples" in email and "Council approves harbour bridge" not in email
    page = client.get(base).text
    assert "left out by the editor: Fictional: needs a second source" in page
    assert [a for a, _, _ in desk_audit(app)] == ["pin", "leave-out", "move-down", "move-up", "add", "unpin"]
    assert {by for _, by, _ in desk_audit(app)} == {"Night Editor"}

    as_json = client.post(base + "/desk/pin", data={"csrf": token, "article": "d4"},
                          headers={**ORIGIN, "Accept": "application/json"})
    assert as_json.status_code == 200 and as_json.json()["by"] == "Night Editor" and as_json.json()["changed"]


def test_leave_out_everywhere_asks_first_and_approve_shows_who(project: Project) -> None:
    project.write_config(CONFIG + 'desk_editor = "Night Editor"\n')
    newsroom = seed(project.app())
    app = newsroom.app
    from digest.audience.lists import ensure_list

    with app.store.session() as session:
        ensure_list(session, app.settings).require_approval = True
    client = Client(app)
    base = f"/l/daily/{newsroom.day.isoformat()}"
    page = client.get(base).text
    token = _csrf(page)
    assert "Not approved yet" in page and "Approve" in [b.get_text(strip=True) for b in
                                                         BeautifulSoup(page, "lxml").select(".desk button")]

    ask = client.post(base + "/desk/retract", data={"csrf": token, "article": "d2"}, headers=ORIGIN)
    assert ask.status_code == 200 and "Leave out everywhere?" in ask.text
    with app.store.session() as session:
        assert session.get(ArticleRow, "d2").retracted_at is None  # type: ignore[union-attr]
    confirm_token = _csrf(ask.text)
    done = client.post(base + "/desk/retract", data={"csrf": confirm_token, "article": "d2", "confirm": "yes"},
                       headers=ORIGIN, follow_redirects=False)
    assert done.status_code == 303
    with app.store.session() as session:
        assert session.get(ArticleRow, "d2").retracted_at is not None  # type: ignore[union-attr]

    approved = client.post(base + "/desk/approve", data={"csrf": token}, headers=ORIGIN, follow_redirects=False)
    assert approved.status_code == 303
    text = BeautifulSoup(client.get(base).text, "lxml").select_one("#desk-approval").get_text(" ", strip=True)  # type: ignore[union-attr]
    assert re.fullmatch(r"Approved by Night Editor at \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert [(a, by) for a, by, _ in desk_audit(app)] == [("retract", "Night Editor"), ("approve", "Night Editor")]


def test_past_and_sent_editions_are_read_only(project: Project) -> None:
    client, base, newsroom = _setup(project)
    app, day, now = newsroom.app, newsroom.day, newsroom.now
    token = _csrf(client.get(base).text)
    past = client.get(f"/l/daily/{(day - timedelta(days=3)).isoformat()}").text
    # Only the note stays editable on a past edition not sent yet (`digest send --date` still sends it).
    assert "past editions are read-only" in past
    assert [b.get_text(strip=True) for b in BeautifulSoup(past, "lxml").select(".desk button")] == ["Save note"]

    send_edition(app, date=day, now=now, progress=False)
    page = client.get(base).text
    assert "its first delivery went out at" in page and not BeautifulSoup(page, "lxml").select(".desk button")
    refused = client.post(base + "/desk/pin", data={"csrf": token, "article": "d2"}, headers=ORIGIN)
    assert refused.status_code == 409 and "its first delivery went out at" in refused.text
    assert desk_audit(app) == []


def test_a_change_made_with_a_command_reloads_the_open_tabs(sqlite_project: Project) -> None:
    sqlite_project.write_config(CONFIG)
    seed(sqlite_project.app())
    server = Server(sqlite_project)
    try:
        events = _events(server, 1, lambda: sqlite_project.run("editions", "pin", "d3", "--by", "Dee"))
        assert events and events[0]["reason"] == "articles"  # the store's poll noticed the desk's change
    finally:
        server.stop()


# --- the editor's note and the subjects under test ---------------------------------------------------------


def test_the_note_form_saves_the_note_into_the_email_and_is_refused_after_the_first_delivery(
        project: Project) -> None:
    client, base, newsroom = _setup(project)
    app, day, now = newsroom.app, newsroom.day, newsroom.now
    first = client.get(base).text
    soup = BeautifulSoup(first, "lxml")
    field = soup.select_one("#desk-note textarea[name='note']")
    assert field is not None and field.get_text() == ""
    label = soup.select_one(f"label[for='{field['id']}']")
    assert label is not None and label.get_text(strip=True) == "Editor's note"
    assert [b.get_text(strip=True) for b in soup.select("#desk-note button")] == ["Save note"]
    token = _csrf(first)
    note = "Fictional: the **bridge vote** leads tonight.\n\n<b>Not bold</b>, on purpose."

    for data, headers in (({"note": note}, ORIGIN), ({"note": note, "csrf": token}, {"Origin": "http://evil.example.net"})):
        assert client.post(base + "/desk/note", data=data, headers=headers).status_code == 403
    assert desk_audit(app) == [] and "bridge vote" not in client.get(base + "/text").text

    saved = client.post(base + "/desk/note", data={"csrf": token, "note": note}, headers=ORIGIN,
                        follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == base
    html = BeautifulSoup(client.get(base + "/html").text, "lxml")
    shown = html.select_one("div.note")
    assert shown is not None and shown.find("strong").get_text() == "bridge vote"  # type: ignore[union-attr]
    assert html.find("b") is None and "<b>Not bold</b>" in shown.get_text()
    assert "bridge vote leads tonight" in client.get(base + "/text").text
    page = BeautifulSoup(client.get(base).text, "lxml")
    assert page.select_one("#desk-note textarea").get_text() == note  # type: ignore[union-attr]
    [(action, by, detail)] = desk_audit(app)
    assert (action, by) == ("note", "Night Editor") and "bridge vote" in detail
    assert "Night Editor: note set" in page.select_one(".desk-history").get_text(" ", strip=True)  # type: ignore[union-attr]

    send_edition(app, date=day, now=now, progress=False)
    page = BeautifulSoup(client.get(base).text, "lxml")
    assert page.select_one("#desk-note") is None  # no form once it went out: the note is shown as it went
    assert "bridge vote" in page.select_one("#desk-note-text").get_text()  # type: ignore[union-attr]
    refused = client.post(base + "/desk/note", data={"csrf": token, "note": "Too late"}, headers=ORIGIN)
    assert refused.status_code == 409
    assert "the note can no longer change" in refused.text and "its first delivery went out at" in refused.text
    assert len(desk_audit(app)) == 1


def test_the_desk_and_the_preview_show_each_subject_under_test(project: Project) -> None:
    from digest import editions
    from digest.audience.lists import ensure_list
    from digest.send import subject_test

    client, base, newsroom = _setup(project)
    app = newsroom.app
    assert BeautifulSoup(client.get(base).text, "lxml").select_one("#desk-subjects") is None
    subjects = ["Fictional: <the> bridge vote", "Fictional: what the council decided"]
    with app.store.session() as session:
        edition = editions.get_or_create_edition(session, app.settings, ensure_list(session, app.settings),
                                                 newsroom.day)
        subject_test.create(session, edition, subjects, sample_percent=50, decide_after=3600, metric="clicks")
    page = BeautifulSoup(client.get(base).text, "lxml")
    rows = page.select("#desk-subjects tbody tr")
    assert [r.select("td")[1].get_text() for r in rows] == subjects  # escaped, shown as text
    assert "50% of the readers" in page.select_one("#desk-subjects-state").get_text()  # type: ignore[union-attr]
    assert [li.get_text(strip=True) for li in page.select("#subjects-above li")] == subjects
    options = [o.get_text(strip=True) for o in page.select("#subject-under-test option")]
    assert options[1:] == [f"1: {subjects[0]}", f"2: {subjects[1]}"]

    # The email with each subject: the Subject header changes, the content does not.
    def message(query: str) -> EmailMessage:
        parsed = message_from_string(client.get(base + "/source" + query).text, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def body(msg: EmailMessage) -> str:
        part = msg.get_body(("plain",))
        assert part is not None
        return str(part.get_content())

    own = message("")
    for n, subject in enumerate(subjects, start=1):
        with_subject = message(f"?subject={n}")
        assert with_subject["Subject"] == subject and own["Subject"] != subject
        stories = re.findall(r"news\.example\.org/d\d", body(with_subject))
        assert stories and stories == re.findall(r"news\.example\.org/d\d", body(own))
        headers = BeautifulSoup(client.get(base + f"/headers?subject={n}").text, "lxml").get_text(" ")
        assert subject in headers
    assert client.get(base + "/source?subject=3").status_code == 404
    assert client.get(base + "/source?subject=x").status_code == 404

    send_edition(app, date=newsroom.day, now=newsroom.now, progress=False)
    page = BeautifulSoup(client.get(base).text, "lxml")
    cells = [[td.get_text(strip=True) for td in r.select("td")] for r in page.select("#desk-subjects tbody tr")]
    assert cells == [["1", subjects[0], "1", "0", "0", ""], ["2", subjects[1], "0", "0", "0", ""]]
    assert "reader(s) wait for it" in page.select_one("#desk-subjects-state").get_text()  # type: ignore[union-attr]


# --- the password gate ------------------------------------------------------------------------------------


def _status(asgi: object, path: str, headers: dict[str, str] | None = None, host: str = HOST) -> int:
    async def go() -> int:
        transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            return (await client.get(path, headers=headers or {})).status_code

    return asyncio.run(go())


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_answering_any_host_needs_a_password(sqlite_project: Project) -> None:
    app = sqlite_project.app()
    with pytest.raises(ConfigError, match="preview_password"):
        create_preview_app(app, live=False, allowed_hosts=["*"])
    asgi = create_preview_app(app, live=False, allowed_hosts=["*"], password="fictional-Passw0rd")
    assert _status(asgi, "/editions.json", host="desk.example.org") == 401
    assert _status(asgi, "/editions.json", _basic("editor", "wrong"), host="desk.example.org") == 401
    assert _status(asgi, "/editions.json", {"Authorization": "Bearer fictional-Passw0rd"}) == 401
    assert _status(asgi, "/editions.json", {"Authorization": "Basic !!!"}) == 401
    assert _status(asgi, "/editions.json", _basic("editor", "fictional-Passw0rd"), host="desk.example.org") == 200


def test_the_command_refuses_to_listen_beyond_loopback_without_a_password(sqlite_project: Project) -> None:
    refused = sqlite_project.run("preview", "--host", "0.0.0.0", "--no-open", ok=False)
    assert refused.exit_code != 0 and "preview_password" in refused.output
    assert "DIGEST_PREVIEW_PASSWORD" in refused.output
    shown = sqlite_project.json("config", env={"DIGEST_PREVIEW_PASSWORD": "fictional-Passw0rd"})
    assert "fictional-Passw0rd" not in str(shown)


# --- in Chromium -----------------------------------------------------------------------------------------


@pytest.mark.browser
def test_an_editor_pins_and_leaves_out_in_the_browser(sqlite_project: Project, browser_page: object) -> None:  # noqa: F811
    from playwright.sync_api import Page

    page = browser_page
    assert isinstance(page, Page)
    sqlite_project.write_config(CONFIG + 'desk_editor = "Night Editor"\n')
    newsroom = seed(sqlite_project.app())
    server = Server(sqlite_project)

    def email_text() -> str:
        return str(page.frame_locator("#frame").locator("body").inner_text())

    def desk_item(title: str) -> object:
        return page.locator("#desk-articles li").filter(has_text=title)

    try:
        page.goto(server.url + "/")
        page.wait_for_selector("#live[data-state='live']")
        _wait_for_frame_text(page, "Council approves harbour bridge budget")
        before = email_text()
        assert before.index("Council approves") < before.index("Marathon route changes")

        desk_item("Marathon route changes announced").get_by_role("button", name="Pin", exact=True).click()
        page.wait_for_load_state()
        page.locator("#desk-articles li").first.filter(has_text="Marathon route changes announced").wait_for()
        _wait_for_frame_text(page, "Marathon route changes announced")
        page.wait_for_function(
            "() => { const t = document.getElementById('frame').contentDocument.body.innerText;"
            " return t.indexOf('Marathon route') >= 0 && t.indexOf('Marathon route') < t.indexOf('Council approves'); }",
            timeout=15000)

        desk_item("Council approves harbour bridge budget").get_by_role("button", name="Leave out", exact=True).click()
        page.wait_for_load_state()
        _wait_for_frame_text(page, "Museum reopens renovated gallery")
        page.wait_for_function(
            "() => !document.getElementById('frame').contentDocument.body.innerText.includes('Council approves')",
            timeout=15000)
        assert "left out by the editor" in page.locator("#desk-candidates").inner_text()
        assert selection_ids(newsroom.app, newsroom.day)[0] == "d4"
        assert [a for a, _, _ in desk_audit(newsroom.app)] == ["pin", "leave-out"]
    finally:
        page.goto("about:blank")  # no open stream or render in flight while the preview stops
        server.stop()


@pytest.mark.browser
def test_the_desk_and_its_confirm_page_have_no_serious_axe_violations(sqlite_project: Project) -> None:
    from playwright.sync_api import sync_playwright

    from digest import editions
    from digest.audience.lists import ensure_list
    from digest.send import subject_test
    from tests.conftest import require_tool
    from tests.test_preview_server import CHROMIUM_ARGS
    from tests.test_public_web_browser import check_page

    chromium = require_tool("chromium", "/usr/bin/chromium")
    sqlite_project.write_config(CONFIG)
    newsroom = seed(sqlite_project.app())
    app = newsroom.app
    with app.store.session() as session:  # so the subjects' table and picker are checked too
        edition = editions.get_or_create_edition(session, app.settings, ensure_list(session, app.settings),
                                                 newsroom.day)
        subject_test.create(session, edition, ["Fictional subject one", "Fictional subject two"],
                            sample_percent=20, decide_after=3600, metric="clicks")
    server = Server(sqlite_project)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            # bypass_csp only so the test can inject axe-core; the preview's own scripts run under its CSP.
            page = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True).new_page()
            page.goto(server.url + "/")
            page.wait_for_selector("#desk-articles li")
            check_page(page)
            page.locator("#desk-articles li").first.get_by_role("button", name="Leave out everywhere").click()
            page.wait_for_selector("text=Leave out everywhere?")
            check_page(page)
            page.goto("about:blank")  # no open stream or render in flight while the preview stops
            browser.close()
    finally:
        server.stop()


@pytest.mark.browser
def test_an_editors_evening_at_the_desk_is_the_mornings_email(sqlite_project: Project,
                                                             browser_page: object) -> None:  # noqa: F811
    """Leave out the second story, move the fourth up, add a candidate, write a note, approve; the send delivers
    exactly that, and afterwards the desk is read-only."""
    from playwright.sync_api import Page

    from digest.audience.lists import ensure_list
    from digest.store.tables import EditionArticleRow, VariantRow

    page = browser_page
    assert isinstance(page, Page)
    sqlite_project.write_config(CONFIG + 'desk_editor = "Night Editor"\n')
    app = sqlite_project.app()
    newsroom = seed(app)
    with app.store.session() as session:
        ensure_list(session, app.settings).require_approval = True
    server = Server(sqlite_project)

    def click(locator: object) -> None:
        with page.expect_navigation():
            locator.click()  # type: ignore[attr-defined]

    def shown() -> list[str]:
        return list(page.eval_on_selector_all("#desk-articles li", "els => els.map(e => e.dataset.article)"))

    try:
        page.goto(server.url + "/")
        page.wait_for_selector("#desk-articles li")
        assert shown() == ["d1", "d2", "d3", "d4"]
        click(page.locator("#desk-articles li").nth(1).get_by_role("button", name="Leave out", exact=True))
        click(page.locator("#desk-articles li").nth(3).get_by_role("button", name="Move up"))
        click(page.locator("#desk-candidates li[data-article='d6']").get_by_role("button", name="Add"))
        page.get_by_label("Editor's note").fill("Fictional: two lines from the night desk.\nSleep well.")
        click(page.get_by_role("button", name="Save note"))
        _wait_for_frame_text(page, "two lines from the night desk")
        assert page.get_by_label("Editor's note").input_value().startswith("Fictional: two lines")
        click(page.get_by_role("button", name="Approve"))
        assert "Approved by Night Editor" in page.locator("#desk-approval").inner_text()
        order = shown()
        assert order == ["d1", "d3", "d5", "d6"]
        _wait_for_frame_text(page, "Orchard growers expect record apples")
        text = str(page.evaluate("document.getElementById('frame').contentDocument.body.innerText"))
        titles = ["Council approves harbour bridge budget", "Rovers clinch late derby victory",
                  "Museum reopens renovated gallery", "Orchard growers expect record apples"]
        assert [text.index(t) for t in titles] == sorted(text.index(t) for t in titles)
        assert "Senate committee questions water agency" not in text

        sent = sqlite_project.json("send", "--date", newsroom.day.isoformat(), "--now")  # the window may be open
        assert sent["sent"] == 2
        outbox = sorted((sqlite_project.root / "outbox").rglob("*.eml"))
        assert len(outbox) == 2 and all("two lines from the night desk" in p.read_text() for p in outbox)
        with app.store.session() as session:
            assert [v.article_ids for v in session.scalars(select(VariantRow))] == [order]
            assert set(session.scalars(select(EditionArticleRow.article_id))) == set(order)

        page.reload()
        page.wait_for_selector("#desk-locked")
        assert "its first delivery went out at" in page.locator("#desk-locked").inner_text()
        assert page.locator("#desk-wrap button").count() == 0
        assert shown() == order
        assert "two lines from the night desk" in page.locator("#desk-note-text").inner_text()
    finally:
        page.goto("about:blank")  # no open stream or render in flight while the preview stops
        server.stop()
