"""From an ink mask to the symbols of a number, in reading order.

Connected components (scipy.ndimage) are cleaned of specks relative to the stroke width; ruled lines,
underlines and margins (straight thin lines much longer than a digit is tall) are removed, keeping the
ink of digit strokes that cross them, and so are shorter underlines below digits; large drawings are
worked on at a coarser resolution; pieces of one digit are merged (strong horizontal overlap: the
detached top of a 5, a broken loop; pieces side by side, like a 4 whose stem stops short of its bar, where
the classifier reads them better as one); components are grouped into lines, and a line's only piece is
joined to the next line's only piece where together they are about as wide as tall and read better as one
digit (a digit whose top and foot came apart, the foot maybe a flat stroke); straight flat strokes are
never digits and separators ('-', '.') are recognised by shape (a dash flat and level) and place; and
components that may hold several touching digits are split where the classifier is most confident:
candidate cuts leaning with the handwriting's slant at minima of the ink's profile, every candidate piece of
the drawing classified in bounded batches, the best segmentation of each component found by dynamic
programming. A piece is scored by the classifier's confidence, how usual its shape is for the digit read,
and, where the reader has a VAE, how much like a digit it looks at all: the classifier alone, never shown two
digits at once, reads a touching pair as one digit with high confidence. A connected stroke is only cut into
pieces that each read as a confident, ordinary digit.

Work is bounded whatever the drawing: at most `max_marks` marks, `max_cuts` cut positions per piece and
`max_candidates` candidate pieces per drawing (the cut grid coarsens to fit), classified `batch` at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage
from scipy.sparse.csgraph import connected_components

# Masks in, (crops (N, 1, 28, 28), class probabilities (N, 10), atypicality (N,) or None) out.
Classify = Callable[[Sequence[np.ndarray]], tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]

SEPARATORS = ("-", ".")
EIGHT = np.ones((3, 3), bool)  # diagonal neighbours connect: thin diagonal strokes stay whole
# log(width/height) of drawn digits per class: median and robust (IQR) standard deviation over MNIST
# training digits drawn by synth.render_digit. Measured, not tuned: the shape prior of a segmentation.
LOG_ASPECT_MEAN = np.array([-0.10, -0.96, -0.09, -0.23, -0.23, -0.09, -0.33, -0.28, -0.27, -0.39])
LOG_ASPECT_STD = np.array([0.17, 0.49, 0.22, 0.18, 0.19, 0.25, 0.21, 0.22, 0.23, 0.18])


@dataclass(frozen=True)
class SegmentConfig:
    """Every setting of segmentation. Lengths are in one of three units, named by each field's comment:
    stroke widths (the drawing's measured pen width), digit heights (the line's typical digit height) or
    px of the working image; shares are of the quantity named; confidences are probabilities; scores are
    log-probabilities; atypicality is the VAE's negative ELBO in nats (MNIST test digits: median 87, 95th
    percentile 122). The splitting settings were chosen on drawings of MNIST training digits and on the
    trainable real handwriting (bench/tune_segmentation.py), never on a measuring set; lone_split_cost with
    the line model reading too and with stretched training digits (results/bench/tune_segmentation_lone.json),
    stacked_aspect so with redrawn ones too (results/bench/tune_segmentation_stacked.json), seam_reach and
    seam_bend on touching pairs of training digits (results/bench/tune_seams.json)."""

    # Marks and the bounds on work
    speck: float = 0.25  # squared stroke widths: smaller components are noise (a dab of the brush is ~0.8)
    hairline: float = 0.35  # stroke widths: marks thinner than this (area over length) are no pen stroke
    # but fragments of faint lines and scratches
    max_marks: int = 120  # marks (after specks) beyond which a drawing is too messy to read
    max_cuts: int = 24  # candidate cut positions per piece that may hold touching digits
    max_candidates: int = 480  # candidate pieces classified per drawing for splitting (the grid coarsens)
    batch: int = 128  # pieces classified at once
    work_height: int = 96  # px: drawings with digits at least twice this tall are worked on shrunk to it
    # Ruled lines, underlines, margins
    rule_length: float = 2.5  # digit heights: a straight thin line at least this long is no digit's ink ...
    edge_rule_length: float = 2.0  # digit heights: ... nor one this long that runs from edge to edge of the
    # drawing (the lines of a sheet of paper run off it; a digit's long stroke, beside a few small marks, not)
    rule_thickness: float = 2.5  # stroke widths: ... where it is at most this thick (thicker: a crossing)
    rule_candidate: float = 8.0  # stroke widths: runs of ink at least this long are examined as lines
    underline: float = 1.0  # digit heights: a shorter flat stroke at least this wide under digits ...
    underline_strokes: float = 6.0  # stroke widths: ... and this wide (the bowl of a thick 0 or 6 cut off by
    # a pen lift is flat too, but short) ...
    underline_gap: float = 0.5  # digit heights: ... at most this far below them, and level with no digit
    # this near, is an underline (_drop_underlines)
    # Merging pieces of one digit
    merge_overlap: float = 0.5  # share of the narrower piece that two pieces overlap horizontally, ...
    merge_gap: float = 0.35  # digit heights: ... at most this far apart vertically ...
    merge_height: float = 1.5  # digit heights: ... and together at most this tall; or, whatever their
    merge_strokes: float = 1.5  # stroke widths: height, at most this far apart vertically
    near: float = 1.0  # stroke widths: pieces side by side at most this far apart may be one digit
    stacked_gap: float = 5.0  # stroke widths: two lone pieces one above the other at most this far apart, ...
    stacked_aspect: float = 1.25  # ... together at most this many times taller than wide, may be one digit
    line_overlap: float = 0.3  # share of the shorter symbol that symbols of one line overlap vertically
    # Separators and loose marks
    small: float = 0.4  # digit heights: separators are at most this tall (and a dot at most as wide)
    part: float = 0.6  # digit heights: marks at most this tall are no digit of their own, ...
    part_near: float = 0.3  # digit heights: ... but part of the digit at most this far away
    dash_low: float = 0.2  # share of the neighbouring digit's height, from its top: a dash's middle lies
    dash_high: float = 0.8  # between these two levels
    dash_aspect: float = 1.5  # a dash is at least this many times wider than tall ...
    dash_tilt: float = 20.0  # degrees: ... and level within this (the benchmarks' dashes lean up to 10°); a
    # steeper short stroke near a digit is part of it (the up-stroke of a 1 where the pen skipped)
    flat: float = 2.5  # stroke widths: a mark at most this tall and dash_aspect times wider is a stroke
    # of the pen (a dash, a line), never a digit
    dot: float = 0.5  # stroke widths: a dot is at least this wide (finer is a stray touch)
    scribble: float = 6.0  # a mark with more pen track than this many times its width plus height is a
    # scribble (hatching, a crossed-out digit), never split: a digit has 1 (a 1) to about 3 (an 8)
    apart: float = 0.08  # digit heights: a separator stands this far clear of its neighbours
    # Splitting touching digits
    split_width: float = 0.35  # digit heights: narrower pieces are never split; wider ones are when ...
    split_below: float = 0.75  # confidence: ... read with less confidence than this, ...
    atypical_z: float = 2.0  # ... their width this many standard deviations unusual for the digit read,
    wide: float = 1.5  # digit heights: ... they are at least this wide, ...
    atypical_from: float = 140.0  # nats: ... or they look like no digit; beyond it a piece is charged
    atypical_cost: float = 0.01  # score per nat
    wide_cost: float = 0.1  # score per squared standard deviation of width beyond wide_from
    wide_from: float = 0.0
    narrow_cost: float = 0.1  # the same for narrowness beyond narrow_from standard deviations
    narrow_from: float = 2.0
    max_piece: float = 1.2  # digit heights: no piece of a split is wider
    min_piece: float = 0.7  # stroke widths: no piece of a split is narrower
    split_cost: float = 0.7  # score charged per extra digit: a split must be clearly more confident
    lone_split_cost: float = 1.5  # the same for a piece alone in its line (and for two pieces that joined
    # would be): with no digit beside it to compare its width with, a wide piece is more often one digit,
    lone_wide: float = 1.2  # digit heights: ... unless it is at least this wide
    stroke_cost: float = 0.0  # score charged per stroke a cut goes through beyond the first
    grid_step: float = 0.1  # digit heights between candidate cut positions (before max_cuts)
    max_slant: float = 0.5  # cuts lean at most this much (about 27°) with the handwriting
    seam_reach: float = 0.25  # digit heights: a cut may bend this far either side of its slanted column
    # (round a 7's bar over the digit before it), ...
    seam_bend: float = 0.01  # ... each px it runs from the column costing this much per row (a px of ink: 1)
    sliver: float = 0.15  # share of a piece: bits of a neighbour cut off at its edge, smaller, are dropped
    whole_confidence: float = 1.01  # confidence above which a piece is never split (1.01: always may be) ...
    whole_atypical: float = math.inf  # nats: ... unless it looks less like a digit than this
    piece_confidence: float = 0.0  # confidence every piece of a split needs (a whole piece needs none) ...
    piece_atypical: float = math.inf  # nats: ... the most atypical it may look, ...
    piece_height: float = 0.85  # digit heights: ... and the least tall it may be (a flag, a tail, a foot
    lone_piece_height: float = 0.85  # cut off a digit is shorter than the digits beside it); the same for
    # a piece cut from a lone mark (see lone_wide)


@dataclass(eq=False)  # pieces are compared by identity
class Piece:
    """One symbol: where it is (working-resolution pixels) and, once classified, what it looks like."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (end exclusive)
    mask: np.ndarray  # bool, the box's size
    kind: str = "digit"  # "digit", "-", "." or "scribble" (read by the classifier, but no digit)
    crop: torch.Tensor | None = None  # (28, 28) classifier input
    probs: torch.Tensor | None = None  # (10,) for digits
    atypicality: float | None = None  # VAE negative ELBO of the crop, when the reader has a VAE

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@dataclass
class Segmentation:
    lines: list[list[Piece]]  # top to bottom, each left to right; boxes in working pixels × scale
    scale: int = 1  # pixels of the mask given to `segment` per pixel of the pieces' boxes
    problem: str | None = None  # why the drawing could not be segmented (too messy), if it could not


