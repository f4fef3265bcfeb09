"""CTC decoding, sequence probability and alignment on hand-made frame probabilities."""

from __future__ import annotations

import math

import pytest
import torch

from digit_studio.models.line_reader import ALPHABET, NUM_CLASSES
from digit_studio.reading.ctc import align, best_path_runs, greedy_decode, sequence_log_prob

_ = "_"  # the blank, in frame strings below


def frames(path: str, sure: float = 0.9) -> torch.Tensor:
    """(T, C) log-probabilities whose best path is `path` (one character a frame, "_" the blank): each
    frame gives its character `sure` and shares the rest evenly."""
    rest = (1 - sure) / (NUM_CLASSES - 1)
    probs = torch.full((len(path), NUM_CLASSES), rest, dtype=torch.float64)
    for t, c in enumerate(path):
        probs[t, 0 if c == _ else ALPHABET.index(c) + 1] = sure
    return probs.log()


@pytest.mark.parametrize(("path", "text"), [
    ("11_1", "11"),  # a run collapses; a blank separates repeats
    ("1_1_1", "111"),
    ("11111", "1"),  # no blank: one symbol however long its run
    ("_12__2-.", "122-."),
    ("_____", ""),  # all blank: nothing read
    ("", ""),  # no frames at all
    ("7", "7"),
])
def test_greedy_decode(path: str, text: str) -> None:
    assert greedy_decode(frames(path)) == text


def test_runs_give_class_and_frames() -> None:
    assert best_path_runs(frames("_33_3_-")) == [(4, 1, 2), (4, 4, 4), (11, 6, 6)]


def test_sequence_probability_sums_every_path() -> None:
    # Two frames, probabilities by hand: p(blank), p("0") per frame; the other classes share the rest.
    p = torch.tensor([[0.5, 0.3], [0.2, 0.6]], dtype=torch.float64)  # rows: frames; columns: blank, "0"
    probs = torch.zeros(2, NUM_CLASSES, dtype=torch.float64)
    probs[:, :2] = p
    probs[:, 2:] = ((1 - p.sum(1)) / (NUM_CLASSES - 2))[:, None]
    lp = probs.log()
    # "0" is read from the paths (0, 0), (0, blank), (blank, 0).
    expected = 0.3 * 0.6 + 0.3 * 0.2 + 0.5 * 0.6
    assert sequence_log_prob(lp, "0") == pytest.approx(math.log(expected))
    assert sequence_log_prob(lp, "") == pytest.approx(math.log(0.5 * 0.2))
    assert sequence_log_prob(lp, "00") == -math.inf  # needs 0, blank, 0: three frames


def test_probabilities_of_all_readings_sum_to_one() -> None:
    torch.manual_seed(0)
    lp = torch.randn(3, NUM_CLASSES, dtype=torch.float64).log_softmax(-1)
    texts = [""] + list(ALPHABET) + [a + b for a in ALPHABET for b in ALPHABET] + \
        [a + b + c for a in ALPHABET for b in ALPHABET for c in ALPHABET if a != b != c]
    assert sum(math.exp(sequence_log_prob(lp, t)) for t in texts) == pytest.approx(1.0)


def test_best_path_reading_is_likely() -> None:
    lp = frames("_1_1__5_")
    assert sequence_log_prob(lp, "115") > sequence_log_prob(lp, "15")
    assert sequence_log_prob(lp, "115") > math.log(0.9**8)  # at least its best path


def test_alignment_runs_peaks_and_spans() -> None:
    lp = frames("_44__4___7")
    lp[2, 5] = math.log(0.95)  # the first 4's probability peaks on its second frame
    symbols = align(lp)
    assert [s.label for s in symbols] == ["4", "4", "7"]
    assert [s.frames for s in symbols] == [(1, 2), (5, 5), (9, 9)]
    assert [s.peak for s in symbols] == [2, 5, 9]
    assert symbols[0].probability == pytest.approx(0.95)
    # Cuts sit halfway across the blanks between runs; the spans tile the line.
    assert [s.span for s in symbols] == [(0.0, 4.0), (4.0, 7.5), (7.5, 10.0)]


def test_alignment_maps_frames_to_x() -> None:
    lp = frames("_5__3")
    plain = align(lp, stride=2.0)
    assert [s.x for s in plain] == [(2.0, 4.0), (8.0, 10.0)]
    assert [s.span_x for s in plain] == [(0.0, 6.0), (6.0, 10.0)]
    placed = align(lp, stride=2.0, to_x=lambda x: 100 + 3 * x)  # e.g. LineImage.to_mask_x
    assert [s.x for s in placed] == [(106.0, 112.0), (124.0, 130.0)]


def test_neighbours_without_blank_are_cut_between_them() -> None:
    symbols = align(frames("1122"))
    assert [s.span for s in symbols] == [(0.0, 2.0), (2.0, 4.0)]


def test_nothing_read_aligns_nothing() -> None:
    assert align(frames("____")) == []
