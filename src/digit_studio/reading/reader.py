"""Reading whole numbers: any image in, the number and every symbol's reading out.

    reader = Reader.from_checkpoint("checkpoints/classifier.safetensors", vae="checkpoints/vae.safetensors")
    reading = reader.read(image)   # sketchpad value, numpy array, PIL image or file path
    reading.text, reading.uncertain, reading.message, reading.symbols[0].top3

The classifier says which digit a piece of ink looks most like, but it has only ever seen single digits
and reads two touching digits squeezed into one crop as one digit with high confidence. The VAE, which
models what single digits look like, says how unlike any digit the piece is (its atypicality): the
segmentation charges pieces for it, so touching digits are split where each part looks like a digit.
Without a VAE the reader still works, on the classifier's confidence and shape priors alone.

With the CTC line model (checkpoints/line_reader.safetensors) every line is also read whole, without cuts,
and where the two readings differ a rule settles which stands (reading/two_readers.py); each symbol says
which reader decided it. Without the line model the reader reads by the cuts alone.

One Reader serves concurrent requests: the models are only ever run in eval and inference mode, and
reading keeps no state between calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from digit_studio import resources
from digit_studio.generation import atypicality
from digit_studio.models.classifier import load_classifier, reading_form
from digit_studio.models.line_reader import LineReader, load_line_reader
from digit_studio.models.vae import ConvVAE, load_vae
from digit_studio.reading.crops import mnist_crops, squeezed
from digit_studio.reading.inputs import InkMap, ink_map
from digit_studio.reading.segmentation import SEPARATORS, SegmentConfig, segment
from digit_studio.reading.two_readers import CUTS, LineDecision, LineReading, TwoReaderRule, decide_lines

DEFAULT_CLASSIFIER = resources.CLASSIFIER
DEFAULT_VAE = resources.VAE
DEFAULT_LINE_READER = resources.LINE_READER
UNCERTAIN_BELOW = 0.7  # a digit read with less confidence than this is flagged
# A digit whose atypicality (VAE negative ELBO, nats) exceeds this looks like no digit the VAE knows: the
# 95th percentile of MNIST test digits' scores (bench/vae_quality.py).
NOT_A_DIGIT_ABOVE = 122.0
MAX_SYMBOLS = 40  # more symbols than this is scribbling, not a number
EMPTY = "Draw a number"
REDRAW = "draw the number larger, with fewer strokes"


@dataclass(frozen=True)
class NarrowLook:
    """A chosen piece about as wide as it is tall is also read squeezed, and the two readings averaged: MNIST's
    digits are narrow, while people (and forms that scale digits to a box) write them as wide as tall, and a
    wide 1, 7 or 9 then looks like no MNIST digit. Chosen on held-back MNIST training digits (README)."""

    above: float = 0.9  # pieces at least this many times as wide as tall get the second look
    to: float = 0.5  # squeezed to this many times as wide as tall


@dataclass(frozen=True)
class Symbol:
    label: str  # "0".."9", or a separator: "-" or "."
    confidence: float  # the deciding reader's probability for the label (the classifier's where the cuts
    # decided, with the narrow look on a wide piece; the line model's where it did); 1 for a separator read by shape
    top3: tuple[tuple[str, float], ...]  # the three likeliest digits with their probabilities
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the input's pixels (end exclusive)
    crop: np.ndarray  # (28, 28) float32 in [0, 1], ink light on dark: what the classifier saw
    line: int  # 0 for the first line
    atypicality: float | None = None  # the crop's negative ELBO under the VAE (nats), if the reader has one
    unlike: bool = False  # looks like no digit the VAE knows (atypicality above the reader's threshold)
    reader: str = CUTS  # who decided it: "cuts" (segmentation and classifier), "line" (the CTC line model
    # overruled the cuts) or "both" (they agreed)
    frames: tuple[int, int] | None = None  # its first and last frame in its line's line-model reading

    @property
    def is_digit(self) -> bool:
        return self.label.isdigit()

    @property
    def uncertain(self) -> bool:
        """Read without confidence, or looking like no digit: a person should check it."""
        return self.confidence < UNCERTAIN_BELOW or self.unlike


@dataclass(frozen=True)
class Reading:
    text: str  # the number; lines joined by "\n"
    symbols: tuple[Symbol, ...]  # in reading order
    message: str | None = None  # for a person, when nothing could be read ("Draw a number", too messy)
    lines: tuple[LineReading | None, ...] = ()  # per line, what the line model read (None: it did not)

    @property
    def uncertain(self) -> bool:
        return self.message is not None or any(s.uncertain for s in self.symbols)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: text, message, uncertain and each symbol's label, confidence and box."""
        return {
            "text": self.text,
            "digits": [
                {"label": s.label, "confidence": round(s.confidence, 4), "box": list(s.box), "reader": s.reader}
                for s in self.symbols
            ],
            "uncertain": self.uncertain,
            "message": self.message,
        }


