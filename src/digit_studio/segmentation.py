"""From an ink mask to the symbols of a number, in reading order.

Connected components (scipy.ndimage) are cleaned of specks relative to the stroke width; pieces of one
digit are merged (strong horizontal overlap: the detached top of a 5, a broken loop; pieces side by
side, like a 4 whose stem stops short of its bar, where the classifier reads them better as one);
components are grouped into lines; separators ('-', '.') are recognised by shape; and components that
may hold several touching digits are split where the classifier is most confident: candidate cuts
leaning with the handwriting's slant at minima of the ink's profile, every candidate piece of the
drawing classified in one batch, the best segmentation of each component found by dynamic programming.
A piece is scored by the classifier's confidence, how usual its shape is for the digit read, and, where
the reader has a VAE, how much like a digit it looks at all: the classifier alone, never shown two
digits at once, reads a touching pair as one digit with high confidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.sparse.csgraph import connected_components

# Masks in, (crops (N, 1, 28, 28), class probabilities (N, 10), atypicality (N,) or None) out.
Classify = Callable[[Sequence[np.ndarray]], tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]

EIGHT = np.ones((3, 3), bool)  # diagonal neighbours connect: thin diagonal strokes stay whole
SPECK = 0.25  # components smaller than this many squared stroke widths are noise (a brush dab is ~0.8)
MAX_COMPONENTS = 120  # more marks than this (after specks) is no number: too messy, not read
MERGE_OVERLAP = 0.5  # pieces overlapping horizontally by this share of the narrower one ...
MERGE_GAP = 0.35  # ... at most this many digit heights apart vertically ...
MERGE_HEIGHT = 1.5  # ... and together at most this many digit heights tall are one digit; or, whatever
MERGE_STROKES = 1.5  # their height, at most this many stroke widths apart vertically
NEAR = 1.0  # pieces side by side at most this many stroke widths apart may be one digit (see _join_near)
LINE_OVERLAP = 0.3  # symbols of one line overlap vertically by this share of the shorter one
SMALL = 0.4  # separators are at most this many digit heights tall (and a dot at most as wide)
PART = 0.6  # marks at most this many digit heights tall are no digit of their own ...
PART_NEAR = 0.3  # ... but part of the digit at most this many digit heights away (else dropped or, if
# taller than a separator, read as a small digit)
DASH_LEVEL = (0.2, 0.8)  # a dash's middle lies between these heights of the digit beside it (0 = top)
DASH_ASPECT = 1.5  # a dash is at least this many times wider than tall
DOT = 0.7  # a dot is at least this many stroke widths across (a dab of the pen)
APART = 0.08  # a separator stands this many digit heights clear of its neighbours; closer, it is
# part of the digit beside it (MNIST digits have loose flecks too)
# Splitting: the thresholds and weights below were chosen by coordinate descent on drawings of MNIST
# training digits (bench/multidigit.py --train-digits), never on the benchmark's test digits.
SPLIT_WIDTH = 0.35  # components at least this many digit heights wide may be several digits: when the
SPLIT_BELOW = 0.75  # classifier's confidence in them as one digit is below this, when their shape is
ATYPICAL = 2.0  # this many standard deviations too wide for the digit read, or when they are WIDE
WIDE = 1.5
# log(width/height) of drawn digits per class: median and robust (IQR) standard deviation over MNIST
# training digits drawn by synth.render_digit. The shape prior of a segmentation.
LOG_ASPECT_MEAN = np.array([-0.10, -0.96, -0.09, -0.23, -0.23, -0.09, -0.33, -0.28, -0.27, -0.39])
LOG_ASPECT_STD = np.array([0.17, 0.49, 0.22, 0.18, 0.19, 0.25, 0.21, 0.22, 0.23, 0.18])
WIDE_COST = 0.1  # log-probability charged per squared standard deviation of width beyond WIDE_FROM
WIDE_FROM = 0.0
NARROW_COST = 0.1  # the same for narrowness beyond NARROW_FROM standard deviations
NARROW_FROM = 2.0
MAX_PIECE = 1.2  # no piece of a split is wider than this many digit heights
SPLIT_COST = 0.55  # log-probability charged per extra digit: a split must be clearly more confident
GRID_STEP = 0.1  # digit heights between candidate cut positions
MAX_SLANT = 0.5  # cuts lean at most this much (about 27°) with the handwriting
MIN_PIECE = 0.7  # no piece of a split is narrower than this many stroke widths
SLIVER = 0.15  # bits of a neighbour cut off at a piece's edge, smaller than this share of it, are dropped
# A piece less like a digit than this (VAE negative ELBO, nats; MNIST test digits: median 87, 95th
# percentile 122) is charged ATYPICAL_COST log-probability per nat beyond, and is a suspect to split.
ATYPICAL_FROM = 140.0
ATYPICAL_COST = 0.01


@dataclass(eq=False)  # pieces are compared by identity
class Piece:
    """One symbol: where it is (working-resolution pixels) and, once classified, what it looks like."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (end exclusive)
    mask: np.ndarray  # bool, the box's size
    kind: str = "digit"  # "digit", "-" or "."
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
    lines: list[list[Piece]]  # top to bottom, each left to right
    problem: str | None = None  # why the drawing could not be segmented (too messy), if it could not


