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
