"""The line reader's view of each symbol: Grad-CAM of the CTC line model over the whole line image, scored
for faithfulness like the classifier's maps.

The line model reads a line as a sequence of frames, and a symbol is read at its frames (`Symbol.frames`).
Its map explains the log-probability of its label at the frame of that window where the label is likeliest
(picked in the map's own forward pass), taken at the last convolutional block: the finest feature map
before the model pools the height away. The recurrent layer sees the whole line, so the evidence for a
symbol may lie beyond its own ink; the map covers the whole line to show where it does.

Grad-CAM weighs each channel by its gradient averaged over the whole map. Over a line that average mixes
every symbol's gradients, and a channel that helps read this symbol lights up on every symbol that has the
stroke it detects. So each feature column, one step of the sequence the recurrent layer reads, gets its own
channel weights (gradients averaged over the height only). On 68 symbols of 12 synthetic drawings of MNIST
test digits, whole-map weights put 25 % of a map's mass within 8 px of its symbol's frames and were hardly
more faithful than a random ink order (deletion AUC .20 against .21, insertion .47 against .22); per-column
weights put 85 % there (deletion .07, insertion .75).

Faithfulness follows explain/faithfulness.py over the ink of the line image, the score being the label's
highest probability within the symbol's frame window; the symbols of a line share one random ink order. The
perturbed lines go through the model in chunks of at most PROBE_PIXELS pixels, so that a long line with many
symbols cannot claim unbounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digit_studio.explain.base import check_model, unit_range
from digit_studio.explain.cam import captured_activations
from digit_studio.explain.faithfulness import DEFAULT_STEPS, Faithfulness, assemble, map_and_random_ranks, probes
from digit_studio.models.line_reader import ALPHABET, LineReader
from digit_studio.reading.reader import Symbol
from digit_studio.reading.two_readers import LineReading

PROBE_PIXELS = 1 << 20  # input pixels per forward pass: 16 copies of the widest line (2048 px), 128 of a 256 px one


@dataclass(frozen=True)
class LineView:
    """One symbol as the line model sees it."""

    map: np.ndarray  # (height, width) in [0, 1] over the line image the model read (LineReading.image.image)
    frame: int  # the CTC frame explained: the one of the symbol's frames where its label is likeliest
    faithfulness: dict[str, float]  # deletion/insertion AUC of the map and of a random ink order


def last_conv_block(model: LineReader) -> str:
    """The dotted name of the last conv-BN-ReLU block of `model.features`."""
    last = max(i for i, layer in enumerate(model.features) if not isinstance(layer, nn.MaxPool2d))
    return f"features.{last}"


def line_views(model: LineReader, reading: LineReading, symbols: Sequence[Symbol], steps: int = DEFAULT_STEPS,
               seed: int = 0) -> list[LineView | None]:
    """The view of each of a line's `symbols` (None for a symbol that the line model has no frames for, or
    whose label it cannot read). `seed` fixes the random ink order the maps are compared with."""
    device, dtype = check_model(model)
    explained = [i for i, s in enumerate(symbols) if s.frames is not None and s.label in ALPHABET]
    views: list[LineView | None] = [None] * len(symbols)
    if not explained:
        return views
    with torch.inference_mode(False):
        image = reading.image.image.to(device, dtype).clone()  # a normal tensor, usable by autograd
    classes = torch.tensor([ALPHABET.index(symbols[i].label) + 1 for i in explained], device=device)
    last_frame = len(reading.log_probs) - 1
    windows = torch.tensor([symbols[i].frames for i in explained], device=device).clamp(0, last_frame)
    maps, frames, intact = _gradcam(model, image, classes, windows)
    scores = _faithfulness(model, image, maps, classes, windows, intact, steps, seed)
    for k, i in enumerate(explained):
        views[i] = LineView(maps[k].cpu().numpy(), int(frames[k]), scores.summary(k))
    return views


def _best_in_window(log_probs: torch.Tensor, classes: torch.Tensor,
                    windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For (M, T, C) log-probabilities: each row's highest log-probability of its class (M,) within its
    frame window [first, last] (M, 2), and the frame where it is."""
    label = log_probs.gather(2, classes.view(-1, 1, 1).expand(-1, log_probs.shape[1], 1))[..., 0]
    t = torch.arange(label.shape[1], device=label.device)
    inside = (t >= windows[:, :1]) & (t <= windows[:, 1:])
    return label.masked_fill(~inside, -torch.inf).max(1)


