"""Numbers drawn the way the sketchpad draws them, made from MNIST digits.

The sketchpad gives opaque black strokes of one brush width on an opaque white canvas, so each MNIST
digit is upscaled, binarised and its strokes grown (or thinned) to the brush's width by octagonal
dilation (or erosion), the shared morphology of crops.py. Digits are then laid out as a person writes a number:
spaced, touching, broken into two strokes, on a slanted or uneven baseline, on one or two lines.
The benchmark reads these; the studio shows them as examples.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from scipy import ndimage

from digit_studio.reading.crops import dilate, erode, stroke_width
from digit_studio.training.augment import pen_lift
from digit_studio.training.data import Split
from digit_studio.training.styles import stylise

SEPARATORS = "-."
TOUCH_TRIES = 10


@dataclass(frozen=True)
class Style:
    """How a number is drawn. Ranges are (low, high) sampled uniformly; lengths are relative to the digit
    height unless they say px."""

    canvas: tuple[int, int] = (800, 400)  # width, height in px
    digit_height: tuple[float, float] = (90.0, 200.0)  # px, shrunk where the number would not fit
    brush: tuple[float, float] = (0.07, 0.16)  # brush width (one per drawing)
    brush_px: tuple[float, float] = (6.0, 50.0)  # ... clipped to this many px (the sketchpad's range)
    gap: tuple[float, float] = (0.15, 0.6)  # space between neighbouring symbols' boxes
    touching: int = 0  # adjacent digit pairs per line drawn touching or slightly overlapping
    overlap: tuple[float, float] = (0.0, 0.08)  # how far such a pair overlaps after first contact
    box_overlap: float = 0.25  # ... while their boxes overlap by at most this share of the narrower one:
    # "slightly overlapping" (a slanted 1 slid into the open side of a 4 is two glyphs fused, not touching)
    broken: int = 0  # digits per line drawn as two strokes (a band cut out of them)
    slope_deg: tuple[float, float] = (0.0, 0.0)  # baseline slope, either direction
    jitter: float = 0.03  # random vertical offset of each symbol
    size_jitter: float = 0.06  # random relative change of each digit's height
    line_gap: tuple[float, float] = (0.25, 0.6)  # vertical space between lines
    margin: int = 24  # px kept free at the canvas edges
    styled: bool = False  # digits of the classes with styles (styles.py) drawn in one of them
    dash: tuple[float, float] = (0.3, 0.5)  # a dash's length
    dash_slant_deg: float = 0.0  # dashes lean up to this much either way
    separator_level: float = 0.0  # separators sit up to this far above or below their usual place
    dot: tuple[float, float] = (1.0, 1.0)  # a dot's width in brush widths


@dataclass
class Drawing:
    image: np.ndarray  # (H, W, 3) uint8, black ink on white, like the sketchpad's composite
    text: str  # what is drawn; lines joined by "\n"
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # per symbol (x0, y0, x1, y1)
    masks: list[np.ndarray] = field(default_factory=list)  # per symbol, its own ink within its box

    def sketchpad_value(self) -> dict:
        """The value Gradio's sketchpad sends for this drawing (type="numpy", RGBA)."""
        h, w, _ = self.image.shape
        ink = self.image[..., 0] < 128
        layer = np.zeros((h, w, 4), np.uint8)
        layer[..., 3] = np.where(ink, 255, 0)
        background = np.full((h, w, 4), 255, np.uint8)
        composite = np.dstack([self.image, np.full((h, w), 255, np.uint8)])
        return {"background": background, "layers": [layer], "composite": composite}


def _brush(centreline: np.ndarray, brush: float) -> np.ndarray:
    """Trace a binary centreline with an octagonal brush `brush` px wide."""
    pad = math.ceil(brush / 2) + 1
    steps = max(0, round((brush - 1) / 2))
    line = torch.from_numpy(np.pad(centreline, pad).astype(np.float32))[None, None]
    return tight(dilate(line, steps)[0, 0].numpy() > 0)


