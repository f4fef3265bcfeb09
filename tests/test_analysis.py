"""The studio's pipeline without the UI: analysis, pictures, the report, and concurrent use of one Studio."""

from __future__ import annotations

import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from safetensors.torch import save_file

from digit_studio.checkpoint import PLAIN_KEYS, read_checkpoint
from digit_studio.errors import DigitStudioError
from digit_studio.studio.analysis import NOT_A_DIGIT_ABOVE, Studio
from digit_studio.studio.render import crop_region, render
from digit_studio.studio.report import write_report
from digit_studio.training.synth import draw_number, pick_digits

ROOT = Path(__file__).resolve().parent.parent
SIX_DIGITS = ROOT / "examples" / "314159.png"
WITH_POINT = ROOT / "examples" / "27_5.png"


@pytest.fixture(scope="module")
def studio() -> Studio:
    return Studio.from_checkpoints(explainers=2)


@pytest.fixture(scope="module")
def six(studio: Studio):
    return studio.analyze(str(SIX_DIGITS), "gradcam", variations=4)


def test_analysis_of_a_six_digit_drawing(six) -> None:
    assert six.reading.text == "314159"
    assert six.message is None and not six.reading.uncertain
    assert [d.symbol.label for d in six.digits] == list("314159")
    for d in six.digits:
        assert d.explanation is not None and d.explanation.target == int(d.symbol.label)
        assert d.explanation.map.shape == (28, 28) and 0 <= d.explanation.map.min() and d.explanation.map.max() == 1
        assert set(d.explanation.faithfulness) == {"deletion_auc", "random_deletion_auc", "insertion_auc",
                                                   "random_insertion_auc"}
        assert d.variations.shape == (4, 28, 28) and 0 <= d.variations.min() and d.variations.max() <= 1
        assert not d.not_a_digit and d.atypicality < NOT_A_DIGIT_ABOVE
    # Grad-CAM beats a random ink order on average (results/bench/explain_quality.json: 74% of digits).
    deletion = np.mean([d.explanation.faithfulness["deletion_auc"] for d in six.digits])
    assert deletion < np.mean([d.explanation.faithfulness["random_deletion_auc"] for d in six.digits])
    # read includes atypicality; line_view is the line model's map of each digit
    assert set(six.timings_ms) == {"read", "explain", "line_view", "variations", "total"}


def test_json_is_complete_and_serialisable(six) -> None:
    data = json.loads(json.dumps(six.to_dict()))
    assert data["text"] == "314159" and data["method"] == "gradcam" and len(data["digits"]) == 6
    digit = data["digits"][0]
    assert np.array(digit["explanation"]["map"]).shape == (28, 28)
    assert np.array(digit["variations"]).shape == (4, 28, 28)
    assert digit["top3"][0]["label"] == digit["label"] and digit["reader"] in {"cuts", "both", "line"}
    for d in data["digits"]:  # the classifier's top 3; its first is the symbol's confidence unless the line decided
        assert [t["probability"] for t in d["top3"]] == sorted((t["probability"] for t in d["top3"]), reverse=True)
        assert d["reader"] == "line" or d["top3"][0] == {"label": d["label"], "probability": d["confidence"]}
    assert "map" not in json.loads(json.dumps(six.to_dict(arrays=False)))["digits"][0]["explanation"]


def test_why_not_explains_the_runner_up_and_separators_get_no_map(studio: Studio) -> None:
    analysis = studio.analyze(str(WITH_POINT), "hirescam", why_not=True, variations=0)
    assert analysis.reading.text == "27.5"
    assert [d.explanation.target for d in analysis.digits] == [int(d.symbol.top3[1][0]) for d in analysis.digits]
    assert analysis.to_dict()["separators"][0]["label"] == "."
    assert all(d.variations.shape == (0, 28, 28) for d in analysis.digits)


