"""Two readers, one answer: re-cutting a line at the line model's alignment, and the rule in both directions
on real drawings with the shipped models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from digit_studio.reading.ctc import AlignedSymbol
from digit_studio.reading.reader import Reader
from digit_studio.reading.segmentation import Piece
from digit_studio.reading.two_readers import BOTH, CUTS, LINE, TwoReaderRule, recut_line, touching
from digit_studio.training.data import Split
from digit_studio.training.synth import Style, draw_number, hostile_drawings, pick_digits


def block(x0: int, x1: int, y0: int = 0, y1: int = 20, kind: str = "digit") -> Piece:
    return Piece((x0, y0, x1, y1), np.ones((y1 - y0, x1 - x0), bool), kind)


def symbol(label: str, x: tuple[float, float], span: tuple[float, float]) -> AlignedSymbol:
    return AlignedSymbol(label, 0, 0.9, (0, 0), (0.0, 0.0), x, span)


def test_a_piece_under_two_symbols_is_cut_between_them() -> None:
    pair = Piece((0, 0, 40, 20), np.zeros((20, 40), bool))
    pair.mask[:, 2:16] = pair.mask[:, 24:38] = True
    pair.mask[9:11, 16:24] = True  # the stroke that joins them
    first, second = recut_line([pair], [symbol("1", (6, 10), (0, 20)), symbol("2", (28, 32), (20, 40))],
                               TwoReaderRule())
    assert touching([first, second]) == [True, True]  # the classifier's say on them: touching_weight
    assert first.box[0] == 2 and first.box[2] <= 20 and second.box[0] >= 20 and second.box[2] == 38
    assert first.kind == second.kind == "digit" and first.probs is None  # new ink: to be classified


def test_fragments_join_their_symbol_and_unread_separators_are_dropped() -> None:
    digit, fragment, dot, other = block(0, 15), block(16, 19, 0, 6), block(22, 25, 17, 20, "."), block(30, 45)
    digit.probs = other.probs = np.full(10, 0.1)
    pieces = recut_line([digit, fragment, dot, other],
                        [symbol("5", (5, 9), (0, 21)), symbol("3", (35, 40), (21, 50))], TwoReaderRule())
    assert touching(pieces) == [False, False]  # a gap of a few px between them
    assert [p.box for p in pieces] == [(0, 0, 19, 20), other.box]  # the 5's loose bar joins it; the dot is gone
    assert pieces[1] is other  # a piece the cuts read as one symbol keeps its reading


def test_a_symbol_without_ink_of_its_own_fails_the_recut() -> None:
    lone = block(0, 15)
    assert recut_line([lone], [symbol("1", (4, 6), (0, 40)), symbol("1", (9, 11), (40, 60))], TwoReaderRule()) is None


@pytest.fixture(scope="module")
def readers() -> tuple[Reader, Reader]:
    """The shipped reader with its line model, and the same models without it."""
    both = Reader.from_checkpoint()
    return both, Reader(both.model, both.vae)


def drawing(split: Split, text: str, seed: int, **style):
    rng = np.random.default_rng(seed)
    return draw_number(text, pick_digits(split, text, rng), rng, Style(canvas=(800, 400), **style))


def test_without_the_line_model_the_cuts_read_alone(readers, mnist_test: Split) -> None:
    both, cuts = readers
    image = drawing(mnist_test, "2025", 0).image
    alone = cuts.read(image)
    assert alone.lines == (None,) and {s.reader for s in alone.symbols} == {CUTS}
    assert all(s.frames is None for s in alone.symbols)
    combined = both.read(image)
    assert combined.text == alone.text == "2025" and {s.reader for s in combined.symbols} == {BOTH}
    line = combined.lines[0]
    assert line.text == line.cuts_text == "2025" and line.decided == BOTH
    frames = [s.frames for s in combined.symbols]  # each symbol's run of frames, left to right
    assert all(f0 <= f1 for f0, f1 in frames) and all(a[1] < b[0] for a, b in zip(frames, frames[1:]))


# Drawings of MNIST test digits found by scanning seeds: touching pairs the cuts misread and the line model
# reads right, and numbers with separators drawn as bench/multidigit.py's "separators" draws them, where
# the line model errs and the cuts do not.
LINE_WINS = [("4711", 0, 2), ("4711", 7, 2), ("4711", 4, 0)]
CUTS_WIN = [("679-1238", 0), ("27.5", 21), ("12.05.2024", 2)]
SEPARATORS = {"dash": (0.25, 0.8), "dash_slant_deg": 10.0, "separator_level": 0.12, "dot": (1.0, 2.5)}


@pytest.mark.parametrize(("text", "seed", "touching"), LINE_WINS)
def test_the_line_model_overrules_cuts_that_fail(readers, mnist_test: Split, text: str, seed: int,
                                                 touching: int) -> None:
    both, cuts = readers
    image = drawing(mnist_test, text, seed, touching=touching).image
    assert cuts.read(image).text != text
    reading = both.read(image)
    assert reading.text == text and reading.lines[0].decided == LINE
    line = reading.lines[0]
    assert both.rule.line_wins(line.line_odds, line.classifier_odds, line.weighed_odds, len(line.cuts_text),
                               len(line.placed))
    assert {s.reader for s in reading.symbols} == {LINE}
    boxes = [s.box for s in reading.symbols]  # every symbol has its own ink, crop and reading
    assert len(boxes) == len(text) and all(a[0] < b[0] for a, b in zip(boxes, boxes[1:]))
    assert all(s.crop.max() > 0.5 and len(s.top3) == 3 for s in reading.symbols if s.is_digit)


# Numbers of MNIST test digits drawn with every digit touching the next (found by scanning seeds): one mark
# the cuts read as a single digit, which the line model reads right and the classifier reads as digits once
# it is cut at the line model's alignment.
ONE_MARK = [("793", 19), ("2025", 26), ("858", 15)]


@pytest.mark.parametrize(("text", "seed"), ONE_MARK)
def test_a_number_written_as_one_mark_is_read_by_the_line_model(readers, mnist_test: Split, text: str,
                                                                seed: int) -> None:
    both, cuts = readers
    image = drawing(mnist_test, text, seed, touching=len(text) - 1).image
    assert len(cuts.read(image).text) == 1
    reading = both.read(image)
    line = reading.lines[0]
    assert reading.text == text and line.decided == LINE and line.classifier_odds <= both.rule.lone_margin
    assert len({s.box for s in reading.symbols}) == len(text)


def test_one_mark_read_as_a_long_number_needs_the_classifier_too() -> None:
    rule = TwoReaderRule()
    convincing = 20.0  # line odds far beyond either margin
    lone = rule.lone_margin
    assert rule.line_wins(convincing, lone, lone, 1, rule.lone_most + 1)
    assert not rule.line_wins(convincing, lone + 0.1, 0.0, 1, rule.lone_most + 1)  # a zigzag's slices, heard in full
    assert rule.line_wins(convincing, lone + 0.1, lone + 0.1, 1, rule.lone_most)  # two symbols: odds alone
    assert rule.line_wins(convincing, lone + 0.1, lone + 0.1, 2, 3)  # more than one mark: odds alone


def test_the_classifier_is_heard_less_on_touching_pieces_but_in_full_on_one_mark() -> None:
    rule = TwoReaderRule()
    assert rule.touching_weight < 1
    # Several marks: the classifier's odds on pieces cut out of touching ink are weighed down.
    just = rule.margin + 0.5
    assert rule.line_wins(just, 10.0, 10.0 * rule.touching_weight, 2, 2)
    assert not rule.line_wins(just, 10.0, 10.0, 2, 2)
    # One mark read as two digits: whether it is one or two is the classifier's question too.
    assert not rule.line_wins(rule.lone_margin + 1, 4.0, 0.0, 1, 2)
    assert rule.line_wins(rule.lone_margin + 1, 1.0, 0.0, 1, 2)


@pytest.mark.parametrize(("text", "seed"), CUTS_WIN)
def test_the_cuts_stand_where_the_line_model_errs(readers, mnist_test: Split, text: str, seed: int) -> None:
    both, cuts = readers
    image = drawing(mnist_test, text, seed, **SEPARATORS).image
    reading = both.read(image)
    line = reading.lines[0]
    assert line.text != text and cuts.read(image).text == reading.text == text
    assert line.decided == CUTS and {s.reader for s in reading.symbols} == {CUTS}
    assert not math.isnan(line.line_odds)


def test_a_margin_beyond_reach_leaves_every_line_to_the_cuts(readers, mnist_test: Split) -> None:
    both, cuts = readers
    never = TwoReaderRule(margin=math.inf, touching_margin=math.inf)
    stubborn = Reader(both.model, both.vae, line_model=both.line_model, rule=never)
    for seed in range(4):
        image = drawing(mnist_test, "4711", seed, touching=2).image
        assert stubborn.read(image).text == cuts.read(image).text


def test_marks_that_are_no_number_stay_with_the_cuts(readers, mnist_test: Split) -> None:
    """A line of flat strokes alone is not given to the line model; a lone mark is not overruled into a long
    number whose pieces the classifier does not read as digits (a zigzag the line model reads as a row of 1s,
    a scribble it reads as 2088), nor is ink overruled into a separator the cuts did not see (a filled blob
    it reads as a dot, an underline's remains it reads as a dash)."""
    both, cuts = readers
    drawings = hostile_drawings(mnist_test)
    dash = both.read(drawings["lone dash"])
    assert dash.text == "-" and dash.lines == (None,)
    for name in ("zigzag", "random scribble", "filled blob", "number with underline"):
        reading = both.read(drawings[name])
        assert reading.text == cuts.read(drawings[name]).text, name
        assert all(line is None or line.decided != LINE for line in reading.lines), name


def test_lines_whose_differing_pieces_all_touch_have_a_margin_of_their_own() -> None:
    rule = TwoReaderRule()
    assert rule.touching_margin < rule.margin
    between = (rule.touching_margin + rule.margin) / 2
    assert rule.line_wins(between, 0.0, 0.0, 2, 2, touching_only=True)
    assert not rule.line_wins(between, 0.0, 0.0, 2, 2, touching_only=False)
    assert not rule.line_wins(rule.touching_margin - 0.1, 0.0, 0.0, 2, 2, touching_only=True)
    # One mark keeps its own margin: whether it is one digit or two is not settled by the touch.
    assert not rule.line_wins(between, 0.0, 0.0, 1, 2, touching_only=True)
