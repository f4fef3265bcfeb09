"""The studio's Gradio app: a thin shell over `Studio` (analysis.py) and `render` (render.py).

    demo = build_app(Studio.from_checkpoints())
    launch(demo, host=None, port=None, share=False)

API (gradio_client): `/read` and `/analyze` take a drawing as an image file (`handle_file(path)`) or as the
sketchpad's value ({"background", "layers", "composite"} of files) and return JSON; bad input of any kind
ends in a gr.Error whose message says what to send instead. The UI's own events are private.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from digit_studio import limits, resources
from digit_studio.errors import DigitStudioError
from digit_studio.generation import DEFAULT_TEMPERATURE
from digit_studio.reading.reader import DEFAULT_CLASSIFIER, DEFAULT_LINE_READER, DEFAULT_VAE
from digit_studio.reading.two_readers import LINE
from digit_studio.studio.about import CONFUSION_MATRIX, about_markdown
from digit_studio.studio.analysis import MAX_TEMPERATURE, MAX_VARIATIONS, Analysis, Studio
from digit_studio.studio.render import render, strip
from digit_studio.studio.report import write_report
from digit_studio.studio.sketchpad import bounded_sketchpad

log = logging.getLogger(__name__)

EXAMPLES = resources.EXAMPLES
CANVAS = (800, 400)  # width, height: room for a number, not a single digit
BRUSH_PX = 14  # default brush: about a tenth of a digit drawn half the canvas high, like a felt pen
# Requests that run the models, computed at once across every event and the API (one concurrency group):
# the machine's cores; more only adds context switches.
CONCURRENCY = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
QUEUE_SIZE = 64  # waiting requests beyond this are turned away with "queue full" rather than piling up
REPORTS_KEPT = 32  # newest report files kept on disk
SESSIONS_KEPT = 256  # gradio keeps each session's last values in memory (API clients never end theirs): bound it
METHOD_LABELS = {
    "Grad-CAM": "gradcam", "Grad-CAM++": "gradcam++", "HiResCAM": "hirescam",
    "Integrated Gradients": "integrated_gradients", "Occlusion": "occlusion",
}
READER_GROUP = {"concurrency_id": "reader", "concurrency_limit": CONCURRENCY}
SKETCHPAD_KEYS = {"background", "layers", "composite"}
DRAWING_HELP = ("send the drawing as an image file, gradio_client.handle_file('drawing.png'), or as the "
                "sketchpad's value {'background': file, 'layers': [files], 'composite': file}")

CSS = """
.number {font-size: 5.5rem; font-weight: 700; letter-spacing: .08em; line-height: 1.1; margin: .2rem 0;
         overflow-wrap: anywhere}
.prompt {font-size: 1.6rem; opacity: .65; padding: 1.5rem 0}
.digits {display: flex; flex-wrap: wrap; gap: .5rem}
.digit {border: 1px solid var(--border-color-primary); border-radius: .5rem; padding: .3rem .6rem; min-width: 5.5rem}
.digit b {font-size: 1.7rem}
.flag {color: #c2410c; font-weight: 600}
.by-line {color: #1d4ed8; font-weight: 600}
/* Gallery tiles are square by default, and a gallery is capped at 55% of the window's height with a scroll
   bar inside: a wide strip of variations in a square tile leaves most of it empty and pushes the rest out
   of sight. Each tile takes its picture's own height, and the galleries grow with their pictures. */
#variations .thumbnail-item, #line-view .thumbnail-item {aspect-ratio: auto; height: auto}
#variations .thumbnail-item img, #line-view .thumbnail-item img {height: auto}
#variations .grid-wrap, #explanations .grid-wrap, #line-view .grid-wrap {max-height: none; height: auto;
                                                                         overflow-y: visible}
/* A line view is a whole line at 3× (96 px high): shown at that size rather than stretched to the page's
   width, which would make each one taller than the screen. */
#line-view .thumbnail-item img {width: auto; max-width: 100%}
#line-view .grid-container {padding-top: 2.5rem}  /* the first picture clear of the gallery's label */
/* Explanation tiles: as many columns as fit, each 8.5 to 12rem wide (one digit is not blown up to the
   page's width, twelve wrap onto rows), and captions wrap instead of being cut. */
#explanations .grid-container {grid-template-columns: repeat(auto-fill, minmax(8.5rem, 12rem)) !important;
                               grid-auto-rows: auto !important}