def segment(mask: np.ndarray, classify: Classify) -> Segmentation:
    labels, count = ndimage.label(mask, structure=EIGHT)
    if count == 0:
        return Segmentation([])
    slices = ndimage.find_objects(labels)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    stroke = _stroke_width(labels, slices, areas)
    keep = np.flatnonzero(areas >= SPECK * stroke**2) + 1
    if len(keep) > MAX_COMPONENTS:
        return Segmentation([], f"{len(keep)} separate marks")
    if len(keep) == 0:
        return Segmentation([])
    pieces = _merge([_component(labels, slices[i - 1], i) for i in keep], stroke)
    lines = [_label_separators(line, stroke) for line in _lines(pieces)]
    _classify([p for line in lines for p in line], classify)
    lines = _join_near(lines, stroke, classify)
    return Segmentation(_split_touching(lines, stroke, classify))


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


def _merge(pieces: list[Piece], stroke: float) -> list[Piece]:
    """Merge pieces of one digit, most overlapping pair first, until no pair qualifies: pieces that
    overlap horizontally and are either close for digits of the line's height or no more than a few
    stroke widths apart (a pen lifted and set down again; this also holds where every digit is broken,
    so that the typical height is that of the pieces)."""
    height = _digit_height(pieces)
    while len(pieces) > 1:
        box = np.array([p.box for p in pieces], float)
        x0, y0, x1, y1 = (box[:, i] for i in range(4))
        overlap = np.minimum.outer(x1, x1) - np.maximum.outer(x0, x0)
        narrower = np.minimum.outer(x1 - x0, x1 - x0)
        gap = np.maximum.outer(y0, y0) - np.minimum.outer(y1, y1)
        tall = np.maximum.outer(y1, y1) - np.minimum.outer(y0, y0)
        share = overlap / narrower
        close = ((gap <= MERGE_GAP * height) & (tall <= MERGE_HEIGHT * height)) | (gap <= MERGE_STROKES * stroke)
        ok = (share >= MERGE_OVERLAP) & close
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


def _label_separators(line: list[Piece], stroke: float) -> list[Piece]:
    """Dashes and dots are small next to the line's digits and stand clear of them: a dash flat, wide and
    at mid-height, a dot compact, low and at least a dab of the pen. Any other mark too short to be a
    digit (a loose stroke of a 4, the bar of a 5 or a 7) is part of the digit near it; far from any, a
    small mark is a stray touch, dropped, and a taller one a digit of its own. Taller marks are placed
    first, so that a 5 drawn as a bar and a short body has its body in place when its bar is placed."""
    height = _digit_height(line)
    digits = [p for p in line if p.height > PART * height]
    if not digits:
        return line
    separators = []
    for p in sorted((p for p in line if p.height <= PART * height), key=lambda p: -p.height):
        nearest = min(digits, key=lambda d: _distance(p, d))
        distance = _distance(p, nearest) / height
        beside = min(digits, key=lambda d: abs(d.box[0] + d.box[2] - p.box[0] - p.box[2]))
        level = ((p.box[1] + p.box[3]) / 2 - beside.box[1]) / beside.height  # 0 at its top, 1 at its foot
        small, flat = p.height <= SMALL * height, p.width >= DASH_ASPECT * p.height
        if small and distance >= APART and flat and DASH_LEVEL[0] <= level <= DASH_LEVEL[1]:
            p.kind = "-"
            separators.append(p)
        elif small and distance >= APART and not flat and p.width <= SMALL * height and level >= 0.5:
            if min(p.width, p.height) >= DOT * stroke:  # finer than the pen: a stray touch
                p.kind = "."
                separators.append(p)
        elif distance < PART_NEAR:
            digits[digits.index(nearest)] = _union(nearest, p)
        elif not small:
            digits.append(p)
    return sorted(digits + separators, key=lambda p: p.box[0] + p.box[2])


