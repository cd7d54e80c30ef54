"""The store: SQLAlchemy tables, Alembic migrations, and one small repository module per aggregate."""

from digest.store.db import Store, open_store

__all__ = ["Store", "open_store"]
