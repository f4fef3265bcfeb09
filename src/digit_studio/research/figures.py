"""`python -m digit_studio figures`: regenerate the README's pictures from the shipped checkpoints (a
maintainer's command; tests never write into the checkout).

- evaluation: results/classifier/ (confusion matrix, reliability diagram, confident mistakes, Grad-CAM of
  the mistakes) and results/test_predictions.png, from the whole MNIST test set;
- explanations: results/explanations.png and results/explanations_drawing.png;
- studio: results/studio.png, the studio in headless Chromium reading examples/314159.png.

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


FIGURES: dict[str, Callable[[Path], list[Path]]] = {
    "evaluation": evaluation, "explanations": explanations, "studio": studio}


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
