"""Do the VAE's variations keep their digit, and does its atypicality score tell digits from non-digits?

    python bench/vae_quality.py [--digits 2000] [--k 10] [--non-digits 1000]

1. Variations: for the first `--digits` MNIST test digits that the shipped classifier reads correctly,
   `--k` variations each at several temperatures; the share the classifier reads as the same digit, and
   how far they move from the reconstruction (mean absolute pixel change).
2. Atypicality: AUROC of the score separating those MNIST test digits (negatives) from each kind of
   non-digit (positives): random pen strokes, blank canvases with speckle noise, capital letters drawn
   with straight strokes, and the same test digits rotated by 90°. Strokes and letters are drawn with
   PIL on a large canvas and fitted the MNIST way by digit_studio.reading.crops.mnist_crops, as the studio does
   with a drawing.

Writes results/bench/vae_quality.json and pictures (variations, interpolations, non-digits) to
results/vae/, and records the digits' 95th-percentile score in the VAE checkpoint's metadata as
"not_a_digit_above": the threshold above which the studio flags a shape as unlike any digit.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy.stats import mannwhitneyu

from digit_studio import cli
from digit_studio.checkpoint import update_metadata
from digit_studio.config import DataConfig
from digit_studio.generation import DEFAULT_TEMPERATURE, atypicality, interpolate, reconstruct, variations
from digit_studio.models.classifier import load_classifier
from digit_studio.models.vae import load_vae
from digit_studio.reading.crops import mnist_crops
from digit_studio.training.data import load_mnist
from digit_studio.training.plots import plot_digit_grid

OUT = Path("results/bench/vae_quality.json")
PICTURES = Path("results/vae")
TEMPERATURES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
CANVAS = 112  # px; strokes are drawn large, then fitted into MNIST's 20×20 box

# Capitals that no digit resembles closely, as polylines in a unit box (x right, y down).
LETTERS: dict[str, list[list[tuple[float, float]]]] = {
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.25, 0.55), (0.75, 0.55)]],
    "E": [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.7, 0.5)]],
    "F": [[(1, 0), (0, 0), (0, 1)], [(0, 0.5), (0.7, 0.5)]],
    "H": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
    "K": [[(0, 0), (0, 1)], [(1, 0), (0, 0.55), (1, 1)]],
    "M": [[(0, 1), (0, 0), (0.5, 0.6), (1, 0), (1, 1)]],
    "N": [[(0, 1), (0, 0), (1, 1), (1, 0)]],
    "R": [[(0, 1), (0, 0), (0.8, 0), (1, 0.25), (0.8, 0.5), (0, 0.5)], [(0.4, 0.5), (1, 1)]],
    "V": [[(0, 0), (0.5, 1), (1, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.4), (0.75, 1), (1, 0)]],
    "X": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "Y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
}


def draw(strokes: list[np.ndarray], width: int) -> np.ndarray:
    """Binary mask of polylines given in canvas pixels, drawn with a round pen."""
    image = Image.new("L", (CANVAS, CANVAS))
    pen = ImageDraw.Draw(image)
    for points in strokes:
        pen.line([tuple(p) for p in points], fill=255, width=width, joint="curve")
        for x, y in (points[0], points[-1]):  # round pen ends
            pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=255)
    return np.asarray(image) > 127


def random_strokes(n: int, rng: np.random.Generator) -> torch.Tensor:
    """One to three pen strokes through three to six random points each."""
    masks = []
    for _ in range(n):
        strokes = [rng.uniform(10, CANVAS - 10, (rng.integers(3, 7), 2)) for _ in range(rng.integers(1, 4))]
        masks.append(draw(strokes, int(rng.integers(6, 13))))
    return mnist_crops(masks)


def letters(n: int, rng: np.random.Generator) -> torch.Tensor:
    """Random capitals from LETTERS, each with its own width, slant and wobble."""
    names = list(LETTERS)
    masks = []
    for _ in range(n):
        width, slant = rng.uniform(0.55, 1.0), rng.uniform(-0.25, 0.25)
        strokes = []
        for line in LETTERS[names[rng.integers(len(names))]]:
            p = np.array(line, dtype=float) + rng.normal(0, 0.04, (len(line), 2))
            p[:, 0] = p[:, 0] * width + slant * (1 - p[:, 1])
            strokes.append(15 + p * (CANVAS - 30))
        masks.append(draw(strokes, int(rng.integers(6, 13))))
    return mnist_crops(masks)


def blank_noise(n: int, rng: np.random.Generator) -> torch.Tensor:
    """An empty canvas with speckle: each pixel lit with probability p ∈ [0.02, 0.3], at a random grey."""
    p = rng.uniform(0.02, 0.3, (n, 1, 1, 1))
    lit = rng.random((n, 1, 28, 28)) < p
    return torch.from_numpy(lit * rng.uniform(0.3, 1.0, lit.shape)).float()


def auroc(positives: torch.Tensor, negatives: torch.Tensor) -> float:
    """P(score of a random positive > score of a random negative), ties counting half."""
    u = mannwhitneyu(positives.numpy(), negatives.numpy(), alternative="greater").statistic
    return float(u / (len(positives) * len(negatives)))


@torch.inference_mode()
def classify(model: torch.nn.Module, images: torch.Tensor, batch: int = 2000) -> torch.Tensor:
    return torch.cat([model(chunk).argmax(1) for chunk in images.split(batch)])


def median_ms(fn: Callable[[], object], repeats: int = 30) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times), 2)


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--vae", default="checkpoints/vae.safetensors")
    parser.add_argument("--classifier", default="checkpoints/classifier.safetensors")
    parser.add_argument("--digits", type=int, default=2000, help="first this many MNIST test digits")
    parser.add_argument("--k", type=int, default=10, help="variations per digit")
    parser.add_argument("--non-digits", type=int, default=1000, help="images per kind of non-digit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    vae, _ = load_vae(args.vae)
    classifier, _ = load_classifier(args.classifier)
    test = load_mnist(DataConfig(download=False), train=False)
    digits, labels = test.batch(slice(0, args.digits))

    # 1. Variations of correctly read digits.
    correct = classify(classifier, digits) == labels
    kept, kept_labels = digits[correct], labels[correct]
    recon = reconstruct(vae, kept)
    by_temperature = []
    for temperature in TEMPERATURES:
        generator = torch.Generator().manual_seed(args.seed)
        varied = variations(vae, kept, args.k, temperature, generator)
        same = classify(classifier, varied.flatten(0, 1)).view(-1, args.k) == kept_labels[:, None]
        by_temperature.append({
            "temperature": temperature,
            "same_class_rate": same.float().mean().item(),
            "digits_all_same": same.all(1).float().mean().item(),
            "mean_abs_change": (varied - recon[:, None]).abs().mean().item(),
        })
    default = next(r for r in by_temperature if r["temperature"] == DEFAULT_TEMPERATURE)

    # 2. Atypicality of MNIST digits against non-digits.
    rng = np.random.default_rng(args.seed)
    n = args.non_digits
    non_digits = {
        "random_strokes": random_strokes(n, rng),
        "blank_noise": blank_noise(n, rng),
        "letters": letters(n, rng),
        "rotated_90_digits": torch.rot90(digits[:n], 1, dims=(2, 3)),
    }
    digit_scores = atypicality(vae, digits)
    scores = {name: atypicality(vae, images) for name, images in non_digits.items()}
    per_kind = {
        name: {"images": len(s), "auroc": auroc(s, digit_scores), "median_score": s.median().item()}
        for name, s in scores.items()
    }
    pooled = auroc(torch.cat(list(scores.values())), digit_scores)

    single = digits[:1]
    results = {
        "vae": args.vae,
        "classifier": args.classifier,
        "variations": {
            "test_digits": args.digits,
            "correctly_read": len(kept),
            "k": args.k,
            "default_temperature": DEFAULT_TEMPERATURE,
            "same_class_rate_at_default": default["same_class_rate"],
            "by_temperature": by_temperature,
        },
        "atypicality": {
            "score": "negative ELBO in nats (posterior mean as latent, grey levels as Bernoulli targets)",
            "digits": args.digits,
            "digit_median_score": digit_scores.median().item(),
            "digit_95th_percentile": digit_scores.quantile(0.95).item(),
            "auroc_all_non_digits": pooled,
            "by_kind": per_kind,
        },
        "latency_ms_cpu": {
            "variations_1_digit_k8": median_ms(lambda: variations(vae, single, 8)),
            "atypicality_1_digit": median_ms(lambda: atypicality(vae, single)),
            "interpolate_10_steps": median_ms(lambda: interpolate(vae, digits[0], digits[1], 10)),
        },
        "torch_threads": torch.get_num_threads(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    # The studio's not-a-digit threshold travels with the model it was measured on.
    update_metadata(args.vae, "vae", {"not_a_digit_above": round(results["atypicality"]["digit_95th_percentile"], 2)})
    write_pictures(vae, digits, labels, non_digits, scores, digit_scores, args.seed)
    print(json.dumps({k: v for k, v in results.items() if k != "latency_ms_cpu"}, indent=2))


def write_pictures(
    vae: torch.nn.Module, digits: torch.Tensor, labels: torch.Tensor, non_digits: dict[str, torch.Tensor],
    scores: dict[str, torch.Tensor], digit_scores: torch.Tensor, seed: int,
) -> None:
    # One test digit of each class: input, reconstruction, 8 variations at the default temperature.
    first = torch.tensor([int((labels == c).nonzero()[0]) for c in range(10)])
    varied = variations(vae, digits[first], 8, DEFAULT_TEMPERATURE, torch.Generator().manual_seed(seed))
    rows = torch.cat([digits[first, None], reconstruct(vae, digits[first])[:, None], varied], 1)
    captions = ["input", "reconstruction"] + [""] * 8
    plot_digit_grid(rows.flatten(0, 1)[:, 0].numpy(), captions * 10, PICTURES / "variations.png",
                    f"Test digits, their reconstructions and 8 variations at temperature {DEFAULT_TEMPERATURE:g}")
    pairs = [(first[a], first[b]) for a, b in [(1, 7), (3, 8), (4, 9), (0, 6), (2, 5)]]
    walks = torch.cat([interpolate(vae, digits[a], digits[b], 10) for a, b in pairs])
    plot_digit_grid(walks[:, 0].numpy(), [""] * len(walks), PICTURES / "interpolations.png",
                    "Walks in latent space between two test digits")
    kinds = {"mnist_digits": (digits[:10], digit_scores[:10])} | {
        name: (images[:10], scores[name][:10]) for name, images in non_digits.items()
    }
    images = torch.cat([im for im, _ in kinds.values()])[:, 0].numpy()
    captions = [f"{s:.0f}" for _, sc in kinds.values() for s in sc.tolist()]
    plot_digit_grid(images, captions, PICTURES / "atypicality.png",
                    "Atypicality (nats) — rows: MNIST digits, " + ", ".join(list(kinds)[1:]).replace("_", " "))


if __name__ == "__main__":
    main()
