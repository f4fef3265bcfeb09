"""The studio in a real headless Chromium (Debian's `chromium`, driven by playwright): pick the brush, draw a
number stroke by stroke with the mouse, and check the number the page shows, every panel drawn from that
reading (the line reader's view of each digit among them), a count typed in the variations box, the report
of what is on screen, an example that reads as soon as it is clicked, and Clear. Screenshots go to a
temporary folder, never into the checkout."""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api as playwright

from digit_studio.research.browser import pick_brush, stroke, studio_page
from digit_studio.training.synth import mouse_strokes

pytestmark = pytest.mark.slow

NUMBER = "1704"
EXAMPLE = "1984"  # examples/1984.png, the first example


def draw(page, canvas_box: dict, number: str) -> None:
    """Write `number` across the middle of the drawing area, one mouse stroke per polyline."""
    for points in mouse_strokes(number, canvas_box):
        stroke(page, points)


def assert_images_visible(page, gallery: str) -> None:
    """Every image of the gallery lies inside the gallery's visible box (none cut off by its frame). Each is
    brought into view and measured once it has loaded: an image still loading has no height yet."""
    for image in page.locator(f"{gallery} img").all():
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalHeight > 0", arg=image.element_handle(),
                               timeout=30_000)
        frame = page.locator(f"{gallery} .grid-wrap").first.bounding_box() or page.locator(gallery).bounding_box()
        box = image.bounding_box()
        assert box is not None and box["height"] > 10, f"{gallery}: an image is not shown"
        assert box["y"] >= frame["y"] - 1 and box["y"] + box["height"] <= frame["y"] + frame["height"] + 1, (
            f"{gallery}: an image ({box}) is cut off by its frame ({frame})")


@contextlib.contextmanager
def brush_in_hand(url: str, width: int, height: int) -> Iterator[tuple[playwright.Page, dict]]:
    """The studio in a fresh Chromium page of this size, the brush picked; yields the page and the drawing
    canvas's box."""
    with studio_page(url, width, height) as page:
        yield page, pick_brush(page)


def test_draw_a_number_in_chromium(studio_url: str, tmp_path: Path) -> None:
    with brush_in_hand(studio_url, 1280, 1100) as (page, box):
        draw(page, box, NUMBER)
        number = page.locator("#reading .number")
        playwright.expect(number).to_have_text(NUMBER, timeout=30_000)
        playwright.expect(page.locator("#reading .digit")).to_have_count(len(NUMBER))
        page.locator("#explanations img").nth(len(NUMBER) - 1).wait_for(timeout=30_000)
        assert_images_visible(page, "#explanations")
        # the line model reads the line whole too: its view of every digit, under the explanations
        page.locator("#line-view img").nth(len(NUMBER) - 1).wait_for(timeout=30_000)
        assert_images_visible(page, "#line-view")
        page.screenshot(path=tmp_path / "why.png", full_page=True)

        page.get_by_role("tab", name="What else").click()
        playwright.expect(page.locator("#variations img")).to_have_count(len(NUMBER), timeout=30_000)
        page.locator("#walk img").wait_for(timeout=30_000)  # from the first digit to the last
        assert_images_visible(page, "#variations")
        count = page.get_by_label("number input for Variations per digit")
        count.fill("2")
        count.press("Enter")
        page.wait_for_timeout(3_000)  # the variations are redrawn from the reading on screen
        page.screenshot(path=tmp_path / "what_else.png", full_page=True)

        page.get_by_role("tab", name="Report").click()
        page.get_by_role("button", name="Make report").click()
        with page.expect_download(timeout=30_000) as download:
            page.get_by_role("button", name="Download report").click()
        with zipfile.ZipFile(download.value.path()) as report:
            analysis = json.loads(report.read("analysis.json"))
            assert analysis["text"] == NUMBER
            assert all(len(d["variations"]) == 2 for d in analysis["digits"])  # the typed count
            assert "variations/interpolation.png" in report.namelist()

        # An example reads as soon as it is on the canvas, and the old report is withdrawn.
        page.locator("#examples img").first.click()
        playwright.expect(number).to_have_text(EXAMPLE, timeout=30_000)
        playwright.expect(page.get_by_role("button", name="Download report")).to_be_hidden()

        # Clear: every panel back to its empty state, no error.
        page.get_by_role("button", name="Clear canvas").click()
        playwright.expect(page.locator("#reading .prompt")).to_contain_text("Draw a number", timeout=30_000)
        page.wait_for_timeout(2_000)
        assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()
        for gallery in ("#explanations", "#line-view", "#variations"):
            assert page.locator(f"{gallery} img").count() == 0, gallery
        for tab in ("Why", "What else", "Report", "About the model"):
            page.get_by_role("tab", name=tab).click()
            page.screenshot(path=tmp_path / f"1280_{tab}.png", full_page=True)


def test_a_phone_gets_the_whole_canvas(studio_url: str, tmp_path: Path) -> None:
    """390 px wide: the canvas spans the screen, the tool palette stays off the drawing, the explanation tiles
    fit, and every picture has a description."""
    with brush_in_hand(studio_url, 390, 844) as (page, box):
        assert box["width"] >= 0.9 * 390, box
        strokes = [point for line in mouse_strokes(NUMBER, box) for point in line]
        palette = page.locator("#sketchpad .toolbar-wrap").bounding_box()
        margin = 10  # half the brush
        ink = (min(x for x, _ in strokes) - margin, min(y for _, y in strokes) - margin,
               max(x for x, _ in strokes) + margin, max(y for _, y in strokes) + margin)
        assert (palette["x"] > ink[2] or palette["x"] + palette["width"] < ink[0]
                or palette["y"] > ink[3] or palette["y"] + palette["height"] < ink[1]), (palette, ink)
        draw(page, box, NUMBER)
        playwright.expect(page.locator("#reading .number")).to_have_text(NUMBER, timeout=30_000)
        page.locator("#explanations img").nth(len(NUMBER) - 1).wait_for(timeout=30_000)
        assert_images_visible(page, "#explanations")
        for image in page.locator("#explanations img").all():
            tile = image.bounding_box()
            assert tile["x"] >= 0 and tile["x"] + tile["width"] <= 390, f"a tile runs off the screen: {tile}"
        page.screenshot(path=tmp_path / "390_Why.png", full_page=True)
        page.get_by_role("tab", name="What else").click()
        playwright.expect(page.locator("#variations img")).to_have_count(len(NUMBER), timeout=30_000)
        assert_images_visible(page, "#variations")
        page.screenshot(path=tmp_path / "390_What else.png", full_page=True)
        undescribed = [img.get_attribute("src") for img in page.locator("img").all()
                       if not (img.get_attribute("alt") or "").strip()]
        assert not undescribed, f"images without alt text: {undescribed}"
        assert page.locator("#examples img").first.get_attribute("alt") == "Example: the number 1984 handwritten"
