"""A compact CRNN that reads a whole line of ink with CTC: no cuts between symbols needed.

A line's binary ink mask (any size, ink True) is normalised to a fixed height (`line_image`): levelled, its
ink's box filling the height but for PAD px, the width following at the same scale, ink light on dark in
[0, 1]. Conv-BN-ReLU stages with max pooling turn it into one feature column per `column_px` px; the columns'
height is pooled away, a bidirectional GRU reads them left to right and back, and a linear layer gives every
column `frames_per_column` CTC frames over blank + "0"–"9", "-", "." (one frame per `stride` px). The frames
map back to x in the mask (`LineImage.to_mask_x`), which is how a reading is placed on the drawing
(reading/ctc.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from digit_studio.checkpoint import load_weights, read_checkpoint
from digit_studio.config import LineReaderModelConfig, from_dict
from digit_studio.errors import CheckpointError, ConfigError
from digit_studio.models.classifier import conv_bn_relu

ALPHABET = "0123456789-."  # class i + 1; class 0 is CTC's blank
BLANK = 0
NUM_CLASSES = len(ALPHABET) + 1
PAD = 2  # px of background kept above, below and on either side of the ink in a line image
CHANNELS_LAST = torch.channels_last
MAX_WIDTH = 2048  # a line image never gets wider than this (a long thin stroke is squeezed instead)
MAX_SLOPE = math.tan(math.radians(25))  # steeper is no baseline: a line is levelled up to this slope ...
LEVEL_LENGTH = 2.0  # ... when it is at least this many times as long as it is high once levelled


def encode(text: str) -> list[int]:
    return [ALPHABET.index(c) + 1 for c in text]


@dataclass(frozen=True)
class LineImage:
    image: torch.Tensor  # (height, width) float32 in [0, 1], ink light on dark; width a multiple of `multiple`
    offset: float  # x in the mask of the image's x = 0
    scale: float  # image px per mask px, horizontally

    def to_mask_x(self, x: float | np.ndarray) -> float | np.ndarray:
        """An x of the line image (px, may be fractional) as an x of the mask it was made from."""
        return self.offset + x / self.scale


def level(mask: np.ndarray) -> np.ndarray:
    """A line written on a sloping baseline, levelled: the straight line through its columns' ink centres
    is made horizontal by shifting whole columns up or down, so x stays where it was. Only a line at least
    LEVEL_LENGTH times as long as it is then high is levelled: in a symbol or two, the symbols' own shapes
    would pass for a slope."""
    columns = np.flatnonzero(mask.any(0))
    if len(columns) < 2:
        return mask
    centres = (np.argmax(mask[:, columns], 0) + mask.shape[0] - 1 - np.argmax(mask[::-1, columns], 0)) / 2
    ys, xs = np.nonzero(mask)
    slope = float(np.polyfit(columns, centres, 1)[0])
    shift = np.round(slope * (xs - columns.mean())).astype(int)
    levelled = ys - shift
    height = np.ptp(levelled) + 1
    if abs(slope) > MAX_SLOPE or np.ptp(xs) + 1 < LEVEL_LENGTH * height or height >= np.ptp(ys) + 1:
        return mask
    out = np.zeros((height, mask.shape[1]), bool)
    out[levelled - levelled.min(), xs] = True
    return out


def line_image(mask: np.ndarray, height: int = 32, multiple: int = 4) -> LineImage:
    """A line's binary ink mask as the model's input: levelled (`level`), cropped to its ink, scaled so that
    the ink's box is `height` - 2·PAD px tall (area-averaged when shrinking, so thin strokes stay as grey),
    PAD px of background around it, and the width padded to a multiple of the model's stride."""
    mask = level(mask)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return LineImage(torch.zeros(height, multiple * math.ceil(2 * PAD / multiple)), 0.0, 1.0)
    box = torch.from_numpy(np.ascontiguousarray(mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], np.float32))
    inner = height - 2 * PAD
    scale = inner / box.shape[0]
    width = max(1, min(round(box.shape[1] * scale), MAX_WIDTH - 2 * PAD))
    mode = "area" if scale < 1 else "bilinear"
    resized = F.interpolate(box[None, None], size=(inner, width), mode=mode,
                            **({} if mode == "area" else {"align_corners": False}))[0, 0].clamp(0, 1)
    image = torch.zeros(height, multiple * math.ceil((width + 2 * PAD) / multiple))
    image[PAD : PAD + inner, PAD : PAD + width] = resized
    x_scale = width / box.shape[1]  # equals `scale` unless the line was squeezed to MAX_WIDTH
    return LineImage(image, float(cols[0]) - PAD / x_scale, x_scale)


