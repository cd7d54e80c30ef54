#!/usr/bin/env bash
# `make demo`: the whole pipeline, end to end, on the project's own fictional samples and a fresh embedded
# database. Each step is a numbered block; later stages (rank, build, send) append their own steps below.
set -euo pipefail
cd "$(dirname "$0")/.."

DIGEST=.venv/bin/digest
PYTHON=.venv/bin/python

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

# --- Step: render (digest build) -----------------------------------------------------------------------------
# Build the edition that carries what was just ingested (today's, or tomorrow's once today's send time has
# passed) into demo-out/: HTML, plain text, the intermediate MJML and the complete .eml.
echo "== Step: build the edition"
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
"$DIGEST" build --date "$EDITION_DATE" --out demo-out
echo "== The edition's HTML: $PWD/demo-out/$("$DIGEST" config --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["default_list"]["value"] if isinstance(json.load(open("/dev/null")) if False else None, dict) else "")' 2>/dev/null)"
