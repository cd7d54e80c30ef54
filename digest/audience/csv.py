"""Subscriber CSV files: reading (with a line number and a reason for every rejected row) and writing.

Files are UTF-8 with or without a BOM, separated by `,` or `;` (whichever makes a header with an email column),
with quoted fields that may hold separators and newlines. Export writes what import reads. Cells that a
spreadsheet would run as a formula (starting with =, +, -, @, tab or carriage return) are written with a leading
`'`, which import removes again, so such a name survives the round trip and never runs in Excel.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.audience.importer import Issue, Record
from digest.audience.validate import (
    Invalid,
    check_language,
    check_send_time,
    check_sendable,
    check_status,
    check_timezone,
    clean_name,
    normalize_email,
    parse_topics,
)
from digest.errors import ParseError
from digest.store.tables import MailingListRow, SubscriberRow

COLUMNS = ("email", "name", "topics", "timezone", "send_time", "status", "language")
# Header spellings other tools export, mapped to ours.
_ALIASES = {"e-mail": "email", "email address": "email", "email_address": "email", "mail": "email",
            "time zone": "timezone", "time_zone": "timezone", "tz": "timezone", "send time": "send_time",
            "sendtime": "send_time", "full name": "name", "full_name": "name", "lang": "language",
            "locale": "language"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ParsedCsv:
    path: str
    delimiter: str
    columns: list[str]
    records: list[Record] = field(default_factory=list)
    rejected: list[Issue] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.records) + len(self.rejected)


def neutralize(value: str) -> str:
    """Make a cell inert in spreadsheets; ``unneutralize`` undoes it exactly."""
    if value.startswith(_FORMULA_START) or (value.startswith("'") and value.lstrip("'").startswith(_FORMULA_START)):
        return "'" + value
    return value


def unneutralize(value: str) -> str:
    if value.startswith("'") and value.lstrip("'").startswith(_FORMULA_START):
        return value[1:]
    return value


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read the file: {exc.strerror or exc}", source=str(path)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ParseError(f"not UTF-8 (byte {exc.start}); save the file as UTF-8 CSV", source=str(path),
                         line=line) from None


def _header(first_line: str) -> tuple[str, list[str]]:
    """Pick the separator that yields an email column; fall back to the one that splits the header more."""
    candidates = []
    for delimiter in (",", ";"):
        names = [_column_name(c) for c in next(csv.reader([first_line], delimiter=delimiter), [])]
        if "email" in names:
            return delimiter, names
        candidates.append((len(names), delimiter, names))
    _, delimiter, names = max(candidates)
    return delimiter, names


def _column_name(raw: str) -> str:
    name = raw.strip().strip('"').strip().lower()
    return _ALIASES.get(name, name)


def read_csv(path: str | Path, *, offered_topics: list[str] | None = None, backend: str | None = None) -> ParsedCsv:
    """Parse and validate a subscriber file. File-level problems raise ParseError naming the file;
    row-level problems become ``rejected`` entries with the row's line number. With ``backend``, an address that
    backend cannot deliver to (a non-ASCII local part through SendGrid) is rejected too."""
    path = Path(path)
    text = _decode(path)
    if not text.strip():
        raise ParseError("the file is empty; expected a header row with an 'email' column", source=str(path))
    first_line = text.splitlines()[0]
    delimiter, columns = _header(first_line)
    if "email" not in columns:
        shown = ", ".join(c for c in columns if c) or "nothing"
        raise ParseError(f"no 'email' column in the header row (found: {shown})", source=str(path), line=1)
    duplicate = sorted({c for c in columns if c and columns.count(c) > 1})
    if duplicate:
        raise ParseError(f"column(s) appear twice in the header: {', '.join(duplicate)}", source=str(path), line=1)
    parsed = ParsedCsv(str(path), delimiter, columns,
                       ignored_columns=[c for c in columns if c and c not in COLUMNS])
    try:
        for line, cells in _rows(text, delimiter):
            _parse_row(parsed, line, cells, offered_topics, backend)
    except csv.Error as exc:
        raise ParseError(f"not a readable CSV file: {exc}", source=str(path)) from None
    return parsed


def read_table(path: str | Path, *, required: str = "email") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A CSV in the import's formats as its (alias-mapped) column names and its data rows with their lines,
    for files that are not subscriber lists (a suppression export); the same file-level errors as `read_csv`."""
    path = Path(path)
    text = _decode(path)
    if not text.strip():
        raise ParseError(f"the file is empty; expected a header row with an {required!r} column", source=str(path))
    delimiter, columns = _header(text.splitlines()[0])
    if required not in columns:
        shown = ", ".join(c for c in columns if c) or "nothing"
        raise ParseError(f"no {required!r} column in the header row (found: {shown})", source=str(path), line=1)
    try:
        rows = [(line, [unneutralize(c) for c in cells]) for line, cells in _rows(text, delimiter)]
    except csv.Error as exc:
        raise ParseError(f"not a readable CSV file: {exc}", source=str(path)) from None
    return columns, rows