def segment(mask: np.ndarray, classify: Classify, config: SegmentConfig = SegmentConfig()) -> Segmentation:
    marks = _marks(mask, config)
    if isinstance(marks, str):
        return Segmentation([], problem=marks)
    pieces, stroke, scale = marks
    pieces = _drop_underlines(pieces, stroke, config)
    if not pieces:
        return Segmentation([], scale)
    pieces = _merge(pieces, stroke, config)
    lines = [_label_separators(line, stroke, config) for line in _lines(pieces, stroke, config)]
    for line in lines:
        _mark_scribbles(line, stroke, config)
    classify_pieces([p for line in lines for p in line if p.kind in ("digit", "scribble")], classify, config.batch)
    lines = _join_stacked(_join_near(lines, stroke, classify, config), stroke, classify, config)
    return Segmentation(_split_touching(lines, stroke, classify, config), scale)


def _marks(mask: np.ndarray, config: SegmentConfig) -> tuple[list[Piece], float, int] | str:
    """The drawing's marks once specks and rules are gone, its stroke width and the working scale (big
    drawings are worked on shrunk); or why it is too messy to read."""
    found = _components(mask, config)
    if found is None:
        return [], 1.0, 1
    rules = _rules(mask, found.stroke, config) if _may_hold_rules(mask, found, config) else None
    if rules is not None and rules.any():
        mask = mask & ~rules
        found = _components(mask, config)
        if found is None:  # nothing but lines
            return [], 1.0, 1
    labels, slices, _, keep, stroke = found
    scale = int(_typical(np.array([slices[i - 1][0].stop - slices[i - 1][0].start for i in keep])) // config.work_height)
    if scale >= 2:  # same reading, a fraction of the pixels
        mask = _shrink(mask, scale)
        labels, slices, _, keep, stroke = _components(mask, config)
    else:
        scale = 1
    if len(keep) > config.max_marks:
        return f"{len(keep)} separate marks"
    return [_component(labels, slices[i - 1], i) for i in keep], stroke, scale


class _Components(NamedTuple):
    labels: np.ndarray  # (h, w) int32, 0 for paper
    slices: list  # per label (from 1), its bounding slices
    areas: np.ndarray  # per label (from 1), its pixel count
    keep: np.ndarray  # the labels of the marks that are no specks
    stroke: float  # the drawing's stroke width


def _components(mask: np.ndarray, config: SegmentConfig) -> _Components | None:
    """The drawing's connected components; None if there is no ink."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return None
    # Labelled within the ink's bounding box: a number on a big canvas covers a fraction of it.
    top, left = int(rows[0]), int(cols[0])
    box = np.s_[top : rows[-1] + 1, left : cols[-1] + 1]
    inner, count = ndimage.label(mask[box], structure=EIGHT)
    labels = np.zeros(mask.shape, inner.dtype)
    labels[box] = inner
    slices = [(slice(ys.start + top, ys.stop + top), slice(xs.start + left, xs.stop + left))
              for ys, xs in ndimage.find_objects(inner)]
    areas = np.bincount(inner[mask[box]], minlength=count + 1)[1:]  # over the ink only: ten times faster
    stroke = _stroke_width(labels, slices, areas)
    lengths = np.array([max(s[0].stop - s[0].start, s[1].stop - s[1].start) for s in slices])
    pen = (areas >= config.speck * stroke**2) & (areas >= config.hairline * stroke * lengths)
    return _Components(labels, slices, areas, np.flatnonzero(pen) + 1, stroke)


def _may_hold_rules(mask: np.ndarray, found: _Components, config: SegmentConfig) -> bool:
    """Whether the drawing may hold a rule (only then is the search for rules worth its time): a mark much
    longer, across or down, than the other marks are tall; one with as much pen track as a scribble; or a
    row of pixels that is mostly ink across the drawing's whole width (a line that the digits touch joins
    them all into one mark)."""
    _, slices, areas, keep, stroke = found
    if len(keep) == 0:
        return False
    boxes = np.array([(s[0].stop - s[0].start, s[1].stop - s[1].start) for s in slices])[keep - 1]
    areas = areas[keep - 1]
    longest = int(boxes.max(1).argmax())
    others = np.delete(boxes[:, 0], longest) if len(keep) > 1 else boxes[:, 0]
    if boxes[longest].max() >= config.rule_length * _typical(others) or (areas / stroke > config.scribble * boxes.sum(1)).any():
        return True
    across = np.flatnonzero(mask.any(0))  # (a digit's stroke down can span a line's height: rows only)
    return bool(mask.sum(1).max() >= max(config.rule_candidate * stroke, 0.6 * (across[-1] - across[0] + 1)))


def _shrink(mask: np.ndarray, factor: int) -> np.ndarray:
    """Block maximum: a pixel of the result is ink where any pixel of its factor×factor block is."""
    h, w = -(-mask.shape[0] // factor) * factor, -(-mask.shape[1] // factor) * factor
    padded = np.zeros((h, w), bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask
    return padded.reshape(h // factor, factor, w // factor, factor).any(axis=(1, 3))


def _typical(heights: np.ndarray) -> float:
    """Typical digit height: the median over the taller symbols, so that dots, dashes and loose strokes
    don't count."""
    return float(np.median(heights[heights >= 0.5 * heights.max()])) if len(heights) else 0.0