def batch_images(images: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(height, width) line images → zero-padded (B, 1, height, max width) and their widths."""
    widths = torch.tensor([im.shape[1] for im in images])
    batch = torch.zeros(len(images), 1, images[0].shape[0], int(widths.max()))
    for i, im in enumerate(images):
        batch[i, 0, :, : im.shape[1]] = im
    return batch, widths


class LineReader(nn.Module):
    def __init__(self, config: LineReaderModelConfig) -> None:
        super().__init__()
        if len(config.pools) != len(config.stages) or any(len(p) != 2 for p in config.pools):
            raise ConfigError("model.pools needs one [height, width] pair per stage of model.stages")
        if config.height % math.prod(p[0] for p in config.pools):
            raise ConfigError("model.height must be divisible by the product of the pools' heights")
        self.config = config
        layers: list[nn.Module] = []
        c_in = 1
        for widths, pool in zip(config.stages, config.pools):
            for c_out in widths:
                layers.append(conv_bn_relu(c_in, c_out))
                c_in = c_out
            if pool != [1, 1]:
                layers.append(nn.MaxPool2d(tuple(pool)))
        self.features = nn.Sequential(*layers)
        self.column_px = math.prod(p[1] for p in config.pools)  # input px per feature column
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = nn.GRU(c_in, config.hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * config.hidden, NUM_CLASSES * config.frames_per_column)

    @property
    def stride(self) -> float:
        """Input px per CTC frame."""
        return self.column_px / self.config.frames_per_column

    def frames(self, widths: torch.Tensor) -> torch.Tensor:
        return widths // self.column_px * self.config.frames_per_column

    def forward(self, x: torch.Tensor, widths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, height, W) line images (zero-padded right of each line's `widths`) → (B, T, NUM_CLASSES)
        log-probabilities and each line's frame count. Padding never changes a line's frames: features
        beyond a line's width are zeroed after every convolution, as a lone line's convolutions pad it, and
        the GRU runs on packed sequences; so a line reads the same alone or in any batch."""
        b, width = x.shape[0], x.shape[-1]
        widths = torch.full((b,), width) if widths is None else widths.cpu()
        padded = bool((widths < width).any())
        # NHWC runs these convolutions and poolings about 1.4x faster on the CPU than NCHW.
        h = x.contiguous(memory_format=CHANNELS_LAST)
        px = 1  # input px per feature column so far
        for layer in self.features:
            h = layer(h)
            if isinstance(layer, nn.MaxPool2d):
                px *= layer.kernel_size[1]
            elif padded:
                inside = torch.arange(h.shape[-1]) < torch.div(widths, px, rounding_mode="floor").view(b, 1)
                h = h * inside.view(b, 1, 1, -1).to(h)
        columns = h.amax(2).transpose(1, 2)  # (B, columns, C): height pooled away
        lengths = (widths // self.column_px).clamp(1, columns.shape[1])
        packed = pack_padded_sequence(self.dropout(columns), lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=columns.shape[1])
        logits = self.head(self.dropout(out)).view(b, -1, NUM_CLASSES)  # each column's frames in order
        return logits.log_softmax(-1), lengths * self.config.frames_per_column


def load_line_reader(path: str | Path, device: str | torch.device = "cpu") -> tuple[LineReader, dict]:
    """Load a line reader checkpoint (safetensors, no pickle) in eval mode, with its metadata."""
    tensors, meta = read_checkpoint(path, kind="line_reader")
    try:
        config = from_dict(LineReaderModelConfig, meta["model_config"], prefix="model.")
        model = LineReader(config)
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"{path} has no usable model config in its metadata ({exc})") from None
    load_weights(model, tensors, path)
    return model.to(device, memory_format=CHANNELS_LAST).eval(), meta


@torch.inference_mode()
def line_log_probs(model: LineReader, images: Sequence[torch.Tensor], batch_size: int = 200) -> list[torch.Tensor]:
    """Each line image's (T, NUM_CLASSES) log-probabilities, in eval mode, batched by width (the least
    padding); the model's mode is left as it was."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = [torch.empty(0)] * len(images)
    order = sorted(range(len(images)), key=lambda i: images[i].shape[1])
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        x, widths = batch_images([images[i] for i in chunk])
        log_probs, frames = model(x.to(device), widths)
        for i, lp, t in zip(chunk, log_probs.cpu(), frames.tolist()):
            out[i] = lp[:t]
    model.train(was_training)
    return out