def _rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Data rows with the line each starts on (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=False)
    next(reader, None)  # the header
    start = reader.line_num + 1
    for cells in reader:
        if any(c.strip() for c in cells):
            yield start, cells
        start = reader.line_num + 1


def _parse_row(parsed: ParsedCsv, line: int, cells: list[str], offered: list[str] | None,
               backend: str | None = None) -> None:
    columns = parsed.columns
    raw_email = unneutralize(cells[columns.index("email")].strip()) if columns.index("email") < len(cells) else ""
    if len(cells) > len(columns):
        parsed.rejected.append(Issue(line, raw_email or None,
                                     f"{len(cells)} fields but the header has {len(columns)} "
                                     f"(an unquoted {parsed.delimiter!r} inside a value?)"))
        return
    values: dict[str, str] = {}
    for name, cell in zip(columns, cells):
        if name in COLUMNS:
            values[name] = unneutralize(cell.strip())
    try:
        record = Record(
            line=line, email=_email(values.get("email", ""), backend), name=clean_name(values.get("name")),
            topics=_topics(values.get("topics"), offered),
            timezone=_field("timezone", check_timezone, values.get("timezone")),
            send_time=_field("send_time", check_send_time, values.get("send_time")),
            status=_field("status", check_status, values.get("status")),
            language=_field("language", check_language, values.get("language")),
        )
    except Invalid as exc:
        parsed.rejected.append(Issue(line, raw_email or None, str(exc)))
        return
    parsed.records.append(record)


def _email(value: str, backend: str | None) -> str:
    email = normalize_email(value)
    if backend is not None:
        try:
            check_sendable(email, backend)
        except Invalid as exc:
            raise Invalid(f"email: {exc}") from None
    return email


def _topics(value: str | None, offered: list[str] | None) -> list[str] | None:
    if not value:
        return None
    try:
        return parse_topics(value, offered)
    except Invalid as exc:
        raise Invalid(f"topics: {exc}") from None


def _field(column: str, check: Any, value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(check(value))
    except Invalid as exc:
        raise Invalid(f"{column}: {exc}") from None


def write_csv(session: Session, list_row: MailingListRow, out: TextIO, *, status: str | None = None) -> int:
    """Write the list's subscribers as CSV that `subscribers import` reads back; returns the row count."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    t = SubscriberRow
    query = (select(t.email, t.name, t.topics, t.timezone, t.send_time, t.status, t.language)
             .where(t.list_id == list_row.id).order_by(t.id))
    if status:
        query = query.where(t.status == status)
    count = 0
    for email, name, topics, tz, send_time, status_, language in session.execute(
            query.execution_options(yield_per=2000)):
        writer.writerow([neutralize(v) for v in (
            email, name or "", ",".join(topics or []), tz or "", send_time or "", status_, language or "")])
        count += 1
    return count
