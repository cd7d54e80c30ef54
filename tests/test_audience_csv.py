"""Reading subscriber CSV files: encodings, separators, quoting, bad rows with line numbers, file-level errors."""

from __future__ import annotations

import csv
import io
import string
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.audience.csv import neutralize, read_csv, unneutralize
from digest.audience.validate import Invalid, clean_name, normalize_email
from digest.errors import ParseError


def write(tmp_path: Path, text: str, *, bom: bool = False, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def test_bom_semicolons_quotes_and_non_ascii(tmp_path: Path) -> None:
    path = write(tmp_path, 'Email;Name;Topics;TimeZone;send_time;status\r\n'
                           '"ana@example.org";"Núñez; Ana";politics,sports;Europe/Madrid;7:30;active\r\n'
                           'zoe@example.org;"Zoë ""Z"" Ødegård";;;;\r\n', bom=True)
    parsed = read_csv(path)
    assert parsed.delimiter == ";"
    assert not parsed.rejected
    ana, zoe = parsed.records
    assert (ana.line, ana.email, ana.name, ana.topics) == (2, "ana@example.org", "Núñez; Ana", ["politics", "sports"])
    assert (ana.timezone, ana.send_time, ana.status) == ("Europe/Madrid", "07:30", "active")
    assert (zoe.line, zoe.name, zoe.topics, zoe.status) == (3, 'Zoë "Z" Ødegård', None, None)


def test_quoted_commas_and_newlines_keep_line_numbers_right(tmp_path: Path) -> None:
    path = write(tmp_path, 'email,name\n'
                           'a@example.org,"Smith, Anna"\n'
                           'b@example.org,"Line one\nline two"\n'
                           'not-an-address,Broken\n'
                           '\n'
                           'c@example.org,Carl\n')
    parsed = read_csv(path)
    # A quoted line break is read as part of the cell (and the line count stays right); a name is one line,
    # since it ends up in the To header and the greeting.
    assert [(r.line, r.name) for r in parsed.records] == [(2, "Smith, Anna"), (3, "Line one line two"),
                                                          (7, "Carl")]
    assert [(i.line, i.email) for i in parsed.rejected] == [(5, "not-an-address")]
    assert "@-sign" in parsed.rejected[0].reason


@pytest.mark.parametrize(("raw", "clean"), [("Ana", "Ana"), ("  Ana   Núñez ", "Ana Núñez"), ("A\tB", "A B"),
                                           ("Eve\r\nBcc: x@example.org", "Eve Bcc: x@example.org"),
                                           ("\x00\x1b", None), ("", None), (None, None)])
def test_names_are_one_line(raw: str | None, clean: str | None) -> None:
    assert clean_name(raw) == clean


def test_internationalized_domains_and_case(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nuser@bücher.example\nBOB@Example.COM\nuser@xn--bcher-kva.example\n")
    parsed = read_csv(path)
    assert [r.email for r in parsed.records] == ["user@bücher.example", "BOB@example.com", "user@bücher.example"]


def test_ten_percent_invalid_rows_each_reported_with_line_and_reason(tmp_path: Path) -> None:
    lines = ["email,name,timezone,send_time,status"]
    bad_lines = {}
    for i in range(200):
        line_no = i + 2
        if i % 10 == 3:
            kind = i // 10 % 5
            row = ["no-at-sign.example.org", "x@@example.org", "ok@example.org", "ok2@example.org",
                   "ok3@example.org"][kind]
            extra = ["", "", "Mars/Olympus", "", ""][kind]
            send = ["", "", "", "25:00", ""][kind]
            status = ["", "", "", "", "maybe"][kind]
            lines.append(f"{row.replace('ok', f'ok{i}-')},Bad {i},{extra},{send},{status}")
            bad_lines[line_no] = ["@-sign", "invalid email", "time zone", "send time", "invalid status"][kind]
        else:
            lines.append(f"person{i}@example.org,Person {i},,,")
    parsed = read_csv(write(tmp_path, "\n".join(lines) + "\n"))
    assert len(parsed.records) == 180
    assert {i.line: i.reason for i in parsed.rejected}.keys() == bad_lines.keys()
    for issue in parsed.rejected:
        assert bad_lines[issue.line].lower() in issue.reason.lower(), (issue.line, issue.reason)


def test_unknown_topic_and_extra_fields_are_row_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "email,topics\na@example.org,politics|weather\nb@example.org,sports,extra\n")
    parsed = read_csv(path, offered_topics=["politics", "sports"])
    assert [(i.line, i.reason.split(" (")[0]) for i in parsed.rejected] == [
        (2, "topics: unknown topic(s) weather"), (3, "3 fields but the header has 2")]


def test_empty_file_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "", bom=True, name="empty.csv")
    with pytest.raises(ParseError, match=r"empty\.csv: the file is empty"):
        read_csv(path)


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    parsed = read_csv(write(tmp_path, "email,name\n"))
    assert parsed.rows == 0


def test_file_without_email_column_names_file_and_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "name;city\nAnna;Rome\n", name="contacts.csv")
    with pytest.raises(ParseError, match=r"contacts\.csv:1: no 'email' column .*found: name, city"):
        read_csv(path)


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name\na@example.org,Jürgen\n".encode("latin-1"))
    with pytest.raises(ParseError, match=r"latin1\.csv:2: not UTF-8"):
        read_csv(path)


@pytest.mark.parametrize("value", ["=SUM(A1:A9)", "+1 555", "-2", "@cmd", "\tx", "'=already", "''+x", "'plain",
                                   "O'Brien", "normal", "", "'"])
def test_formula_neutralizing_round_trips(value: str) -> None:
    out = neutralize(value)
    assert not out.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unneutralize(out) == value


def test_neutralized_cells_survive_a_real_csv_round_trip(tmp_path: Path) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["email", "name"])
    writer.writerow([neutralize("-dash@example.org"), neutralize("=HYPERLINK(\"http://x\")")])
    parsed = read_csv(write(tmp_path, buf.getvalue()))
    assert [(r.email, r.name) for r in parsed.records] == [("-dash@example.org", '=HYPERLINK("http://x")')]


_local = st.text(alphabet=string.ascii_letters + string.digits + ".-_+!#$%&'*/=?^`{|}~\"()@ ü", min_size=0,
                 max_size=70)
_domain = st.sampled_from(["example.org", "EXAMPLE.org", "x.test", "localhost", "a..b", "-x.org", "bücher.example",
                           "[127.0.0.1]", "x.local", "under_score.org", "tld", "ex.c0m", "example.org."])


@settings(max_examples=400, deadline=None)
@given(local=_local, domain=_domain)
def test_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    try:
        expected: str | None = str(validate_email(address.strip(), check_deliverability=False).normalized)
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = normalize_email(address)
    except Invalid:
        got = None
    assert got == expected
