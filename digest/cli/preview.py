"""`digest preview`: serve the local preview app with uvicorn."""

from __future__ import annotations

import ipaddress
import threading
import time
import webbrowser
from types import FrameType

import click

from digest.cli import get_app
from digest.errors import ConfigError, DigestError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8030  # not 8025: that is Mailpit's, which newsrooms often run alongside


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("preview")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on. Any other than a loopback address needs preview_password "
                   "(DIGEST_PREVIEW_PASSWORD), which every request must then give (HTTP basic).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--no-open", is_flag=True, help="Do not open the preview in a web browser.")
@click.option("--poll", "poll_interval", default=1.0, show_default=True, type=click.FloatRange(0.1, 60),
              help="Seconds between checks of the articles for live reload.")
def preview_command(host: str, port: int, no_open: bool, poll_interval: float) -> None:
    """Preview editions in the browser, reloading live when templates, config or articles change.

    Shows each list's upcoming and past editions at desktop and mobile widths, in dark mode, as plain text,
    raw source and headers; as any subscriber would get it; with checks (size, alt text, links, SpamAssassin)
    and a "send test" form; the upcoming edition of each list is the editor's desk (pin, leave out, move, add,
    approve). Stop it with Ctrl-C.
    """
    import uvicorn

    from digest.desk.settings import DeskSettings
    from digest.web.preview import LOOPBACK_HOSTS, create_preview_app

    app = get_app()
    password = DeskSettings.from_settings(app.settings).password
    if _is_loopback(host):
        allowed = [*LOOPBACK_HOSTS, host]
    elif not password:
        raise ConfigError(f"--host {host}: the preview would be reachable beyond this machine and lets anyone "
                          "change editions; set preview_password (DIGEST_PREVIEW_PASSWORD) first")
    else:
        click.echo(f"Warning: listening on {host}: anyone with the preview password can change editions and "
                   "send tests.", err=True)
        allowed = ["*"]  # listening beyond this machine was asked for explicitly, behind the password
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    asgi = create_preview_app(app, poll_interval=poll_interval, allowed_hosts=allowed, password=password)
    hub = asgi.state.preview.hub

    class PreviewServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Open tabs hold live-reload streams that never end by themselves; uvicorn waits for every open
            # response before it stops, so end them as soon as Ctrl-C arrives.
            super().handle_exit(sig, frame)
            hub.close_threadsafe()

    server = PreviewServer(uvicorn.Config(asgi, host=host, port=port, log_level="warning",
                                          timeout_graceful_shutdown=5, lifespan="on"))

    def announce() -> None:
        click.echo(f"digest preview on {url} (Ctrl-C to stop)")
        if not no_open:
            webbrowser.open(url)

    def wait_then_announce() -> None:
        for _ in range(200):
            if server.started:
                announce()
                return
            time.sleep(0.05)

    threading.Thread(target=wait_then_announce, daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled once it has shut down cleanly
        click.echo("digest preview stopped")
        return
    if not server.started:
        raise DigestError(f"--port: could not listen on {host}:{port} (is another preview running?)")


commands = [preview_command]
