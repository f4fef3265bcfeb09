"""The studio's "About the model" page: measured figures of the shipped models, read from the checkpoints'
metadata and the JSON files that the evaluation scripts and benchmarks write to results/. A figure whose
file is missing is left out, never invented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from digit_studio import resources
from digit_studio.checkpoint import read_checkpoint
from digit_studio.errors import CheckpointError

RESULTS = resources.RESULTS
CONFUSION_MATRIX = RESULTS / "classifier" / "confusion_matrix.png"


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _metadata(path: Path, kind: str) -> dict[str, Any]:
    try:
        return read_checkpoint(path, kind)[1]
    except CheckpointError:
        return {}


def _rows(rows: list[tuple[str, Any, str]]) -> str:
    """A markdown table of the figures that exist: (what, value, format)."""
    lines = ["| Figure | Value |", "|---|---|"]
    lines += [f"| {name} | {format(value, fmt)} |" for name, value, fmt in rows if value is not None]
    return "\n".join(lines)


def about_markdown(classifier: Path, vae: Path, results: Path = RESULTS) -> str:
    c_meta, v_meta = _metadata(classifier, "classifier"), _metadata(vae, "vae")
    c_metrics, v_metrics = c_meta.get("metrics", {}), v_meta.get("metrics", {})
    evaluation = _json(results / "classifier" / "evaluation.json")
    vae_quality = _json(results / "bench" / "vae_quality.json")
    load = _json(results / "bench" / "load.json")
    atypical = vae_quality.get("atypicality", {})
    variations = vae_quality.get("variations", {})
    iw = v_metrics.get("iw_subset", {})
    sections = [
        f"### Classifier · `{classifier.name}`\n"
        f"A compact CNN (conv-BN-ReLU stages, global average pooling) trained on MNIST, digits redrawn in styles MNIST lacks and real handwriting (optdigits), with augmentation"
        f"{', ' + c_meta['date'][:10] if 'date' in c_meta else ''}.\n\n" + _rows([
            (f"Test accuracy ({evaluation.get('test_images', 10000):,} MNIST test digits)",
             evaluation.get("accuracy", c_metrics.get("test_accuracy")), ".2%"),
            ("Test errors", evaluation.get("errors"), "d"),
            ("Expected calibration error", evaluation.get("ece"), ".3f"),
            ("Parameters", c_metrics.get("parameters"), ",d"),
        ]),
        f"### Variational autoencoder · `{vae.name}`\n"
        "Makes the variations and interpolations, and scores how unlike a digit a shape is.\n\n" + _rows([
            ("Test negative ELBO (nats per digit)", v_metrics.get("test_negative_elbo"), ".1f"),
            (f"Importance-weighted NLL ({iw.get('digits', '?')} test digits)", iw.get("iw_nll"), ".1f"),
            ("Variations read as the same digit (default temperature)",
             variations.get("same_class_rate_at_default"), ".1%"),
            ("'Not a digit' threshold: MNIST test digits' 95th-percentile score (nats)",
             v_meta.get("not_a_digit_above"), ".0f"),
            ("AUROC of the score, MNIST digits vs. non-digits", atypical.get("auroc_all_non_digits"), ".3f"),
            ("Parameters", v_metrics.get("parameters"), ",d"),
        ]),
    ]
    if load:
        server = load.get("server_ms", {})
        busiest = max(load.get("load", []), key=lambda level: level["clients"], default={})
        sections.append(
            f"### Speed (bench/load.py, {load.get('machine', {}).get('cores', '?')} CPU threads)\n" + _rows([
                ("Reading alone, median (ms)", server.get("read_median"), ".0f"),
                ("Full analysis of a 6-digit drawing with Grad-CAM and 4 variations per digit, median (ms)",
                 server.get("analysis_median"), ".0f"),
                (f"Request latency with {busiest.get('clients')} users at once, median (ms)",
                 busiest.get("all", {}).get("p50_ms"), ".0f"),
                (f"Request latency with {busiest.get('clients')} users at once, 95th percentile (ms)",
                 busiest.get("all", {}).get("p95_ms"), ".0f"),
            ]))
    return "\n\n".join(sections)
