"""From an ink mask to the symbols of a number, in reading order.

Connected components (scipy.ndimage) are cleaned of specks relative to the stroke width, pieces of one
digit are merged (strong horizontal overlap: the detached top of a 5, a 4 or a 7 in two strokes, a
broken loop), components are grouped into lines, separators ('-', '.') are recognised by shape, and
components that may hold several touching digits are split where the classifier is most confident:
candidate cuts along the ink's column profile, every candidate piece classified in one batch, the best
segmentation found by dynamic programming.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.sparse.csgraph import connected_components

# Masks in, (crops (N, 1, 28, 28), class probabilities (N, 10)) out.
Classify = Callable[[Sequence[np.ndarray]], tuple[torch.Tensor, torch.Tensor]]

EIGHT = np.ones((3, 3), bool)  # diagonal neighbours connect: thin diagonal strokes stay whole
SPECK = 0.25  # components smaller than this many squared stroke widths are noise (a brush dab is ~0.8)
MAX_COMPONENTS = 120  # more marks than this (after specks) is no number: too messy, not read
MERGE_OVERLAP = 0.5  # pieces overlapping horizontally by this share of the narrower one ...
MERGE_GAP = 0.35  # ... at most this many digit heights apart vertically ...
MERGE_HEIGHT = 1.5  # ... and together at most this many digit heights tall are one digit
LINE_OVERLAP = 0.3  # symbols of one line overlap vertically by this share of the shorter one
SMALL = 0.4  # separators are at most this many digit heights tall (and a dot at most as wide)
DASH_ASPECT = 1.5  # a dash is at least this many times wider than tall
APART = 0.08  # a separator stands this many digit heights clear of its neighbours; closer, it is
# part of the digit beside it (MNIST digits have loose flecks too)
SPLIT_WIDTH = 0.6  # components at least this many digit heights wide may be several digits: when the
SPLIT_BELOW = 0.75  # classifier's confidence in them as one digit is below this, when their shape is
ATYPICAL = 1.5  # this many standard deviations too wide for the digit read, or when they are WIDE
WIDE = 1.5
# log(width/height) of drawn digits per class: median and robust (IQR) standard deviation over MNIST
# training digits drawn by synth.render_digit. The shape prior of a segmentation.
LOG_ASPECT_MEAN = np.array([-0.10, -0.96, -0.09, -0.23, -0.23, -0.09, -0.33, -0.28, -0.27, -0.39])
LOG_ASPECT_STD = np.array([0.17, 0.49, 0.22, 0.18, 0.19, 0.25, 0.21, 0.22, 0.23, 0.18])
WIDE_COST = 0.5  # log-probability charged per standard deviation of extra width beyond WIDE_FROM
WIDE_FROM = 0.5
MAX_PIECE = 1.4  # no piece of a split is wider than this many digit heights
SPLIT_COST = 0.6  # log-probability charged per extra digit: a split must be clearly more confident
MAX_CUTS = 14  # candidate cut positions per component


@dataclass
class Piece:
    """One symbol: where it is (working-resolution pixels) and, once classified, what it looks like."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (end exclusive)
    mask: np.ndarray  # bool, the box's size
    kind: str = "digit"  # "digit", "-" or "."
    crop: torch.Tensor | None = None  # (28, 28) classifier input
    probs: torch.Tensor | None = None  # (10,) for digits

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@dataclass
class Segmentation:
    lines: list[list[Piece]]  # top to bottom, each left to right
    problem: str | None = None  # why the drawing could not be segmented (too messy), if it could not


def segment(mask: np.ndarray, classify: Classify) -> Segmentation:
    labels, count = ndimage.label(mask, structure=EIGHT)
    if count == 0:
        return Segmentation([])
    slices = ndimage.find_objects(labels)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    width = _stroke_width(labels, slices, areas)
    keep = np.flatnonzero(areas >= SPECK * width**2) + 1
    if len(keep) > MAX_COMPONENTS:
        return Segmentation([], f"{len(keep)} separate marks")
    if len(keep) == 0:
        return Segmentation([])
    pieces = _merge([_component(labels, slices[i - 1], i) for i in keep])
    lines = [_label_separators(line) for line in _lines(pieces)]
    _classify([p for line in lines for p in line], classify)
    lines = [_split_touching(line, width, classify) for line in lines]
    return Segmentation(lines)


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


def _component(labels: np.ndarray, where: tuple[slice, slice], label: int) -> Piece:
    ys, xs = where
    return Piece((xs.start, ys.start, xs.stop, ys.stop), labels[where] == label)


