"""What a person waits for in the browser: from the end of a stroke to the new reading on screen, and to
the explanation gallery redrawn.

    flock /tmp/digit_cpu.lock python bench/browser.py [--repeats 15] [--number 170417]

`python demo.py` on a free loopback port, driven by Debian's headless Chromium (playwright), the way the
browser test draws: pick the brush, write all but the last digit with the mouse, wait until the studio has
read and explained them, then write the last digit in one stroke and time in the page, from its pointer release, until
`#reading .number` shows the whole number and until the last digit's explanation tile is on screen. Then Clear and
again. The time includes what the sketchpad does in the page before anything is sent (it exports the canvas
to PNG files and uploads them); `stroke_to_first_request_ms`, until the page sends its first request, is
that part alone, a floor no server can go under. Bars (issue 12): reading median <= 250 ms, gallery median <= 600 ms.
Writes results/bench/browser.json.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.errors import DigitStudioError

OUT = Path("results/bench/browser.json")
BARS = {"stroke_to_reading_ms": 250, "stroke_to_gallery_ms": 600}
VIEWPORT = {"width": 1400, "height": 1100}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 1),
            "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1)}


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--number", default="170417", help="digits of synth.MOUSE_DIGITS; the last is one stroke")
    args = parser.parse_args()
    from playwright import sync_api as playwright

    from digit_studio.research.browser import pick_brush, stroke, studio_page
    from digit_studio.research.server import running_studio
    from digit_studio.training.synth import MOUSE_DIGITS, mouse_strokes

    if len(MOUSE_DIGITS[args.number[-1]]) != 1:
        raise DigitStudioError(f"the last digit must be drawn in one stroke: {args.number[-1]} takes more")
    reading_ms: list[float] = []
    sent_ms: list[float] = []  # until the page sends its first request: the sketchpad's own work
    gallery_ms: list[float] = []
    with running_studio() as server, studio_page(server.url, **VIEWPORT) as page:
        box = pick_brush(page)
        *first, last = mouse_strokes(args.number, box)
        number, tiles = page.locator("#reading .number"), page.locator("#explanations img")

        for repeat in range(args.repeats + 1):  # the first round warms the server and the page up
            for points in first:
                stroke(page, points)
            playwright.expect(number).to_have_text(args.number[:-1], timeout=60_000)
            playwright.expect(tiles).to_have_count(len(args.number) - 1, timeout=60_000)
            page.wait_for_timeout(1_000)  # every job of the earlier strokes is done
            # Timed in the page (performance.now), from the pointer's release to the DOM changes, so that
            # the measuring itself puts no load on the machine.
            page.evaluate("""([text, tiles]) => {
                const t = window.strokeTimes = {};
                performance.setResourceTimingBufferSize(100000);  // a stroke sends dozens of uploads
                performance.clearResourceTimings();
                document.addEventListener('pointerup', () => { t.up = performance.now(); }, {once: true, capture: true});
                new MutationObserver((_, observer) => {
                    const shown = document.querySelector('#reading .number');
                    if (!t.read && shown && shown.textContent.trim() === text) t.read = performance.now();
                    if (!t.gallery && document.querySelectorAll('#explanations img').length === tiles)
                        t.gallery = performance.now();
                    if (t.read && t.gallery) observer.disconnect();
                }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
            }""", [args.number, len(args.number)])
            stroke(page, last)
            try:
                page.wait_for_function("() => window.strokeTimes.read && window.strokeTimes.gallery", timeout=60_000,
                                       polling=200)
            except playwright.TimeoutError:
                shown = number.inner_text() if number.count() else "nothing"
                raise DigitStudioError(f"round {repeat}: no reading of {args.number} within 60 s (shows {shown})")
            times = page.evaluate("""() => ({...window.strokeTimes, sent: Math.min(...performance
                .getEntriesByType('resource').filter(e => e.name.includes('/gradio_api/') &&
                !e.name.includes('heartbeat') && e.startTime > window.strokeTimes.up).map(e => e.startTime))})""")
            if repeat:
                reading_ms.append(times["read"] - times["up"])
                gallery_ms.append(times["gallery"] - times["up"])
                sent_ms.append(times["sent"] - times["up"])
                print(f"round {repeat}: first request {sent_ms[-1]:.0f} ms, reading {reading_ms[-1]:.0f} ms, "
                      f"gallery {gallery_ms[-1]:.0f} ms", flush=True)
            page.get_by_role("button", name="Clear canvas").click()
            playwright.expect(page.locator("#reading .prompt")).to_be_visible(timeout=60_000)
            playwright.expect(tiles).to_have_count(0, timeout=60_000)
            pick_brush(page)

    report = {
        "stroke_to_reading_ms": summary(reading_ms),
        "stroke_to_gallery_ms": summary(gallery_ms),
        "stroke_to_first_request_ms": summary(sent_ms),
        "bars": {f"{name}.median<={bar}": summary(values)["median"] <= bar
                 for (name, bar), values in zip(BARS.items(), (reading_ms, gallery_ms))},
        "setup": {"number": args.number, "repeats": args.repeats, "viewport": f"{VIEWPORT['width']}x{VIEWPORT['height']}",
                  "browser": "chromium (headless)"},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    run_script(main)
