"""Everything the studio says about one drawing, as plain Python: the UI and the API are thin shells over it.

    studio = Studio.from_checkpoints()
    result = studio.analyze(image, method="gradcam", variations=4)
    result.reading.text, result.digits[0].explanation.faithfulness, result.to_dict()

With the CTC line model, every line is also read whole and each digit says which reader decided it; an
explained analysis adds the line model's view of each digit (explain/line_view.py): its map over the whole
line image it read, and how faithful that map is.

Thread safety: reading and the VAE run in inference mode only and keep no state, so any number of requests
share one classifier, one VAE and one line model without locks. Explanation methods hook the classifier's
(and the line model's) layers for the duration of a call; they run on copies borrowed from a pool, so no
hook ever touches a reading model or another request's explanation.
"""

from __future__ import annotations

import copy
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from digit_studio.errors import DigitStudioError
from digit_studio.explain import METHODS, explain
from digit_studio.explain.line_view import LineView, line_views
from digit_studio.generation import DEFAULT_TEMPERATURE, interpolate
from digit_studio.generation import variations as variations_of
from digit_studio.models.classifier import load_classifier
from digit_studio.models.line_reader import LineReader
from digit_studio.models.vae import ConvVAE, load_vae
from digit_studio.reading.inputs import ink_map
from digit_studio.reading.reader import (
    DEFAULT_CLASSIFIER,
    DEFAULT_LINE_READER,
    DEFAULT_VAE,
    NOT_A_DIGIT_ABOVE,
    Reader,
    Reading,
    Symbol,
    optional_line_reader,
)

MAX_VARIATIONS = 16
MAX_TEMPERATURE = 3.0


class ModelPool:
    """Copies of a model lent to one thread at a time (explanations hook the model's layers)."""

    def __init__(self, model: nn.Module, copies: int) -> None:
        if copies < 1:
            raise DigitStudioError(f"an explanation pool needs at least one model copy, got {copies}")
        self._free: queue.Queue[nn.Module] = queue.Queue()
        for _ in range(copies):
            self._free.put(copy.deepcopy(model).eval())

    @contextmanager
    def borrow(self) -> Iterator[nn.Module]:
        model = self._free.get()
        try:
            yield model
        finally:
            self._free.put(model)


@dataclass(frozen=True)
class DigitExplanation:
    map: np.ndarray  # (28, 28) in [0, 1], over the digit's crop
    target: int  # the class explained
    faithfulness: dict[str, float]  # deletion/insertion AUC of the map and of a random ink order


@dataclass(frozen=True)
class DigitAnalysis:
    symbol: Symbol
    atypicality: float  # nats; larger is less like any MNIST digit
    not_a_digit: bool
    explanation: DigitExplanation | None
    variations: np.ndarray  # (k, 28, 28) in [0, 1], ink light on dark; k may be 0
    line_view: LineView | None = None  # the line model's map over its line, with an explanation method

    def to_dict(self, arrays: bool = True) -> dict[str, Any]:
        s = self.symbol
        out: dict[str, Any] = {
            "label": s.label, "confidence": round(s.confidence, 4),
            "top3": [{"label": label, "probability": round(p, 4)} for label, p in s.top3],
            "box": list(s.box), "line": s.line, "uncertain": s.uncertain,
            "atypicality": round(self.atypicality, 1), "not_a_digit": self.not_a_digit, "reader": s.reader,
        }
        if self.explanation is not None:
            out["explanation"] = {"target": self.explanation.target, "faithfulness": self.explanation.faithfulness}
            if arrays:
                out["explanation"]["map"] = _levels(self.explanation.map)
        if self.line_view is not None:
            out["line_view"] = {"frame": self.line_view.frame, "faithfulness": self.line_view.faithfulness}
            if arrays:
                out["line_view"]["map"] = _levels(self.line_view.map)
        if arrays and len(self.variations):
            out["variations"] = _levels(self.variations)
        return out


def _levels(values: np.ndarray) -> list:
    """[0, 1] floats as nested lists of 0-255 levels: a quarter of the JSON of 3-decimal floats."""
    return np.rint(values * 255).astype(np.uint8).tolist()


