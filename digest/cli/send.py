"""`digest send`: send (or resume) a list's edition exactly once per subscriber."""

from __future__ import annotations

import sys

import click

from digest.cli import get_app
from digest.cli.output import print_json
from digest.send.backends import BACKENDS
from digest.send.dispatch import SendSummary, send_edition


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
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def send_command(list_name: str | None, day: str | None, via: str | None, dry_run: bool, sandbox: bool,
                 retry_failed: bool, no_progress: bool, as_json: bool) -> None:
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
    summary = send_edition(app, list_name=list_name, date=day, via=via, dry_run=dry_run, sandbox=sandbox,
                           progress=not no_progress and sys.stderr.isatty(), retry_failed=retry_failed)
    if as_json:
        print_json(summary.to_json())
    else:
        print_summary(summary)
    if not (dry_run or sandbox) and (summary.failed or summary.pending):
        sys.exit(1)


commands = [send_command]
