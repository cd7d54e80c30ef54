"""`digest send`: send (or resume) a list's edition exactly once per subscriber."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime

import click
from sqlalchemy import select

from digest import editions
from digest.app import App
from digest.audience.lists import ensure_list
from digest.cli import get_app
from digest.cli.output import print_json
from digest.send.backends import BACKENDS
from digest.send.dispatch import SendSummary, send_edition
from digest.store.tables import EditionRow


def print_summary(summary: SendSummary) -> None:
    what = "Dry run" if summary.dry_run else ("Sandbox run" if summary.sandbox else "Sent")
    click.echo(f"{what}: edition {summary.edition_id} ({summary.list_name}, {summary.date}) via {summary.backend}, "
               f"status {summary.status or 'n/a'}")
    if summary.dry_run or summary.sandbox:
        click.echo(f"  would send {summary.recipients} message(s) in {summary.variants} variant(s); "
                   f"skipped {summary.skipped}")
        for subject in summary.subjects:
            click.echo(f"  subject: {subject}")
        if summary.sandbox:
            click.echo(f"  provider validated {summary.sent} message(s) in {summary.requests} request(s), "
                       "delivered none")
        return
    if summary.retried_failed:
        click.echo(f"  {summary.retried_failed} failed deliveries put back to pending (--retry-failed)")
    if summary.workers > 1:
        click.echo(f"  delivered by {summary.workers} worker processes ({summary.batches} batch(es))")
    bounced = f" ({summary.bounced} bounced: suppressed everywhere)" if summary.bounced else ""
    click.echo(f"  this run: sent {summary.sent}, failed {summary.failed}{bounced}, skipped {summary.skipped}, "
               f"in doubt {len(summary.in_doubt_found)}, {summary.requests} request(s), "
               f"{summary.retries} retr(y/ies), {summary.rate_limited} rate-limited")
    click.echo(f"  edition: {summary.recipients} deliveries — " +
               ", ".join(f"{k} {v}" for k, v in sorted(summary.totals.items())))
    if summary.in_doubt_found:
        click.echo(f"  in doubt ({len(summary.in_doubt_found)}): the provider's answer to these was lost (the "
                   "sending process died, or the answer timed out); how each was resolved (in_doubt_rule):")
        for item in summary.in_doubt_found:
            click.echo(f"    {item.email} (delivery {item.delivery_id}, batch {item.batch_id}): {item.resolution}")
    for error in dict.fromkeys(summary.errors):
        click.echo(f"  error: {error}")
    if summary.stopped:
        click.echo(f"  stopped early: {summary.pending} left pending; run the same command again to resume")


def _open_window(app: App, list_name: str | None, day: str) -> str | None:
    """A warning when the edition of ``day`` has not been frozen yet and its window is still open."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        return None  # send_edition names the bad date
    with app.store.session() as s:
        list_row = ensure_list(s, app.settings, list_name)
        edition = s.scalar(select(EditionRow).where(EditionRow.list_id == list_row.id, EditionRow.date == when))
        if edition is not None and (edition.frozen_at is not None or edition.status != "draft"):
            return None  # already frozen or under way: a resume, nothing is frozen early
        cutoff = editions.cutoff_for(list_row, when)
    now = datetime.now(UTC)
    if cutoff <= now:
        return None
    return (f"the {list_row.name} edition of {when} collects articles until {cutoff:%Y-%m-%d %H:%M} UTC, "
            f"{(cutoff - now).total_seconds() / 3600:.1f} hours from now")


@click.command("send")
@click.option("--list", "list_name", metavar="LIST", help="Mailing list (default: default_list).")
@click.option("--date", "day", metavar="YYYY-MM-DD", help="Edition date (default: today in the list's time zone).")
@click.option("--via", type=click.Choice(BACKENDS), help="Sending backend (default: the backend setting).")
@click.option("--dry-run", is_flag=True, help="Plan and render, report what would be sent; send nothing and store "
              "no delivery (only the edition itself, as a draft).")
@click.option("--sandbox", is_flag=True, help="SendGrid sandbox mode: the provider validates every request and "
              "delivers nothing; stores only what --dry-run does (not together with --dry-run).")
@click.option("--retry-failed", is_flag=True, help="First put the edition's failed deliveries (refused by the "
              "provider, so never delivered) back to pending, e.g. after fixing a bad from address. Without it a "
              "resume never repeats a refused request.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that deliver the edition together (PostgreSQL only): this one and N-1 `digest "
              "worker` processes it starts; the summary adds up what they all did, and the progress bar, read "
              "from the database, counts every worker's messages.")
@click.option("--now", "send_now", is_flag=True, help="With --date: send that edition now even though its window is "
              "still open (its articles are frozen at this moment; later ones are left out).")
@click.option("--yes", is_flag=True, help="Do not ask before sending an edition whose window is still open.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def send_command(list_name: str | None, day: str | None, via: str | None, dry_run: bool, sandbox: bool,
                 retry_failed: bool, workers: int, send_now: bool, yes: bool, no_progress: bool,
                 as_json: bool) -> None:
    """Send the edition of LIST for DATE to every active subscriber, exactly once.

    Creates the edition or resumes it: running the same command again after a crash, a stop (Ctrl-C) or
    provider errors sends only what was not sent. Deliveries whose fate a crash left unknown are reported as
    in doubt and handled by the in_doubt_rule setting. Exits 1 when some deliveries failed or are left pending.
    """
    app = get_app()
    if retry_failed and (dry_run or sandbox):
        raise click.UsageError("--retry-failed changes deliveries; it cannot go with --dry-run or --sandbox")
    if dry_run and sandbox:
        # A dry run calls no provider, so --sandbox would be silently ignored; each is a rehearsal on its own.
        raise click.UsageError("--dry-run and --sandbox cannot go together: --sandbox already stores nothing "
                               "and also has SendGrid validate every request; --dry-run calls no provider")
    if workers > 1 and app.store.dialect != "postgresql":
        raise click.UsageError("--workers needs PostgreSQL: on SQLite an edition is sent by one process (this one); "
                               "drop --workers, or point database_url at PostgreSQL")
    if day and not (dry_run or sandbox or send_now or yes):
        warning = _open_window(app, list_name, day)
        if warning is not None and not (sys.stdin.isatty()
                                        and click.confirm(f"{warning}. Send it now anyway?", err=True)):
            raise click.UsageError(f"{warning}: sending it now freezes its articles early. Pass --now to send "
                                       "it anyway (or --yes), or wait until then.")
    summary = send_edition(app, list_name=list_name, date=day, via=via, dry_run=dry_run, sandbox=sandbox,
                           progress=not no_progress and sys.stderr.isatty(), retry_failed=retry_failed,
                           workers=workers)
    if as_json:
        print_json(summary.to_json())
    else:
        print_summary(summary)
    if not (dry_run or sandbox) and (summary.failed or summary.pending):
        sys.exit(1)


commands = [send_command]