def _stroke_width(labels: np.ndarray, slices: list, areas: np.ndarray) -> float:
    """Stroke width of the larger components: 2·area / boundary length (see crops.stroke_width)."""
    big = np.flatnonzero(areas >= 0.1 * areas.max())
    big = big[np.argsort(areas[big])[::-1][:20]]
    area = boundary = 0
    for i in big:
        component = labels[slices[i]] == i + 1
        area += component.sum()
        boundary += component.sum() - ndimage.binary_erosion(component).sum()
    return 2 * area / max(boundary, 1)


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """At each ink pixel, the length of the horizontal run of ink it lies in (0 off the ink)."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)  # +1 where a run starts, -1 one past where it ends (row-major order)
    lengths = np.flatnonzero(edges.ravel() == -1) - np.flatnonzero(edges.ravel() == 1)
    out = np.zeros((h, w), np.int32)
    out[mask] = np.repeat(lengths, lengths)  # a row-major walk over the ink meets the runs in order
    return out


def _rules(mask: np.ndarray, stroke: float, config: SegmentConfig) -> np.ndarray:
    """Pixels of ruled lines, underlines, margins and grids: straight lines, horizontal or vertical, much
    longer than the other marks are tall (a little less where they run edge to edge); only beside other
    marks (a lone line is read as what it is). Lines broken by a faint scan are bridged over small gaps, and
    a line a pixel off horizontal still counts. Only pixels as thin as the line itself go: where a digit's
    stroke crosses or touches it, the ink is thicker across the line and stays."""
    gap = max(int(round(stroke)), 3)
    long_runs, thin, across_of = {}, {}, {}
    for transposed in (False, True):
        ink = mask.T if transposed else mask
        closed = ndimage.minimum_filter1d(ndimage.maximum_filter1d(ink.view(np.uint8), gap, axis=1), gap, axis=1)
        bridged = ink | closed.view(bool)
        tolerant = ndimage.maximum_filter1d(bridged, 3, axis=0)
        runs = (_run_lengths(tolerant) >= max(int(config.rule_candidate * stroke), 8)) & bridged
        across = _run_lengths(ink.T).T  # the ink's extent across the line, at each pixel
        long_runs[transposed], across_of[transposed] = runs, across
        thin[transposed] = (runs & ink & (across <= config.rule_thickness * stroke))
    lines = {t: r.T if t else r for t, r in thin.items()}
    height = _other_height(mask & ~(lines[False] | lines[True]), stroke, config)
    rules = np.zeros_like(mask)
    if height == 0:
        return rules
    spans, widest = {}, 1.0  # each direction's accepted lines, whole (crossings included); their thickest
    for transposed, runs in long_runs.items():
        labels, _ = ndimage.label(runs, structure=EIGHT)
        found, whole = np.zeros_like(runs), np.zeros_like(runs)
        for i, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
            edge_to_edge = cols.start <= 1 and cols.stop >= runs.shape[1] - 1
            if cols.stop - cols.start < (config.edge_rule_length if edge_to_edge else config.rule_length) * height:
                continue
            component = labels[rows, cols] == i
            whole[rows, cols] |= component
            line = component & thin[transposed][rows, cols]
            width = np.median(line.sum(0)[line.any(0)])  # the line's own thickness, along its length
            widest = max(widest, float(width))
            found[rows, cols] |= line & (across_of[transposed][rows, cols] <= max(2 * width, width + 2))
        rules |= found.T if transposed else found
        spans[transposed] = whole.T if transposed else whole
    if not rules.any():  # no line: nothing lies beside one either
        return rules
    # What is left of the lines (where those of a grid cross) lies wholly on them, within a line's thickness
    # of their thin pixels: a digit never does, even where its strokes join a grid's long runs.
    near = 2 * math.ceil(widest) + 3  # a window reaching a line's thickness and a pixel beyond either side
    beside = ndimage.maximum_filter1d(ndimage.maximum_filter1d(rules.view(np.uint8), near, axis=0), near, axis=1)
    on_lines = (spans[False] | spans[True]) & beside.view(bool)
    left, count = ndimage.label(mask & ~rules, structure=EIGHT)
    inside = np.bincount(left[on_lines], minlength=count + 1) == np.bincount(left.ravel(), minlength=count + 1)
    inside[0] = False
    return rules | inside[left]


def _other_height(others: np.ndarray, stroke: float, config: SegmentConfig) -> float:
    """Typical height of the marks beside the long lines, counting only marks that could be (parts of)
    digits: not specks, and taller than a couple of strokes; 0 if there are none."""
    labels, count = ndimage.label(others, structure=EIGHT)
    if count == 0:
        return 0.0
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    heights = np.array([s[0].stop - s[0].start for s in ndimage.find_objects(labels)])
    marks = heights[(areas >= config.speck * stroke**2) & (heights >= 2 * stroke)]
    return _typical(marks)


def _component(labels: np.ndarray, where: tuple[slice, slice], label: int) -> Piece:
    ys, xs = where
    return Piece((xs.start, ys.start, xs.stop, ys.stop), labels[where] == label)


def _mark_scribbles(pieces: list[Piece], stroke: float, config: SegmentConfig) -> None:
    """Pieces with far more ink than any digit holds (its pen track: area / stroke width, against the
    box's width plus height) are scribbles."""
    for p in pieces:
        if p.mask.sum() / stroke > config.scribble * (p.width + p.height):
            p.kind = "scribble"


def _is_flat(piece: Piece, stroke: float, config: SegmentConfig) -> bool:
    """A straight, flat stroke of the pen: a dash or a line, never a digit."""
    return piece.height <= config.flat * stroke and piece.width >= config.dash_aspect * piece.height


def _drop_underlines(pieces: list[Piece], stroke: float, config: SegmentConfig) -> list[Piece]:
    """Pieces less the underlines too short to be found as rules: flat strokes at least `underline` digit
    heights and `underline_strokes` stroke widths wide that run under digits from the first one's left to
    the last one's right (each digit over at least half its width, its foot at most `underline_gap` digit
    heights above the stroke's middle) and are level with none (a dash has digits beside it, a 7's crossbar
    the 7 around it; the foot of a 2 broken off by a pen lift lies within the 2's width). Left in, an
    underline is merged into the digit above it (a 7 and its underline read as a 1) or read as a dash."""
    height = _digit_height(pieces, stroke, config)
    digits = [p for p in pieces if not _is_flat(p, stroke, config)]
    shortest = max(config.underline * height, config.underline_strokes * stroke)

    def is_underline(line: Piece) -> bool:
        if not _is_flat(line, stroke, config) or line.width < shortest:
            return False
        middle = (line.box[1] + line.box[3]) / 2
        above = []
        for d in digits:
            overlap = min(d.box[2], line.box[2]) - max(d.box[0], line.box[0])
            if d.box[1] <= middle <= d.box[3] and overlap > -config.underline_gap * height:
                return False  # level with a digit
            if overlap >= 0.5 * d.width and 0 <= middle - d.box[3] <= config.underline_gap * height:
                above.append(d)
        return bool(above) and (line.box[0] <= min(d.box[0] for d in above) + 2 * stroke
                                and line.box[2] >= max(d.box[2] for d in above) - 2 * stroke)

    return [p for p in pieces if not is_underline(p)]


def _digit_height(pieces: Sequence[Piece], stroke: float, config: SegmentConfig) -> float:
    """Typical digit height of the marks that are not flat strokes (of all, if all are)."""
    heights = np.array([p.height for p in pieces if not _is_flat(p, stroke, config)])
    return _typical(heights if len(heights) else np.array([p.height for p in pieces]))


def union(a: Piece, b: Piece) -> Piece:
    box = (min(a.box[0], b.box[0]), min(a.box[1], b.box[1]), max(a.box[2], b.box[2]), max(a.box[3], b.box[3]))
    mask = np.zeros((box[3] - box[1], box[2] - box[0]), bool)
    for p in (a, b):
        mask[p.box[1] - box[1] : p.box[3] - box[1], p.box[0] - box[0] : p.box[2] - box[0]] |= p.mask
    return Piece(box, mask)


def _merge(pieces: list[Piece], stroke: float, config: SegmentConfig) -> list[Piece]:
    """Merge pieces of one digit, most overlapping pair first, until no pair qualifies: pieces that
    overlap horizontally and are either close for digits of the line's height or no more than a few
    stroke widths apart (a pen lifted and set down again; this also holds where every digit is broken,
    so that the typical height is that of the pieces)."""
    height = _digit_height(pieces, stroke, config)
    while len(pieces) > 1:
        box = np.array([p.box for p in pieces], float)
        x0, y0, x1, y1 = (box[:, i] for i in range(4))
        overlap = np.minimum.outer(x1, x1) - np.maximum.outer(x0, x0)
        narrower = np.minimum.outer(x1 - x0, x1 - x0)
        gap = np.maximum.outer(y0, y0) - np.minimum.outer(y1, y1)
        tall = np.maximum.outer(y1, y1) - np.minimum.outer(y0, y0)
        share = overlap / narrower
        close = ((gap <= config.merge_gap * height) & (tall <= config.merge_height * height)) | (
            gap <= config.merge_strokes * stroke)
        ok = (share >= config.merge_overlap) & close
        np.fill_diagonal(ok, False)
        if not ok.any():
            break
        i, j = np.unravel_index(np.argmax(np.where(ok, share, -1)), ok.shape)
        merged = union(pieces[i], pieces[j])
        pieces = [p for k, p in enumerate(pieces) if k not in (i, j)] + [merged]
    return pieces


def _lines(pieces: list[Piece], stroke: float, config: SegmentConfig) -> list[list[Piece]]:
    """Group digit-sized symbols that overlap vertically into lines (chains of overlaps follow a slanted
    line), then give each small mark to the line of the symbol nearest to it. Lines top to bottom,
    symbols left to right."""
    height = _digit_height(pieces, stroke, config)
    tall = [p for p in pieces if p.height > config.small * height]
    small = [p for p in pieces if p.height <= config.small * height]
    if not tall:  # only flat strokes and dots: one line
        tall, small = small, []
    box = np.array([p.box for p in tall], float)
    y0, y1 = box[:, 1], box[:, 3]
    overlap = np.minimum.outer(y1, y1) - np.maximum.outer(y0, y0)
    shorter = np.minimum.outer(y1 - y0, y1 - y0)
    _, which = connected_components(overlap >= config.line_overlap * shorter, directed=False)
    lines = [[p for p, w in zip(tall, which) if w == k] for k in range(which.max() + 1)]
    for p in small:
        nearest = min(range(len(tall)), key=lambda k: _distance(p, tall[k]))
        lines[which[nearest]].append(p)
    lines.sort(key=lambda line: np.median([(p.box[1] + p.box[3]) / 2 for p in line]))
    return [sorted(line, key=lambda p: p.box[0] + p.box[2]) for line in lines]


def _distance(a: Piece, b: Piece) -> float:
    """Gap between two boxes (0 where they overlap); the vertical gap counts double, so that a mark
    between two lines goes to the line it is level with."""
    dx = max(a.box[0] - b.box[2], b.box[0] - a.box[2], 0)
    dy = max(a.box[1] - b.box[3], b.box[1] - a.box[3], 0)
    return float(np.hypot(dx, 2 * dy))


def _label_separators(line: list[Piece], stroke: float, config: SegmentConfig) -> list[Piece]:
    """Dashes and dots are small next to the line's digits and stand clear of them: a dash flat, wide, level
    and at mid-height, a dot compact, low and at least a dab of the pen. Any other mark too short to be a
    digit (a loose stroke of a 4, the bar of a 5 or a 7, the start of a 1's up-stroke) is part of the digit
    near it; far from any, a small mark is a stray touch, dropped, and a taller one a digit of its own. Taller
    marks are placed first, so that a 5 drawn as a bar and a short body has its body in place when its bar
    is placed. A flat stroke with no digit to measure it against is a dash."""
    height = _digit_height(line, stroke, config)
    digits = [p for p in line if p.height > config.part * height and not _is_flat(p, stroke, config)]
    if not digits:
        for p in line:
            if _is_flat(p, stroke, config):
                p.kind = "-"
        return line
    separators = []
    rest = [p for p in line if p not in digits]
    for p in sorted(rest, key=lambda p: -p.height):
        nearest = min(digits, key=lambda d: _distance(p, d))
        distance = _distance(p, nearest) / height
        beside = min(digits, key=lambda d: abs(d.box[0] + d.box[2] - p.box[0] - p.box[2]))
        level = ((p.box[1] + p.box[3]) / 2 - beside.box[1]) / beside.height  # 0 at its top, 1 at its foot
        small, flat = p.height <= config.small * height, p.width >= config.dash_aspect * p.height
        if (small and distance >= config.apart and flat and config.dash_low <= level <= config.dash_high
                and _tilt(p) <= config.dash_tilt):
            p.kind = "-"
            separators.append(p)
        elif small and distance >= config.apart and not flat and p.width <= config.small * height and level >= 0.5:
            if min(p.width, p.height) >= config.dot * stroke:  # finer than the pen: a stray touch
                p.kind = "."
                separators.append(p)
        elif distance < config.part_near:
            digits[digits.index(nearest)] = union(nearest, p)
        elif _is_flat(p, stroke, config):
            p.kind = "-"  # a stroke far from any digit, not at a dash's place: still no digit
            separators.append(p)
        elif not small:
            digits.append(p)
    return sorted(digits + separators, key=lambda p: p.box[0] + p.box[2])


def _tilt(piece: Piece) -> float:
    """Degrees between a mark's long axis (of its ink's second moments) and the horizontal."""
    ys, xs = np.nonzero(piece.mask)
    if len(xs) < 2:
        return 0.0
    cov = np.cov(xs, ys)
    return abs(math.degrees(0.5 * math.atan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1])))


