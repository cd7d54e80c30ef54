"""Rendering one variant: Jinja → MJML (mjml-python) → premailer with the per-template work cached
(``render_variant_ms``), against official JS MJML alone (npm ``mjml``, warm, in one Node process) on the same MJML,
and, as ``extra``, the same Python path with a plain premailer (nothing kept between variants).

The edition is 8 fictional articles; each run is a different variant (a different article order), so no render
cache answers it. Timings are the median of rounds, ours and the baselines run side by side.
"""

from __future__ import annotations

import json
import logging
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.harness import BenchResult, scaled

REPO = Path(__file__).resolve().parent.parent
JS = Path(__file__).with_name("mjml_js.js")


def _plain_inline(html: str) -> str:
    from premailer import Premailer

    return str(Premailer(html, base_url=None, allow_network=False, allow_loading_external_files=False,
                         disable_link_rewrites=True, keep_style_tags=True, strip_important=False,
                         remove_classes=False, exclude_pseudoclasses=True, preserve_handlebar_syntax=True,
                         cssutils_logging_level=logging.CRITICAL).transform(pretty_print=False))


def run() -> list[BenchResult]:
    import sys

    sys.path.insert(0, str(REPO))
    from digest.render import mjml, templates
    from digest.render.context import TEASER_LEVELS, build_context
    from digest.render.inline import inline_css
    from digest.render.theme import resolve_theme
    from tests.render_helpers import EDITION_DATE, list_row, selection, settings

    runs = scaled(40)
    tmp = Path(tempfile.mkdtemp(prefix="bench-render-"))
    try:
        s = settings(tmp)
        row = list_row()
        theme = resolve_theme(s, row.from_name)
        base = selection(8).items
        variants = [base[i:] + base[:i] for i in range(8)]

        def source(i: int) -> str:
            ctx = build_context(s, row, EDITION_DATE, variants[i % 8], theme=theme, teaser=TEASER_LEVELS[0])
            return templates.render(s, templates.HTML_TEMPLATE, ctx)

        def ours(i: int) -> int:
            return len(inline_css(mjml.to_html(source(i))))

        def plain(i: int) -> int:
            return len(_plain_inline(mjml.to_html(source(i))))

        def per_run(fn: object) -> float:
            rounds = []
            for _ in range(5):
                start = time.perf_counter()
                for i in range(runs):
                    fn(i)  # type: ignore[operator]
                rounds.append((time.perf_counter() - start) * 1000 / runs)
            return statistics.median(rounds)

        ours(0), plain(0)  # warm: templates compiled, caches filled, as in a send
        value = per_run(ours)
        naive = per_run(plain)
        js_ms = None
        node = shutil.which("node")
        if node and (REPO / "node_modules" / "mjml").is_dir():
            mjml_file = tmp / "edition.mjml"
            mjml_file.write_text(source(0), encoding="utf-8")
            out = subprocess.run([node, str(JS), str(mjml_file), str(runs * 5)], capture_output=True, text=True,
                                 check=True, cwd=REPO, timeout=300)
            js_ms = float(json.loads(out.stdout)["ms_per_run"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [BenchResult("render_variant_ms", value, "ms", js_ms, (js_ms / value) if js_ms else None, runs,
                        extra={"baseline": "official JS MJML alone (npm mjml, warm, in-process)",
                               "plain_premailer_ms": round(naive, 3),
                               "vs_plain_premailer": round(naive / value, 2)})]
