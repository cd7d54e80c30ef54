"""Provider webhooks mounted on `digest serve`. Scaffolding: the feedback issue adds POST /webhooks/sendgrid."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute


def webhook_routes(app: Any) -> list[BaseRoute]:
    return []
