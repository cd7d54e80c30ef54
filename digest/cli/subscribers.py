"""`digest subscribers`: add, remove, list, import, export, unsubscribe, suppress, and GDPR requests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.app import App
from digest.audience import gdpr, suppressions
from digest.audience import subscribers as subs
from digest.audience.confirmation import send_confirmation
from digest.audience.csv import read_csv, write_csv
from digest.audience.importer import ImportReport, merge
from digest.audience.importer import Progress as ProgressFn
from digest.audience.lifecycle import is_suppressed, last_audit_id, last_audit_ids, suppress_and_mark
from digest.audience.lists import ensure_list
from digest.audience.suppressions import read_suppressions
from digest.audience.validate import MAX_NAME, Invalid, normalize_email
from digest.cli import get_app
from digest.cli.output import console, dumps, json_option, list_option, print_json, print_table
from digest.errors import DigestError
from digest.models import SUBSCRIBER_STATUSES
from digest.store.db import Store
from digest.store.tables import SubscriberRow

# Smaller files import in the blink of an eye; a bar would only flicker.
PROGRESS_MIN_ROWS = 5000
status_choice = click.Choice(SUBSCRIBER_STATUSES)


@click.group("subscribers")
def subscribers_group() -> None:
    """Manage a list's subscribers: add, import, export, unsubscribe, suppress, GDPR export and erasure."""


def _report_lines(report: ImportReport) -> None:
    existing = report.updated + report.unchanged
    click.echo(f"{report.source}: {report.rows} row(s) for list {report.list_name!r}: {report.new} new, "
               f"{existing} already on the list ({report.updated} updated, {report.unchanged} unchanged), "
               f"{len(report.rejected)} rejected."
               + (" Dry run: nothing was written." if report.dry_run else ""))
    if report.rejected:
        print_table(["line", "email", "reason"], [[i.line, i.email, i.reason] for i in report.rejected],
                    title="Rejected rows")
    if report.held:
        print_table(["line", "email", "kept"], [[i.line, i.email, i.reason] for i in report.held],
                    title="Not reactivated")
    if report.confirmations_sent:
        click.echo(f"Sent {report.confirmations_sent} confirmation email(s).")
    elif report.dry_run and report.confirmations_planned:
        click.echo(f"Would send {report.confirmations_planned} confirmation email(s) (new pending subscribers).")


def _send_confirmations(app: App, list_name: str, report: ImportReport) -> None:
    if not report.to_confirm:
        return
    # Read after the import's commit, in a few queries however many there are: only those still pending get
    # one, each with the version (last audit id) its link must match.
    t = SubscriberRow
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        rows: list[tuple[int, str, str | None, str | None]] = []
        for i in range(0, len(report.to_confirm), 500):
            chunk = report.to_confirm[i:i + 500]
            query = select(t.id, t.email, t.name, t.language).where(t.id.in_(chunk), t.status == "pending")
            rows.extend((sid, email, name, lang) for sid, email, name, lang in session.execute(query))
        versions = last_audit_ids(session, [r[0] for r in rows])
        pending = [(sid, email, name, lang, versions.get(sid, 0))
                   for sid, email, name, lang in sorted(rows, key=lambda r: r[0])]
    for sid, email, name, lang, version in pending:
        send_confirmation(app.settings, list_row, sid, email, name, version=version, language=lang)
        report.confirmations_sent += 1


@contextmanager
def _rolled_back(store: Store) -> Iterator[Session]:
    """A session whose every write is undone at the end: how --dry-run guarantees it writes nothing."""
    session = store.new_session()
    try:
        session.begin()
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def _progress(enabled: bool) -> Iterator[ProgressFn | None]:
    if not enabled:
        yield None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console(stderr=True), transient=True)
    tasks: dict[str, TaskID] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    with bar:
        yield update


@subscribers_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@list_option
@click.option("--dry-run", is_flag=True, help="Check the file and report what would change; write nothing.")
@click.option("--resubscribe", is_flag=True, help="Let the file make unsubscribed, bounced or complained "
              "subscribers active (or pending) again; without it they are kept as they are.")
@click.option("--status", "default_status", type=click.Choice(["active", "pending"]), default="active",
              show_default=True, help="Status of rows without a status column value; pending sends each new "
              "subscriber a confirmation email.")
