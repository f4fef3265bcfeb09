"""The shipped classifier: small, accurate on the full MNIST test set, and its evaluation report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from digit_studio.models.classifier import count_parameters, load_classifier
from digit_studio.training.data import Split
from digit_studio.training.evaluation import calibration, predict

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "classifier.safetensors"


def test_at_most_100k_parameters_and_honest_metadata(classifier: torch.nn.Module) -> None:
    _, meta = load_classifier(SHIPPED)
    assert count_parameters(classifier) <= 100_000
    assert meta["metrics"]["parameters"] == count_parameters(classifier)
    assert {"model_config", "train_config", "metrics", "commit", "date"} <= meta.keys()
    assert meta["metrics"]["val_accuracy"] > 0.99


@pytest.mark.slow
def test_full_test_set_accuracy(classifier: torch.nn.Module, mnist_test: Split) -> None:
    _, meta = load_classifier(SHIPPED)
    probs = predict(classifier, mnist_test, batch_size=2000)
    accuracy = (probs.argmax(1) == mnist_test.labels).float().mean().item()
    assert accuracy >= 0.995
    assert abs(accuracy - meta["metrics"]["test_accuracy"]) < 1e-4  # the metadata tells the truth
    confidence, predicted = probs.max(1)
    ece = calibration(confidence.numpy(), (predicted == mnist_test.labels).numpy()).ece
    assert ece < 0.05


@pytest.mark.slow
def test_evaluation_script_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "results" / "classifier"
    run = subprocess.run(
        [sys.executable, str(ROOT / "evaluate_classifier.py"), "--config", str(ROOT / "configs" / "classifier.yaml"),
         "--checkpoint", str(SHIPPED), "--output.results_dir", str(out), "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "macro" in run.stdout and "accuracy 99." in run.stdout
    report = json.loads((out / "evaluation.json").read_text())
    assert report["test_images"] == 10_000 and report["accuracy"] >= 0.995
    assert set(report["per_class"]) == {*map(str, range(10)), "macro"}
    assert 0.99 < report["per_class"]["macro"]["f1"] <= 1.0
    assert "| macro |" in (out / "evaluation.md").read_text()
    for picture in ("confusion_matrix.png", "reliability.png", "confident_mistakes.png"):
        assert (out / picture).stat().st_size > 10_000
    assert (out.parent / "test_predictions.png").stat().st_size > 10_000
