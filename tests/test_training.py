"""A few real training steps: the loss falls, the same seed gives the same run, resume continues it."""

from __future__ import annotations

from pathlib import Path

import pytest

from digit_studio.config import ClassifierConfig, DataConfig
from digit_studio.models.classifier import load_classifier
from digit_studio.training.classifier import train_classifier
from digit_studio.training.loop import resume_path


def small_config(tmp_path: Path, **training: int) -> ClassifierConfig:
    config = ClassifierConfig(device="cpu", data=DataConfig(download=False, val_size=1000, train_limit=1280))
    config.training.epochs = 2
    config.training.eval_batch_size = 2000
    for key, value in training.items():
        setattr(config.training, key, value)
    config.output.checkpoint = str(tmp_path / "classifier.safetensors")
    config.output.results_dir = str(tmp_path / "results")
    return config


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return train_classifier(small_config(tmp_path_factory.mktemp("reference")))


def test_loss_falls(reference_run: dict) -> None:
    losses = reference_run["step_losses"]
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    history = reference_run["history"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert reference_run["val_accuracy"] > 0.2  # twice chance after 20 steps (BN statistics still settling)


@pytest.mark.slow
def test_same_seed_same_run(reference_run: dict, tmp_path: Path) -> None:
    again = train_classifier(small_config(tmp_path), write_outputs=False)
    assert again["step_losses"] == reference_run["step_losses"]
    assert again["test_accuracy"] == reference_run["test_accuracy"]


@pytest.mark.slow
def test_other_seed_other_run(reference_run: dict, tmp_path: Path) -> None:
    config = small_config(tmp_path)
    config.seed = 1
    assert train_classifier(config, write_outputs=False)["step_losses"] != reference_run["step_losses"]


@pytest.mark.slow
def test_resume_continues_the_same_run(reference_run: dict, tmp_path: Path) -> None:
    interrupted = train_classifier(small_config(tmp_path, max_steps=10))  # stops after epoch 1
    assert len(interrupted["history"]) == 1
    resumed = train_classifier(small_config(tmp_path), resume=resume_path(small_config(tmp_path)))
    assert resumed["step_losses"] == reference_run["step_losses"]
    assert resumed["test_accuracy"] == reference_run["test_accuracy"]


def test_outputs_written_with_metadata(reference_run: dict) -> None:
    checkpoint = Path(reference_run["checkpoint"])
    model, meta = load_classifier(checkpoint)
    assert meta["metrics"]["test_accuracy"] == reference_run["test_accuracy"]
    assert meta["metrics"]["parameters"] == sum(p.numel() for p in model.parameters())
    assert meta["train_config"]["training"]["epochs"] == 2
    results = checkpoint.parent / "results"
    assert (results / "metrics.json").is_file() and (results / "training_curves.png").stat().st_size > 10_000