#explanations .thumbnail-item {height: auto}
#explanations .caption-label {white-space: normal; max-width: 95%; overflow: visible; text-overflow: clip}
/* A phone: the page's margins shrink so the canvas gets the screen's width, and the sketchpad's tool
   palette sits below the drawing (the canvas is centred) instead of over its left edge. */
@media (max-width: 640px) {
  #sketchpad .toolbar-wrap {top: auto !important; bottom: 6px; left: 50% !important; transform: translateX(-50%);
                            flex-direction: row; height: auto; gap: .75rem}
  #sketchpad .toolbar-wrap .half-container {flex-direction: row; gap: .5rem; width: auto; height: auto}
  .number {font-size: 3.5rem}
}
"""
# The page's own margins sit outside the block that gradio scopes `css` to: a phone's are set here. Pictures
# that gradio renders without a description get one: an example says which number it shows, any other image
# takes its panel's label (screen readers otherwise announce "image.png").
HEAD = """<style>@media (max-width: 640px) {.gradio-container .main.app {padding-left: 4px; padding-right: 4px}}</style>
<script>
(() => {
  const describe = () => {
    for (const img of document.querySelectorAll('img:not([alt]), img[alt=""]')) {
      const example = img.closest('#examples');
      const name = decodeURIComponent((img.src || '').split('/').pop().split('?')[0]).replace(/\\.\\w+$/, '');
      const label = img.closest('.block')?.querySelector('label')?.textContent?.trim();
      img.alt = example ? `Example: the number ${name.replaceAll('_', '.')} handwritten` : (label || 'picture');
    }
  };
  new MutationObserver(describe).observe(document.documentElement,
                                         {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
})();
</script>"""

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn a DigitStudioError into a gr.Error (its message reaches the browser and gradio_client); log
    anything else on one line with an id and answer with a message that carries the id, so no request brings
    the app down."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DigitStudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except gr.Error:
            raise
        except Exception as exc:  # the last line of defence of a public server
            # One line per failure, with an id the person can quote: a public server must not fill its
            # log with a traceback per request.
            error_id = uuid.uuid4().hex[:8]
            log.error("error %s in %s: %s: %s", error_id, fn.__name__, type(exc).__name__, exc)
            raise gr.Error(f"could not process this drawing (error {error_id}); {DRAWING_HELP}",
                           print_exception=False) from None

    return wrapper  # type: ignore[return-value]


def _file_path(value: Any, what: str) -> str | None:
    """The server-side path of a file that gradio_client uploaded (gradio has checked that it lies in its
    upload folder), its header checked so that huge images are refused before being decoded."""
    if value is None:
        return None
    if not (isinstance(value, Mapping) and isinstance(value.get("meta"), Mapping)
            and value["meta"].get("_type") == "gradio.FileData" and isinstance(value.get("path"), str)):
        raise DigitStudioError(f"{what} is not an uploaded file; {DRAWING_HELP}")
    path = value["path"]
    limits.open_image(Path(path), what).close()  # header only: format, size and bytes checked before decoding
    return path


def drawing_from_payload(payload: Any) -> Any:
    """An API drawing (see the module doc) as something Reader.read takes: a path or a sketchpad dict."""
    if payload is None or isinstance(payload, Mapping) and ("meta" in payload or "path" in payload):
        return _file_path(payload, "the drawing")
    if not isinstance(payload, Mapping):
        raise DigitStudioError(f"the drawing is of type {type(payload).__name__}; {DRAWING_HELP}")
    keys = set(map(str, payload))
    if not keys or keys - SKETCHPAD_KEYS:
        raise DigitStudioError(f"a sketchpad value has the keys background, layers, composite; got {sorted(keys)}")
    layers = payload.get("layers") or []
    if not isinstance(layers, list):
        raise DigitStudioError(f"the sketchpad's layers must be a list of files, got {type(layers).__name__}")
    limits.check_layers(len(layers))
    return {
        "background": _file_path(payload.get("background"), "background"),
        "layers": [_file_path(layer, f"layer {i + 1}") for i, layer in enumerate(layers)],
        "composite": _file_path(payload.get("composite"), "composite"),
    }


def canvas(value: dict | None) -> dict | None:
    """The sketchpad's value as the reader should see it. Strokes live on layers, an example or an upload on
    the background; once the background holds a drawing, only the composite shows both."""
    if not value or value.get("background") is None or not value.get("layers"):
        return value
    background = value["background"]
    if background.min() == background.max():  # a blank canvas (white, or grey in dark mode)
        return value
    return {"background": None, "layers": [], "composite": value["composite"]}


def reading_html(analysis: Analysis) -> str:
    """The number, large, then each digit's confidence, alternatives and flags, and which digits the line
    model read where the cuts read otherwise."""
    reading = analysis.reading
    if not reading.symbols:
        return f"<div class='prompt'>{html.escape(reading.message or 'Draw a number')} ✍️</div>"
    cards = []
    for i, d in enumerate(analysis.digits, start=1):
        s = d.symbol
        # the classifier's other likely digits (its likeliest may not be the label where the line model decided)
        others = " · ".join(f"{label} {p:.0%}" for label, p in s.top3 if label != s.label)
        flags = [f for f, on in (("uncertain", s.uncertain), ("not a digit?", d.not_a_digit)) if on]
        by_line = "<br><span class='by-line'>read by the line model</span>" if s.reader == LINE else ""
        cards.append(
            f"<div class='digit'>#{i} <b>{s.label}</b> {s.confidence:.0%}<br><small>or {others}</small>"
            + "".join(f"<br><span class='flag'>⚠ {f}</span>" for f in flags) + by_line + "</div>"
        )
    number = html.escape(reading.text).replace("\n", "<br>")
    note = f"<p class='flag'>{html.escape(analysis.message)}</p>" if analysis.message else ""
    return f"<div class='number'>{number}</div>{note}<div class='digits'>{''.join(cards)}</div>"


def _digit_choices(analysis: Analysis) -> list[tuple[str, int]]:
    return [(f"#{i + 1}: {d.symbol.label}", i) for i, d in enumerate(analysis.digits)]


def _report_path(text: str) -> Path:
    """A fresh file name for a report on `text`; only the newest REPORTS_KEPT reports stay on disk."""
    folder = Path(tempfile.gettempdir()) / "digit-studio-reports"
    folder.mkdir(exist_ok=True)
    for old in sorted(folder.glob("*.zip"), key=lambda p: p.stat().st_mtime)[:-REPORTS_KEPT]:
        old.unlink(missing_ok=True)
    return folder / f"digit-studio-{re.sub(r'[^0-9]+', '_', text)}-{time.time_ns()}.zip"


def build_app(studio: Studio, examples: Path = EXAMPLES, classifier: Path | None = None,
              vae: Path | None = None, line_reader: Path | None = None) -> gr.Blocks:
    """The studio; `classifier`, `vae` and `line_reader` name the checkpoints whose figures the About tab
    shows."""
    # ---- the UI: each stroke is read once; every panel is drawn from that reading (kept in gr.State) ------
    @user_errors
    def on_drawing(value: dict | None) -> tuple[str, Analysis, Any]:
        """The reading, at once; the report of a previous drawing is withdrawn."""
        analysis = studio.analyze(canvas(value), method=None, variations=0)
        return reading_html(analysis), analysis, gr.DownloadButton(visible=False)

    def walk_of(analysis: Analysis, start: int | None, end: int | None, steps: int) -> Any:
        count = len(analysis.digits)
        if start is None or end is None or not (0 <= start < count and 0 <= end < count):
            return None
        return strip(studio.interpolate(analysis, int(start), int(end), int(steps)))

    @user_errors
    def show_panels(analysis: Analysis | None, method: str, why_not: bool, count: int, temperature: float,
                    steps: int):
        """Explanations, the line reader's view, variations and the walk (first digit to last) of the reading
        on screen."""
        analysis = elaborate(analysis, method, why_not, count, temperature)
        pictures = render(analysis)
        choices = _digit_choices(analysis)
        first, last = (choices[0][1], choices[-1][1]) if choices else (None, None)
        return (pictures.overlay, pictures.explanations, pictures.line_views, pictures.variations,
                gr.Dropdown(choices=choices, value=first), gr.Dropdown(choices=choices, value=last),
                walk_of(analysis, first, last, steps))

    def elaborate(analysis: Analysis | None, method: str, why_not: bool, count: int, temperature: float):
        if analysis is None:
            analysis = studio.analyze(None, method=None, variations=0)
        return studio.elaborate(analysis, METHOD_LABELS.get(method, method), bool(why_not), int(count),
                                float(temperature))

    @user_errors
    def show_walk(analysis: Analysis | None, start: int | None, end: int | None, steps: int):
        return None if analysis is None else walk_of(analysis, start, end, steps)

    @user_errors
    def make_report(analysis: Analysis | None, method: str, why_not: bool, count: int, temperature: float,
                    start: int | None, end: int | None, steps: int):
        """The report of the reading on screen with the options on screen (the same seed: the same maps and
        variations the panels show)."""
        if analysis is None or not analysis.digits:
            raise DigitStudioError("draw a number first: the report describes the digits read")
        analysis = elaborate(analysis, method, why_not, count, temperature)
        path = write_report(_report_path(analysis.reading.text), analysis, render(analysis),
                            walk_of(analysis, start, end, steps))
        return gr.DownloadButton(value=str(path), visible=True)

    # ---- the API ---------------------------------------------------------------------------------------
    @user_errors
    def read(drawing: dict | None) -> dict:
        """Read the number in a drawing. Returns {text, message, uncertain, not_a_digit, digits: [{label,
        confidence, top3, box, atypicality, not_a_digit, ...}], timings_ms}."""
        return studio.analyze(drawing_from_payload(drawing), method=None, variations=0).to_dict()

    @user_errors
    def analyze(drawing: dict | None, method: str = "gradcam", why_not: bool = False, variations: int = 4,
                temperature: float = DEFAULT_TEMPERATURE) -> dict:
        """Read a drawing and explain every digit: the reading, each digit's 28×28 explanation map with its
        faithfulness scores, atypicality and `variations` VAE variations (28×28 arrays of 0-255 levels, 255 = ink)."""
        return studio.analyze(drawing_from_payload(drawing), method, why_not, variations, temperature).to_dict()

    # ---- the page -------------------------------------------------------------------------------------
    with gr.Blocks(title="Digit Insight Studio", delete_cache=(1800, 3600)) as demo:
        gr.Markdown("# ✍️ Digit Insight Studio\nDraw a number: watch a small network read it, explain each "
                    "digit and imagine others like it. Pick the **brush** and write across the canvas.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                pad = bounded_sketchpad(
                    label="Your number", canvas_size=CANVAS, fixed_canvas=True, type="numpy",
                    brush=gr.Brush(default_size=BRUSH_PX, colors=["#000000"], color_mode="fixed"),
                    eraser=gr.Eraser(default_size=3 * BRUSH_PX), layers=False, elem_id="sketchpad",
                )
                read_button = gr.Button("Read", variant="primary")
            with gr.Column(scale=2):
                shown = gr.HTML(reading_html(studio.analyze(None, method=None, variations=0)), elem_id="reading")
        example_files = sorted(examples.glob("*.png"))
        if example_files:
            example_set = gr.Examples([[str(p)] for p in example_files], inputs=[pad],
                                      label="Examples: click one to read it", elem_id="examples")
        with gr.Tabs():
            with gr.Tab("Why"):
                with gr.Row():
                    method = gr.Dropdown(list(METHOD_LABELS), value="Grad-CAM", label="Explanation method")
                    why_not = gr.Checkbox(label="Why not …? Explain each digit's runner-up instead")
                overlay = gr.Image(label="Every digit's map on the drawing", type="numpy", format="png",
                                   interactive=False)
                explanations = gr.Gallery(label="One map per digit", columns=4, height="auto", format="png",
                                          object_fit="contain", elem_id="explanations")
                gr.Markdown("Under each map, its faithfulness: **del**, the deletion AUC (lower is better), and "
                            "**ins**, the insertion AUC (higher is better); a random order's in brackets.")
                line_views = gr.Gallery(label="The line reader's view", columns=1, height="auto", format="png",
                                        object_fit="contain", elem_id="line-view")
                gr.Markdown("The line model reads each line whole, without cuts: where on the line it found "
                            "each digit (the digit's frames outlined), and which reader decided the digit.")
            with gr.Tab("What else"):
                with gr.Row():
                    count = gr.Slider(1, MAX_VARIATIONS, value=4, step=1, label="Variations per digit")
                    temperature = gr.Slider(0, MAX_TEMPERATURE, value=DEFAULT_TEMPERATURE, step=0.1,
                                            label="Temperature (how far they wander)")
                variations = gr.Gallery(label="VAE variations per digit", columns=1, height="auto", format="png",
                                        object_fit="contain", elem_id="variations")
                with gr.Row():
                    start = gr.Dropdown([], label="Interpolate from digit")
                    end = gr.Dropdown([], label="to digit")
                    steps = gr.Slider(3, 16, value=8, step=1, label="Steps")
                walk = gr.Image(label="Walk in latent space", type="numpy", format="png", interactive=False,
                                elem_id="walk")
            with gr.Tab("Report"):
                gr.Markdown("One zip: the drawing, the analysis as JSON, every explanation, line view and variation "
                            "image.")
                prepare = gr.Button("Make report")
                download = gr.DownloadButton("Download report", visible=False)
            with gr.Tab("About the model"):
                gr.Markdown(about_markdown(Path(classifier or DEFAULT_CLASSIFIER), Path(vae or DEFAULT_VAE),
                                           line_reader=Path(line_reader or DEFAULT_LINE_READER)))
                if CONFUSION_MATRIX.is_file():
                    gr.Image(str(CONFUSION_MATRIX), label="Confusion matrix, MNIST test set", interactive=False)

        # The reading on screen, read once per stroke; only a new reading replaces it (a panel job that ends
        # after a newer reading must not bring an older one back).
        current = gr.State(None)
        options = [current, method, why_not, count, temperature, steps]
        panels = [overlay, explanations, line_views, variations, start, end, walk]
        private = {"api_visibility": "private", **READER_GROUP}
        # `change`, not `input`: the sketchpad fires `input` when a stroke ends, before it has exported the
        # stroke, so `input` sends the drawing as it was one stroke earlier. `change` follows the export
        # (strokes, undo, eraser, Clear); always_last folds a burst into one job. An example put on the
        # canvas fires neither, so its own event reads it.
        drawn = [read_button.click, pad.change]
        if example_files:
            drawn.append(example_set.load_input_event.then)
        for trigger in drawn:
            trigger(on_drawing, pad, [shown, current, download], trigger_mode="always_last",
                    show_progress="hidden", **private).then(
                show_panels, options, panels, trigger_mode="always_last", show_progress="minimal", **private)
        for control in (method.change, why_not.change, count.change, temperature.change):
            control(show_panels, options, panels, trigger_mode="always_last", show_progress="minimal", **private)
        # Only a person's choice redraws the walk (`input`): the choices that follow a new reading come
        # with their walk, and a stale choice must not be sent against the new reading.
        for control in (start.input, end.input, steps.release):
            control(show_walk, [current, start, end, steps], walk, trigger_mode="always_last",
                    show_progress="minimal", **private)
        prepare.click(make_report, [current, method, why_not, count, temperature, start, end, steps], download,
                      **private)

        gr.api(read, api_name="read", **READER_GROUP)
        gr.api(analyze, api_name="analyze", **READER_GROUP)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, share: bool = False) -> None:
    """Serve the studio; host and port default to GRADIO_SERVER_NAME/PORT (as on Hugging Face Spaces), else
    127.0.0.1:7860."""
    demo.launch(server_name=host, server_port=port, share=share, css=CSS, max_file_size="20mb",
                head=HEAD, theme=gr.themes.Soft(), show_error=True, state_session_capacity=SESSIONS_KEPT)
