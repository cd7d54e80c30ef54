"""Regenerate migration 0001 from digest/store/tables.py (only until the first release ships).

Run by `make migration`. After the first release, add new revisions with `alembic revision --autogenerate`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from digest.store.db import MIGRATIONS_DIR, alembic_config

versions = MIGRATIONS_DIR / "versions"
for old in versions.glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    cfg = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
    command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
for path in versions.glob("0001_*.py"):
    path.rename(versions / "0001_initial_schema.py")
print("wrote", versions / "0001_initial_schema.py")
