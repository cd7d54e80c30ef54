"""`digest rank`: which articles an edition shows a list, a subscriber or a set of topics, and why."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import click
from sqlalchemy.orm import Session

from digest import editions
from digest.audience import subscribers
from digest.audience.lists import ensure_list
from digest.cli import get_app
from digest.cli.output import console, json_option, list_option, print_json, print_table
from digest.errors import NotFound
from digest.models import Dropped, RankedItem, Selection
from digest.rank.score import COMPONENTS, RankSettings
from digest.rank.select import counted_under, reason_kind, why_chosen
from digest.store.articles import list_articles
from digest.store.tables import EditionRow, MailingListRow


def _topics(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [t.strip() for t in value.split(",") if t.strip()]


@click.command("rank")
@list_option
@click.option("--subscriber", metavar="EMAIL", help="Rank with this subscriber's stored topic preferences.")
@click.option("--topics", metavar="A,B", help="Rank for these topics (comma-separated) instead of stored ones.")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Edition date (default: the list's upcoming edition, as for digest build and the preview).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Most articles (default: max_articles).")
@click.option("--explain", is_flag=True, help="Show each article's score components and every left-out article.")
@click.option("--variants", is_flag=True, help="Show each distinct selection of the edition with its subscriber "
              "count (subscribers grouped by their preferences).")
@json_option
def rank(list_name: str | None, subscriber: str | None, topics: str | None, day: datetime | None,
         limit: int | None, explain: bool, variants: bool, as_json: bool) -> None:
    """Rank the candidate articles of a list's edition: freshness, editorial priority, quality and topic
    affinity, one story once (others listed as "also covered by"), at most max_per_topic per topic.

    Preferences come from --topics or from --subscriber's stored topics (one or the other), else the list's
    topics; --variants ranks for every subscriber and takes neither, nor --limit. Without --list
    the default list is used (created on first use). Creates the edition as a draft if it does not exist yet;
    nothing else is written.
    """
    if subscriber and topics is not None:
        raise click.UsageError("give --subscriber or --topics, not both")
    if variants and (subscriber or topics is not None or limit is not None):
        raise click.UsageError("--variants ranks every subscriber's own preferences; it takes no --subscriber, "
                               "--topics or --limit")
    app = get_app()
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        edition_date = day.date() if day else editions.upcoming_date(session, app.settings, list_row)
        edition = editions.get_or_create_edition(session, app.settings, list_row, edition_date)
        if variants:
            groups = editions.variants_for_list(session, app.settings, edition)
            _show_variants(list_row, edition, groups, as_json)
            return
        own = _topics(topics)
        if own is None:
            own = _subscriber_topics(session, list_row, subscriber)
        selection = editions.select_for(session, app.settings, edition, own, limit=limit)
        # Shown as what select_for ranked with: the reader's own topics, else the list's.
        preferences = list(editions.effective_preferences(own, list_row.topics))
        rank_settings = editions.rank_settings_for(app.settings, list_row)
        titles = _titles(session, selection.dropped)
        data = _selection_json(selection, edition, preferences, explain, titles, rank_settings)
    if as_json:
        print_json(data)
        return
    _print_selection(selection, data, explain, titles)


def _subscriber_topics(session: Session, list_row: MailingListRow, subscriber: str | None) -> list[str] | None:
    if not subscriber:
        return None
    row = subscribers.find(session, list_row, subscriber)
    if row is None:
        raise NotFound(f"{subscriber}: not a subscriber of list {list_row.name!r}")
    return list(row.topics or [])


def _titles(session: Session, dropped: list[Dropped]) -> dict[str, str]:
    ids = [d.id for d in dropped]
    if not ids:
        return {}
    return {a.id: a.title for a in list_articles(session, ids=ids, include_retracted=True)}


def _edition_json(edition: EditionRow, list_name: str) -> dict[str, Any]:
    return {"list": list_name, "date": edition.date.isoformat(), "edition_id": edition.id,
            "window_start": edition.window_start.isoformat(),
            "window_end": editions.window_end(edition).isoformat(),
            "frozen_at": edition.frozen_at.isoformat() if edition.frozen_at else None}


def _item_json(position: int, item: RankedItem, explain: bool, why: str, counted: str | None) -> dict[str, Any]:
    a = item.article
    data: dict[str, Any] = {
        "rank": position, "id": a.id, "title": a.title, "outlet": a.outlet, "url": a.url,
        "published_at": a.published_at.isoformat() if a.published_at else None,
        "score": round(item.score, 6), "topics": list(a.topics), "pinned": "pinned" in item.components,
        "also_covered_by": [{"id": o.id, "title": o.title, "outlet": o.outlet, "url": o.url}
                            for o in item.also_covered_by],
    }
    if explain:
        data["components"] = {k: round(v, 6) for k, v in item.components.items()}
        data["why"] = why
        data["counted_under"] = counted
    return data


def _selection_json(selection: Selection, edition: EditionRow, preferences: list[str], explain: bool,
                    titles: dict[str, str], rs: RankSettings) -> dict[str, Any]:
    whys = why_chosen(selection, preferences)
    skip = rs.skip_thin_days
    return {
        **_edition_json(edition, selection.list_name or ""),
        "preferences": preferences, "key": selection.key, "thin": selection.thin, "skip": selection.thin and skip,
        "articles": [_item_json(n, item, explain, why, counted_under(item, rs, preferences))
                     for (n, item), why in zip(enumerate(selection.items, 1), whys)],
        "dropped": [{"id": d.id, "title": titles.get(d.id), "reason": d.reason} for d in selection.dropped],
    }


def _utc(value: str) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")


def _print_selection(selection: Selection, data: dict[str, Any], explain: bool, titles: dict[str, str]) -> None:
    prefs = ", ".join(data["preferences"]) or "none"
    title = (f"{data['list']} · {data['date']} · window {_utc(data['window_start'])} → "
             f"{_utc(data['window_end'])} · preferences: {prefs}")
    columns = ["#", "score", "title", "outlet", "topics", "also covered by"]
    rows = []
    for n, item in enumerate(selection.items, 1):
        also = ", ".join(o.outlet or o.id for o in item.also_covered_by)
        mark = " (pinned)" if "pinned" in item.components else ""
        row = [str(n), f"{item.score:.3f}", item.article.title + mark, item.article.outlet or "",
               ", ".join(item.article.topics), also]
        rows.append(row)
    print_table(columns, rows, title=title)
    if explain and selection.items:
        print_table(["#", *COMPONENTS, "pinned"],
                    [[str(n), *(f"{item.components.get(c, 0.0):.3f}" for c in COMPONENTS),
                      "yes" if "pinned" in item.components else ""]
                     for n, item in enumerate(selection.items, 1)],
                    title="Score components (each already multiplied by its weight)")
        # Plain lines, not a column: the sentences must stay whole in a narrow terminal.
        click.echo("Why each is in (and the topic the topic cap counts it under):")
        for n, article in enumerate(data["articles"], 1):
            under = f" [counted under {article['counted_under']}]" if article.get("counted_under") else ""
            click.echo(f"  {n}. {article['why']}{under}")
    if not selection.items:
        click.echo("No candidate articles in this edition's window.")
    reasons = Counter(reason_kind(d.reason) for d in selection.dropped)
    if reasons:
        click.echo("Left out: " + ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())))
    if explain and selection.dropped:
        print_table(["id", "title", "reason"], [[d.id, titles.get(d.id, ""), d.reason] for d in selection.dropped],
                    title="Left out")
    if selection.thin:
        err = console(stderr=True)
        what = "this edition would be skipped (skip_thin_days)" if data["skip"] else "it would go out thin"
        err.print(f"Thin day: {len(selection.items)} article(s), fewer than min_articles; {what}.")


def _show_variants(list_row: MailingListRow, edition: EditionRow, groups: list[editions.VariantGroup],
                   as_json: bool) -> None:
    data = {
        **_edition_json(edition, list_row.name),
        "variants": [{"key": g.key, "language": g.selection.language, "subscribers": len(g.subscriber_ids),
                      "thin": g.selection.thin,
                      "profiles": [list(p) for p in g.profiles],
                      "articles": [{"id": i.article.id, "title": i.article.title} for i in g.selection.items]}
                     for g in groups],
    }
    if as_json:
        print_json(data)
        return
    if not groups:
        click.echo(f"List {list_row.name!r} has no active subscribers, so the edition has no variants yet.")
        return
    rows = [[g.key[:12], g.selection.language or "", str(len(g.subscriber_ids)), "; ".join(", ".join(p) or "(none)" for p in g.profiles),
             str(len(g.selection.items)), g.selection.items[0].article.title if g.selection.items else ""]
            for g in groups]
    print_table(["variant", "language", "subscribers", "preferences", "articles", "top story"], rows,
                title=f"{list_row.name} · {data['date']} · {len(groups)} variant(s)")


commands = [rank]