def _near_pairs(line: list[Piece], stroke: float) -> list[tuple[int, int]]:
    """Neighbouring digit pieces side by side with at most NEAR stroke widths between them, that
    together are no taller than one digit: maybe two strokes of one digit that don't overlap enough to
    be merged by shape (the stem of a 4 stopping short of its bar)."""
    height = _digit_height(line)
    pairs = []
    for i in range(len(line) - 1):
        a, b = line[i], line[i + 1]
        if a.kind != "digit" or b.kind != "digit" or b.box[0] - a.box[2] > NEAR * stroke:
            continue
        if max(a.box[3], b.box[3]) - min(a.box[1], b.box[1]) <= MERGE_HEIGHT * height:
            pairs.append((i, i + 1))
    return pairs


def _join_near(lines: list[list[Piece]], stroke: float, classify: Classify) -> list[list[Piece]]:
    """Join near pairs (see _near_pairs) where the classifier reads them better as one digit than as two,
    by the same score and cost per extra digit that decide splits; one batch for the whole drawing."""
    candidates = [(k, line[i], line[j]) for k, line in enumerate(lines) for i, j in _near_pairs(line, stroke)]
    if not candidates:
        return lines
    unions = [_union(a, b) for _, a, b in candidates]
    _classify(unions, classify)
    lines = [list(line) for line in lines]
    for (k, a, b), union in zip(candidates, unions):
        line = lines[k]
        if a in line and b in line and _score(union) > _score(a) + _score(b) - SPLIT_COST:
            i = line.index(a)  # a and b are neighbours: a chain of near pieces joins pairwise
            line[i : i + 2] = [union]
    return lines


def _classify(pieces: Sequence[Piece], classify: Classify) -> None:
    if not pieces:
        return
    crops, probs, unlike = classify([p.mask for p in pieces])
    for i, p in enumerate(pieces):
        p.crop, p.probs = crops[i, 0], probs[i]
        p.atypicality = None if unlike is None else float(unlike[i])


def _slanted_columns(mask: np.ndarray) -> np.ndarray:
    """Each pixel's column once the piece is sheared upright, x − slant·(y − ȳ), with the slant from the
    ink's second moments (the classic MNIST deskew): cuts along these columns follow the handwriting's
    slant, so that two slanted digits (a pair of 1s) can be cut apart where they touch."""
    ys, xs = np.nonzero(mask)
    dy = ys - ys.mean()
    slant = float(np.clip((dy * (xs - xs.mean())).sum() / max((dy * dy).sum(), 1.0), -MAX_SLANT, MAX_SLANT))
    shift = np.round(slant * (np.arange(mask.shape[0]) - ys.mean())).astype(int)
    columns = np.arange(mask.shape[1])[None, :] - shift[:, None]
    return columns - columns[mask].min()