class Reader:
    def __init__(self, model: nn.Module, vae: ConvVAE | None = None, segment_config: SegmentConfig = SegmentConfig(),
                 not_a_digit_above: float = NOT_A_DIGIT_ABOVE, line_model: LineReader | None = None,
                 rule: TwoReaderRule = TwoReaderRule(), narrow: NarrowLook | None = NarrowLook()) -> None:
        self.model = model.eval()
        self.line_model = reading_form(line_model) if line_model is not None else None
        self.rule = rule
        self.vae = vae.eval() if vae is not None else None
        self.device = next(model.parameters()).device
        self.segment_config = segment_config
        self.not_a_digit_above = not_a_digit_above
        self.narrow = narrow  # None: every piece read as it is

    @classmethod
    def from_checkpoint(cls, path: str | Path = DEFAULT_CLASSIFIER, vae: str | Path | None = DEFAULT_VAE,
                        device: str | torch.device = "cpu", line_reader: str | Path | None = DEFAULT_LINE_READER,
                        ) -> Reader:
        """The reader from checkpoints; the line model is left out when `line_reader` is None, or is the
        default path and no checkpoint is there (the cuts alone read)."""
        model, _ = load_classifier(path, device)
        vae_model = load_vae(vae, device)[0] if vae is not None else None
        return cls(model, vae_model, line_model=optional_line_reader(line_reader, device))

    def read(self, image: Any) -> Reading:
        """Read the number in `image`; InputError (a DigitStudioError) if it is no image at all."""
        return self.read_ink(ink_map(image))

    def read_ink(self, ink: InkMap) -> Reading:
        """Read the number in an ink map already made from the input (`inputs.ink_map`)."""
        if not ink.mask.any():
            return Reading("", (), EMPTY)
        found = segment(ink.mask, self.classify, self.segment_config)
        count = sum(len(line) for line in found.lines)
        if found.problem or count > MAX_SYMBOLS:
            why = found.problem or f"{count} symbols"
            return Reading("", (), f"Too messy to read ({why}): {REDRAW}")
        if count == 0:
            return Reading("", (), EMPTY)
        if all(p.kind == "scribble" for line in found.lines for p in line):
            return Reading("", (), f"Too messy to read (a scribble, not a number): {REDRAW}")
        digits = [p for line in found.lines for p in line if p.kind == "digit"]
        if digits:  # the pieces the cuts chose get the narrow look their candidates were scored without
            probs = torch.stack([p.probs for p in digits])
            self._look_narrow([p.mask for p in digits], probs)
            for piece, p in zip(digits, probs):
                piece.probs = p
        decisions = (decide_lines(found.lines, self.read_pieces, self.line_model, self.rule)
                     if self.line_model is not None else [LineDecision.of_cuts(line) for line in found.lines])
        symbols = tuple(self._symbol(d, i, ink, found.scale, line) for line, d in enumerate(decisions)
                        for i in range(len(d.pieces)))
        text = "\n".join("".join(s.label for s in symbols if s.line == k) for k in range(len(found.lines)))
        return Reading(text, symbols, lines=tuple(d.reading for d in decisions))

    @torch.inference_mode()
    def classify(self, masks: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Binary symbol masks → MNIST-style crops (N, 1, 28, 28), class probabilities (N, 10) and, with a
        VAE, atypicality (N,), in one batch: how candidate cuts are scored."""
        crops = mnist_crops(masks)
        probs = self.model(crops.to(self.device)).float().softmax(1).cpu()
        unlike = atypicality(self.vae, crops).cpu() if self.vae is not None and len(crops) else None
        return crops, probs, unlike

    def read_pieces(self, masks: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """`classify`, as the reader reads the pieces it chose (the cuts' and the line model's), with the narrow
        look on those as wide as tall. Candidate cuts are scored on `classify` alone, on which the segmentation's
        settings were chosen."""
        crops, probs, unlike = self.classify(masks)
        self._look_narrow(list(masks), probs)
        return crops, probs, unlike

    @torch.inference_mode()
    def _look_narrow(self, masks: list[np.ndarray], probs: torch.Tensor) -> None:
        """Average, in place, each wide mask's probabilities with those of its squeezed copy (a second crop,
        read but never shown)."""
        look = self.narrow
        if look is None:
            return
        wide = [i for i, m in enumerate(masks) if m.shape[1] >= look.above * m.shape[0]]
        if wide:
            crops = mnist_crops([squeezed(masks[i], look.to) for i in wide])
            probs[wide] = (probs[wide] + self.model(crops.to(self.device)).float().softmax(1).cpu()) / 2

    def _symbol(self, decision: LineDecision, i: int, ink: InkMap, scale: int, line: int) -> Symbol:
        piece, label, frames = decision.pieces[i], decision.labels[i], decision.frames[i]
        reader = decision.reading.decided if decision.reading is not None else CUTS
        box = ink.to_input(tuple(v * scale for v in piece.box))
        if piece.kind in SEPARATORS:  # read by shape (confidence 1) or by the line model: no crop was classified
            return Symbol(piece.kind, decision.confidences[i], (), box, np.zeros((28, 28), np.float32), line,
                          reader=reader, frames=frames)
        top = piece.probs.topk(3)
        top3 = tuple((str(int(j)), float(p)) for p, j in zip(top.values, top.indices))
        unlike = piece.kind == "scribble" or (piece.atypicality is not None and piece.atypicality > self.not_a_digit_above)
        return Symbol(label, decision.confidences[i], top3, box, piece.crop.numpy(), line, piece.atypicality, unlike,
                      reader, frames)


def optional_line_reader(path: str | Path | None, device: str | torch.device = "cpu") -> LineReader | None:
    """The line model at `path`; None for None, or for the default path where no checkpoint is installed."""
    if path is None or (Path(path) == DEFAULT_LINE_READER and not DEFAULT_LINE_READER.exists()):
        return None
    return load_line_reader(path, device)[0]
