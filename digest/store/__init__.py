"""The store: SQLAlchemy tables, Alembic migrations, and one small repository module per aggregate."""

from digest.store.db import Store

__all__ = ["Store"]
