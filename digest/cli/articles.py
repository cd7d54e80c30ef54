"""`digest articles`: list what is stored, and pin or unpin an article."""

from __future__ import annotations

import click

from digest.cli import get_app
from digest.cli.ingest import parse_time_option
from digest.cli.output import json_option, print_json, print_table
from digest.ingest.topics import normalize_topic
from digest.store.articles import get_article, list_articles


@click.group("articles", invoke_without_command=True)
@click.option("--since", metavar="ISO", help="Only articles published at or after this time (without a zone: "
              "the newsroom's timezone).")
@click.option("--topic", metavar="T", help="Only articles with this topic.")
@json_option
@click.pass_context
def articles_group(ctx: click.Context, since: str | None, topic: str | None, as_json: bool) -> None:
    """List stored articles, newest first (without a subcommand); pin or unpin one.

    --json prints exactly the shape `digest ingest --format json` reads back.
    """
    if ctx.invoked_subcommand is not None:
        return
    app = get_app()
    since_at = parse_time_option(since, app.settings, "--since")
    with app.store.session() as session:
        articles = list_articles(session, since=since_at, topic=normalize_topic(topic) if topic else None)
    if as_json:
        print_json([a.to_json() for a in articles])
        return
    print_table(
        ["id", "published (UTC)", "topics", "title", "lang", "QL", "pin"],
        [(a.id, a.published_at.strftime("%Y-%m-%d %H:%M") if a.published_at else "", ", ".join(a.topics),
          f"{a.title} ({a.outlet})" if a.outlet else a.title, a.language or "",
          f"{len(a.quick_looks)}{'*' if a.quick_looks_derived else ''}", "yes" if a.pinned else "")
         for a in articles],
        title=f"{len(articles)} article(s); QL: Quick Looks, * derived from the text")


def _set_pinned(article_id: str, pinned: bool, as_json: bool) -> None:
    with get_app().store.session() as session:
        row = get_article(session, article_id)
        row.pinned = pinned
        title = row.title
    if as_json:
        print_json({"id": article_id, "pinned": pinned})
    else:
        click.echo(f"{'Pinned' if pinned else 'Unpinned'} {article_id}: {title}")


@articles_group.command("pin")
@click.argument("article_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pin_command(article_id: str, as_json: bool) -> None:
    """Pin article ID: an editor's pick, which the ranking puts first, ahead of the scores, until unpinned.

    Re-ingesting the article never clears the pin.
    """
    _set_pinned(article_id, True, as_json)


@articles_group.command("unpin")
@click.argument("article_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def unpin_command(article_id: str, as_json: bool) -> None:
    """Unpin article ID: it competes on its score again."""
    _set_pinned(article_id, False, as_json)


commands = [articles_group]
