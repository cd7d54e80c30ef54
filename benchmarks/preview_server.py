"""A `digest preview` for bench_preview, in a process of its own: ``python -m benchmarks.preview_server PORT
[--legacy]``, run in the project folder with its DIGEST_* environment. ``--legacy`` serves the reload path from
before the fast one (``LEGACY_RELOAD``), so both can run side by side. Listens on 127.0.0.1 only."""

from __future__ import annotations

import sys
from types import FrameType

import uvicorn

from digest.app import App
from digest.web.preview import create_preview_app
from digest.web.preview_live import FAST_RELOAD, LEGACY_RELOAD


def main(argv: list[str]) -> int:
    port = int(argv[0])
    tuning = LEGACY_RELOAD if "--legacy" in argv[1:] else FAST_RELOAD
    asgi = create_preview_app(App.load(None), reload=tuning)
    hub = asgi.state.preview.hub

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            hub.close_threadsafe()  # the tab's event stream would hold the shutdown back

    Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="on")).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