def _near_pairs(line: list[Piece], stroke: float, config: SegmentConfig) -> list[tuple[int, int]]:
    """Neighbouring digit pieces side by side with at most `near` stroke widths between them, that
    together are no taller than one digit: maybe two strokes of one digit that don't overlap enough to
    be merged by shape (the stem of a 4 stopping short of its bar)."""
    height = _digit_height(line, stroke, config)
    pairs = []
    for i in range(len(line) - 1):
        a, b = line[i], line[i + 1]
        if a.kind != "digit" or b.kind != "digit" or b.box[0] - a.box[2] > config.near * stroke:
            continue
        if max(a.box[3], b.box[3]) - min(a.box[1], b.box[1]) <= config.merge_height * height:
            pairs.append((i, i + 1))
    return pairs


def _join_near(lines: list[list[Piece]], stroke: float, classify: Classify,
               config: SegmentConfig) -> list[list[Piece]]:
    """Join near pairs (see _near_pairs) where the classifier reads them better as one digit than as two,
    by the same score and cost per extra digit that decide splits; one batch for the whole drawing."""
    candidates = [(k, line[i], line[j]) for k, line in enumerate(lines) for i, j in _near_pairs(line, stroke, config)]
    if not candidates:
        return lines
    unions = [union(a, b) for _, a, b in candidates]
    classify_pieces(unions, classify, config.batch)
    lines = [list(line) for line in lines]
    for (k, a, b), joined in zip(candidates, unions):
        line = lines[k]
        pair = sum(p.kind == "digit" for p in line) == 2  # joined, they would be the line's only digit
        cost = config.lone_split_cost if pair else config.split_cost
        if a in line and b in line and _reads_better_joined(joined, a, b, cost, config):
            i = line.index(a)  # a and b are neighbours: a chain of near pieces joins pairwise
            line[i : i + 2] = [joined]
    return lines