def test_variations_are_reproducible_per_seed(studio: Studio) -> None:
    first, again, other = (studio.analyze(str(WITH_POINT), None, variations=3, seed=s) for s in (0, 0, 1))
    assert np.array_equal(first.digits[0].variations, again.digits[0].variations)
    assert not np.allclose(first.digits[0].variations, other.digits[0].variations)
    calm = studio.analyze(str(WITH_POINT), None, variations=3, temperature=0)
    assert np.allclose(calm.digits[0].variations[0], calm.digits[0].variations[1])


@pytest.mark.parametrize("empty", [None, np.full((400, 800, 3), 255, np.uint8),
                                   {"background": None, "layers": [], "composite": None}])
def test_empty_canvas_asks_for_a_number(studio: Studio, empty) -> None:
    analysis = studio.analyze(empty)
    assert analysis.digits == () and analysis.message == "Draw a number"
    assert json.loads(json.dumps(analysis.to_dict()))["text"] == ""
    assert render(analysis).overlay is None


def test_scribble_is_flagged_as_not_a_digit(studio: Studio) -> None:
    image = Image.new("L", (400, 400), 255)
    pen = ImageDraw.Draw(image)
    for x in (150, 250):
        pen.line([(x, 60), (x, 340)], fill=0, width=14)
        pen.line([(60, x), (340, x)], fill=0, width=14)
    analysis = studio.analyze(np.asarray(image), None, variations=0)
    # Read whole or cut in pieces, a scribble is flagged: a piece looks like no digit, and the message says so.
    flagged = [i for i, d in enumerate(analysis.digits, start=1) if d.not_a_digit]
    assert flagged and all(analysis.digits[i - 1].atypicality > studio.not_a_digit_above for i in flagged)
    assert analysis.message is not None and f"#{flagged[0]}" in analysis.message
    assert "unlike the digits the model learned from" in analysis.message


def test_threshold_travels_with_the_vae(tmp_path: Path) -> None:
    """The not-a-digit threshold is the one the VAE benchmark measured, read from the VAE checkpoint (not
    from a results file); a VAE without it gets the documented default."""
    measured = json.loads((ROOT / "results/bench/vae_quality.json").read_text())["atypicality"]
    shipped = Studio.from_checkpoints(ROOT / "checkpoints/classifier.safetensors", ROOT / "checkpoints/vae.safetensors")
    assert shipped.not_a_digit_above == pytest.approx(measured["digit_95th_percentile"], abs=0.01)
    tensors, meta = read_checkpoint(ROOT / "checkpoints/vae.safetensors", "vae")
    bare = tmp_path / "vae.safetensors"
    save_file(tensors, str(bare), metadata={key: value if key in PLAIN_KEYS else json.dumps(value)
                                            for key, value in meta.items() if key != "not_a_digit_above"})
    assert Studio.from_checkpoints(ROOT / "checkpoints/classifier.safetensors", bare).not_a_digit_above == NOT_A_DIGIT_ABOVE


@pytest.mark.parametrize("options, message", [
    ({"method": "saliency"}, "unknown explanation method"),
    ({"variations": -1}, "variations must be"),
    ({"variations": 17}, "variations must be"),
    ({"variations": True}, "variations must be"),
    ({"temperature": float("nan")}, "temperature must be"),
    ({"temperature": "hot"}, "temperature must be"),
])
def test_bad_options_are_refused_clearly(studio: Studio, options: dict, message: str) -> None:
    with pytest.raises(DigitStudioError, match=message):
        studio.analyze(str(WITH_POINT), **options)


def test_concurrent_requests_share_one_studio(studio: Studio, mnist_test) -> None:
    """Threads reading and explaining different drawings at once get exactly what each would get alone."""
    rng = np.random.default_rng(3)
    drawings = [draw_number(t, pick_digits(mnist_test, t, rng), rng).sketchpad_value() for t in ("41", "7", "905")]
    alone = [studio.analyze(d, "gradcam", variations=2) for d in drawings]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda d: studio.analyze(d, "gradcam", variations=2), drawings * 4))
    for solo, crowd in zip(alone * 4, together):
        assert crowd.reading.text == solo.reading.text
        for a, b in zip(solo.digits, crowd.digits):
            np.testing.assert_allclose(a.explanation.map, b.explanation.map, atol=1e-5)
            np.testing.assert_array_equal(a.variations, b.variations)