@dataclass(frozen=True)
class Analysis:
    reading: Reading
    digits: tuple[DigitAnalysis, ...]  # one per digit symbol of the reading (separators have none)
    method: str | None  # explanation method, None when not explained
    why_not: bool  # the maps explain each digit's runner-up class
    temperature: float
    ink: np.ndarray  # (h, w) float32 in [0, 1], 1 = ink: the drawing as read, at working resolution
    scale: int  # input pixels per working pixel (boxes are in input pixels)
    timings_ms: dict[str, float]

    @property
    def message(self) -> str | None:
        """For a person: why nothing was read, or which digits to check."""
        if self.reading.message:
            return self.reading.message
        odd = [str(i + 1) for i, d in enumerate(self.digits) if d.not_a_digit]
        if len(odd) == 1:
            return f"Digit #{odd[0]} looks unlike the digits the model learned from: check its reading"
        if odd:
            return f"Digits #{', #'.join(odd)} look unlike the digits the model learned from: check their readings"
        return None

    def to_dict(self, arrays: bool = True) -> dict[str, Any]:
        """JSON-ready; `arrays` adds each digit's 28×28 map, its line view's map (over the line image, 32 px
        high) and its variations as 0-255 levels (255 = most important / ink)."""
        return {
            "text": self.reading.text, "message": self.message, "uncertain": self.reading.uncertain,
            "not_a_digit": any(d.not_a_digit for d in self.digits),
            "method": self.method, "why_not": self.why_not, "temperature": self.temperature,
            "digits": [d.to_dict(arrays) for d in self.digits],
            "separators": [{"label": s.label, "box": list(s.box)} for s in self.reading.symbols if not s.is_digit],
            "timings_ms": self.timings_ms,
        }


class Studio:
    """The studio's models, loaded once and shared by every request."""

    def __init__(self, classifier: nn.Module, vae: ConvVAE, explainers: int = 2,
                 not_a_digit_above: float = NOT_A_DIGIT_ABOVE, line_model: LineReader | None = None) -> None:
        self.vae = vae.eval()
        self.not_a_digit_above = not_a_digit_above
        # The VAE also helps split touching digits, and flags digits unlike any it knows.
        self.reader = Reader(classifier.eval(), self.vae, not_a_digit_above=self.not_a_digit_above,
                             line_model=line_model)
        self._pool = ModelPool(classifier, explainers)
        line = self.reader.line_model  # in its reading form: the explanations explain the model that read
        self._line_pool = ModelPool(line, explainers) if line is not None else None

    @classmethod
    def from_checkpoints(cls, classifier: str | Path = DEFAULT_CLASSIFIER, vae: str | Path = DEFAULT_VAE,
                         explainers: int = 2, device: str | torch.device = "cpu",
                         line_reader: str | Path | None = DEFAULT_LINE_READER) -> Studio:
        """The studio from checkpoints; without the line model (`line_reader` None, or the default path
        with no checkpoint installed) the cuts alone read."""
        model, _ = load_classifier(classifier, device)
        vae_model, meta = load_vae(vae, device)
        # measured by bench/vae_quality.py (MNIST test digits' 95th percentile) and kept with the VAE
        return cls(model, vae_model, explainers, float(meta.get("not_a_digit_above", NOT_A_DIGIT_ABOVE)),
                   optional_line_reader(line_reader, device))

    def read(self, image: Any) -> Reading:
        return self.reader.read(image)

    def analyze(self, image: Any, method: str | None = "gradcam", why_not: bool = False, variations: int = 4,
                temperature: float = DEFAULT_TEMPERATURE, seed: int = 0) -> Analysis:
        """Read `image` (anything Reader.read takes), then for every digit: its atypicality, a map from
        `method` (None: no map) of its label or, with `why_not`, the classifier's likeliest other class (with
        a method, also the line model's view of it), and `variations` VAE variations at `temperature`
        (reproducible for a given `seed`)."""
        _check_options(method, why_not, variations, temperature)
        clock = _Clock()
        ink = ink_map(image)  # read, and kept for drawing the maps on
        reading = self.reader.read_ink(ink)
        empty = np.zeros((0, 28, 28), np.float32)
        digits = tuple(DigitAnalysis(s, float(s.atypicality), s.unlike, None, empty)  # scored by the reader
                       for s in reading.symbols if s.is_digit)
        clock.lap("read")
        read = Analysis(reading, digits, None, False, temperature, ink.mask.astype(np.float32), ink.scale,
                        clock.timings())
        return self.elaborate(read, method, why_not, variations, temperature, seed)

    def elaborate(self, analysis: Analysis, method: str | None = "gradcam", why_not: bool = False,
                  variations: int = 4, temperature: float = DEFAULT_TEMPERATURE, seed: int = 0) -> Analysis:
        """The same reading with other explanations and variations: the drawing is not read again (the
        studio reads once per stroke and redraws its panels from that reading when an option changes)."""
        _check_options(method, why_not, variations, temperature)
        if not analysis.digits or (method is None and not variations):
            return replace(analysis, method=method, why_not=why_not, temperature=temperature)
        clock = _Clock()
        crops = torch.from_numpy(np.stack([d.symbol.crop for d in analysis.digits]))[:, None]
        maps: list[DigitExplanation | None] = [None] * len(crops)
        views: list[LineView | None] = [None] * len(crops)
        varied = np.zeros((len(crops), 0, 28, 28), np.float32)
        if method is not None:
            # The label may be the line model's rather than the classifier's likeliest class: explain the label
            # (or, with why_not, the classifier's likeliest other class), as the captions say.
            targets = [_runner_up(d.symbol) if why_not else int(d.symbol.label) for d in analysis.digits]
            maps = self._explain(crops, method, targets, seed)
            clock.lap("explain")
            if self._line_pool is not None and any(line is not None for line in analysis.reading.lines):
                views = _line_views(self._line_pool, analysis, seed)
                clock.lap("line_view")
        if variations:
            generator = torch.Generator().manual_seed(seed)
            varied = variations_of(self.vae, crops, variations, float(temperature), generator)[:, :, 0].numpy()
            clock.lap("variations")
        digits = tuple(replace(d, explanation=m, variations=v, line_view=lv)
                       for d, m, v, lv in zip(analysis.digits, maps, varied, views))
        laps = clock.timings()
        timings = {**{k: v for k, v in analysis.timings_ms.items() if k == "read"}, **laps,
                   "total": round(analysis.timings_ms.get("read", 0.0) + laps["total"], 2)}
        return replace(analysis, digits=digits, method=method, why_not=why_not, temperature=temperature,
                       timings_ms=timings)

    def _explain(self, crops: torch.Tensor, method: str, targets: list[int], seed: int) -> list[DigitExplanation]:
        with self._pool.borrow() as model:
            result = explain(model, crops, method, targets, seed=seed)
        return [DigitExplanation(result.maps[i].numpy(), int(result.target[i]), result.faithfulness.summary(i))
                for i in range(len(crops))]

    def interpolate(self, analysis: Analysis, start: int, end: int, steps: int = 8) -> np.ndarray:
        """(steps, 28, 28) digits on the VAE's latent path from digit `start` to digit `end` (0-based)."""
        count = len(analysis.digits)
        if not (0 <= start < count and 0 <= end < count):
            raise DigitStudioError(f"pick two of the {count} digits read (numbered 1 to {count})")
        a, b = (torch.from_numpy(analysis.digits[i].symbol.crop) for i in (start, end))
        return interpolate(self.vae, a, b, steps)[:, 0].numpy()


