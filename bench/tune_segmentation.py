"""Choose segmentation's splitting settings on training data only, by coordinate descent.

    flock /tmp/digit_cpu.lock python bench/tune_segmentation.py [--per-category 120] [--real 800] [--boxed 0]
                                                                [--redrawn 0] [--line-reader PATH] [--only SETTING ...]

The tuning set: drawings of MNIST **training** digits in every category of bench/multidigit.py, and single
digits of the trainable real handwriting (optdigits-orig.tra), pasted as bench/real_handwriting.py pastes
a digit, both as written and stretched to fill a 16-px box (as forms and some scanners normalise digits);
with `--boxed`, also single MNIST training digits stretched so, half of them in the styles people write, and with
`--redrawn`, such digits first redrawn three times as large (their thin strokes break in the box, as a coarse scan
breaks them).
The objective is the mean over those sets of the exact rate (and, for the single digits, of the share read
as one symbol too), the five original categories counting twice: their bar is "no worse than before".
Starting from the committed SegmentConfig, each setting in SEARCH (or `--only` those named) is tried at each
of its values in turn, others fixed, and kept at its best; passes repeat until none improves. The cuts alone
read, unless `--line-reader` gives the line model to read with them as the studio does. Classifications are
cached by mask, so each reading after the first costs only the segmentation's own work (and the line
model's). Prints the settings chosen and writes results/bench/tune_segmentation.json. The committed defaults
are what it chose with the cuts alone, but lone_split_cost, chosen again with both readers and stretched
digits (results/bench/tune_segmentation_lone.json, README), and stacked_aspect, chosen with both readers and
redrawn digits (results/bench/tune_segmentation_stacked.json, README).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from multidigit import CATEGORIES  # sibling benchmarks: python puts bench/ on the path
from real_handwriting import scanned
from tqdm import tqdm

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.config import DataConfig, RealDataConfig
from digit_studio.reading.reader import DEFAULT_CLASSIFIER, DEFAULT_VAE, Reader
from digit_studio.reading.segmentation import SegmentConfig
from digit_studio.training.augment import binary_masks
from digit_studio.training.data import Split, load_mnist, load_splits
from digit_studio.training.realdigits import TRAIN_FILE, load_realdigits
from digit_studio.training.styles import styled_copies
from digit_studio.training.synth import boxed, draw_number, pick_digits, scan

SEARCH: dict[str, tuple[float, ...]] = {
    "lone_split_cost": (0.55, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0),
    "lone_wide": (1.0, 1.2, 1.3, math.inf),
    "split_cost": (0.4, 0.55, 0.7, 0.9),
    "piece_height": (0.0, 0.7, 0.85),
    "lone_piece_height": (0.0, 0.7, 0.8, 0.85),
    "piece_confidence": (0.0, 0.5, 0.8),
    "atypical_cost": (0.005, 0.01, 0.015),
    "wide_from": (0.0, 0.5, 1.0),
    "stroke_cost": (0.0, 0.25),
    "stacked_aspect": (0.0, 1.25, 1.5, 2.0),
}
BOX = 16  # px of the stretched copies' box
KEPT = ("separated", "touching", "broken", "slanted", "two_lines")  # count twice


class CachedReader(Reader):
    """The real reader (with its line model, if it has one); each distinct mask is classified once (crops are
    not kept: only the text counts)."""

    def __init__(self, reader: Reader) -> None:
        super().__init__(reader.model, reader.vae, line_model=reader.line_model, rule=reader.rule,
                         narrow=reader.narrow)
        self.cache: dict[bytes, tuple[torch.Tensor, float | None]] = {}

    def classify(self, masks):
        keys = [hashlib.blake2b(np.packbits(m).tobytes() + bytes(str(m.shape), "ascii"), digest_size=16).digest()
                for m in masks]
        missing = [i for i, k in enumerate(keys) if k not in self.cache]
        if missing:
            _, probs, unlike = super().classify([masks[i] for i in missing])
            for j, i in enumerate(missing):
                self.cache[keys[i]] = (probs[j], None if unlike is None else float(unlike[j]))
        probs = torch.stack([self.cache[k][0] for k in keys]) if keys else torch.zeros(0, 10)
        unlike = None if self.vae is None else torch.tensor([self.cache[k][1] for k in keys])
        return torch.zeros(len(keys), 1, 28, 28), probs, unlike


def stretched(bitmap: np.ndarray) -> np.ndarray:
    """The digit stretched to fill a BOX×BOX square, then binarised; blank rows and columns inside it are
    dropped first, as in the sets the committed settings were chosen on (a gap between a digit's parts closes)."""
    return boxed(bitmap[np.ix_(bitmap.any(1), bitmap.any(0))], BOX)


def redrawn(image: np.ndarray) -> np.ndarray:
    """An MNIST digit (uint8, ink light) as a pen draws it three times as large, stretched to fill a BOX×BOX
    square: its thin strokes may break there, and a gap between its parts stays."""
    return boxed(binary_masks(torch.from_numpy(image)[None])[0].numpy(), BOX)


def tuning_set(per_category: int, real: int, seed: int, held_out: bool = False,
               boxed_mnist: int = 0, redrawn_mnist: int = 0) -> dict[str, list[tuple[np.ndarray, str]]]:
    """Drawings of MNIST training digits in every benchmark category, `real` digits of the trainable real
    handwriting as written and stretched, `boxed_mnist` MNIST training digits stretched and `redrawn_mnist`
    redrawn and stretched (half of them drawn in the styles people write, see `singles`). With `held_out`,
    only digits no shipped model was trained on: the MNIST training digits and the real file's digits that
    the classifier's and the line reader's configs keep back for validation (DataConfig and RealDataConfig as
    shipped: 5,000 and 384), so that the readers are as sure of them as of digits they never saw."""
    data = DataConfig(download=False)
    train = load_splits(data)[1] if held_out else load_mnist(data, train=True)
    rng = np.random.default_rng(seed)
    sets = {}
    for name, spec in CATEGORIES.items():
        texts = [spec.text(rng) for _ in range(per_category)]
        drawings = [draw_number(t, pick_digits(train, t, rng), rng, spec.style) for t in texts]
        sets[name] = [(scan(d, rng) if spec.scanned else d.image, d.text) for d in drawings]
    digits = load_realdigits(TRAIN_FILE, data)
    kept_back = RealDataConfig().val_size
    start = len(digits) - kept_back if held_out else 0  # real_splits keeps back the file's last digits
    pick = start + rng.permutation(len(digits) - start)[:real]
    sets["real"] = [(scanned(digits.bitmaps[i]), str(digits.labels[i])) for i in pick]
    sets["real_boxed"] = [(scanned(stretched(digits.bitmaps[i])), str(digits.labels[i])) for i in pick]
    if boxed_mnist:  # a stretched digit is as wide as it is tall: the cuts are most tempted to split it
        images, labels = singles(train, boxed_mnist, rng, seed)
        sets["mnist_boxed"] = [(scanned(stretched(image > 127)), label) for image, label in zip(images, labels)]
    if redrawn_mnist:  # broken strokes: a digit's top and foot may come apart
        images, labels = singles(train, redrawn_mnist, rng, seed + 1)
        sets["mnist_redrawn"] = [(scanned(redrawn(image)), label) for image, label in zip(images, labels)]
    return sets


def singles(train: Split, count: int, rng: np.random.Generator, seed: int) -> tuple[np.ndarray, list[str]]:
    """`count` MNIST digits, half of them as written and half drawn in the styles people write; with labels."""
    plain = rng.permutation(len(train))[: count - count // 2]
    styled, labels = styled_copies(train.images, train.labels, count // 2, torch.Generator().manual_seed(seed))
    labels = torch.cat([train.labels[plain], labels])
    return torch.cat([train.images[plain], styled]).numpy(), [str(int(k)) for k in labels]


def evaluate(reader: CachedReader, sets: dict, config: SegmentConfig) -> dict[str, float]:
    reader.segment_config = config
    rates = {}
    for name, items in sets.items():
        readings = [(reader.read(image), text) for image, text in items]
        rates[name] = float(np.mean([r.text == text for r, text in readings]))
        if name not in CATEGORIES:  # single digits
            rates[f"{name}_one_symbol"] = float(np.mean([len(r.symbols) == 1 for r, _ in readings]))
    weights = {name: 2.0 if name in KEPT else 1.0 for name in rates}
    rates["objective"] = sum(weights[k] * v for k, v in rates.items()) / sum(weights.values())
    return rates


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--per-category", type=int, default=120)
    parser.add_argument("--real", type=int, default=800, help="real training digits (each also stretched)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    parser.add_argument("--vae", default=DEFAULT_VAE)
    parser.add_argument("--boxed", type=int, default=0, help="MNIST training digits stretched (half styled)")
    parser.add_argument("--redrawn", type=int, default=0,
                        help="MNIST training digits redrawn three times as large, then stretched (half styled)")
    parser.add_argument("--line-reader", default=None,
                        help="read with the line model too (default: the cuts alone, as the committed run)")
    parser.add_argument("--only", nargs="+", choices=SEARCH, default=list(SEARCH), help="settings to search")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--out", default="results/bench/tune_segmentation.json")
    args = parser.parse_args()
    started = time.perf_counter()
    reader = CachedReader(Reader.from_checkpoint(args.classifier, args.vae, line_reader=args.line_reader))
    sets = tuning_set(args.per_category, args.real, args.seed, boxed_mnist=args.boxed,
                      redrawn_mnist=args.redrawn)
    config = SegmentConfig()
    best = evaluate(reader, sets, config)
    print(f"committed settings: {best}")
    trail = [{"config": "committed", **best}]
    for _ in range(args.passes):
        improved = False
        for name in args.only:
            for value in tqdm(SEARCH[name], desc=name, leave=False):
                if value == getattr(config, name):
                    continue
                rates = evaluate(reader, sets, replace(config, **{name: value}))
                trail.append({"config": f"{name}={value}", **rates})
                if rates["objective"] > best["objective"] + 1e-9:
                    config, best, improved = replace(config, **{name: value}), rates, True
                    print(f"{name} = {value}: {rates}")
        if not improved:
            break
    chosen = {name: getattr(config, name) for name in SEARCH}
    print("chosen:", chosen, "objective", round(best["objective"], 4))
    report = {"chosen": chosen, "rates": best, "committed": {k: asdict(SegmentConfig())[k] for k in SEARCH},
              "reproduces_committed": chosen == {k: asdict(SegmentConfig())[k] for k in SEARCH},
              "setup": {**vars(args), "seconds": round(time.perf_counter() - started)}, "trail": trail}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    run_script(main)
