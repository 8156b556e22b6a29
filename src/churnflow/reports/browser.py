"""Open a self-contained HTML page in a real headless Chromium, offline, and report what it did.

Used by the tests and the monitor benchmark (the dashboard, the report notebooks). Drives Debian's
``chromium`` package with ``playwright`` (a dev dependency; ``playwright install`` is not used):
``chromium_path()`` finds the binary, :func:`inspect_page` loads the file with the network off and
returns the console messages, page errors, requests that left ``file:``/``data:``, the title, a count of
rendered elements and (optionally) saves a full-page screenshot.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

#: Where Debian puts the browser, then names to look up on PATH.
CHROMIUM_CANDIDATES: tuple[str, ...] = (
    "/usr/bin/chromium",
    "chromium",
    "chromium-browser",
    "chromium-headless-shell",
)


@dataclass
class PageReport:
    """What a page did when opened offline."""

    title: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    svg_count: int = 0
    img_count: int = 0
    broken_images: int = 0
    body_text_chars: int = 0

    @property
    def clean(self) -> bool:
        """No console error, page error, external or failed request, no broken image."""
        return not (
            self.console_errors
            or self.page_errors
            or self.external_requests
            or self.failed_requests
            or self.broken_images
        )


def chromium_path() -> str | None:
    """The Chromium binary to drive, or ``None`` when it is not installed."""
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name) if not name.startswith("/") else (name if Path(name).is_file() else None)
        if found:
            return found
    return None


def inspect_page(html_path: Path, screenshot: Path | None = None, width: int = 1300) -> PageReport:
    """Load ``html_path`` offline in headless Chromium; raises RuntimeError when it is not installed."""
    from playwright.sync_api import sync_playwright

    binary = chromium_path()
    if binary is None:
        raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(offline=True, viewport={"width": width, "height": 900})
            page = context.new_page()
            console: list[str] = []
            errors: list[str] = []
            requests: list[str] = []
            failed: list[str] = []
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(Path(html_path).resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(300)
            counts = page.evaluate(
                """() => ({
                    svg: document.querySelectorAll('svg').length,
                    img: document.images.length,
                    broken: Array.from(document.images)
                        .filter(i => !(i.complete && i.naturalWidth > 0)).length,
                    text: document.body ? document.body.innerText.length : 0,
                })"""
            )
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            title = page.title()
        finally:
            browser.close()
    external = [u for u in requests if not u.startswith(("file:", "data:", "about:"))]
    return PageReport(
        title=title,
        console_errors=console,
        page_errors=errors,
        external_requests=external,
        failed_requests=[u for u in failed if not u.startswith("data:")],
        svg_count=int(counts["svg"]),
        img_count=int(counts["img"]),
        broken_images=int(counts["broken"]),
        body_text_chars=int(counts["text"]),
    )