def _join_stacked(lines: list[list[Piece]], stroke: float, classify: Classify,
                  config: SegmentConfig) -> list[list[Piece]]:
    """Join a line's only piece to the next line's only piece where they overlap horizontally, stand at most
    `stacked_gap` stroke widths apart and together are at most `stacked_aspect` times taller than wide, if
    the classifier reads them better as one digit than as two by the lone split cost: a digit whose pen
    lifted between its top and its foot (the bar of a 5, the loop of a 9) is one digit, not two lines. A
    foot that is a flat stroke (the bottom of a 5's bowl, read as a dash) joins where the digit reads
    better with it than without."""
    lines = [list(line) for line in lines]
    k = 0
    while k < len(lines) - 1:
        upper, lower = lines[k], lines[k + 1]
        if len(upper) == 1 == len(lower) and upper[0].kind == "digit" and lower[0].kind in ("digit", "-"):
            a, b = upper[0], lower[0]
            width = max(a.box[2], b.box[2]) - min(a.box[0], b.box[0])
            height = max(a.box[3], b.box[3]) - min(a.box[1], b.box[1])
            if (min(a.box[2], b.box[2]) > max(a.box[0], b.box[0])
                    and b.box[1] - a.box[3] <= config.stacked_gap * stroke
                    and height <= config.stacked_aspect * width):
                joined = union(a, b)
                classify_pieces([joined], classify, config.batch)
                if (_score(joined, config) > _score(a, config) if b.kind == "-"
                        else _reads_better_joined(joined, a, b, config.lone_split_cost, config)):
                    lines[k : k + 2] = [[joined]]
                    continue
        k += 1
    return lines