def _digit_height(pieces: Sequence[Piece]) -> float:
    """Typical digit height: the median over the taller symbols, so dots, dashes and loose strokes don't
    count."""
    heights = np.array([p.height for p in pieces])
    return float(np.median(heights[heights >= 0.5 * heights.max()]))


def _union(a: Piece, b: Piece) -> Piece:
    box = (min(a.box[0], b.box[0]), min(a.box[1], b.box[1]), max(a.box[2], b.box[2]), max(a.box[3], b.box[3]))
    mask = np.zeros((box[3] - box[1], box[2] - box[0]), bool)
    for p in (a, b):
        mask[p.box[1] - box[1] : p.box[3] - box[1], p.box[0] - box[0] : p.box[2] - box[0]] |= p.mask
    return Piece(box, mask)


def _merge(pieces: list[Piece]) -> list[Piece]:
    """Merge pieces of one digit, most overlapping pair first, until no pair qualifies."""
    height = _digit_height(pieces)
    while len(pieces) > 1:
        box = np.array([p.box for p in pieces], float)
        x0, y0, x1, y1 = (box[:, i] for i in range(4))
        overlap = np.minimum.outer(x1, x1) - np.maximum.outer(x0, x0)
        narrower = np.minimum.outer(x1 - x0, x1 - x0)
        gap = np.maximum.outer(y0, y0) - np.minimum.outer(y1, y1)
        tall = np.maximum.outer(y1, y1) - np.minimum.outer(y0, y0)
        share = overlap / narrower
        ok = (share >= MERGE_OVERLAP) & (gap <= MERGE_GAP * height) & (tall <= MERGE_HEIGHT * height)
        np.fill_diagonal(ok, False)
        if not ok.any():
            break
        i, j = np.unravel_index(np.argmax(np.where(ok, share, -1)), ok.shape)
        merged = _union(pieces[i], pieces[j])
        pieces = [p for k, p in enumerate(pieces) if k not in (i, j)] + [merged]
    return pieces


def _lines(pieces: list[Piece]) -> list[list[Piece]]:
    """Group digit-sized symbols that overlap vertically into lines (chains of overlaps follow a slanted
    line), then give each small mark to the line of the symbol nearest to it. Lines top to bottom,
    symbols left to right."""
    height = _digit_height(pieces)
    tall = [p for p in pieces if p.height > SMALL * height]
    small = [p for p in pieces if p.height <= SMALL * height]
    box = np.array([p.box for p in tall], float)
    y0, y1 = box[:, 1], box[:, 3]
    overlap = np.minimum.outer(y1, y1) - np.maximum.outer(y0, y0)
    shorter = np.minimum.outer(y1 - y0, y1 - y0)
    _, which = connected_components(overlap >= LINE_OVERLAP * shorter, directed=False)
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


def _label_separators(line: list[Piece]) -> list[Piece]:
    """Dashes and dots are small next to the line's digits and stand clear of them: a dash flat and
    wide, a dot compact and low. A small mark close to a digit is part of it; a small compact mark high
    up between digits is a stray touch, dropped."""
    height = _digit_height(line)
    digits = [p for p in line if p.height > SMALL * height]
    marks = [p for p in line if p.height <= SMALL * height]
    if not digits:
        return line
    kept = list(digits)
    for p in marks:
        nearest = min(range(len(kept)), key=lambda k: _distance(p, kept[k]))
        if _distance(p, kept[nearest]) < APART * height and kept[nearest] in digits:
            kept[nearest] = _union(kept[nearest], p)
            digits.append(kept[nearest])
            continue
        if p.width >= DASH_ASPECT * p.height:
            p.kind = "-"
        elif p.width <= SMALL * height:
            beside = min(digits, key=lambda d: abs(d.box[0] + d.box[2] - p.box[0] - p.box[2]))
            if p.box[1] + p.box[3] < beside.box[1] + beside.box[3]:
                continue  # above the middle of the digit beside it: not a decimal point
            p.kind = "."
        kept.append(p)
    return sorted(kept, key=lambda p: p.box[0] + p.box[2])


def _classify(pieces: Sequence[Piece], classify: Classify) -> None:
    if not pieces:
        return
    crops, probs = classify([p.mask for p in pieces])
    for p, crop, prob in zip(pieces, crops, probs):
        p.crop, p.probs = crop[0], prob