@json_option
def import_(file: Path, list_name: str | None, dry_run: bool, resubscribe: bool, default_status: str,
            as_json: bool) -> None:
    """Import subscribers from a CSV FILE (columns: email, name, topics, timezone, send_time, status, language).

    All valid rows are written in one transaction; every rejected row is reported with its line number. Importing
    the same file again changes nothing.
    """
    app = get_app()
    with _rolled_back(app.store) as session:
        offered = list(ensure_list(session, app.settings, list_name).topics or [])
    parsed = read_csv(file, offered_topics=offered, backend=app.settings.backend)
    transaction = _rolled_back(app.store) if dry_run else app.store.session()
    with _progress(not as_json and parsed.rows >= PROGRESS_MIN_ROWS) as progress, transaction as session:
        list_row = ensure_list(session, app.settings, list_name)
        report = ImportReport(source=file.name, list_name=list_row.name, dry_run=dry_run)
        report.rejected.extend(parsed.rejected)
        report.rows = len(parsed.rejected)
        merge(session, list_row, parsed.records, source=file.name, actor=f"import:{file.name}",
              default_status=default_status, resubscribe=resubscribe, dry_run=dry_run, report=report,
              progress=progress)
    report.rejected.sort(key=lambda i: i.line or 0)
    if not dry_run:
        _send_confirmations(app, report.list_name, report)
    if as_json:
        data = report.to_json()
        data["ignored_columns"] = parsed.ignored_columns
        print_json(data)
        return
    if parsed.ignored_columns:
        click.echo(f"Ignored unknown column(s): {', '.join(parsed.ignored_columns)}", err=True)
    _report_lines(report)


@subscribers_group.command("export")
@list_option
@click.option("--status", type=status_choice, help="Only subscribers with this status.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write to this file instead of standard output.")
def export(list_name: str | None, status: str | None, out: Path | None) -> None:
    """Export a list's subscribers as CSV that `digest subscribers import` reads back."""
    app = get_app()
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        if out is None:
            write_csv(session, list_row, sys.stdout, status=status)
            return
        with open(out, "w", encoding="utf-8", newline="") as fh:
            count = write_csv(session, list_row, fh, status=status)
    click.echo(f"Wrote {count} subscriber(s) of list {list_row.name!r} to {out}.", err=True)


@subscribers_group.command("add")
@click.argument("email")
@list_option
@click.option("--name", help=f"The subscriber's name (at most {MAX_NAME} characters).")
@click.option("--topics", metavar="A,B", help="Topics (from the list's offered topics).")
@click.option("--timezone", "timezone_", metavar="TZ", help="The subscriber's IANA time zone.")
@click.option("--send-time", metavar="HH:MM", help="The subscriber's local send time.")
@click.option("--language", metavar="TAG", help="The subscriber's language, a BCP 47 tag (en, de, fr, es, pt-BR, "
              "it); overrides the list's.")
@click.option("--status", type=click.Choice(["active", "pending"]), default="active", show_default=True,
              help="pending sends a confirmation email first.")
@click.option("--resubscribe", is_flag=True, help="Make an unsubscribed, bounced or complained subscriber "
              "active again.")
@json_option
def add(email: str, list_name: str | None, name: str | None, topics: str | None, timezone_: str | None,
        send_time: str | None, language: str | None, status: str, resubscribe: bool, as_json: bool) -> None:
    """Add EMAIL to a list, or update it (by the same rules as an import)."""
    app = get_app()
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        report = subs.add(session, list_row, email, name=name, topics=topics, timezone=timezone_,
                          send_time=send_time, status=status, resubscribe=resubscribe,
                          backend=app.settings.backend, language=language)
        row = subs.get(session, list_row, email)
        data = subs.to_json(row, list_row, app.settings)
    _send_confirmations(app, data["list"], report)
    if as_json:
        print_json(data)
        return
    what = "Added" if report.new else ("Updated" if report.updated else "Unchanged:")
    click.echo(f"{what} {data['email']} on list {data['list']!r} (status {data['status']})"
               + ("; sent a confirmation email." if report.confirmations_sent else "."))
    for issue in report.held:
        click.echo(f"Note: {issue.reason}.", err=True)


