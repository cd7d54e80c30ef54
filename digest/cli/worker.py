"""`digest worker`: deliver send batches of editions that are sending, beside other workers (PostgreSQL)."""

from __future__ import annotations

import sys
import threading

import click

from digest.cli import get_app
from digest.cli.output import print_json
from digest.send.backends import BACKENDS, get_backend
from digest.send.dispatch import stop_on_signals
from digest.send.worker import require_postgres, run_worker


@click.command("worker")
@click.option("--list", "list_name", metavar="LIST", help="Only editions of this list (default: every list).")
@click.option("--edition", "edition_id", type=int, metavar="ID", help="Only this edition (what `digest send "
              "--workers` starts its workers with).")
@click.option("--via", type=click.Choice(BACKENDS), help="Sending backend (default: the backend setting).")
@click.option("--forever", is_flag=True, help="When nothing is left, wait for the next edition instead of exiting "
              "(for systemd or a container orchestrator); SIGTERM stops it after the request in flight.")
@click.option("--json", "as_json", is_flag=True, help="Print what this worker did as JSON (sent, failed, bounced, "
              "in_doubt, batches, ...).")
def worker_command(list_name: str | None, edition_id: int | None, via: str | None, forever: bool,
                   as_json: bool) -> None:
    """Join every edition that is sending (`digest send` planned it) and deliver its batches with the others.

    Any number of workers, on any machines connected to the same PostgreSQL database, share an edition: each
    claims a batch with SELECT ... FOR UPDATE SKIP LOCKED, sends it and records the outcome, so nobody gets the
    edition twice. A worker killed mid-request leaves at most that request in doubt; the next worker or `digest
    send` resolves it by the in_doubt_rule. Provider limits (a 429's reset, send_rate) are shared through the
    database. Exits when nothing is left to send. SQLite has one sending process: use `digest send` there.
    """
    app = get_app()
    require_postgres(app.store, "`digest worker`")  # before the backend, whose settings may be incomplete
    stop = threading.Event()
    backend = get_backend(app.settings, via)
    with stop_on_signals(stop):
        summary = run_worker(app.store, app.settings, backend, stop, list_name=list_name,
                             edition_ids=[edition_id] if edition_id is not None else None, forever=forever)
    if as_json:
        print_json(summary.to_json())
    else:
        click.echo(f"worker {summary.holder}: {summary.batches} batch(es), sent {summary.sent}, failed "
                   f"{summary.failed}" + (f" ({summary.bounced} bounced)" if summary.bounced else "") + f", skipped {summary.skipped}, in doubt {summary.marked_in_doubt}, "
                   f"{summary.requests} request(s), {summary.rate_limited} rate-limited; editions "
                   f"{', '.join(map(str, summary.editions)) or 'none'}")
        for error in dict.fromkeys(summary.errors):
            click.echo(f"  error: {error}")
    if summary.failed:
        sys.exit(1)


commands = [worker_command]
