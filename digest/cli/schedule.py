"""`digest schedule due|run|ls`, plus `digest lists schedule` and `digest editions approve` on those groups."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import click

from digest.cli import get_app
from digest.cli.output import json_option, print_json, print_table
from digest.errors import DigestError
from digest.schedule import due as due_mod
from digest.schedule.runner import (
    DueReport,
    catch_up_of,
    load_lists,
    load_states,
    load_subscribers,
    run_due,
    run_forever,
)


class BadNow(DigestError):
    exit_code = 2


def parse_now(value: str | None) -> datetime | None:
    """``--now`` as an aware instant; a time without an offset is refused rather than guessed."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise BadNow(f"--now: {value!r} is not an ISO 8601 time (e.g. 2026-03-10T07:00:00+01:00)") from None
    if parsed.tzinfo is None:
        raise BadNow(f"--now: {value!r} has no UTC offset; add one (e.g. {value}Z or {value}+01:00)")
    return parsed.astimezone(UTC)


now_option = click.option("--now", "now_text", metavar="ISO8601",
                          help="Act as if it were this moment (with an offset, e.g. 2026-03-10T07:00:00+01:00). "
                               "Default: the clock.")


def _setup_logging() -> None:
    logger = logging.getLogger("digest.schedule")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@click.group("schedule")
def schedule_group() -> None:
    """Send each list's edition at every subscriber's local send time.

    Run `digest schedule due` from cron (every minute) or a Kubernetes CronJob, or keep `digest schedule run`
    running; either is safe to run twice at once.
    """


@schedule_group.command("due")
@now_option
@click.option("--dry-run", is_flag=True, help="Only show what is due; build and send nothing.")
@json_option
def due_command(now_text: str | None, dry_run: bool, as_json: bool) -> None:
    """One pass: send every list's edition to the subscribers whose send time has come, then exit.

    Missed sends up to catch_up_hours old are caught up once (the most recent only); editions of lists that
    require approval are built and wait for `digest editions approve ID`.
    """
    now = parse_now(now_text)
    if not as_json:
        _setup_logging()
    report = run_due(get_app(), now, dry_run=dry_run)
    if as_json:
        print_json(report.to_json())
    else:
        _print_report(report)
    if report.errors:
        raise DigestError("; ".join(report.errors))


def _print_report(report: DueReport) -> None:
    if not report.items:
        click.echo(f"Nothing due at {report.now:%Y-%m-%d %H:%M} UTC.")
    else:
        print_table(["list", "date", "action", "due", "edition", "sent", "failed", "detail"],
                    [(i.list_name, i.date, i.action, i.due, i.edition_id, i.sent, i.failed, i.detail or "")
                     for i in report.items],
                    title=f"{'Due (dry run)' if report.dry_run else 'Scheduler pass'} at "
                          f"{report.now:%Y-%m-%d %H:%M} UTC")
    for name in report.busy:
        click.echo(f"list {name}: another scheduler is working on it; left to that one.")