@subscribers_group.command("rm")
@click.argument("email")
@list_option
@json_option
def rm(email: str, list_name: str | None, as_json: bool) -> None:
    """Delete EMAIL from a list (use `unsubscribe` to keep the record, or `forget` to erase a person)."""
    app = get_app()
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        subs.remove(session, list_row, email)
        name = list_row.name
    if as_json:
        print_json({"removed": email, "list": name})
    else:
        click.echo(f"Removed {email} from list {name!r}.")


@subscribers_group.command("ls")
@list_option
@click.option("--status", type=status_choice, help="Only subscribers with this status.")
@click.option("--search", metavar="TEXT", help="Only addresses or names containing TEXT.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many subscribers.")
@json_option
def ls(list_name: str | None, status: str | None, search: str | None, limit: int | None, as_json: bool) -> None:
    """List a list's subscribers."""
    app = get_app()
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        data = [subs.to_json(row, list_row, app.settings)
                for row in subs.list_subscribers(session, list_row, status=status, search=search, limit=limit)]
    if as_json:
        print_json(data)
        return
    print_table(["id", "email", "name", "status", "topics", "time zone", "send time", "since"],
                [[d["id"], d["email"], d["name"], d["status"] + (" (paused)" if d["paused"] else ""),
                  ",".join(d["topics"]), d["timezone"], d["send_time"], d["created_at"].date().isoformat()]
                 for d in data], title=f"{len(data)} subscriber(s)")


@subscribers_group.command("show")
@click.argument("email")
@list_option
@json_option
def show(email: str, list_name: str | None, as_json: bool) -> None:
    """Show one subscriber: status, settings, effective settings and status history."""
    app = get_app()
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        row = subs.get(session, list_row, email)
        data = subs.to_json(row, list_row, app.settings)
        data["history"] = [subs.audit_to_json(a) for a in subs.history(session, row)]
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if key in ("history", "effective"):
            continue
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        click.echo(f"{key:>16}: {'-' if value is None else value}")
    eff = data["effective"]
    click.echo(f"{'effective':>16}: topics {', '.join(eff['topics']) or 'all'}; {eff['send_time']} {eff['timezone']}; "
               f"language {eff['language']}")
    print_table(["at", "from", "to", "by", "why"],
                [[h["at"].isoformat(timespec="seconds"), h["old_status"] or "-", h["new_status"], h["actor"],
                  h["reason"]] for h in data["history"]], title="History")


@subscribers_group.command("unsubscribe")
@click.argument("email")
@list_option
@click.option("--reason", default="unsubscribed by an operator", show_default=True,
              help="Why, for the audit log.")
@json_option
def unsubscribe(email: str, list_name: str | None, reason: str, as_json: bool) -> None:
    """Unsubscribe EMAIL from a list now (the record stays, so an import will not bring it back)."""
    app = get_app()
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        row = subs.get(session, list_row, email)
        changed = subs.unsubscribe(session, row, actor="cli", reason=reason)
        data = {"email": row.email, "list": list_row.name, "status": row.status, "changed": changed}
    if as_json:
        print_json(data)
    else:
        click.echo(f"{data['email']} is {data['status']} on list {data['list']!r}"
                   + ("." if changed else " (no change)."))


@subscribers_group.command("confirm-again")
@click.argument("email")
@list_option
@json_option
def confirm_again(email: str, list_name: str | None, as_json: bool) -> None:
    """Send a pending subscriber a fresh confirmation email (say, the first one was lost or has expired)."""
    app = get_app()
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        row = subs.get(session, list_row, email)
        if row.status != "pending":
            raise DigestError(f"{row.email} is {row.status} on list {list_row.name!r}, not pending: "
                              "only a pending subscriber is asked to confirm")
        if is_suppressed(session, row.email):
            raise DigestError(f"{row.email} is on the suppression list: no confirmation is sent")
        # The token carries the last audit id: a link sent before any later status change stays void.
        subscriber_id, address, name, language = row.id, row.email, row.name, row.language
        version = last_audit_id(session, row.id)
    send_confirmation(app.settings, list_row, subscriber_id, address, name, version=version, language=language)
    if as_json:
        print_json({"email": address, "list": list_row.name, "status": "pending", "confirmation_sent": True})
    else:
        click.echo(f"Sent a new confirmation email to {address} (list {list_row.name!r}).")


