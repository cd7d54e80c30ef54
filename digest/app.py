"""The runtime every face (CLI, web apps, scheduler) shares: settings plus a lazily opened store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from digest.config import Settings, load_settings
from digest.store.db import Store


@dataclass
class App:
    settings: Settings
    _store: Store | None = field(default=None, repr=False)

    @classmethod
    def load(cls, config: str | None = None, *, cwd: Path | None = None) -> App:
        return cls(load_settings(config, cwd=cwd))

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.resolved_database_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None
