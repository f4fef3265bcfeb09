"""Two readers, one answer: the cuts (segmentation, then the classifier on every piece) and the CTC line
model, which reads a whole line without cutting it.

Every line the cuts found is also read whole by the line model. Where both read the same, that is the
reading. Where they differ, the line model's reading is first placed on the drawing: each of its symbols is
given the piece of ink at its alignment (reading/ctc.py), a piece holding several of its symbols is re-cut
between them (along the handwriting's slant, halfway into the blank frames that part them) and a piece it
reads as part of a neighbour joins that neighbour. The classifier reads the new pieces too, and each digit
of the placed reading is read by both models together (the line model's probabilities at the symbol's peak
frame times the classifier's on its piece, the latter weighted, and weighted apart where the piece was cut
out of touching ink: its crop may hold a neighbour's strokes, and the classifier reads it wrongly with
confidence). Then the rule weighs the two readings:

    line_odds       = log p_line(placed text) − log p_line(cuts' text)        (CTC sequence probabilities)
    classifier_odds = Σ log p_classifier(cuts' label | piece) − Σ log p_classifier(placed label | its piece)

each term of classifier_odds weighted by touching_weight where its piece touches a neighbour's ink, and the
placed reading wins when line_odds − classifier_weight · classifier_odds > margin (touching_margin where every
piece the readings differ on touches a neighbour's ink: the classifier's word on those crops, by which the cuts
chose them, is suspect); where the cuts read one symbol, > lone_margin with every term in full (whether one
mark is one digit or two is the classifier's question too). Marks that are no number stay with the cuts:
lines of separators or flat strokes alone are not given to the line model, one mark is overruled into more
than `lone_most` symbols only where the classifier reads the new pieces about as well as the whole mark
(classifier_odds ≤ lone_margin: the pieces of touching digits read as digits, a zigzag's slices or a
scribble's do not), and the two readings' separators must agree. So every symbol keeps its own ink, box,
explanation and variations whichever reader decided. The rule's numbers were chosen on drawings of MNIST
training digits and the trainable real handwriting (bench/tune_two_readers.py), never on test digits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy import ndimage

from digit_studio.models.line_reader import ALPHABET, LineImage, LineReader, line_image, line_log_probs
from digit_studio.reading.ctc import AlignedSymbol, align, sequence_log_prob
from digit_studio.reading.segmentation import (
    EIGHT,
    SEPARATORS,
    Classify,
    Piece,
    classify_pieces,
    slanted_columns,
    sub_piece,
    union,
)

BOTH, CUTS, LINE = "both", "cuts", "line"  # which reader decided a symbol: they agreed, or one overruled
MAX_ODDS = 50.0  # nats: a reading the line model cannot emit at all (too few frames) is this unlikely
FLOOR = 1e-6  # least probability a classifier's reading is charged with


@dataclass(frozen=True)
class TwoReaderRule:
    """How a disagreement is settled (see the module's docstring)."""

    classifier_weight: float = 0.5  # weight of the classifier's log-odds against the line model's
    margin: float = 3.0  # nats the weighted log-odds must exceed for the line model's reading to win ...
    touching_margin: float = 1.5  # ... where every piece the two readings differ on touches a neighbour's ink
    # (the classifier's crops of them all are suspect, so the cuts' choice of them is too) ...
    lone_margin: float = 6.0  # ... and where the cuts read the line as one symbol (a lone digit, most
    # often written alone, is rarely two)
    fuse_weight: float = 1.0  # weight of the classifier's log-probabilities when a digit of the line model's
    # reading is read by both models on its piece (_fused); 0: the line model's label as it is
    touching_weight: float = 0.0  # the classifier's say on a piece whose ink touches a neighbour's (touching()):
    # its log-probabilities are weighted by this in the fused digit and in the rule's classifier odds
    max_slant: float = 0.5  # a re-cut leans at most this much with the handwriting (as segmentation's cuts)
    sliver: float = 0.15  # share of a re-cut piece: bits of a neighbour at its edge, smaller, are dropped
    most_symbols: int = 40  # a line model's reading of more symbols is no number: the cuts stand (and the
    # re-cut's work stays bounded)
    lone_most: int = 2  # where the cuts read one symbol, a line model's reading of more symbols must also
    # convince the classifier (see line_wins)
    batch: int = 128  # re-cut pieces classified at once

    def line_wins(self, line_odds: float, classifier_odds: float, weighed_odds: float, cuts_symbols: int,
                  placed_symbols: int, touching_only: bool = False) -> bool:
        """Whether the line model's placed reading overrules the cuts' (see the module's docstring);
        `weighed_odds` are the classifier odds with touching pieces weighted by touching_weight, and
        `touching_only` says whether every piece the readings differ on touches a neighbour's ink. Where the
        cuts read one mark, whether it is one digit or several is the classifier's question as much as the line
        model's: it is heard in full."""
        if cuts_symbols == 1:
            if placed_symbols > self.lone_most and classifier_odds > self.lone_margin:
                return False  # one mark read as a long number by the line model alone: a zigzag, not touching digits
            return line_odds - self.classifier_weight * classifier_odds > self.lone_margin
        margin = self.touching_margin if touching_only else self.margin
        return line_odds - self.classifier_weight * weighed_odds > margin


@dataclass(frozen=True)
class LineReading:
    """What the line model made of one line, and which reading of the line stood."""

    image: LineImage  # what the model read; image.to_mask_x(x) + origin gives working-mask x
    origin: int  # working-mask x of the line mask's left edge
    stride: float  # line-image px per frame
    log_probs: torch.Tensor  # (frames, classes)
    text: str  # its best-path reading
    aligned: tuple[AlignedSymbol, ...]  # where each of its symbols sits, x in working-mask px
    cuts_text: str  # what the cuts read
    placed: str  # the line model's reading once placed on the ink, each digit read by both models together
    decided: str  # BOTH, CUTS or LINE
    line_odds: float = 0.0  # the rule's log-odds (0 where the readers agreed)
    classifier_odds: float = 0.0
    weighed_odds: float = 0.0  # classifier_odds with touching pieces weighted by the rule's touching_weight
    touching_only: bool = False  # every piece the two readings differ on touches a neighbour's ink

    def frames_of(self, x0: float, x1: float) -> tuple[int, int]:
        """First and last frame whose centre lies in working-mask x [x0, x1) (the nearest one if none)."""
        centres = self.image.to_mask_x((np.arange(len(self.log_probs)) + 0.5) * self.stride) + self.origin
        inside = np.flatnonzero((centres >= x0) & (centres < x1))
        if len(inside) == 0:
            nearest = int(np.argmin(np.abs(centres - (x0 + x1) / 2)))
            return nearest, nearest
        return int(inside[0]), int(inside[-1])


@dataclass(frozen=True)
class LineDecision:
    pieces: list[Piece]  # the symbols that stand, left to right
    labels: list[str]
    confidences: list[float]  # the deciding reader's probability for each label
    frames: list[tuple[int, int] | None]  # each symbol's frames in the line model's reading
    reading: LineReading | None  # None where the line model did not read the line

    @classmethod
    def of_cuts(cls, line: list[Piece]) -> LineDecision:
        """The cuts' reading of a line, as it stands without the line model."""
        confidences = [float(p.probs.max()) if p.probs is not None else 1.0 for p in line]
        return cls(line, [label_of(p) for p in line], confidences, [None] * len(line), None)


def label_of(piece: Piece) -> str:
    return piece.kind if piece.kind in SEPARATORS else str(int(piece.probs.argmax()))


def classifier_log_prob(pieces: Sequence[Piece], labels: Sequence[str],
                        weights: Sequence[float] | None = None) -> float:
    """log p of the labels under the classifier, piece by piece, each weighted (by 1 where no weights are
    given); separators are read by shape (0)."""
    weights = [1.0] * len(pieces) if weights is None else weights
    return sum(w * math.log(max(float(p.probs[int(c)]), FLOOR)) for p, c, w in zip(pieces, labels, weights)
               if c.isdigit())


def line_mask(line: Sequence[Piece]) -> tuple[np.ndarray, int]:
    """The line's pieces drawn into one mask (their boxes' union, so ruled lines and other lines' ink are
    left out) and its left edge's x."""
    x0, y0 = min(p.box[0] for p in line), min(p.box[1] for p in line)
    x1, y1 = max(p.box[2] for p in line), max(p.box[3] for p in line)
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for p in line:
        mask[p.box[1] - y0 : p.box[3] - y0, p.box[0] - x0 : p.box[2] - x0] |= p.mask
    return mask, x0


def decide_lines(lines: Sequence[list[Piece]], classify: Classify, model: LineReader,
                 rule: TwoReaderRule = TwoReaderRule()) -> list[LineDecision]:
    """Both readings of every line and which stands. Lines holding a scribble, and lines of separators or
    flat strokes alone (no digit to settle), are left to the cuts."""
    readable = [k for k, line in enumerate(lines)
                if any(p.kind == "digit" for p in line) and all(p.kind != "scribble" for p in line)]
    masks = {k: line_mask(lines[k]) for k in readable}
    images = {k: line_image(masks[k][0], model.config.height) for k in readable}
    log_probs = dict(zip(readable, line_log_probs(model, [images[k].image for k in readable])))
    decisions = []
    for k, line in enumerate(lines):
        cuts = LineDecision.of_cuts(line)
        if k not in log_probs:
            decisions.append(cuts)
            continue
        decisions.append(_decide(cuts, images[k], masks[k][1], log_probs[k], model.stride, classify, rule))
    return decisions


def _decide(cuts: LineDecision, image: LineImage, origin: int, log_probs: torch.Tensor, stride: float,
            classify: Classify, rule: TwoReaderRule) -> LineDecision:
    aligned = tuple(align(log_probs, stride, lambda x: image.to_mask_x(x) + origin))
    text, cuts_text = "".join(a.label for a in aligned), "".join(cuts.labels)
    reading = LineReading(image, origin, stride, log_probs, text, aligned, cuts_text, text, BOTH)
    if text == cuts_text:
        return LineDecision(cuts.pieces, cuts.labels, cuts.confidences, [a.frames for a in aligned], reading)
    recut = recut_line(cuts.pieces, aligned, rule) if 0 < len(aligned) <= rule.most_symbols else None
    if recut is None:  # the line model's symbols could not all be given ink: the cuts stand
        return _cuts_stand(cuts, reading, -MAX_ODDS, math.inf, math.inf)
    classify_pieces([p for p in recut if p.kind == "digit" and p.probs is None], classify, rule.batch)
    cuts_touch, recut_touch = touching(cuts.pieces), touching(recut)
    heard = _heard(recut_touch, rule)
    labels, confidences = zip(*(_fused(a, p, log_probs, rule.fuse_weight * w)
                                for a, p, w in zip(aligned, recut, heard)))
    placed = "".join(labels)
    reading = replace(reading, placed=placed)
    if placed == cuts_text:  # read alike once the classifier's view of the line model's pieces is heard
        return _cuts_stand(cuts, reading, 0.0, 0.0, 0.0)
    if _separators(placed) != _separators(cuts_text):
        # Dashes and dots are read by their shape and place better than by the line model, which also reads
        # stray ink as them.
        return _cuts_stand(cuts, reading, -MAX_ODDS, math.inf, math.inf)
    line_odds = _line_log_prob(log_probs, placed) - _line_log_prob(log_probs, cuts_text)
    classifier_odds = classifier_log_prob(cuts.pieces, cuts.labels) - classifier_log_prob(recut, labels)
    weighed_odds = (classifier_log_prob(cuts.pieces, cuts.labels, _heard(cuts_touch, rule))
                    - classifier_log_prob(recut, labels, heard))
    # A piece both readings keep with the same label (the same object: recut_line hands the cuts' own pieces
    # on) is no part of their disagreement.
    kept = {(id(p), c) for p, c in zip(cuts.pieces, cuts.labels)} & {(id(p), c) for p, c in zip(recut, labels)}
    differ = [t for pieces, symbols, touch in ((cuts.pieces, cuts.labels, cuts_touch), (recut, labels, recut_touch))
              for p, c, t in zip(pieces, symbols, touch) if (id(p), c) not in kept]
    reading = replace(reading, touching_only=bool(differ) and all(differ))
    if not rule.line_wins(line_odds, classifier_odds, weighed_odds, len(cuts_text), len(placed),
                          reading.touching_only):
        return _cuts_stand(cuts, reading, line_odds, classifier_odds, weighed_odds)
    decided = replace(reading, decided=LINE, line_odds=line_odds, classifier_odds=classifier_odds,
                      weighed_odds=weighed_odds)
    return LineDecision(recut, list(labels), list(confidences), [a.frames for a in aligned], decided)


def _heard(touches: Sequence[bool], rule: TwoReaderRule) -> list[float]:
    """The classifier's say on each piece: touching_weight where its ink touches a neighbour's (touching()),
    else 1."""
    return [rule.touching_weight if t else 1.0 for t in touches]


def _fused(symbol: AlignedSymbol, piece: Piece, log_probs: torch.Tensor, weight: float) -> tuple[str, float]:
    """A digit's label from both models on the same ink: the line model's digit probabilities at the
    symbol's peak frame times the classifier's on its piece to the power `weight`, renormalised. Separators
    keep the line's label."""
    if not symbol.label.isdigit() or weight == 0:
        return symbol.label, symbol.probability
    digits = [ALPHABET.index(str(d)) + 1 for d in range(10)]
    joint = (log_probs[symbol.peak, digits].double() + weight * piece.probs.double().clamp(min=FLOOR).log()).softmax(0)
    return str(int(joint.argmax())), float(joint.max())


def _cuts_stand(cuts: LineDecision, reading: LineReading, line_odds: float, classifier_odds: float,
                weighed_odds: float) -> LineDecision:
    stood = replace(reading, decided=CUTS, line_odds=line_odds, classifier_odds=classifier_odds,
                    weighed_odds=weighed_odds)
    frames = [stood.frames_of(p.box[0], p.box[2]) for p in cuts.pieces]
    return LineDecision(cuts.pieces, cuts.labels, cuts.confidences, frames, stood)


def _separators(text: str) -> str:
    return "".join(c for c in text if c in SEPARATORS)


def _line_log_prob(log_probs: torch.Tensor, text: str) -> float:
    if any(c not in ALPHABET for c in text):
        return -MAX_ODDS
    return max(sequence_log_prob(log_probs, text), -MAX_ODDS)


def recut_line(line: Sequence[Piece], aligned: Sequence[AlignedSymbol], rule: TwoReaderRule) -> list[Piece] | None:
    """One piece of ink per aligned symbol, or None where a symbol gets none. A symbol takes the piece under
    its run's centre (the one with most ink in that column, where pieces overlap); a piece under several
    symbols is cut between them; a digit's piece under none joins the symbol whose span it lies in, and a
    separator under none is dropped (the line model reads it as nothing)."""
    centres = [(a.x[0] + a.x[1]) / 2 for a in aligned]
    owner = [_piece_under(line, c) for c in centres]
    parts: list[list[Piece]] = [[] for _ in aligned]
    for i, piece in enumerate(line):
        mine = [k for k, o in enumerate(owner) if o == i]
        if len(mine) == 1:
            parts[mine[0]].append(piece)
        elif len(mine) > 1:
            cut = _cut(piece, [aligned[k].span_x[1] for k in mine[:-1]], rule)
            if cut is None:
                return None
            for k, sub in zip(mine, cut):
                parts[k].append(sub)
        elif piece.kind not in SEPARATORS:
            middle = (piece.box[0] + piece.box[2]) / 2
            inside = [k for k, a in enumerate(aligned) if a.span_x[0] <= middle < a.span_x[1]]
            parts[inside[0] if inside else int(np.argmin([abs(c - middle) for c in centres]))].append(piece)
    if any(not p for p in parts):
        return None
    out = []
    for symbol, group in zip(aligned, parts):
        piece = group[0]
        for other in group[1:]:
            piece = union(piece, other)
        kind = symbol.label if symbol.label in SEPARATORS else "digit"
        if len(group) == 1 and piece.kind == kind:
            out.append(piece)  # the cuts' own piece, already read
        else:
            out.append(Piece(piece.box, piece.mask, kind))
    return out


def touching(pieces: Sequence[Piece]) -> list[bool]:
    """Whether each piece's ink touches another's (8-connected): it was cut out of touching ink, by the cuts
    or by the re-cut, and its crop may hold a neighbour's strokes or lack some of its own."""
    out = [False] * len(pieces)
    for i, a in enumerate(pieces):
        for j in range(i + 1, len(pieces)):
            b = pieces[j]
            if max(a.box[0], b.box[0]) > min(a.box[2], b.box[2]) or max(a.box[1], b.box[1]) > min(a.box[3], b.box[3]):
                continue  # boxes more than a pixel apart
            x0, y0 = min(a.box[0], b.box[0]) - 1, min(a.box[1], b.box[1]) - 1
            x1, y1 = max(a.box[2], b.box[2]) + 1, max(a.box[3], b.box[3]) + 1
            grown, other = np.zeros((y1 - y0, x1 - x0), bool), np.zeros((y1 - y0, x1 - x0), bool)
            grown[a.box[1] - y0 : a.box[3] - y0, a.box[0] - x0 : a.box[2] - x0] = a.mask
            other[b.box[1] - y0 : b.box[3] - y0, b.box[0] - x0 : b.box[2] - x0] = b.mask
            if (ndimage.binary_dilation(grown, EIGHT) & other).any():
                out[i] = out[j] = True
    return out


def _piece_under(line: Sequence[Piece], x: float) -> int:
    """The piece with most ink in column x (the nearest piece if none has any there)."""
    ink = [int(p.mask[:, int(x) - p.box[0]].sum()) if p.box[0] <= x < p.box[2] else 0 for p in line]
    if max(ink) > 0:
        return int(np.argmax(ink))
    return int(np.argmin([max(p.box[0] - x, x - p.box[2] + 1, 0) for p in line]))


def _cut(piece: Piece, boundaries: Sequence[float], rule: TwoReaderRule) -> list[Piece] | None:
    """The piece cut at the given x (working px, at its middle row) along its slant; None if a part is empty."""
    columns = slanted_columns(piece.mask, rule.max_slant) + piece.box[0]
    edges = [-math.inf, *boundaries, math.inf]
    subs = []
    for lo, hi in zip(edges, edges[1:]):
        sub = sub_piece(piece, piece.mask & (columns >= lo) & (columns < hi), 0, rule.sliver)
        if sub is None:
            return None
        subs.append(sub)
    return subs
