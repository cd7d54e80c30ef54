"""`digest dev`: tools for local development (the SendGrid stand-in)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("dev")
def dev_group() -> None:
    """Local development helpers."""


@dev_group.command("sendgrid")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (keep it local).")
@click.option("--port", default=3030, show_default=True, type=int, help="Port to listen on.")
@click.option("--api-key", envvar="SENDGRID_API_KEY", default="SG.standin-key", show_default=False,
              help="Bearer key the stand-in accepts (default: $SENDGRID_API_KEY, else SG.standin-key).")
@click.option("--jsonl", type=click.Path(dir_okay=False, path_type=Path),
              help="Also append every accepted request (without its content) to this JSON Lines file.")
@click.option("--delay", default=0.0, show_default=True, type=float, help="Seconds every request takes.")
@click.option("--no-record", is_flag=True, help="Validate and count requests but keep no message in memory "
              "(for load tests).")
def sendgrid_command(host: str, port: int, api_key: str, jsonl: Path | None, delay: float, no_record: bool) -> None:
    """Run the SendGrid stand-in: v3 Mail Send with SendGrid's validation, batches and scheduled sends.

    Point digest at it with sendgrid_host = "http://HOST:PORT". Inspect it at /_standin/messages and
    /_standin/stats; script failures with POST /_standin/script, e.g.
    {"behaviours": [{"status": 429, "reset_in": 2}, {"status": 500}, {"hang": 30}]}.
    """
    import uvicorn

    from digest.cli.preview import _is_loopback
    from digest.send.standin import StandinState, create_app

    if not _is_loopback(host):
        # /_standin/* has no login and holds every recipient's address and signed unsubscribe link.
        click.echo(f"Warning: listening on {host}: anyone who can reach it can read what it received "
                   "(/_standin/messages) and script it.", err=True)
    state = StandinState(api_key, jsonl=jsonl, delay=delay, record=not no_record)
    shown = "SG.standin-key" if api_key == "SG.standin-key" else "$SENDGRID_API_KEY"
    click.echo(f"SendGrid stand-in on http://{host}:{port} (API key: {shown}); Ctrl-C to stop", err=True)
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning")


commands = [dev_group]