def _cut_candidates(profile: np.ndarray, min_width: int, step: float) -> np.ndarray:
    """Where touching digits are likely to meet: a regular grid about `step` apart (overlapping digits
    leave no waist to find), each position moved to the lowest point of the ink's profile within half a
    step of it, so that a cut at a waist is never missed; all at least min_width from the ends."""
    w = len(profile)
    if w < 2 * min_width:
        return np.zeros(0, int)
    profile = ndimage.uniform_filter1d(profile.astype(float), max(1, min_width // 2))
    count = max(1, round((w - 2 * min_width) / step))
    edges = np.linspace(min_width, w - min_width + 1, count + 1).round().astype(int)
    lowest = np.minimum.reduceat(profile[: edges[-1]], edges[:-1])  # per window
    cuts = [start + int(np.flatnonzero(profile[start:stop] == low)[0]) for start, stop, low in zip(edges, edges[1:], lowest)]
    return np.unique(cuts)


def _sub_piece(piece: Piece, part: np.ndarray) -> Piece | None:
    """The piece's ink in `part` (a mask of the piece's size), without small slivers of neighbours cut
    off at its edges; None if no ink is left."""
    labels, count = ndimage.label(part, structure=EIGHT)
    if count == 0:
        return None
    if count > 1:  # slivers: small bits touching the box's left or right edge
        areas = np.bincount(labels.ravel())
        areas[0] = 0
        cols = np.flatnonzero(part.any(0))
        at_edge = np.zeros(count + 1, bool)
        at_edge[labels[:, cols[0]]] = at_edge[labels[:, cols[-1]]] = True
        sliver = at_edge & (areas < SLIVER * areas.max())
        sliver[0] = False
        if sliver.any():
            part = part & ~sliver[labels]
    rows, cols = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
    bx, by = piece.box[0], piece.box[1]
    box = (bx + int(cols[0]), by + int(rows[0]), bx + int(cols[-1]) + 1, by + int(rows[-1]) + 1)
    return Piece(box, part[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def _aspect_z(piece: Piece) -> float:
    """How many standard deviations the piece's log width/height lies from that of the digit read."""
    label = int(piece.probs.argmax())
    return (np.log(piece.width / piece.height) - LOG_ASPECT_MEAN[label]) / LOG_ASPECT_STD[label]


def _score(piece: Piece) -> float:
    """Log-probability of the reading plus that of the piece's shape: Gaussian penalties on how much
    wider, or narrower, it is than usual for the digit read (narrow weighs less: a cut through
    overlapping digits leaves narrow pieces; but two touching 1s are no 0), and a charge for looking like
    no digit at all."""
    confidence = max(float(piece.probs.max()), 1e-9)
    z = _aspect_z(piece)
    shape = WIDE_COST * max(z - WIDE_FROM, 0.0) ** 2 + NARROW_COST * max(-z - NARROW_FROM, 0.0) ** 2
    return np.log(confidence) - shape - ATYPICAL_COST * max((piece.atypicality or 0.0) - ATYPICAL_FROM, 0.0)


def _is_suspect(piece: Piece, height: float) -> bool:
    """Wide enough for two digits, and read without confidence, with an atypical shape, or looking like no
    digit."""
    if piece.kind != "digit" or piece.width < SPLIT_WIDTH * height:
        return False
    unlike = piece.atypicality is not None and piece.atypicality > ATYPICAL_FROM
    return float(piece.probs.max()) < SPLIT_BELOW or piece.width >= WIDE * height or _aspect_z(piece) > ATYPICAL or unlike


@dataclass
class _Plan:
    """How a suspect may be split: the number of cut positions (both ends included) and the sub-piece
    between every pair of positions that is wide enough for a digit and not too wide for one."""

    positions: int
    spans: dict[tuple[int, int], Piece]


def _plan(piece: Piece, height: float, stroke: float) -> _Plan:
    min_width = max(int(MIN_PIECE * stroke), int(0.06 * height), 2)
    columns = _slanted_columns(piece.mask)
    profile = np.bincount(columns[piece.mask])
    cuts = np.concatenate([[0], _cut_candidates(profile, min_width, GRID_STEP * height), [len(profile)]])
    spans = {}
    for i in range(len(cuts)):
        for j in range(i + 1, len(cuts)):
            if (i, j) == (0, len(cuts) - 1) or not min_width <= cuts[j] - cuts[i] <= MAX_PIECE * height:
                continue
            sub = _sub_piece(piece, piece.mask & (columns >= cuts[i]) & (columns < cuts[j]))
            if sub is not None:
                spans[i, j] = sub
    spans[0, len(cuts) - 1] = piece
    return _Plan(len(cuts), spans)


def _split_touching(lines: list[list[Piece]], stroke: float, classify: Classify) -> list[list[Piece]]:
    """Split pieces that may be several touching digits where the classifier is most confident: every
    candidate sub-piece of every suspect is classified in one batch, then the best segmentation of each
    suspect is found by dynamic programming."""
    plans: dict[int, _Plan] = {}
    for line in lines:
        height = _digit_height(line)
        for p in line:
            if _is_suspect(p, height):
                plans[id(p)] = _plan(p, height, stroke)
    if not plans:
        return lines
    _classify([sub for plan in plans.values() for sub in plan.spans.values() if sub.probs is None], classify)
    split = {key: _best_path(plan) for key, plan in plans.items()}
    return [[q for p in line for q in split.get(id(p), [p])] for line in lines]


def _best_path(plan: _Plan) -> list[Piece]:
    """Dynamic programming over cut positions 0..n-1: the pieces maximising the summed score, each extra
    piece charged SPLIT_COST."""
    spans, n = plan.spans, plan.positions
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