def render_digit(image: np.ndarray, height: float, brush: float) -> np.ndarray:
    """A 28×28 MNIST digit (uint8, ink light) as a tight binary mask about `height` px tall, drawn with a
    brush `brush` px wide: upscaled, binarised, and its strokes grown (or thinned) to the brush's width."""
    ys, xs = np.nonzero(image)
    digit = torch.from_numpy(image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255)
    scale = max(height - brush, 4) / digit.shape[0]  # the brush adds about its width to the height
    size = (max(1, round(digit.shape[0] * scale)), max(1, round(digit.shape[1] * scale)))
    shape = (F.interpolate(digit[None, None], size=size, mode="bilinear", align_corners=False) > 0.5).float()
    pad = math.ceil(brush / 2) + 1
    shape = F.pad(shape, (pad, pad, pad, pad))
    steps = round((brush - float(stroke_width(shape))) / 2)
    drawn = dilate(shape, steps) if steps >= 0 else erode(shape, -steps)
    return tight(drawn[0, 0].numpy() > 0)


def render_separator(char: str, height: float, brush: float, rng: np.random.Generator,
                     style: Style = Style()) -> np.ndarray:
    """'-' as one straight stroke (leaning by up to style.dash_slant_deg), '.' as a dab of the brush (or a
    few, for a large dot)."""
    if char == ".":
        size = max(1, round((rng.uniform(*style.dot) - 1) * brush))
        return _brush(np.ones((size, size), bool), brush)
    length = rng.uniform(*style.dash) * height
    angle = math.radians(rng.uniform(-style.dash_slant_deg, style.dash_slant_deg))
    steps = np.linspace(0, length, max(2, round(length) + 1))
    xs, ys = np.round(steps * math.cos(angle)).astype(int), np.round(steps * math.sin(angle)).astype(int)
    line = np.zeros((np.ptp(ys) + 1, np.ptp(xs) + 1), bool)
    line[ys - ys.min(), xs - xs.min()] = True
    return _brush(line, brush)


