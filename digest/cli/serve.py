"""`digest serve`: the public web app (subscribe, confirm, preferences, unsubscribe, webhooks)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import click

from digest.cli import get_app


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; keep 127.0.0.1 behind a reverse proxy that terminates TLS.")
@click.option("--port", default=8040, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="uvicorn's log level.")
def serve(host: str, port: int, log_level: str) -> None:
    """Serve the public pages: subscribe form and JSON API, confirmation, preferences, one-click unsubscribe, and
    the SendGrid event webhook (POST /webhooks/sendgrid)."""
    import uvicorn

    from digest.web.public import TokenMaskFilter, create_app

    app = get_app()
    web = create_app(app)  # fails here, before binding, when secret_key is missing
    logging.getLogger("uvicorn.access").addFilter(TokenMaskFilter())
    base_url = str(app.settings.base_url)
    click.echo(f"Listening on http://{host}:{port} (Ctrl+C stops); links in emails point at {base_url} (base_url).",
               err=True)
    base = urlsplit(base_url)
    base_port = base.port or (443 if base.scheme == "https" else 80)
    if base.hostname in ("127.0.0.1", "localhost", "::1") and base_port != port:
        # Local work: every confirmation, unsubscribe and preferences link would go to a port nobody serves.
        click.echo(f"Warning: base_url {base_url} is on this machine but on port {base_port}, not {port}: links in "
                   f"emails will not reach this server. Pass --port {base_port}, or set base_url to "
                   f"http://127.0.0.1:{port}.", err=True)
    # proxy_headers: behind a reverse proxy, rate limits must see the visitor's address, not the proxy's. uvicorn
    # trusts X-Forwarded-For only from FORWARDED_ALLOW_IPS (default 127.0.0.1 and ::1, a proxy on this host).
    uvicorn.run(web, host=host, port=port, log_level=log_level, proxy_headers=True)


commands = [serve]