def test_pictures(six) -> None:
    pictures = render(six)
    assert len(pictures.explanations) == len(pictures.variations) == 6
    image, caption = pictures.explanations[0]
    assert image.dtype == np.uint8 and image.shape == (112, 112, 3)
    assert caption.startswith("why 3 · del ")
    assert pictures.variations[0][0].shape[0] == 112 and pictures.variations[0][1].startswith("3: as read")
    assert pictures.overlay.shape == (*six.ink.shape, 3)
    # Each map lands on its own digit: the overlay is coloured inside the digit's box, white far away.
    x0, y0, x1, y1 = (v // six.scale for v in six.digits[0].symbol.box)
    region = pictures.overlay[y0:y1, x0:x1].astype(int)
    assert (np.abs(region[..., 0] - region[..., 2]) > 60).any()
    assert (pictures.overlay[:20, :20] == 255).all()
    # The crop's square contains the symbol's box.
    rx0, ry0, rx1, ry1 = crop_region(six.digits[0], six.scale)
    assert rx0 <= x0 and ry0 <= y0 and rx1 >= x1 and ry1 >= y1


def test_interpolation(studio: Studio, six) -> None:
    walk = studio.interpolate(six, 0, 5, steps=7)
    assert walk.shape == (7, 28, 28) and 0 <= walk.min() and walk.max() <= 1
    with pytest.raises(DigitStudioError, match="pick two of the 6 digits"):
        studio.interpolate(six, 0, 6)


def test_report_holds_everything(six, tmp_path: Path) -> None:
    pictures = render(six)
    path = write_report(tmp_path / "report.zip", six, pictures, pictures.variations[0][0])
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert json.loads(archive.read("analysis.json"))["text"] == "314159"
        drawing = Image.open(archive.open("drawing.png"))
        assert drawing.size == (six.ink.shape[1], six.ink.shape[0])
    assert "explanations/all_digits_on_drawing.png" in names and "variations/interpolation.png" in names
    assert sum(n.startswith("explanations/digit_") for n in names) == 6
    assert sum(n.startswith("variations/digit_") for n in names) == 6


def test_about_page_shows_measured_figures() -> None:
    from digit_studio.studio.about import about_markdown

    evaluation = json.loads((ROOT / "results/classifier/evaluation.json").read_text())
    text = about_markdown(ROOT / "checkpoints/classifier.safetensors", ROOT / "checkpoints/vae.safetensors")
    assert f"| {evaluation['accuracy']:.2%} |" in text and "Test negative ELBO" in text
    assert "Test accuracy" not in about_markdown(ROOT / "missing.safetensors", ROOT / "missing.safetensors",
                                                 ROOT / "missing_results")
    assert "Line reader" not in text  # only where a line checkpoint is named


def test_about_page_shows_the_line_reader() -> None:
    from digit_studio.studio.about import about_markdown

    line_reader = ROOT / "checkpoints/line_reader.safetensors"
    test = read_checkpoint(line_reader, "line_reader")[1]["metrics"]["test"]
    text = about_markdown(ROOT / "checkpoints/classifier.safetensors", ROOT / "checkpoints/vae.safetensors",
                          line_reader=line_reader)
    assert "### Line reader" in text and f"| {test['overall']['exact']:.1%} |" in text
    assert f"| {test['touching']['exact']:.1%} |" in text and f"12: {test['symbols_12']['exact']:.0%}" in text
    bench = json.loads((ROOT / "results/bench/multidigit.json").read_text())["overall"]
    assert f"| {bench['exact_line_model_alone']:.1%} |" in text
    # the bench's "exact" is both readers' only in a run that also reports the cuts alone
    assert ("both readers" in text) == ("exact_segmentation_alone" in bench)
    missing = about_markdown(ROOT / "checkpoints/classifier.safetensors", ROOT / "checkpoints/vae.safetensors",
                             line_reader=ROOT / "missing.safetensors")
    assert "Line reader" not in missing