@schedule_group.command("run")
@click.option("--interval", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Seconds between passes (default: scheduler_interval_seconds).")
def run_command(interval: float | None) -> None:
    """Keep scheduling: a pass every interval until SIGTERM or Ctrl-C, logging what it sends.

    On SIGTERM the send in flight finishes its current batch (or leaves it for the next pass to resume), the
    leases are released, and the command exits 0.
    """
    _setup_logging()
    run_forever(get_app(), interval)


@schedule_group.command("ls")
@now_option
@json_option
def ls_command(now_text: str | None, as_json: bool) -> None:
    """Each list's schedule and next send time, and how many subscribers fall due when (in their own zones)."""
    now = parse_now(now_text) or datetime.now(UTC)
    app = get_app()
    with app.store.session() as session:
        lists = load_lists(session)
        states = {}
        for lst in lists:  # who already has their next date's edition is not due for it
            states.update(load_states(session, lst.id, now, catch_up_of(app)))
        outlooks = due_mod.upcoming(now, lists, load_subscribers(session), states)
    if as_json:
        print_json([o.to_json() for o in outlooks])
        return
    rows = []
    for o in outlooks:
        nxt = f"{o.next_run:%Y-%m-%d %H:%M} UTC ({o.next_date})" if o.next_run and o.next_date else "never"
        groups = "; ".join(f"{g.subscribers} at {g.send_at:%Y-%m-%d %H:%M} UTC ({g.timezone})" for g in o.groups)
        rows.append((o.list_name, o.schedule, o.timezone, "yes" if o.require_approval else "no",
                     o.error or nxt, groups or "no active subscribers"))
    print_table(["list", "schedule", "timezone", "approval", "next run", "subscribers due"], rows)


# --- attached to the audience and send parts' groups ---------------------------------------------------------


@click.command("schedule")
@click.argument("list_name", metavar="LIST")
@click.argument("schedule", required=False)
@click.option("--timezone", "tz", metavar="ZONE", help="The list's time zone (IANA name, e.g. Europe/London).")
@click.option("--approval/--no-approval", "approval", default=None,
              help="Require `digest editions approve` before each edition is sent (or stop requiring it).")
@json_option
def lists_schedule_command(list_name: str, schedule: str | None, tz: str | None, approval: bool | None,
                           as_json: bool) -> None:
    """Set when LIST is sent: SCHEDULE is a cron expression ("0 7 * * 1-5") or "daily HH:MM".

    The schedule is read in each subscriber's own time zone (their send time, if set, replaces the hour and
    minute); without SCHEDULE only the given options change. Prints the list's schedule.
    """
    from digest.audience.lists import get_list
    from digest.schedule.cron import parse_schedule
    from digest.schedule.manage import set_list_schedule

    app = get_app()
    with app.store.session() as session:
        row = set_list_schedule(session, get_list(session, list_name), schedule, timezone=tz,
                                require_approval=approval)
        parsed = parse_schedule(row.schedule, row.send_time)
        data = {"list": row.name, "schedule": parsed.label, "timezone": row.timezone, "send_time": row.send_time,
                "require_approval": row.require_approval}
    if as_json:
        print_json(data)
    else:
        click.echo(f"{data['list']}: {data['schedule']} ({data['timezone']}), "
                   f"approval {'required' if data['require_approval'] else 'not required'}")


@click.command("approve")
@click.argument("edition_id", type=int)
@click.option("--by", "by", metavar="NAME", help="Who approves (default: desk_editor, else the login name); kept "
              "on the edition and in the audit log, as the desk's Approve does.")
@json_option
def approve_command(edition_id: int, by: str | None, as_json: bool) -> None:
    """Approve edition EDITION_ID so the scheduler sends it (lists with approval required).

    Preview it first with `digest editions show`. An edition not approved within catch_up_hours of its send
    time is skipped and can no longer be approved.
    """
    from digest.desk import audit
    from digest.desk.settings import DeskSettings
    from digest.schedule.manage import approve_edition
    from digest.store.tables import EditionRow, MailingListRow

    app = get_app()
    who = by or DeskSettings.from_settings(app.settings).editor  # the desk's editor: one name for both
    with app.store.session() as session:
        now = datetime.now(UTC)
        approval = approve_edition(session, edition_id, by=who, now=now)
        if approval.changed:
            edition = session.get(EditionRow, edition_id)
            assert edition is not None
            list_row = session.get(MailingListRow, edition.list_id)
            assert list_row is not None
            audit.record(session, edition, list_row, "approve", "(digest editions approve)", by=who, now=now)
    if as_json:
        print_json(approval.to_json())
    elif approval.changed:
        click.echo(f"Edition {approval.edition_id} ({approval.list_name}, {approval.date}) approved by "
                   f"{approval.approved_by}; the scheduler sends it at each subscriber's send time.")
    else:
        click.echo(f"Edition {approval.edition_id} was already approved by {approval.approved_by} at "
                   f"{approval.approved_at:%Y-%m-%d %H:%M} UTC.")


def _attach() -> None:
    """Add our subcommands to the groups the audience and send parts own."""
    from digest.cli.editions import editions_group
    from digest.cli.lists import lists_group

    lists_group.add_command(lists_schedule_command)
    editions_group.add_command(approve_command)


_attach()

commands = [schedule_group]