def tight(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def boxed(mask: np.ndarray, box: int = 16) -> np.ndarray:
    """The mask's ink stretched to fill a box×box square and binarised, as forms and some scanners store
    digits (Semeion's are 16×16): a thin stroke may break there."""
    ink = tight(mask).astype(np.float32) * 255
    return np.asarray(Image.fromarray(ink).resize((box, box), Image.BOX)) > 127


def break_stroke(mask: np.ndarray, gap: float, rng: np.random.Generator) -> np.ndarray:
    """Cut a band `gap` px wide, within 30° of horizontal, through the middle part of a digit: the pen
    lifted once, like the detached top of a 5 or a loop drawn in two strokes."""
    h, _ = mask.shape
    angle = math.radians(rng.uniform(-30, 30))
    centre = rng.uniform(0.3, 0.7) * h
    keep = pen_lift(mask.shape, *(torch.tensor([v], dtype=torch.float64) for v in (centre, angle, gap)))
    return mask & (keep[0, 0].numpy() > 0.5)  # outside the band's edge, as the brush is opaque


def contact_shift(left: np.ndarray, left_top: int, right: np.ndarray, right_top: int) -> int | None:
    """How far right of the left mask's x0 the right mask's x0 must sit for the two to just touch."""
    top, bottom = max(left_top, right_top), min(left_top + left.shape[0], right_top + right.shape[0])
    if top >= bottom:
        return None
    a = left[top - left_top : bottom - left_top]
    b = right[top - right_top : bottom - right_top]
    rows = a.any(1) & b.any(1)
    if not rows.any():
        return None
    last = a.shape[1] - 1 - np.argmax(a[rows, ::-1], axis=1)  # rightmost ink of the left mask per row
    first = np.argmax(b[rows], axis=1)  # leftmost ink of the right mask
    return int((last - first).max()) + 1


def _layout_line(
    masks: list[np.ndarray], chars: str, height: float, style: Style, rng: np.random.Generator,
    touching: set[int],
) -> list[tuple[int, int]]:
    """Top-left corner of each symbol of one line, left to right from x = 0, baseline near y = 0. The pairs
    in `touching` (index of the right one) are drawn touching; those that cannot be are removed from it."""
    slope = math.tan(math.radians(rng.uniform(*style.slope_deg))) * rng.choice([-1, 1])
    corners: list[tuple[int, int]] = []
    for i, (mask, char) in enumerate(zip(masks, chars)):
        h = mask.shape[0]
        x = 0
        if i > 0:
            px, py = corners[-1]
            x = px + masks[i - 1].shape[1] + round(rng.uniform(*style.gap) * height)
        baseline = slope * x + rng.normal(0, style.jitter) * height
        y = round(baseline - (height / 2 + h / 2 if char == "-" else h))
        if not char.isdigit():
            y += round(rng.uniform(-1, 1) * style.separator_level * height)
        if i in touching:
            shift = contact_shift(masks[i - 1], py, mask, y)
            left_w = masks[i - 1].shape[1]
            fused = px + left_w - round(style.box_overlap * min(left_w, mask.shape[1]))  # leftmost allowed x0
            if shift is not None and px + shift >= fused:
                x = max(px + shift - round(rng.uniform(*style.overlap) * height), fused)
            else:
                touching.discard(i)  # these two cannot touch without fusing: drawn apart
        corners.append((x, y))
    return corners


def _layout(
    lines: list[str], digits: Sequence[np.ndarray], height: float, brush: float, style: Style,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Every symbol's mask and top-left corner, lines stacked top to bottom."""
    masks: list[np.ndarray] = []
    corners: list[tuple[int, int]] = []
    if style.styled and len(digits):
        digits = _styled(digits, "".join(lines), rng)
    images = iter(digits)
    top = 0
    for chars in lines:
        line = []
        for c in chars:
            if c.isdigit():
                scale = 1 + rng.uniform(-style.size_jitter, style.size_jitter)
                line.append(render_digit(next(images), height * scale, brush))
            else:
                line.append(render_separator(c, height, brush, rng, style))
        digit_at = [i for i, c in enumerate(chars) if c.isdigit()]
        for i in rng.permutation(digit_at)[: style.broken]:
            line[i] = break_stroke(line[i], rng.uniform(0.06, 0.12) * height, rng)
        pairs = [i for i in digit_at if i > 0 and chars[i - 1].isdigit()]
        for _ in range(TOUCH_TRIES):  # other pairs where the chosen ones cannot touch without fusing
            touching = set(rng.permutation(pairs)[: style.touching].tolist())
            placed = _layout_line(line, chars, height, style, rng, touching)
            if touching or not style.touching or not pairs:
                break
        line_top = min(y for _, y in placed)
        offset = round(rng.uniform(-0.5, 0.5) * height)  # lines do not start at the same x
        corners += [(x + offset, y - line_top + top) for x, y in placed]
        masks += line
        top = max(y + m.shape[0] for (_, y), m in zip(corners, masks)) + round(rng.uniform(*style.line_gap) * height)
    return masks, corners


def draw_number(
    text: str, digits: Sequence[np.ndarray], rng: np.random.Generator, style: Style = Style()
) -> Drawing:
    """Draw `text` (digits, '-', '.', and '\\n' between lines) with the given 28×28 MNIST digit images,
    one per digit character, in order. Style options that need more symbols than the text has (touching
    pairs, broken digits) apply as often as they can."""
    lines = text.split("\n")
    if any(not line for line in lines) or set(text) - set("0123456789\n" + SEPARATORS):
        raise ValueError(f"cannot draw {text!r}: use digits, '-', '.' and '\\n' between non-empty lines")
    if sum(c.isdigit() for c in text) != len(digits):
        raise ValueError(f"{text!r} needs one MNIST image per digit, got {len(digits)}")
    width, height = style.canvas
    digit_height = rng.uniform(*style.digit_height)
    brush_ratio = rng.uniform(*style.brush)
    for _ in range(6):  # shrink until the drawing fits within the margins
        brush = float(np.clip(brush_ratio * digit_height, *style.brush_px))
        masks, corners = _layout(lines, digits, digit_height, brush, style, rng)
        extent_w = max(x + m.shape[1] for (x, _), m in zip(corners, masks)) - min(x for x, _ in corners)
        extent_h = max(y + m.shape[0] for (_, y), m in zip(corners, masks)) - min(y for _, y in corners)
        shrink = min((width - 2 * style.margin) / extent_w, (height - 2 * style.margin) / extent_h)
        if shrink >= 1:
            break
        digit_height *= 0.97 * shrink
    return _paint(masks, corners, text, style, rng)


def _paint(masks: list[np.ndarray], corners: list[tuple[int, int]], text: str, style: Style, rng: np.random.Generator) -> Drawing:
    """Paint the symbols onto the canvas, the whole drawing placed at a random spot within the margins."""
    width, height = style.canvas
    x0 = min(x for x, _ in corners)
    y0 = min(y for _, y in corners)
    x1 = max(x + m.shape[1] for (x, _), m in zip(corners, masks))
    y1 = max(y + m.shape[0] for (_, y), m in zip(corners, masks))
    free_x, free_y = width - 2 * style.margin - (x1 - x0), height - 2 * style.margin - (y1 - y0)
    dx = style.margin - x0 + (int(rng.integers(0, free_x + 1)) if free_x > 0 else free_x // 2)
    dy = style.margin - y0 + (int(rng.integers(0, free_y + 1)) if free_y > 0 else free_y // 2)
    ink = np.zeros((height, width), bool)
    boxes, own = [], []
    for (x, y), mask in zip(corners, masks):
        x, y = x + dx, y + dy
        # Clip to the canvas: a drawing too big for it loses its edges, as on the sketchpad.
        cx0, cy0 = max(x, 0), max(y, 0)
        cx1, cy1 = min(x + mask.shape[1], width), min(y + mask.shape[0], height)
        if cx0 < cx1 and cy0 < cy1:
            ink[cy0:cy1, cx0:cx1] |= mask[cy0 - y : cy1 - y, cx0 - x : cx1 - x]
        boxes.append((cx0, cy0, cx1, cy1))
        own.append(mask[cy0 - y : cy1 - y, cx0 - x : cx1 - x])
    image = np.where(ink[..., None], 0, 255).astype(np.uint8).repeat(3, axis=2)
    return Drawing(image, text, boxes, own)


def _styled(digits: Sequence[np.ndarray], text: str, rng: np.random.Generator) -> list[np.ndarray]:
    """The 28×28 digits, each of a class with styles drawn in one of them (styles.stylise)."""
    labels = torch.tensor([int(c) for c in text if c.isdigit()])
    images = torch.from_numpy(np.stack(digits)).float()[:, None] / 255
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    styled = stylise(images, labels, torch.ones(len(labels), dtype=torch.bool), generator)
    return list((styled[:, 0] * 255).round().to(torch.uint8).numpy())


def pick_digits(split: Split, text: str, rng: np.random.Generator) -> list[np.ndarray]:
    """A random MNIST image of each digit in `text`, in order."""
    labels = split.labels.numpy()
    return [split.images[rng.choice(np.flatnonzero(labels == int(c)))].numpy() for c in text if c.isdigit()]


def _strokes(size: tuple[int, int], strokes: Sequence[Sequence[tuple[float, float]]], brush: float) -> np.ndarray:
    """Polylines drawn with a round brush `brush` px wide, black on a white (H, W, 3) canvas."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for points in strokes:
        points = [tuple(map(float, p)) for p in points]
        draw.line(points, fill=0, width=max(1, round(brush)), joint="curve")
        if brush > 2:  # round caps
            r = brush / 2
            for x, y in (points[0], points[-1]):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
    return np.repeat(np.asarray(image)[..., None], 3, axis=2)


def hostile_drawings(test: Split, seed: int = 0) -> dict[str, np.ndarray]:
    """Drawings that are no number, or a number with something else, to show that reading any of them
    costs bounded time and memory: (H, W, 3) uint8, black on white, by name."""
    rng = np.random.default_rng(seed)
    w, h = 800, 400
    out = {
        "lone dash": _strokes((w, h), [[(360, 200), (440, 200)]], 14),
        "underline": _strokes((w, h), [[(100, 330), (700, 330)]], 10),
        "vertical line": _strokes((w, h), [[(400, 30), (400, 370)]], 14),
        "diagonal line": _strokes((w, h), [[(60, 370), (740, 30)]], 14),
    }
    for brush in (1, 2, 4, 8, 14, 20, 30, 40):
        out[f"long line {brush} px"] = _strokes((w, h), [[(20, 200), (780, 200)]], brush)
    out["three long lines"] = _strokes((w, h), [[(20, y), (780, y)] for y in (100, 200, 300)], 14)
    xs = np.linspace(40, 760, 25)
    out["zigzag"] = _strokes((w, h), [[(x, 120 if i % 2 else 280) for i, x in enumerate(xs)]], 12)
    turns = np.linspace(0, 6 * np.pi, 400)
    out["spiral"] = _strokes((w, h), [[(400 + 10 * t * np.cos(t), 200 + 10 * t * np.sin(t)) for t in turns]], 8)
    out["dense hatching"] = _strokes((w, h), [[(x, 40), (x + 200, 360)] for x in range(40, 560, 12)], 6)
    blob = Image.new("L", (w, h), 255)
    ImageDraw.Draw(blob).ellipse((250, 60, 550, 340), fill=0)
    out["filled blob"] = np.repeat(np.asarray(blob)[..., None], 3, axis=2)
    dots = [[(float(x), float(y))] * 2 for x, y in zip(rng.uniform(20, w - 20, 120), rng.uniform(20, h - 20, 120))]
    out["120 dots"] = _strokes((w, h), dots, 10)
    walk = np.cumsum(rng.normal(0, 25, (300, 2)), axis=0)
    walk = (walk - walk.min(0)) / np.ptp(walk, axis=0) * [w - 80, h - 80] + 40
    out["random scribble"] = _strokes((w, h), [walk.tolist()], 12)
    big = 4096
    lines = [[tuple(rng.uniform(0, big, 2)), tuple(rng.uniform(0, big, 2))] for _ in range(60)]
    out["4096x4096 long strokes"] = _strokes((big, big), lines, 30)
    number = draw_number("2025", pick_digits(test, "2025", rng), rng, Style(canvas=(w, h), digit_height=(140.0, 160.0)))
    ink = number.image[..., 0] < 128
    rows = np.flatnonzero(ink.any(1))
    cols = np.flatnonzero(ink.any(0))
    underline = _strokes((w, h), [[(cols[0] - 10, rows[-1] + 14), (cols[-1] + 10, rows[-1] + 14)]], 10)
    out["number with underline"] = np.minimum(number.image, underline)
    return out


def scan(drawing: Drawing, rng: np.random.Generator, underline: float = 0.3) -> np.ndarray:
    """The drawing written in pen on paper and scanned or photographed: (H, W) uint8 grey. Plain, ruled
    (sometimes with a margin) or squared paper with a little texture, uneven light, a dark pen with soft
    edges, with probability `underline` a line under the number, and JPEG compression at quality 60–90."""
    h, w = drawing.image.shape[:2]
    ink = (drawing.image[..., 0] < 128).astype(np.float32)
    heights = [y1 - y0 for (x0, y0, x1, y1), c in zip(drawing.boxes, drawing.text.replace("\n", "")) if c.isdigit()]
    digit = float(np.median(heights)) if heights else h / 4
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    if rng.random() < underline and len(rows):
        y = rows[-1] + rng.uniform(0.05, 0.2) * digit
        brush = max(2.0, rng.uniform(0.03, 0.08) * digit)
        ends = [(cols[0] - rng.uniform(0, 0.3) * digit, y), (cols[-1] + rng.uniform(0, 0.3) * digit, y + rng.normal(0, 3))]
        ink = np.maximum(ink, _strokes((w, h), [ends], brush)[..., 0] < 128)
    paper = np.full((h, w), rng.uniform(200, 245), np.float32)
    kind = rng.choice(["plain", "ruled", "squared"])
    lines = np.zeros((h, w), np.float32)
    if kind != "plain":
        spacing = digit * (rng.uniform(0.8, 1.2) if kind == "ruled" else rng.uniform(0.25, 0.45))
        offset = rng.uniform(0, spacing)
        thick = int(rng.integers(1, 3))
        for y in np.arange(offset, h, spacing).astype(int):
            lines[y : y + thick] = 1
        if kind == "squared":
            for x in np.arange(rng.uniform(0, spacing), w, spacing).astype(int):
                lines[:, x : x + thick] = 1
        elif rng.random() < 0.5:  # a margin
            x = int(rng.uniform(0.05, 0.15) * w)
            lines[:, x : x + thick + 1] = 1
    paper -= lines * rng.uniform(40, 110)
    paper += ndimage.gaussian_filter(rng.normal(0, rng.uniform(2, 8), (h, w)), 1.0).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-1, 1, 2)
    light = 1 - rng.uniform(0.1, 0.4) * (0.5 + 0.5 * np.clip(gx * (xx / w - 0.5) + gy * (yy / h - 0.5), -1, 1))
    alpha = np.clip(ndimage.gaussian_filter(ink, 0.8) * 1.3, 0, 1)
    grey = (paper * (1 - alpha) + rng.uniform(20, 90) * alpha) * light
    buffer = io.BytesIO()
    Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=int(rng.integers(60, 91)))
    return np.asarray(Image.open(buffer).convert("L"))


# Digits as polylines in a unit box (x right, y down), one per pen stroke: unambiguous shapes for a real
# browser's mouse (tests/test_browser.py, bench/browser.py).
MOUSE_DIGITS: dict[str, list[list[tuple[float, float]]]] = {
    "1": [[(0.35, 0.2), (0.55, 0.0), (0.55, 1.0)]],
    "7": [[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)]],
    "0": [[(0.5, 0.0), (0.15, 0.2), (0.05, 0.5), (0.15, 0.8), (0.5, 1.0), (0.85, 0.8), (0.95, 0.5), (0.85, 0.2),
           (0.5, 0.0)]],
    "4": [[(0.6, 0.0), (0.0, 0.65), (1.0, 0.65)], [(0.7, 0.3), (0.7, 1.0)]],
}


def mouse_strokes(number: str, box: dict) -> list[list[tuple[float, float]]]:
    """`number` (of MOUSE_DIGITS) written across the middle of `box` ({x, y, width, height} in page pixels),
    as one polyline per pen stroke: digits half as wide as tall, a third of their height apart."""
    height = min(0.45 * box["height"], 0.9 * box["width"] / (0.85 * len(number)))
    width, gap = 0.5 * height, 0.35 * height
    left = box["x"] + (box["width"] - len(number) * (width + gap) + gap) / 2
    top = box["y"] + (box["height"] - height) / 2
    return [[(left + i * (width + gap) + x * width, top + y * height) for x, y in line]
            for i, digit in enumerate(number) for line in MOUSE_DIGITS[digit]]
