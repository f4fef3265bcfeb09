"""The studio in Debian's headless Chromium, driven by playwright (its own browser download fails here), for
the browser tests, bench/browser.py and the studio's picture."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

from playwright import sync_api as playwright

from digit_studio.errors import DigitStudioError


@contextlib.contextmanager
def studio_page(url: str, width: int, height: int) -> Iterator[playwright.Page]:
    """A fresh Chromium page of this size showing the studio at `url`; the browser closes with the block."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise DigitStudioError("no `chromium` on PATH: install Debian's package (apt-get install -y chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            yield page
        finally:
            browser.close()


def pick_brush(page: playwright.Page) -> dict:
    """Pick the sketchpad's brush (gradio 6 draws nothing before it) and return the drawing canvas's box."""
    page.get_by_role("button", name="Brush").click()
    canvas = page.locator(".pixi-target canvas").first
    canvas.wait_for()
    return canvas.bounding_box()


def stroke(page: playwright.Page, points: list[tuple[float, float]]) -> None:
    """One pen stroke with the mouse through `points` (page pixels)."""
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point)
    page.mouse.up()
