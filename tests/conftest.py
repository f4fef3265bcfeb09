"""Shared fixtures: real MNIST from $DIGIT_STUDIO_DATA (default ../shared/data), the shipped checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digit_studio.config import DataConfig
from digit_studio.training.data import DATA_ENV, Split, load_mnist

ROOT = Path(__file__).resolve().parent.parent
CLASSIFIER_CHECKPOINT = ROOT / "checkpoints" / "classifier.safetensors"

# Tests run offline: point at the shared MNIST files unless the caller chose another folder.
os.environ.setdefault(DATA_ENV, str(ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_config() -> DataConfig:
    return DataConfig(download=False)


@pytest.fixture(scope="session")
def mnist_test(data_config: DataConfig) -> Split:
    return load_mnist(data_config, train=False)


@pytest.fixture(scope="session")
def classifier():
    """The shipped classifier in eval mode, loaded once."""
    from digit_studio.models.classifier import load_classifier

    model, _ = load_classifier(CLASSIFIER_CHECKPOINT)
    return model


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory):
    """`python demo.py` on a free loopback port, started once per session; only its PID is stopped."""
    from digit_studio.research.server import running_studio

    with running_studio(log=tmp_path_factory.mktemp("studio") / "server.log") as server:
        yield server


@pytest.fixture(scope="session")
def studio_url(studio) -> str:
    return studio.url
