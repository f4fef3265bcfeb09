"""Reading real people's handwriting: every digit of two sets of writers MNIST never saw.

    flock /tmp/digit_cpu.lock python bench/real_handwriting.py

`optdigits-orig.windep` (13 writers, 32×32 bitmaps) and `semeion.data` (about 80 writers, 16×16 bitmaps,
each digit written once carefully and once fast), from $DIGIT_STUDIO_DATA/realdigits/. Each digit is
scaled to 160 px (bilinear, so its edges are grey as in a scan) and pasted, dark on white, in the middle of
a 280×280 canvas, then read by the whole Reader, segmentation included. "exact": exactly one symbol, with
the right label; "one_symbol": exactly one symbol, whatever its label; "exact_if_segmented_perfectly": the
digit's whole ink classified as the reader classifies a piece (the ceiling segmentation can approach). These
two files are for measuring only: nothing is trained or tuned on them.

Writes results/bench/real_handwriting.json and a picture of misreads, results/bench/real_handwriting.png.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from tqdm import tqdm

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.config import DataConfig
from digit_studio.reading.inputs import ink_map
from digit_studio.reading.reader import DEFAULT_CLASSIFIER, DEFAULT_VAE, Reader
from digit_studio.training.realdigits import MEASURE_FILES, load_realdigits
from digit_studio.training.synth import tight

CANVAS, SIDE = 280, 160
BARS = {"optdigits_windep": {"exact": 0.99, "one_symbol": 0.997}, "semeion": {"exact": 0.96, "one_symbol": 0.997}}
SHOWN = 12  # misreads drawn per set


def scanned(bitmap: np.ndarray) -> np.ndarray:
    """A binary bitmap as a scanned digit on the sketchpad: SIDE px, grey edges, dark on a white canvas."""
    ink = Image.fromarray(bitmap.astype(np.uint8) * 255).resize((SIDE, SIDE), Image.BILINEAR)
    canvas = np.full((CANVAS, CANVAS), 255, np.uint8)
    at = (CANVAS - SIDE) // 2
    canvas[at : at + SIDE, at : at + SIDE] = 255 - np.asarray(ink)
    return canvas


def measure(name: str, reader: Reader, data: DataConfig) -> tuple[dict, list[tuple[np.ndarray, str, str]]]:
    digits = load_realdigits(MEASURE_FILES[name], data)
    exact = one = whole = 0
    times, confusions, misreads = [], Counter(), []
    for bitmap, label in tqdm(zip(digits.bitmaps, digits.labels), total=len(digits), desc=name, leave=False):
        image = scanned(bitmap)
        start = time.perf_counter()
        reading = reader.read(image)
        times.append(1000 * (time.perf_counter() - start))
        ink = ink_map(image).mask
        _, probs, _ = reader.read_pieces([tight(ink)])
        whole += int(probs[0].argmax()) == label
        read = reading.text or f"({reading.message})"
        one += len(reading.symbols) == 1
        if read == str(label):
            exact += 1
        else:
            confusions[str(label), read] += 1
            misreads.append((image, str(label), read))
    n = len(digits)
    return {
        "digits": n, "exact": exact / n, "one_symbol": one / n, "exact_if_segmented_perfectly": whole / n,
        "confusions": [{"truth": t, "read": r, "count": c} for (t, r), c in confusions.most_common(10)],
        "median_ms": round(statistics.median(times), 2),
    }, misreads


def plot_misreads(misreads: dict[str, list[tuple[np.ndarray, str, str]]], path: Path) -> None:
    rows = len(misreads)
    fig, axes = plt.subplots(rows, SHOWN, figsize=(SHOWN * 1.1, rows * 1.35), squeeze=False)
    for row, (name, items) in zip(axes, misreads.items()):
        step = max(1, len(items) // SHOWN)  # spread over the whole set, not only its first writer
        for ax, (image, truth, read) in zip(row, items[::step][:SHOWN] + [(None, "", "")] * SHOWN):
            ax.axis("off")
            if image is not None:
                ax.imshow(image[50:-50, 50:-50], cmap="gray", vmin=0, vmax=255)
                ax.set_title(f"{truth} → {read}", fontsize=9)
        row[0].text(-0.3, 0.5, name, transform=row[0].transAxes, rotation=90, va="center", ha="right", fontsize=9)
    fig.suptitle("Real handwriting the reader gets wrong (truth → read)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    parser.add_argument("--vae", default=DEFAULT_VAE)
    parser.add_argument("--out", default="results/bench/real_handwriting.json")
    args = parser.parse_args()
    reader = Reader.from_checkpoint(args.classifier, args.vae)
    data = DataConfig(download=False)
    report, misreads = {}, {}
    for name in MEASURE_FILES:
        report[name], misreads[name] = measure(name, reader, data)
        r = report[name]
        print(f"{name:17s} exact {r['exact']:.2%} (perfectly segmented {r['exact_if_segmented_perfectly']:.2%})  "
              f"one symbol {r['one_symbol']:.2%}  "
              f"median {r['median_ms']:.1f} ms  top confusions "
              + ", ".join(f"{c['truth']}→{c['read']} ×{c['count']}" for c in r["confusions"][:6]))
    report["bars"] = {f"{name}.{k}>={v}": report[name][k] >= v for name, bars in BARS.items() for k, v in bars.items()}
    report["setup"] = {"canvas": CANVAS, "digit_px": SIDE, "classifier": str(args.classifier), "vae": str(args.vae)}
    print("bars:", report["bars"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    plot_misreads(misreads, out.with_suffix(".png"))


if __name__ == "__main__":
    run_script(main)
