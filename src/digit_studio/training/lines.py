"""Lines of ink for the line reader, drawn on the fly from MNIST digits the way the sketchpad draws them.

Each line is drawn by the benchmark's own drawing code (training/synth.py: digits binarised and traced with
one brush, laid out spaced, touching or slightly overlapping, broken, styled, with dashes and dots, on a
sloped, jittered baseline), with its settings drawn afresh per line; each digit is first turned and sheared
a little on its own, and the finished line leans (slant) and its baseline drifts in a smooth wave. Lines
are drawn at a few dozen px per digit, then normalised exactly as the reader normalises a drawn line
(models/line_reader.line_image), so a line model sees in training what it sees on the sketchpad.

Everything random comes from one torch.Generator: the same generator state draws the same lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from digit_studio.config import AugmentConfig, DataConfig, LineSynthConfig, RealDataConfig
from digit_studio.models.line_reader import LineImage, line_image
from digit_studio.training.augment import random_affine
from digit_studio.training.data import Split
from digit_studio.training.realdigits import real_splits
from digit_studio.training.styles import stylise
from digit_studio.training.synth import SEPARATORS, Style, draw_number

FAINT = 0.1  # grey left by warping a digit below this is dropped: the drawing crops digits by their ink


@dataclass(frozen=True)
class Line:
    image: LineImage
    text: str
    touching: bool  # drawn with digit pairs asked to touch or slightly overlap (synth draws apart a pair
    # that cannot touch without fusing)


class DigitPool:
    """Digits to draw lines with: one split's, and with `real_share`, real handwriting's training digits."""

    def __init__(self, split: Split, real: Split | None = None, real_share: float = 0.0) -> None:
        self.splits = [split] + ([real] if real is not None and real_share > 0 else [])
        self.real_share = real_share
        self.by_class = [[np.flatnonzero(s.labels.numpy() == d) for d in range(10)] for s in self.splits]

    @classmethod
    def for_training(cls, split: Split, data: DataConfig, config: LineSynthConfig) -> DigitPool:
        if config.real_share <= 0:
            return cls(split)
        real, _ = real_splits(data, RealDataConfig(file=config.real_file))  # its kept-back part is never used
        return cls(split, real, config.real_share)

    def pick(self, text: str, rng: np.random.Generator) -> torch.Tensor:
        """(N, 28, 28) uint8: a random digit of each digit character of `text`, in order."""
        picked = []
        for c in (c for c in text if c.isdigit()):
            source = int(len(self.splits) > 1 and rng.random() < self.real_share)
            picked.append(self.splits[source].images[rng.choice(self.by_class[source][int(c)])])
        return torch.stack(picked) if picked else torch.zeros(0, 28, 28, dtype=torch.uint8)


def random_text(count: int, rng: np.random.Generator, config: LineSynthConfig) -> str:
    """`count` symbols: digits, and in a share of lines dashes and dots (never two in a row)."""
    share = config.separator_share if rng.random() < config.separator_lines else 0.0
    text = ""
    for _ in range(count):
        separator = rng.random() < share and (not text or text[-1].isdigit())
        text += rng.choice(list(SEPARATORS)) if separator else str(rng.integers(10))
    return text


def _prepare(digits: torch.Tensor, labels: torch.Tensor, styled: torch.Tensor, degrees: float,
             generator: torch.Generator) -> torch.Tensor:
    """The 28×28 digits of a batch of lines, the `styled` ones drawn in a style of their class
    (styles.stylise), each turned and sheared by its own amount (augment.random_affine), faint grey
    dropped."""
    if not len(digits):
        return digits
    x = stylise(digits[:, None].float() / 255, labels, styled, generator)
    if degrees > 0:
        warp = AugmentConfig(rotation_deg=degrees, translate_px=0.0, scale_min=1.0, scale_max=1.0,
                             shear_deg=degrees)
        x = random_affine(x, warp, generator)
    x = x[:, 0]
    return (x * (x >= FAINT) * 255).round().to(torch.uint8)


def lean_and_drift(mask: np.ndarray, slant: float, amplitude: float, wavelength: float, phase: float) -> np.ndarray:
    """Shear the line (each row shifted by slant·height above the bottom: writing that leans), then shift
    each column by a smooth wave `amplitude` px high (a baseline that drifts). Whole rows and whole columns
    move, so strokes keep their pixels."""
    ys, xs = np.nonzero(mask)
    xs = xs + np.round(slant * (ys.max() - ys)).astype(int)
    xs -= xs.min()
    wave = np.round(amplitude * np.sin(2 * np.pi * np.arange(xs.max() + 1) / wavelength + phase)).astype(int)
    ys = ys + wave[xs]
    ys -= ys.min()
    out = np.zeros((ys.max() + 1, xs.max() + 1), bool)
    out[ys, xs] = True
    return out


def _style(text: str, rng: np.random.Generator, config: LineSynthConfig) -> Style:
    """This line's drawing settings: its gaps, touching pairs, broken digit, slope and jitters are drawn per
    line (synth.Style then draws each symbol's within them)."""
    gap_high = rng.uniform(*config.gap)
    gap_low = rng.uniform(config.gap[0], gap_high)
    pairs = sum(a.isdigit() and b.isdigit() for a, b in zip(text, text[1:]))
    touching = int(rng.integers(1, pairs + 1)) if pairs and rng.random() < config.touching_lines else 0
    slope = tuple(config.slope_deg) if rng.random() < config.sloped_lines else (0.0, 0.0)
    size_jitter = rng.uniform(0, config.size_jitter)
    height = config.digit_height[1] * (1 + size_jitter)
    width = (len(text) * (1.1 + gap_high) + 0.5) * height
    rise = width * math.tan(math.radians(slope[1]))
    return Style(
        canvas=(math.ceil(width), math.ceil(1.6 * height + rise)), digit_height=tuple(config.digit_height),
        brush=tuple(config.brush), brush_px=(1.0, height), gap=(gap_low, gap_high), touching=touching,
        overlap=tuple(config.overlap), broken=int(rng.random() < config.broken_lines), slope_deg=slope,
        jitter=rng.uniform(0, config.jitter), size_jitter=size_jitter, margin=2, dash_slant_deg=10.0,
        separator_level=0.1, dot=(1.0, 2.0),
    )


def draw_line(text: str, digits: torch.Tensor, rng: np.random.Generator, config: LineSynthConfig,
              height: int) -> Line:
    """One line of `text` drawn with `digits` ((N, 28, 28) uint8, one per digit character), normalised to
    the model's input `height`."""
    style = _style(text, rng, config)
    drawing = draw_number(text, list(digits.numpy()), rng, style)
    mask = drawing.image[..., 0] < 128
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    mask = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    digit = float(np.median([b[3] - b[1] for b, c in zip(drawing.boxes, text) if c.isdigit()] or [mask.shape[0]]))
    slant = math.tan(math.radians(rng.uniform(-config.slant_deg, config.slant_deg)))
    mask = lean_and_drift(mask, slant, rng.uniform(0, config.drift) * digit, rng.uniform(4, 12) * digit,
                          rng.uniform(0, 2 * np.pi))
    return Line(line_image(mask, height), text, style.touching > 0)


def draw_lines(pool: DigitPool, counts: Sequence[int], generator: torch.Generator, config: LineSynthConfig,
               height: int) -> list[Line]:
    """One line of each symbol count in `counts`, all randomness drawn from `generator`."""
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
    texts = [random_text(n, rng, config) for n in counts]
    labels = torch.tensor([int(c) for t in texts for c in t if c.isdigit()], dtype=torch.long)
    styled_lines = rng.random(len(texts)) < config.styled_lines
    styled = torch.tensor([s for t, s in zip(texts, styled_lines) for c in t if c.isdigit()], dtype=torch.bool)
    digits = torch.cat([pool.pick(t, rng) for t in texts])
    digits = _prepare(digits, labels, styled, config.digit_rotation_deg, generator)
    lines, start = [], 0
    for text in texts:
        end = start + sum(c.isdigit() for c in text)
        lines.append(draw_line(text, digits[start:end], rng, config, height))
        start = end
    return lines


def random_counts(n: int, generator: torch.Generator, config: LineSynthConfig) -> list[int]:
    low, high = config.symbols
    return torch.randint(low, high + 1, (n,), generator=generator).tolist()