@subscribers_group.command("suppress")
@click.argument("emails", nargs=-1)
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV suppression export from another provider: an email column and, optionally, a reason "
              "column (bounce, complaint, unsubscribe) per row.")
@click.option("--reason", default="manual", show_default=True,
              help="Why, for EMAILs and for file rows without a reason: bounce and complaint mark subscribers "
              "bounced/complained; anything else unsubscribed.")
@click.option("--dry-run", is_flag=True, help="Check the file and report what would change; write nothing.")
@json_option
def suppress(emails: tuple[str, ...], file_: Path | None, reason: str, dry_run: bool, as_json: bool) -> None:
    """Never send to or import EMAIL... again, on any list (the address is stored only as a hash).

    With --file, every row is checked first and reported with its line; one bad row and nothing is suppressed.
    """
    if not emails and file_ is None:
        raise click.UsageError("give at least one EMAIL or --file FILE.csv")
    addresses: list[str] = []
    for raw in emails:
        try:
            addresses.append(normalize_email(raw))
        except Invalid as exc:
            raise DigestError(f"{raw}: {exc}") from None
    report = read_suppressions(file_, default_reason=reason) if file_ is not None else None
    if report is not None:
        report.dry_run = dry_run
        if report.rejected:
            _refuse_suppressions(file_, report, as_json)
    app = get_app()
    results: list[dict[str, Any]] = []
    transaction = _rolled_back(app.store) if dry_run else app.store.session()
    with transaction as session:
        for address in dict.fromkeys(addresses):
            added, changed = suppress_and_mark(session, address, reason, actor="cli:suppress")
            results.append({"email": address, "newly_suppressed": added, "subscribers_changed": changed})
        if report is not None:
            report.results = suppressions.apply(session, report.records, actor=f"import:{report.source}")
    if as_json:
        if report is None:
            print_json(results)
        else:
            data = report.to_json()
            data["addresses"] = results + data["addresses"]
            print_json(data)
        return
    every = results + (report.results if report is not None else [])
    added_n = sum(1 for r in every if r["newly_suppressed"])
    changed_n = sum(int(r["subscribers_changed"]) for r in every)
    click.echo(f"Suppressed {added_n} new address(es) of {len(every)}; {changed_n} subscriber(s) marked."
               + (" Dry run: nothing was written." if dry_run else ""))


def _refuse_suppressions(path: Path | None, report: suppressions.SuppressionReport, as_json: bool) -> None:
    """Report every bad row of a suppression file and stop: nothing of it is applied."""
    first = report.rejected[0]
    if as_json:
        print_json(report.to_json())
    else:
        print_table(["line", "email", "reason"], [[i.line, i.email, i.reason] for i in report.rejected],
                    title="Rejected rows")
    raise DigestError(f"{path}:{first.line}: {first.reason} ({len(report.rejected)} bad row(s) of {report.rows}; "
                      "nothing was suppressed)")


@subscribers_group.command("export-data")
@click.argument("email")
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the JSON to this file instead of standard output.")
def export_data(email: str, out: Path | None) -> None:
    """Print everything stored about EMAIL across all lists as JSON (GDPR right of access)."""
    app = get_app()
    with app.store.session() as session:
        data = gdpr.export_data(session, email)
    text = dumps(data)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"Wrote {out}.", err=True)


@subscribers_group.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def forget(email: str, yes: bool, as_json: bool) -> None:
    """Erase EMAIL's personal data on every list (GDPR erasure); keep only a hashed suppression entry."""
    if not yes:
        click.confirm(f"Erase every trace of {email} and never mail it again?", abort=True, err=True)
    app = get_app()
    with app.store.session() as session:
        result = gdpr.forget(session, email, actor="cli:forget")
    if as_json:
        print_json(result)
    else:
        click.echo(f"Erased {email}: {result['subscriptions']} subscription(s), {result['audit_rows']} audit "
                   f"entries, {result['deliveries']} deliveries and {result['events']} events scrubbed; the address"
                   + (" is suppressed." if result["newly_suppressed"] else " was suppressed already."))


commands = [subscribers_group]