def _runner_up(symbol: Symbol) -> int:
    """The classifier's likeliest class other than the symbol's label."""
    return int(next(label for label, _ in symbol.top3 if label != symbol.label))


def _line_views(pool: ModelPool, analysis: Analysis, seed: int) -> list[LineView | None]:
    """Each digit's view by the line model, line by line (None on a line it did not read)."""
    symbols = [d.symbol for d in analysis.digits]
    views: list[LineView | None] = [None] * len(symbols)
    with pool.borrow() as model:
        for k, reading in enumerate(analysis.reading.lines):
            mine = [i for i, s in enumerate(symbols) if s.line == k]
            if reading is None or not mine:
                continue
            for i, view in zip(mine, line_views(model, reading, [symbols[i] for i in mine], seed=seed)):
                views[i] = view
    return views


def _check_options(method: str | None, why_not: bool, count: int, temperature: float) -> None:
    if method is not None and (not isinstance(method, str) or method not in METHODS):
        raise DigitStudioError(f"unknown explanation method {method!r}; choose one of {', '.join(METHODS)}")
    if not isinstance(why_not, bool):
        raise DigitStudioError(f"why_not must be true or false, got {why_not!r}")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_VARIATIONS:
        raise DigitStudioError(f"variations must be a whole number from 0 to {MAX_VARIATIONS}, got {count!r}")
    number = isinstance(temperature, (int, float)) and not isinstance(temperature, bool)
    if not number or not 0 <= temperature <= MAX_TEMPERATURE:
        raise DigitStudioError(f"temperature must be a number from 0 to {MAX_TEMPERATURE:g}, got {temperature!r}")


class _Clock:
    """Milliseconds per stage of a request, and the total."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self._laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self._laps[name] = round(1000 * (now - self._last), 2)
        self._last = now

    def timings(self) -> dict[str, float]:
        return {**self._laps, "total": round(1000 * (time.perf_counter() - self._start), 2)}
