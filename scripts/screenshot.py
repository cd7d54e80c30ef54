"""Screenshots of a built edition in Chromium, as the README shows it: 375 px (a phone, top of the email) and
1024 px (the whole email). Offline on purpose: every remote image is answered with a grey placeholder labelled
"fictional sample photo", every other remote request is refused.

    .venv/bin/python scripts/screenshot.py EDITION.html OUT_PREFIX   # writes OUT_PREFIX-375.png, -1024.png
"""

from __future__ import annotations

import sys

from playwright.sync_api import Route, sync_playwright

PLACEHOLDER = ('<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="800" viewBox="0 0 1200 800">'
               '<rect width="1200" height="800" fill="#8fa7b8"/><text x="600" y="420" font-size="64" '
               'text-anchor="middle" fill="#fff" font-family="sans-serif">fictional sample photo</text></svg>')
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def offline(route: Route) -> None:
    url = route.request.url
    if url.startswith(("http://", "https://")):
        if url.lower().split("?")[0].endswith((".jpg", ".jpeg", ".png", ".gif", ".webp")):
            route.fulfill(status=200, content_type="image/svg+xml", body=PLACEHOLDER)
        else:
            route.abort()
    else:
        route.continue_()


def main(html_path: str, out_prefix: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        for width, full_page, height in ((375, False, 1700), (1024, True, 900)):
            page = browser.new_page(viewport={"width": width, "height": height})
            page.route("**/*", offline)
            page.goto("file://" + html_path)
            page.screenshot(path=f"{out_prefix}-{width}.png", full_page=full_page)
        browser.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