def _gradcam(model: LineReader, image: torch.Tensor, classes: torch.Tensor,
             windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maps (K, height, width) in [0, 1], the frames explained (K,) and the intact line's scores (K,). Each
    symbol's objective is taken on its own copy of the line and the objectives are summed, so one backward
    pass gives every symbol its own gradients (one pass per PROBE_PIXELS of copies)."""
    layer = last_conv_block(model)
    per_pass = max(1, PROBE_PIXELS // image.numel())
    cams, frames, values = [], [], []
    for start in range(0, len(classes), per_pass):
        part = slice(start, start + per_pass)
        count = len(classes[part])
        with captured_activations(model, layer) as store, torch.inference_mode(False):
            with torch.no_grad():  # no graph before the layer; the hook records one from it on
                log_probs, _ = model(image.expand(count, 1, *image.shape))
            best, frame = _best_in_window(log_probs.detach(), classes[part], windows[part])
            (activations,) = store
            objective = log_probs[torch.arange(count, device=image.device), frame, classes[part]].sum()
            with torch.enable_grad():
                (gradients,) = torch.autograd.grad(objective, activations)
        weights = gradients.mean(2, keepdim=True)  # per channel and feature column (see the module's doc)
        cams.append((weights * activations.detach()).sum(1).clamp(min=0))
        frames.append(frame)
        values.append(best.exp())
    cam = F.interpolate(torch.cat(cams)[:, None], size=tuple(image.shape), mode="bilinear", align_corners=False)
    return unit_range(cam[:, 0]), torch.cat(frames), torch.cat(values)


@torch.inference_mode()
def _faithfulness(model: LineReader, image: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
                  windows: torch.Tensor, intact: torch.Tensor, steps: int, seed: int) -> Faithfulness:
    """Deletion/insertion curves of every symbol's map and of one random ink order, over the line's ink. All
    the symbols of a line share its ink, so they share the random order too: its perturbed lines go through
    the model once and every symbol's score is read from them (126 copies of a 6-digit line, not 216)."""
    count = len(classes)
    flat = image.flatten()[None]
    ranks, shuffled = (r[:, None] for r in map_and_random_ranks(maps.flatten(1), flat != 0, seed))  # (·, 1, N)
    per_symbol = 2 * (steps - 1)  # perturbed lines per order: deletion and insertion
    symbols_per_batch = max(1, PROBE_PIXELS // (per_symbol * image.numel()))
    own = []
    for start in range(0, count, symbols_per_batch):
        part = slice(start, start + symbols_per_batch)
        probed = probes(flat.expand(len(classes[part]), -1), ranks[part], steps).reshape(-1, 1, *image.shape)
        scores = _best_in_window(_log_probs(model, probed), classes[part].repeat_interleave(per_symbol),
                                 windows[part].repeat_interleave(per_symbol, 0))[0].exp()
        own.append(scores.view(-1, 2, 1, steps - 1))
    random_lines = _log_probs(model, probes(flat, shuffled, steps).reshape(-1, 1, *image.shape))  # (P, T, C)
    random = torch.stack([_best_in_window(random_lines, c.expand(per_symbol), w.expand(per_symbol, 2))[0].exp()
                          for c, w in zip(classes, windows)]).view(count, 2, 1, steps - 1)
    blank_log_probs, _ = model(torch.zeros_like(image)[None, None])
    blank = _best_in_window(blank_log_probs.expand(count, -1, -1), classes, windows)[0].exp()
    deletion, insertion = assemble(intact, blank, torch.cat([torch.cat(own), random], 2))
    return Faithfulness(deletion[:, 0], insertion[:, 0], deletion[:, 1], insertion[:, 1])


def _log_probs(model: LineReader, images: torch.Tensor) -> torch.Tensor:
    """(M, T, classes) log-probabilities of line images (M, 1, height, width) of one width, run through the
    model PROBE_PIXELS at a time."""
    per_pass = max(1, PROBE_PIXELS // images[0].numel())
    return torch.cat([model(images[start : start + per_pass])[0] for start in range(0, len(images), per_pass)])
