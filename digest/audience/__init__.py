"""Lists and subscribers: CSV import/export, signed tokens, lifecycle (subscribe, confirm, unsubscribe, suppress)."""
