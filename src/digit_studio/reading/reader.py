"""Reading whole numbers: any image in, the number and every symbol's reading out.

    reader = Reader.from_checkpoint("checkpoints/classifier.safetensors", vae="checkpoints/vae.safetensors")
    reading = reader.read(image)   # sketchpad value, numpy array, PIL image or file path
    reading.text, reading.uncertain, reading.message, reading.symbols[0].top3

The classifier says which digit a piece of ink looks most like, but it has only ever seen single digits
and reads two touching digits squeezed into one crop as one digit with high confidence. The VAE, which
models what single digits look like, says how unlike any digit the piece is (its atypicality): the
segmentation charges pieces for it, so touching digits are split where each part looks like a digit.
Without a VAE the reader still works, on the classifier's confidence and shape priors alone.

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
from digit_studio.models.classifier import load_classifier
from digit_studio.models.vae import ConvVAE, load_vae
from digit_studio.reading.crops import mnist_crops
from digit_studio.reading.inputs import InkMap, ink_map
from digit_studio.reading.segmentation import SEPARATORS, Piece, SegmentConfig, segment

DEFAULT_CLASSIFIER = resources.CLASSIFIER
DEFAULT_VAE = resources.VAE
UNCERTAIN_BELOW = 0.7  # a digit read with less confidence than this is flagged
# A digit whose atypicality (VAE negative ELBO, nats) exceeds this looks like no digit the VAE knows: the
# 95th percentile of MNIST test digits' scores (bench/vae_quality.py).
NOT_A_DIGIT_ABOVE = 122.0
MAX_SYMBOLS = 40  # more symbols than this is scribbling, not a number
EMPTY = "Draw a number"
REDRAW = "draw the number larger, with fewer strokes"


@dataclass(frozen=True)
class Symbol:
    label: str  # "0".."9", or a separator: "-" or "."
    confidence: float  # the classifier's probability for a digit; 1 for a separator (read by shape)
    top3: tuple[tuple[str, float], ...]  # the three likeliest digits with their probabilities
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the input's pixels (end exclusive)
    crop: np.ndarray  # (28, 28) float32 in [0, 1], ink light on dark: what the classifier saw
    line: int  # 0 for the first line
    atypicality: float | None = None  # the crop's negative ELBO under the VAE (nats), if the reader has one
    unlike: bool = False  # looks like no digit the VAE knows (atypicality above the reader's threshold)

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

    @property
    def uncertain(self) -> bool:
        return self.message is not None or any(s.uncertain for s in self.symbols)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: text, message, uncertain and each symbol's label, confidence and box."""
        return {
            "text": self.text,
            "digits": [
                {"label": s.label, "confidence": round(s.confidence, 4), "box": list(s.box)} for s in self.symbols
            ],
            "uncertain": self.uncertain,
            "message": self.message,
        }


class Reader:
    def __init__(self, model: nn.Module, vae: ConvVAE | None = None, segment_config: SegmentConfig = SegmentConfig(),
                 not_a_digit_above: float = NOT_A_DIGIT_ABOVE) -> None:
        self.model = model.eval()
        self.vae = vae.eval() if vae is not None else None
        self.device = next(model.parameters()).device
        self.segment_config = segment_config
        self.not_a_digit_above = not_a_digit_above

    @classmethod
    def from_checkpoint(cls, path: str | Path = DEFAULT_CLASSIFIER, vae: str | Path | None = DEFAULT_VAE,
                        device: str | torch.device = "cpu") -> Reader:
        model, _ = load_classifier(path, device)
        return cls(model, load_vae(vae, device)[0] if vae is not None else None)

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
        symbols = tuple(self._symbol(p, ink, found.scale, line) for line, pieces in enumerate(found.lines)
                        for p in pieces)
        text = "\n".join("".join(s.label for s in symbols if s.line == k) for k in range(len(found.lines)))
        return Reading(text, symbols)

    @torch.inference_mode()
    def classify(self, masks: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Binary symbol masks → MNIST-style crops (N, 1, 28, 28), class probabilities (N, 10) and, with a
        VAE, atypicality (N,), in one batch."""
        crops = mnist_crops(masks)
        probs = self.model(crops.to(self.device)).float().softmax(1).cpu()
        unlike = atypicality(self.vae, crops).cpu() if self.vae is not None and len(crops) else None
        return crops, probs, unlike


    def _symbol(self, piece: Piece, ink: InkMap, scale: int, line: int) -> Symbol:
        box = ink.to_input(tuple(v * scale for v in piece.box))
        if piece.kind in SEPARATORS:  # read by shape: no crop was classified
            return Symbol(piece.kind, 1.0, (), box, np.zeros((28, 28), np.float32), line)
        top = piece.probs.topk(3)
        top3 = tuple((str(int(i)), float(p)) for p, i in zip(top.values, top.indices))
        unlike = piece.kind == "scribble" or (piece.atypicality is not None and piece.atypicality > self.not_a_digit_above)
        return Symbol(top3[0][0], top3[0][1], top3, box, piece.crop.numpy(), line, piece.atypicality, unlike)
