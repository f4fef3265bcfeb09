"""`python -m digit_studio figures`: regenerate the README's pictures from the shipped checkpoints (a
maintainer's command; tests never write into the checkout).

- evaluation: results/classifier/ (confusion matrix, reliability diagram, confident mistakes, Grad-CAM of
  the mistakes) and results/test_predictions.png, from the whole MNIST test set;
- explanations: results/explanations.png and results/explanations_drawing.png;
- studio: results/studio.png, the studio in headless Chromium reading examples/314159.png;
- two_readers: results/two_readers.png, touching pairs of MNIST test digits read by the cuts alone and by
  both readers, with the line model's map of each digit over its line.

The training scripts and benchmarks write the other pictures with their figures (results/vae/,
results/bench/real_handwriting.png, results/multidigit/)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from digit_studio import resources
from digit_studio.config import DataConfig
from digit_studio.errors import DigitStudioError


def evaluation(results: Path) -> list[Path]:
    from digit_studio.models.classifier import load_classifier
    from digit_studio.training.data import load_mnist
    from digit_studio.training.evaluation import evaluate_checkpoint
    from digit_studio.training.explanation_figures import plot_misclassified_explanations

    folder = results / "classifier"
    evaluate_checkpoint(resources.CLASSIFIER, DataConfig(), folder)
    model, _ = load_classifier(resources.CLASSIFIER)
    plot_misclassified_explanations(model, load_mnist(DataConfig(), train=False), folder / "misclassified_gradcam.png")
    return [folder / "confusion_matrix.png", folder / "misclassified_gradcam.png", results / "test_predictions.png"]


def explanations(results: Path) -> list[Path]:
    from digit_studio.models.classifier import load_classifier
    from digit_studio.training.data import load_mnist
    from digit_studio.training.explanation_figures import write_explanation_figures

    model, _ = load_classifier(resources.CLASSIFIER)
    images, _ = load_mnist(DataConfig(), train=False).batch(slice(0, 16))
    return write_explanation_figures(model, images, results)


def studio(results: Path) -> list[Path]:
    from playwright import sync_api as playwright

    from digit_studio.research.browser import studio_page
    from digit_studio.research.server import running_studio

    path = results / "studio.png"
    with running_studio() as server, studio_page(server.url, 1400, 1100) as page:
        page.locator("#examples img").nth(3).click()  # 314159
        playwright.expect(page.locator("#reading .number")).to_have_text("314159", timeout=60_000)
        page.locator("#explanations img").nth(5).wait_for(timeout=60_000)
        page.wait_for_timeout(1_000)
        page.screenshot(path=path, full_page=True)
    return [path]


# Touching pairs of MNIST test digits (drawn as bench/multidigit.py's "touching" draws them) that the cuts
# misread as one digit and the line model reads right, found by scanning seeds.
TOUCHING_PAIRS = (("96", 1), ("17", 1))


def two_readers(results: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from digit_studio.reading.reader import Reader
    from digit_studio.studio.analysis import Studio
    from digit_studio.studio.render import line_view_picture
    from digit_studio.training.data import load_mnist
    from digit_studio.training.synth import Style, draw_number, pick_digits

    studio = Studio.from_checkpoints(explainers=1)
    cuts = Reader(studio.reader.model, studio.reader.vae, not_a_digit_above=studio.not_a_digit_above)
    test = load_mnist(DataConfig(), train=False)
    fig, axes = plt.subplots(len(TOUCHING_PAIRS), 4, figsize=(14, 2.8 * len(TOUCHING_PAIRS)), squeeze=False)
    for row, (text, seed) in zip(axes, TOUCHING_PAIRS):
        rng = np.random.default_rng(seed)
        drawing = draw_number(text, pick_digits(test, text, rng), rng, Style(canvas=(600, 300), touching=2))
        analysis = studio.analyze(drawing.image, "gradcam", variations=0)
        odds = analysis.reading.lines[0].line_odds
        _show_reading(row[0], drawing.image, cuts.read(drawing.image), "the cuts alone")
        _show_reading(row[1], drawing.image, analysis.reading, f"both readers (line model, {odds:+.1f} nats)")
        for ax, digit in zip(row[2:], analysis.digits):
            ax.imshow(line_view_picture(analysis, digit)[0])
            ax.set_title(f"the line model's map of its {digit.symbol.label}", fontsize=10)
            ax.axis("off")
    fig.suptitle("Touching pairs of MNIST test digits: each reading's symbols with their confidence; the line model's "
                 "map over the line it read, with the digit's frames outlined", fontsize=11)
    fig.tight_layout()
    path = results / "two_readers.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def _show_reading(ax, image, reading, title: str) -> None:
    """The drawing with each symbol's box, and its label and confidence beneath: red where it is uncertain."""
    from matplotlib.patches import Rectangle

    x0s, y0s, x1s, y1s = zip(*(s.box for s in reading.symbols))
    pad = 20
    left, top = max(0, min(x0s) - pad), max(0, min(y0s) - pad)
    right, bottom = min(image.shape[1], max(x1s) + pad), min(image.shape[0], max(y1s) + pad)
    ax.imshow(image[top:bottom, left:right])
    for s in reading.symbols:
        colour = "tab:red" if s.uncertain else "tab:blue"
        x0, y0, x1, y1 = s.box
        ax.add_patch(Rectangle((x0 - left, y0 - top), x1 - x0, y1 - y0, fill=False, lw=2, ec=colour))
    ax.set_title(f"{title}: {reading.text!r}", fontsize=10)
    ax.set_xlabel("   ".join(f"{s.label} {s.confidence:.0%}" for s in reading.symbols), fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])


FIGURES: dict[str, Callable[[Path], list[Path]]] = {
    "evaluation": evaluation, "explanations": explanations, "studio": studio, "two_readers": two_readers}


def make_figures(names: list[str], results: Path = resources.RESULTS) -> None:
    """Each named figure set in turn; a set that fails is reported and the others are still made."""
    failed = []
    for name in names:
        try:
            for path in FIGURES[name](results):
                print(f"{name}: {path}", flush=True)
        except DigitStudioError as exc:
            print(f"{name}: error: {exc}", flush=True)
            failed.append(name)
    if failed:
        raise DigitStudioError(f"not made: {', '.join(failed)}")
