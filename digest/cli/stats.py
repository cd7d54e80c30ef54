"""`digest stats`: what happened to each edition after it was sent (from provider events)."""

from __future__ import annotations

import click
from rich import box
from rich.table import Table
from sqlalchemy import select

from digest.cli import get_app
from digest.cli.output import console, json_option, list_option, print_json, print_table
from digest.errors import NotFound
from digest.feedback.stats import COUNT_NAMES, EditionStats, edition_stats, list_trend
from digest.store.tables import MailingListRow


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


@click.command("stats")
@list_option
@click.option("--edition", "edition_id", type=int, metavar="ID", help="Show one edition (its id, as listed).")
@click.option("--last", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many of the list's latest editions the trend shows.")
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many top articles by clicks to show per edition.")
@json_option
def stats(list_name: str | None, edition_id: int | None, last: int, top: int, as_json: bool) -> None:
    """Per-edition statistics: sent, delivered, bounced, complained, unsubscribed, unique opens (people's, and
    apart from them machine opens: Apple Mail Privacy Protection, scanners) and clicks, their rates (of human
    opens), and the most-clicked articles; for a list, the trend over its last editions.

    Counts come from the provider's event webhook (SendGrid), and unsubscribes through digest's own link from
    digest itself; an SMTP or file send has only `sent` and those `unsubscribed`.
    """
    app = get_app()
    with app.store.session() as session:
        if edition_id is not None:
            one = edition_stats(session, edition_id, top=top)
            if list_name is not None and one.list_name != list_name:
                raise NotFound(f"edition {edition_id} belongs to list {one.list_name!r}, not {list_name!r}")
            name, editions = one.list_name, [one]
        else:
            name = list_name or app.settings.default_list
            list_row = session.scalar(select(MailingListRow).where(MailingListRow.name == name))
            if list_row is None and list_name is not None:
                raise NotFound(f"no list named {list_name!r} (see `digest lists ls`)")
            editions = list_trend(session, list_row.id, last=last, top=top) if list_row is not None else []
    if as_json:
        print_json({"list": name, "editions": [e.to_json() for e in editions]})
        return
    if not editions:
        click.echo(f"No sent editions on list {name!r} yet.")
        return
    if edition_id is not None:
        _print_edition(editions[0])
    else:
        _print_trend(name, editions)
        _print_top(editions[0])


def _print_edition(e: EditionStats) -> None:
    rates = e.rates
    rate_of = {"delivered": "delivery_rate", "bounced": "bounce_rate", "complained": "complaint_rate",
               "unsubscribed": "unsubscribe_rate", "opened": "open_rate", "clicked": "click_rate"}
    rows: list[tuple[str, str, str]] = [
        (name, str(e.counts[name]), _pct(rates[rate_of[name]]) if name in rate_of else "")
            for name in COUNT_NAMES]
    rows.append(("click-to-open", "", _pct(rates["click_to_open_rate"])))
    print_table(["", "count", "rate"], rows,
                title=f"Edition {e.edition_id}: {e.list_name} {e.date.isoformat()} ({e.status})")
    _print_top(e)


def _print_trend(name: str, editions: list[EditionStats]) -> None:
    # Twelve columns: a light box and short headers fit a 100-column terminal; narrower ones fold the headers.
    table = Table(title=f"List {name}: last {len(editions)} edition(s), newest first", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for column in ("id", "date", "sent", "delivered", "bounced", "complained", "unsub", "opened", "machine",
                   "clicked", "open%", "click%"):
        table.add_column(column, justify="left" if column == "date" else "right", no_wrap=column == "date",
                         overflow="fold")
    for e in editions:
        c = e.counts
        table.add_row(str(e.edition_id), e.date.isoformat(), *(str(c[n]) for n in COUNT_NAMES),
                      _pct(e.rates["open_rate"]), _pct(e.rates["click_rate"]))
    console().print(table)


def _print_top(e: EditionStats) -> None:
    if not e.top_articles:
        return
    print_table(["article", "title", "clickers", "clicks"],
                [(a.article_id, a.title or a.url or "", a.clickers, a.clicks) for a in e.top_articles],
                title=f"Top articles by clicks, edition {e.edition_id} ({e.date.isoformat()})")


commands = [stats]
