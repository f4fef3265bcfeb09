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


def _line_reader_section(path: Path, results: Path) -> str | None:
    """The line model's figures from its checkpoint and bench/multidigit.py's results; None without the
    checkpoint."""
    meta = _metadata(path, "line_reader")
    if not meta:
        return None
    metrics = meta.get("metrics", {})
    test = metrics.get("test", {})
    overall, touching = test.get("overall", {}), test.get("touching", {})
    by_count = sorted((int(key.removeprefix("symbols_")), value["exact"]) for key, value in test.items()
                      if key.startswith("symbols_") and "exact" in value)
    bench = _json(results / "bench" / "multidigit.json")
    numbers = bench.get("overall", {})
    # Before the reader combined the two, the bench's "exact" was the cuts' alone: it is shown as both readers'
    # only from a run that also reports the cuts alone.
    combined = "exact_segmentation_alone" in numbers
    drawings = f"bench/multidigit.py, {numbers.get('images', '?')} drawings"
    both = numbers.get("exact") if combined else None
    touching_both = bench.get("categories", {}).get("touching", {}).get("exact") if combined else None
    return (
        f"### Line reader · `{path.name}`\n"
        "A compact CRNN (conv-BN-ReLU stages, a bidirectional GRU, CTC) that reads a whole line without cutting "
        "it. Every line is read both ways, by the cuts (segmentation, then the classifier) and by the line "
        "model; where they differ, a rule weighs both models' evidence"
        f"{', ' + meta['date'][:10] if 'date' in meta else ''}.\n\n" + _rows([
            (f"Synthetic test lines read exactly ({overall.get('lines', '?')} lines)", overall.get("exact"), ".1%"),
            ("Character error rate", overall.get("cer"), ".2%"),
            ("Lines of touching digits read exactly", touching.get("exact"), ".1%"),
            ("Lines read exactly, by number of symbols",
             " · ".join(f"{n}: {exact:.0%}" for n, exact in by_count) or None, "s"),
            ("Parameters", metrics.get("parameters"), ",d"),
            (f"Drawn numbers read exactly, both readers ({drawings})", both, ".1%"),
            (f"Drawn numbers read exactly by the cuts alone ({drawings})", numbers.get("exact_segmentation_alone"),
             ".1%"),
            (f"Drawn numbers read exactly by the line model alone ({drawings})", numbers.get("exact_line_model_alone"),
             ".1%"),
            ("Drawn numbers with touching digits read exactly, both readers", touching_both, ".1%"),
        ])
    )


def about_markdown(classifier: Path, vae: Path, results: Path = RESULTS, line_reader: Path | None = None) -> str:
    """The page: a section per shipped model (the line reader's only where `line_reader` names a
    checkpoint that is there) and the speed measured by bench/load.py."""
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
    line_section = _line_reader_section(line_reader, results) if line_reader is not None else None
    if line_section is not None:
        sections.append(line_section)
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
