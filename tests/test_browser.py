"""The studio in a real headless Chromium (Debian's `chromium`, driven by playwright): pick the brush, draw a
number stroke by stroke with the mouse, and check the number the page shows. Saves results/studio.png."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from playwright import sync_api as playwright

CHROMIUM = shutil.which("chromium")  # Debian's build; playwright's own browser download is not used

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "results" / "studio.png"

# Digits as polylines in a unit box (x right, y down), drawn as separate strokes: unambiguous shapes.
STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "1": [[(0.35, 0.2), (0.55, 0.0), (0.55, 1.0)]],
    "7": [[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)]],
    "0": [[(0.5, 0.0), (0.15, 0.2), (0.05, 0.5), (0.15, 0.8), (0.5, 1.0), (0.85, 0.8), (0.95, 0.5), (0.85, 0.2),
           (0.5, 0.0)]],
    "4": [[(0.6, 0.0), (0.0, 0.65), (1.0, 0.65)], [(0.7, 0.3), (0.7, 1.0)]],
}
NUMBER = "1704"


def draw(page, canvas_box: dict, number: str) -> None:
    """Write `number` across the middle of the drawing area, one mouse stroke per polyline."""
    height = 0.45 * canvas_box["height"]
    width, gap = 0.5 * height, 0.35 * height
    left = canvas_box["x"] + (canvas_box["width"] - len(number) * (width + gap) + gap) / 2
    top = canvas_box["y"] + (canvas_box["height"] - height) / 2
    for i, digit in enumerate(number):
        x0 = left + i * (width + gap)
        for line in STROKES[digit]:
            points = [(x0 + x * width, top + y * height) for x, y in line]
            page.mouse.move(*points[0])
            page.mouse.down()
            for point in points[1:]:
                page.mouse.move(*point)
            page.mouse.up()


def test_draw_a_number_in_chromium(studio_url: str) -> None:
    if CHROMIUM is None:
        pytest.fail("no `chromium` on PATH: install Debian's package (apt-get install -y chromium), as .ci/run does")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(studio_url)
            page.get_by_role("button", name="Brush").click()
            canvas = page.locator(".pixi-target canvas").first
            canvas.wait_for()
            draw(page, canvas.bounding_box(), NUMBER)
            number = page.locator("#reading .number")
            playwright.expect(number).to_have_text(NUMBER, timeout=30_000)
            playwright.expect(page.locator("#reading .digit")).to_have_count(len(NUMBER))
            page.locator("#explanations img").nth(len(NUMBER) - 1).wait_for(timeout=30_000)
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=SCREENSHOT, full_page=True)

            page.get_by_role("tab", name="What else").click()
            playwright.expect(page.locator("#variations img")).to_have_count(len(NUMBER), timeout=30_000)
            page.locator("#walk img").wait_for(timeout=30_000)  # from the first digit to the last

            page.get_by_role("tab", name="Report").click()
            page.get_by_role("button", name="Make report").click()
            with page.expect_download(timeout=30_000) as download:
                page.get_by_role("button", name="Download report").click()
            with zipfile.ZipFile(download.value.path()) as report:
                assert json.loads(report.read("analysis.json"))["text"] == NUMBER
                assert "variations/interpolation.png" in report.namelist()
        finally:
            browser.close()
