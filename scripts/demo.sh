#!/usr/bin/env bash
# `make demo`: the whole pipeline, end to end, on the project's own fictional samples and a fresh embedded
# database. Each step is a numbered block; later stages (rank, build, send) append their own steps below.
set -euo pipefail
cd "$(dirname "$0")/.."

# The project's venv (`make demo` installs it); the demo test points them at the venv it runs in.
DIGEST="${DEMO_DIGEST:-.venv/bin/digest}"
PYTHON="${DEMO_PYTHON:-.venv/bin/python}"

# --- Step 0: a fresh embedded database and a throwaway secret ----------------------------------------------
mkdir -p subscribers
rm -f subscribers/demo.db subscribers/demo.db-wal subscribers/demo.db-shm
export DIGEST_DATABASE_URL="sqlite:///$PWD/subscribers/demo.db"
if [ -z "${DIGEST_SECRET_KEY:-}" ]; then
  # A new random key per run: the demo's tokens are never meant to outlive it.
  DIGEST_SECRET_KEY="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')"
  export DIGEST_SECRET_KEY
fi
# Map the demo feed's categories onto the newsroom's topics (normally `topic_rules` in digest.toml).
export DIGEST_TOPIC_RULES='[{"topic": "politics", "categories": ["Local government"]},
  {"topic": "sports", "categories": ["Sport"]}, {"topic": "science", "categories": ["Science"]}]'
echo "== digest demo: database $DIGEST_DATABASE_URL"

# --- Step 1: ingest the sample articles (one folder per topic), a sample feed and a JSON export ------------
echo "== Step 1: ingest"
for folder in samples/articles/*/; do
  topic="$(basename "$folder")"
  "$DIGEST" ingest "$folder" --topic "$topic"
done
"$DIGEST" ingest samples/feeds/demo.rss samples/articles.json
echo "== What the store holds now:"
"$DIGEST" articles

# --- Step 2: rank (digest rank) -------------------------------------------------------------------------------
# The edition that carries what was just ingested: today's, or tomorrow's once today's send time has passed.
EDITION_DATE="$("$PYTHON" - <<'PY'
from datetime import UTC, datetime, timedelta
from digest import editions
from digest.app import App
from digest.audience.lists import ensure_list
app = App.load()
with app.store.session() as s:
    row = ensure_list(s, app.settings)
    now = datetime.now(UTC)
    day = editions.local_today(row, now)
    print(day if editions.cutoff_for(row, day) > now else day + timedelta(days=1))
app.close()
PY
)"
# The Example Gazette's copy of the Port Alder budget story (samples/articles.json) collapses into the Newslooks
# one and is listed under it as "also covered by"; the 2025-dated feed items are outside this edition's window.
echo "== Step 2: rank the candidates for the $EDITION_DATE edition (one story once, topics capped, scores explained)"
"$DIGEST" rank --date "$EDITION_DATE" --explain

# --- Step 3: render (digest build) -----------------------------------------------------------------------------
# The editor's note opens the email in place of the greeting; then build that edition into demo-out/: HTML,
# plain text, the intermediate MJML and the complete .eml.
echo "== Step 3: write the editor's note and build the edition"
"$DIGEST" editions note --date "$EDITION_DATE" \
  "Good morning. Port Alder's council worked through the night on the budget: *what it means for the ferry* is
our lead. (A fictional note for the demo.)"
BUILD_JSON="$("$DIGEST" build --date "$EDITION_DATE" --out demo-out --json)"
BUILD_JSON="$BUILD_JSON" "$PYTHON" - <<'PY'
import json, os
d = json.loads(os.environ["BUILD_JSON"])
print(f"   {d['list']} {d['date']}: {d['articles']} articles, {d['size_bytes']:,} bytes of HTML "
      f"(limit {d['max_html_bytes']:,}), to {d['recipient']}")
print(f"   Subject: {d['subject']}")
for note in d["trimmed"]:
    print(f"   Trimmed: {note}")
print(f"== Open the edition: {d['files']['html']}  (also .txt, .mjml, .eml beside it)")
PY
echo "== Preview editions live in the browser (reloads when a template changes):"
echo "   make preview   (opens the demo database on http://127.0.0.1:8030)"

# --- Step 4: send (digest send) -------------------------------------------------------------------------------
# Import the demo list (subscribers/demo.csv: fictional people at example.org/example.com, one of them
# unsubscribed) and send the edition through the file backend: one new .eml per subscriber in demo-out/outbox.
echo "== Step 4: send the edition to the demo list (file backend)"
export DIGEST_OUTBOX_DIR="$PWD/demo-out/outbox"
rm -rf "$DIGEST_OUTBOX_DIR"
"$DIGEST" subscribers import subscribers/demo.csv
# --now: the demo sends at once, also when the edition's window is still open (tomorrow's edition, after today's
# send time), which `digest send --date` otherwise refuses to freeze early without asking.
"$DIGEST" send --date "$EDITION_DATE" --via file --no-progress --now
"$DIGEST" editions ls
echo "== Sent messages (one .eml per subscriber): $DIGEST_OUTBOX_DIR ($(ls "$DIGEST_OUTBOX_DIR" | wc -l) files)"

# --- Step 5: send again -----------------------------------------------------------------------------------------
echo "== Step 5: send the same edition again: nothing is sent twice"
"$DIGEST" send --date "$EDITION_DATE" --via file --no-progress
echo "== Still $(ls "$DIGEST_OUTBOX_DIR" | wc -l) files in the outbox."
echo "== Explore the demo database yourself:"
echo "   DIGEST_DATABASE_URL=$DIGEST_DATABASE_URL $DIGEST articles   (or rank, editions ls, stats ...)"