def _reads_better_joined(joined: Piece, a: Piece, b: Piece, cost: float, config: SegmentConfig) -> bool:
    """Whether the classifier reads `joined` better as one digit than `a` and `b` as two, by `cost` (the score
    and cost per extra digit that decide splits)."""
    return _score(joined, config) > _score(a, config) + _score(b, config) - cost


def classify_pieces(pieces: Sequence[Piece], classify: Classify, batch: int) -> None:
    """Give each piece its crop, class probabilities and atypicality, `batch` pieces at a time."""
    for start in range(0, len(pieces), batch):
        chunk = pieces[start : start + batch]
        crops, probs, unlike = classify([p.mask for p in chunk])
        for i, p in enumerate(chunk):
            p.crop, p.probs = crops[i, 0], probs[i]
            p.atypicality = None if unlike is None else float(unlike[i])


def slanted_columns(mask: np.ndarray, max_slant: float) -> np.ndarray:
    """Each pixel's column once the piece is sheared upright, x − slant·(y − ȳ), with the slant from the
    ink's second moments (the classic MNIST deskew): cuts along these columns follow the handwriting's
    slant, so that two slanted digits (a pair of 1s) can be cut apart where they touch. At the ink's
    middle row a pixel's column is its x."""
    ys, xs = np.nonzero(mask)
    dy = ys - ys.mean()
    slant = float(np.clip((dy * (xs - xs.mean())).sum() / max((dy * dy).sum(), 1.0), -max_slant, max_slant))
    shift = np.round(slant * (np.arange(mask.shape[0]) - ys.mean())).astype(int)
    return np.arange(mask.shape[1])[None, :] - shift[:, None]