def _cut_candidates(mask: np.ndarray, min_width: int) -> list[int]:
    """Columns where touching digits are likely to meet: local minima of the ink's column profile, and a
    regular grid so that digits overlapping without a thin waist can be cut too."""
    w = mask.shape[1]
    lo, hi = min_width, w - min_width
    if hi <= lo:
        return []
    profile = ndimage.uniform_filter1d(mask.sum(0).astype(float), max(1, min_width // 2))
    inner = profile[lo:hi]
    minima = [lo + i for i in range(len(inner)) if inner[i] <= profile[lo + i - 1] and inner[i] <= profile[min(lo + i + 1, w - 1)]]
    minima.sort(key=lambda x: profile[x])
    grid = list(np.linspace(lo, hi, 7).round().astype(int))
    chosen: list[int] = []
    for x in minima[: MAX_CUTS // 2] + grid + minima[MAX_CUTS // 2 :]:
        if len(chosen) < MAX_CUTS and all(abs(x - c) >= max(2, min_width // 2) for c in chosen):
            chosen.append(int(x))
    return sorted(chosen)


def _sub_piece(piece: Piece, x0: int, x1: int) -> Piece | None:
    """The part of `piece` between columns x0 and x1, without small slivers of neighbours cut off at
    the edges; None if no ink is left."""
    part = piece.mask[:, x0:x1]
    labels, count = ndimage.label(part, structure=EIGHT)
    if count == 0:
        return None
    areas = np.bincount(labels.ravel())[1:]
    if count > 1:
        at_edge = set(labels[:, 0]) | set(labels[:, -1])
        sliver = [i + 1 for i in range(count) if i + 1 in at_edge and areas[i] < 0.15 * areas.max()]
        if sliver:
            part = part & ~np.isin(labels, sliver)
    rows, cols = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
    bx, by = piece.box[0] + x0, piece.box[1]
    box = (bx + cols[0], by + rows[0], bx + cols[-1] + 1, by + rows[-1] + 1)
    return Piece(box, part[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def _aspect_z(piece: Piece) -> float:
    """How many standard deviations the piece's log width/height lies from that of the digit read."""
    label = int(piece.probs.argmax())
    return (np.log(piece.width / piece.height) - LOG_ASPECT_MEAN[label]) / LOG_ASPECT_STD[label]


def _score(piece: Piece) -> float:
    """Log-probability of the reading less a shape penalty: wider than usual for the digit read is
    suspect, linearly; narrow is not (a cut through overlapping digits leaves narrow pieces). The
    weights were chosen on drawings of MNIST training digits, never on the benchmark's test digits."""
    return float(np.log(piece.probs.max().clamp(min=1e-9))) - WIDE_COST * max(_aspect_z(piece) - WIDE_FROM, 0.0)


def _split_touching(line: list[Piece], stroke: float, classify: Classify) -> list[Piece]:
    """Split components that may be several touching digits where the classifier is most confident."""
    height = _digit_height(line)
    suspects = [
        p for p in line
        if p.kind == "digit" and p.width >= SPLIT_WIDTH * height and (
            float(p.probs.max()) < SPLIT_BELOW or p.width >= WIDE * height
            or _aspect_z(p) > ATYPICAL
        )
    ]
    if not suspects:
        return line
    min_width = max(int(0.7 * stroke), int(0.06 * height), 2)
    plans = []  # per suspect: cut positions and the candidate piece for each (i, j) span
    for p in suspects:
        cuts = [0] + _cut_candidates(p.mask, min_width) + [p.width]
        spans = {}
        for i in range(len(cuts)):
            for j in range(i + 1, len(cuts)):
                if (i, j) == (0, len(cuts) - 1):
                    continue
                if cuts[j] - cuts[i] < min_width or cuts[j] - cuts[i] > MAX_PIECE * height:
                    continue
                sub = _sub_piece(p, cuts[i], cuts[j])
                if sub is not None:
                    spans[i, j] = sub
        plans.append((cuts, spans))
    _classify([s for _, spans in plans for s in spans.values()], classify)
    replaced = {}
    for p, (cuts, spans) in zip(suspects, plans):
        spans[0, len(cuts) - 1] = p
        replaced[id(p)] = _best_path(len(cuts), spans)
    out = []
    for p in line:
        out.extend(replaced.get(id(p), [p]))
    return out


def _best_path(n: int, spans: dict[tuple[int, int], Piece]) -> list[Piece]:
    """Dynamic programming over cut positions 0..n-1: the pieces maximising the summed score, each extra
    piece charged SPLIT_COST."""
    best = [(-np.inf, -1)] * n
    best[0] = (0.0, -1)
    for j in range(1, n):
        for i in range(j):
            piece = spans.get((i, j))
            if piece is None or best[i][0] == -np.inf:
                continue
            score = best[i][0] + _score(piece) - (SPLIT_COST if i > 0 else 0.0)
            if score > best[j][0]:
                best[j] = (score, i)
    path, j = [], n - 1
    while j > 0:
        i = best[j][1]
        path.append(spans[i, j])
        j = i
    return path[::-1]
