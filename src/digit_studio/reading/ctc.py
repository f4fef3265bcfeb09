"""CTC on one line's (T, C) log-probabilities: the best-path reading, its probability, and where each symbol
sits.

CTC emits one class per frame, blank (class 0) included; a reading collapses runs of the same class and
drops blanks, so "1 1 _ 1" reads "11". The best path (the likeliest class per frame) is where each symbol
lives: its run of frames, the frame where its probability peaks, and a span that reaches halfway into the
blanks on either side, so that the spans of a line's symbols tile it and a line can be re-cut between them.
Frames become x through the model's stride (input px per frame) and, given one, a map to the drawing's x.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from digit_studio.models.line_reader import ALPHABET, BLANK


@dataclass(frozen=True)
class AlignedSymbol:
    label: str
    peak: int  # frame where this symbol's probability is highest within its run
    probability: float  # its probability there
    frames: tuple[int, int]  # first and last frame of its run in the best path
    span: tuple[float, float]  # [start, end) in frames: the run widened to halfway into the blanks beside it
    x: tuple[float, float]  # the run's [x0, x1) (line-image px, or drawing px when align is given a map)
    span_x: tuple[float, float]  # the span's [x0, x1)


def best_path_runs(log_probs: torch.Tensor) -> list[tuple[int, int, int]]:
    """(class, first frame, last frame) of each run of one non-blank class in the best path."""
    path = log_probs.argmax(-1).tolist()
    runs: list[tuple[int, int, int]] = []
    for t, c in enumerate(path):
        if c == BLANK:
            continue
        if runs and runs[-1][0] == c and runs[-1][2] == t - 1:
            runs[-1] = (c, runs[-1][1], t)
        else:
            runs.append((c, t, t))
    return runs


def greedy_decode(log_probs: torch.Tensor, alphabet: str = ALPHABET) -> str:
    """The best-path reading of (T, C) log-probabilities (class i + 1 is alphabet[i], 0 the blank)."""
    return "".join(alphabet[c - 1] for c, _, _ in best_path_runs(log_probs))


def sequence_log_prob(log_probs: torch.Tensor, text: str, alphabet: str = ALPHABET) -> float:
    """log p(text | line): the total probability of every frame path that reads `text` (CTC's forward
    sum), -inf where the line has too few frames for it."""
    targets = torch.tensor([alphabet.index(c) + 1 for c in text], dtype=torch.long)
    loss = F.ctc_loss(log_probs.double()[:, None], targets, torch.tensor([len(log_probs)]),
                      torch.tensor([len(targets)]), blank=BLANK, reduction="sum", zero_infinity=False)
    return -float(loss)


def align(log_probs: torch.Tensor, stride: float = 1.0, to_x: Callable[[float], float] | None = None,
          alphabet: str = ALPHABET) -> list[AlignedSymbol]:
    """Every symbol of the best-path reading with its run, peak and span; x = frame × `stride`, passed
    through `to_x` when given (e.g. LineImage.to_mask_x, which gives the drawing's x)."""
    runs = best_path_runs(log_probs)
    total = len(log_probs)
    # A boundary between two symbols sits halfway across the blank frames between their runs.
    cuts = [0.0] + [(last + 1 + first) / 2 for (_, _, last), (_, first, _) in zip(runs, runs[1:])] + [float(total)]
    place = to_x or (lambda x: x)
    symbols = []
    for i, (c, first, last) in enumerate(runs):
        scores = log_probs[first : last + 1, c]
        peak = first + int(scores.argmax())
        symbols.append(AlignedSymbol(
            alphabet[c - 1], peak, float(scores.max().exp()), (first, last), (cuts[i], cuts[i + 1]),
            (place(first * stride), place((last + 1) * stride)), (place(cuts[i] * stride), place(cuts[i + 1] * stride)),
        ))
    return symbols
