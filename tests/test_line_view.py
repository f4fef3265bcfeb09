"""The line reader's view in the studio: the CTC line model's map of each digit over its whole line image,
its faithfulness, which reader decided each digit, and a studio without the line model."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digit_studio.explain.line_view import line_views
from digit_studio.studio.analysis import Analysis, Studio
from digit_studio.studio.render import render
from digit_studio.studio.report import write_report
from digit_studio.training.synth import Style, draw_number, pick_digits

# Drawn from MNIST test digits with touching pairs; with the shipped models the line model overrules the
# cuts on the first (the cuts read 3141 as three symbols).
NUMBERS = ("3141", "27059", "860", "4471")


@pytest.fixture(scope="module")
def studio() -> Studio:
    return Studio.from_checkpoints(explainers=1)


@pytest.fixture(scope="module")
def drawings(mnist_test) -> list[dict]:
    rng = np.random.default_rng(0)
    return [draw_number(text, pick_digits(mnist_test, text, rng), rng, Style(canvas=(800, 400), touching=2))
            .sketchpad_value() for text in NUMBERS]


@pytest.fixture(scope="module")
def analyses(studio: Studio, drawings: list[dict]) -> list[Analysis]:
    return [studio.analyze(d, "gradcam", variations=0) for d in drawings]


def test_maps_cover_the_line_image(analyses: list[Analysis]) -> None:
    assert [a.reading.text for a in analyses] == list(NUMBERS)
    for analysis in analyses:
        assert "line_view" in analysis.timings_ms
        for d in analysis.digits:
            view, line = d.line_view, analysis.reading.lines[d.symbol.line]
            assert view is not None and line is not None
            assert view.map.shape == tuple(line.image.image.shape)
            assert view.map.min() >= 0 and view.map.max() == pytest.approx(1)
            first, last = d.symbol.frames
            assert first <= view.frame <= last  # the frame explained lies in the digit's own window
            assert set(view.faithfulness) == {"deletion_auc", "random_deletion_auc", "insertion_auc",
                                              "random_insertion_auc"}


def test_maps_are_deterministic(studio: Studio, analyses: list[Analysis]) -> None:
    analysis = analyses[1]
    again = line_views(studio.reader.line_model, analysis.reading.lines[0], [d.symbol for d in analysis.digits])
    for d, view in zip(analysis.digits, again):
        np.testing.assert_allclose(view.map, d.line_view.map, atol=1e-5)
        assert view.frame == d.line_view.frame and view.faithfulness == d.line_view.faithfulness


def test_maps_beat_a_random_ink_order(analyses: list[Analysis]) -> None:
    scores = [d.line_view.faithfulness for a in analyses for d in a.digits]
    assert np.mean([f["deletion_auc"] for f in scores]) < np.mean([f["random_deletion_auc"] for f in scores])
    assert np.mean([f["insertion_auc"] for f in scores]) > np.mean([f["random_insertion_auc"] for f in scores])


def test_each_digit_says_which_reader_decided_it(analyses: list[Analysis]) -> None:
    decided = [d.symbol.reader for a in analyses for d in a.digits]
    assert "line" in decided and set(decided) <= {"line", "cuts", "both"}
    by_line = next(a for a in analyses if any(d.symbol.reader == "line" for d in a.digits))
    data = json.loads(json.dumps(by_line.to_dict()))
    for digit, d in zip(data["digits"], by_line.digits):
        assert digit["reader"] == d.symbol.reader
        # the classifier's map explains the label read, also where the line model decided it
        assert digit["explanation"]["target"] == int(digit["label"])
        assert digit["line_view"]["frame"] == d.line_view.frame
        assert np.array(digit["line_view"]["map"]).shape == d.line_view.map.shape
    assert "map" not in by_line.to_dict(arrays=False)["digits"][0]["line_view"]
    assert {d["reader"] for d in data["digits"]} == {"line"}


def test_pictures_and_report(analyses: list[Analysis], tmp_path: Path) -> None:
    analysis = analyses[0]
    pictures = render(analysis)
    assert len(pictures.line_views) == len(analysis.digits)
    image, caption = pictures.line_views[0]
    line = analysis.reading.lines[0].image.image
    assert image.dtype == np.uint8 and image.shape == (3 * line.shape[0], 3 * line.shape[1], 3)
    assert caption.startswith(f"{analysis.digits[0].symbol.label} · line model decided · del ")
    path = write_report(tmp_path / "report.zip", analysis, pictures)
    with zipfile.ZipFile(path) as archive:
        assert sum(n.startswith("line_views/") for n in archive.namelist()) == len(analysis.digits)


def test_a_bare_reading_has_no_line_views(studio: Studio, drawings: list[dict]) -> None:
    read = studio.analyze(drawings[0], method=None, variations=0)
    assert all(d.line_view is None for d in read.digits) and "line_view" not in read.timings_ms
    assert all(line is not None for line in read.reading.lines)  # read by both, only not explained


def test_a_studio_without_the_line_model(drawings: list[dict]) -> None:
    studio = Studio.from_checkpoints(explainers=1, line_reader=None)
    analysis = studio.analyze(drawings[1], "gradcam", variations=0)
    assert analysis.reading.text == NUMBERS[1]
    assert all(line is None for line in analysis.reading.lines)
    assert all(d.line_view is None and d.explanation is not None for d in analysis.digits)
    assert {d["reader"] for d in analysis.to_dict()["digits"]} == {"cuts"} and not render(analysis).line_views