def _cut_candidates(profile: np.ndarray, min_width: int, step: float) -> np.ndarray:
    """Where touching digits are likely to meet: a regular grid about `step` (≥ 1) px apart (overlapping
    digits leave no waist to find), each position moved to the lowest point of the ink's profile within
    its window, so that a cut at a waist is never missed; all at least min_width from the ends."""
    w = len(profile)
    span = w - 2 * min_width + 1  # positions a cut may take
    if span < 1:
        return np.zeros(0, int)
    profile = ndimage.uniform_filter1d(profile.astype(float), max(1, min_width // 2))
    count = int(min(max(1, round(span / max(step, 1.0))), span))
    edges = np.unique(np.linspace(min_width, min_width + span, count + 1).round().astype(int))
    lowest = np.minimum.reduceat(profile[: edges[-1]], edges[:-1])  # per window
    windows = zip(edges, edges[1:], lowest)
    return np.unique([start + int(np.flatnonzero(profile[start:stop] == low)[0]) for start, stop, low in windows])


def sub_piece(piece: Piece, part: np.ndarray, offset: int, sliver: float) -> Piece | None:
    """The piece's ink in `part` (a mask of the piece's height, starting `offset` columns into it),
    without small slivers of neighbours cut off at its edges; None if no ink is left."""
    labels, count = ndimage.label(part, structure=EIGHT)
    if count == 0:
        return None
    if count > 1:  # slivers: small bits touching the box's left or right edge
        areas = np.bincount(labels.ravel())
        areas[0] = 0
        cols = np.flatnonzero(part.any(0))
        at_edge = np.zeros(count + 1, bool)
        at_edge[labels[:, cols[0]]] = at_edge[labels[:, cols[-1]]] = True
        drop = at_edge & (areas < sliver * areas.max())
        drop[0] = False
        if drop.any():
            part = part & ~drop[labels]
    rows, cols = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
    bx, by = piece.box[0] + offset, piece.box[1]
    box = (bx + int(cols[0]), by + int(rows[0]), bx + int(cols[-1]) + 1, by + int(rows[-1]) + 1)
    return Piece(box, part[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def _aspect_z(piece: Piece) -> float:
    """How many standard deviations the piece's log width/height lies from that of the digit read."""
    label = int(piece.probs.argmax())
    return (np.log(piece.width / piece.height) - LOG_ASPECT_MEAN[label]) / LOG_ASPECT_STD[label]


def _score(piece: Piece, config: SegmentConfig) -> float:
    """Log-probability of the reading plus that of the piece's shape: Gaussian penalties on how much
    wider, or narrower, it is than usual for the digit read (narrow weighs less: a cut through
    overlapping digits leaves narrow pieces; but two touching 1s are no 0), and a charge for looking like
    no digit at all."""
    confidence = max(float(piece.probs.max()), 1e-9)
    z = _aspect_z(piece)
    shape = config.wide_cost * max(z - config.wide_from, 0.0) ** 2 + config.narrow_cost * max(-z - config.narrow_from, 0.0) ** 2
    unlike = config.atypical_cost * max((piece.atypicality or 0.0) - config.atypical_from, 0.0)
    return np.log(confidence) - shape - unlike


def _is_suspect(piece: Piece, height: float, stroke: float, config: SegmentConfig) -> bool:
    """Wide enough for two digits, and read without confidence, with an atypical shape, or looking like no
    digit."""
    if piece.kind != "digit" or piece.width < config.split_width * height or _is_flat(piece, stroke, config):
        return False
    confidence = float(piece.probs.max())
    typical = piece.atypicality is None or piece.atypicality <= config.whole_atypical
    if confidence >= config.whole_confidence and typical and piece.width < config.wide * height:
        return False  # read as one digit with confidence, and looks like one
    unlike = piece.atypicality is not None and piece.atypicality > config.atypical_from
    unsure = confidence < config.split_below
    return unsure or piece.width >= config.wide * height or _aspect_z(piece) > config.atypical_z or unlike


def _is_ordinary(piece: Piece, grid: _Grid, config: SegmentConfig) -> bool:
    """Confident, digit-like and tall enough to be one piece of a split."""
    typical = piece.atypicality is None or piece.atypicality <= config.piece_atypical
    tall = piece.height >= (config.lone_piece_height if grid.strict else config.piece_height) * grid.height
    return float(piece.probs.max()) >= config.piece_confidence and typical and tall


@dataclass
class _Grid:
    """Where a suspect may be cut: its ink's slanted columns and the cut positions, both ends included."""

    piece: Piece
    columns: np.ndarray  # (h, w) int: each pixel's slanted column
    cuts: np.ndarray
    strokes: np.ndarray  # per cut position: how many strokes a cut there goes through
    height: float  # px: the line's digit height
    strict: bool  # the only digit of its line and not wide: cut only on strong evidence (lone_* settings)
    max_width: int  # px: widest span that may be one digit
    min_width: int
    seams: np.ndarray  # (cuts, h) int: per cut position, the slanted column it runs at in each row

    def spans(self) -> list[tuple[int, int]]:
        n = len(self.cuts)
        return [(i, j) for i in range(n) for j in range(i + 1, n)
                if (i, j) != (0, n - 1) and self.min_width <= self.cuts[j] - self.cuts[i] <= self.max_width]


def _grid(piece: Piece, height: float, lone: bool, stroke: float, coarsen: float, config: SegmentConfig) -> _Grid:
    min_width = max(int(config.min_piece * stroke), int(0.06 * height), 2)
    columns = slanted_columns(piece.mask, config.max_slant)
    columns = columns - columns[piece.mask].min()
    profile = np.bincount(columns[piece.mask])
    step = max(config.grid_step * height, len(profile) / config.max_cuts) * coarsen
    cuts = np.concatenate([[0], _cut_candidates(profile, min_width, step), [len(profile)]])
    strict = lone and piece.width < config.lone_wide * height
    sheared = _sheared(piece.mask, columns)
    return _Grid(piece, columns, cuts, _strokes_cut(sheared, cuts), height, strict, int(config.max_piece * height),
                 min_width, _seams(sheared, cuts, int(config.seam_reach * height), config.seam_bend))


def _sheared(mask: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The ink sheared upright: each pixel moved to its slanted column (non-negative), one empty column
    beyond the last."""
    sheared = np.zeros((mask.shape[0], int(columns.max()) + 2), bool)
    rows, xs = np.nonzero(mask)
    sheared[rows, columns[rows, xs]] = True
    return sheared


def _seams(sheared: np.ndarray, cuts: np.ndarray, reach: int, bend: float) -> np.ndarray:
    """Per cut position, the path from top to bottom through the sheared ink that crosses the least ink,
    within `reach` columns of the position, each px of ink costing 1 and each visited px `bend` per column
    away from the position. The path goes down and sideways (never up), so it can pass under a 7's bar and
    over the 1 beneath it; a row's pixels left of where the path leaves it lie left of the cut. The ends
    stay straight, and the paths are made not to cross."""
    h = sheared.shape[0]
    seams = np.repeat(cuts[:, None], h, axis=1)
    inner = cuts[1:-1]
    if reach < 1 or len(inner) == 0:
        return seams
    padded = np.pad(sheared, ((0, 0), (reach, reach))).astype(np.float32)  # paths may pass beyond the ink
    band = inner[:, None] + np.arange(2 * reach + 1)[None, :]  # (n, b) padded columns, position at the middle
    cost = padded[:, band] + bend * np.abs(np.arange(-reach, reach + 1))[None, None, :]  # (h, n, b)
    run = np.cumsum(cost, axis=2)  # along a row: cost of visiting pixels 0..x
    total = np.zeros((h, *band.shape), np.float32)  # least cost of a path leaving row r down from x
    above = np.zeros(band.shape, np.float32)
    for r in range(h):
        enter = above + cost[r]  # entering row r from above at x
        rightward = np.minimum.accumulate(enter - run[r], axis=1) + run[r]
        rev = np.cumsum(cost[r][:, ::-1], axis=1)  # from the right: cost of visiting pixels x..end
        leftward = (np.minimum.accumulate(enter[:, ::-1] - rev, axis=1) + rev)[:, ::-1]
        total[r] = above = np.minimum(rightward, leftward)
    # Back from the bottom: where the path leaves each row; the row is entered at its cheapest start.
    n = len(inner)
    at = total[-1].argmin(1)
    out = np.empty((n, h), int)
    idx = np.arange(n)
    positions = np.arange(band.shape[1])[None, :]
    for r in range(h - 1, -1, -1):
        out[:, r] = at
        prior = total[r - 1] if r > 0 else np.zeros(band.shape, np.float32)
        lo, hi = np.minimum(positions, at[:, None]), np.maximum(positions, at[:, None])
        # cost of entering row r at x and running along it to `at`
        along = run[r][idx[:, None], hi] - run[r][idx[:, None], lo] + cost[r][idx[:, None], lo]
        at = (prior + along).argmin(1)
    seams[1:-1] = out + inner[:, None] - reach
    return np.maximum.accumulate(seams, axis=0)


def _strokes_cut(sheared: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """How many separate runs of ink each slanted column at `cuts` holds: the strokes a cut there goes
    through. Two digits that touch meet in one stroke; a cut through one digit mostly crosses two or more
    (the top and bottom of a loop, the arms of a 3)."""
    starts = sheared.copy()
    starts[1:] &= ~sheared[:-1]
    return starts.sum(0)[np.clip(cuts, 0, sheared.shape[1] - 1)]


def _pieces(grid: _Grid, sliver: float) -> dict[tuple[int, int], Piece]:
    """The sub-piece between every pair of cut positions that is wide enough for a digit and not too wide
    for one, and the whole piece (first to last position). Work is done on the columns a span can reach."""
    piece, columns, seams = grid.piece, grid.columns, grid.seams
    reach = np.arange(columns.shape[1])[None, :] - columns  # x − slanted column: each row's shift
    left, right = int(reach.min()), int(reach.max())
    spans = {}
    for i, j in grid.spans():
        x0, x1 = max(int(seams[i].min()) + left, 0), min(int(seams[j].max()) + right + 1, columns.shape[1])
        window = columns[:, x0:x1]
        part = piece.mask[:, x0:x1] & (window >= seams[i][:, None]) & (window < seams[j][:, None])
        sub = sub_piece(piece, part, x0, sliver)
        if sub is not None:
            spans[i, j] = sub
    spans[0, len(seams) - 1] = piece
    return spans


def _split_touching(lines: list[list[Piece]], stroke: float, classify: Classify,
                    config: SegmentConfig) -> list[list[Piece]]:
    """Split pieces that may be several touching digits where the classifier is most confident: every
    candidate sub-piece of every suspect is classified (in batches), then the best segmentation of each
    suspect is found by dynamic programming. The cut grids coarsen until the drawing's candidates fit in
    `max_candidates`."""
    suspects = []
    for line in lines:
        height = _digit_height(line, stroke, config)
        lone = sum(p.kind == "digit" for p in line) == 1
        suspects += [(p, height, lone) for p in line if _is_suspect(p, height, stroke, config)]
    if not suspects:
        return lines
    coarsen = 1.0
    while True:
        grids = [_grid(p, height, lone, stroke, coarsen, config) for p, height, lone in suspects]
        if sum(len(g.spans()) for g in grids) <= config.max_candidates:
            break
        coarsen *= 1.3
    plans = {id(g.piece): _pieces(g, config.sliver) for g in grids}
    classify_pieces([sub for spans in plans.values() for sub in spans.values() if sub.probs is None], classify,
                    config.batch)
    split = {id(g.piece): _best_path(plans[id(g.piece)], g, config) for g in grids}
    return [[q for p in line for q in split.get(id(p), [p])] for line in lines]


def _best_path(spans: dict[tuple[int, int], Piece], grid: _Grid, config: SegmentConfig) -> list[Piece]:
    """Dynamic programming over cut positions 0..n-1: the pieces maximising the summed score, each extra
    piece charged `split_cost` (`lone_split_cost` for a piece alone in its line) and each stroke its cut goes
    through beyond the first `stroke_cost`; a piece of a split must be ordinary (see _is_ordinary)."""
    n = max(j for _, j in spans) + 1
    best = [(-np.inf, -1)] * n
    best[0] = (0.0, -1)
    for j in range(1, n):
        for i in range(j):
            piece = spans.get((i, j))
            if piece is None or best[i][0] == -np.inf or ((i, j) != (0, n - 1) and not _is_ordinary(piece, grid, config)):
                continue
            each = config.lone_split_cost if grid.strict else config.split_cost
            cut = each + config.stroke_cost * max(int(grid.strokes[i]) - 1, 0) if i > 0 else 0.0
            score = best[i][0] + _score(piece, config) - cut
            if score > best[j][0]:
                best[j] = (score, i)
    path, j = [], n - 1
    while j > 0:
        i = best[j][1]
        path.append(spans[i, j])
        j = i
    return path[::-1]
