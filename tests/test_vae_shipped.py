"""The shipped VAE: small, safely loaded, its reported figures reproducible, its variations still digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from digit_studio.generation import DEFAULT_TEMPERATURE, atypicality, variations
from digit_studio.models.vae import ConvVAE, load_vae
from digit_studio.training.data import Split
from digit_studio.training.vae import evaluate_elbo, evaluate_iw_nll, fixed_binarization

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "vae.safetensors"
METRICS = ROOT / "results" / "vae" / "metrics.json"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def shipped() -> tuple[ConvVAE, dict]:
    return load_vae(SHIPPED)


def test_small_and_trained_with_the_committed_config(shipped: tuple[ConvVAE, dict]) -> None:
    from digit_studio.config import VAEConfig, load_config, to_dict

    assert SHIPPED.stat().st_size < 5_000_000
    _, meta = shipped
    assert meta["train_config"] == to_dict(load_config(VAEConfig, ROOT / "configs" / "vae.yaml"))
    assert json.loads(METRICS.read_text())["test_negative_elbo"] == meta["metrics"]["test_negative_elbo"]
    assert meta["metrics"]["test_negative_elbo"] <= 92.0


def test_negative_elbo_on_fixed_subset_is_the_reported_one(
    shipped: tuple[ConvVAE, dict], mnist_test: Split
) -> None:
    model, meta = shipped
    subset, e = meta["metrics"]["iw_subset"], meta["train_config"]["evaluation"]
    binary = fixed_binarization(mnist_test, e["binarize_seed"])[: subset["digits"]]
    got = evaluate_elbo(model, binary, 1000, CPU, e["elbo_samples"], e["binarize_seed"])
    assert got["negative_elbo"] == pytest.approx(subset["negative_elbo"], abs=0.05)
    # The importance-weighted estimate lies below the bound, by a few nats, on the same digits.
    iw = evaluate_iw_nll(model, binary[:100], samples=100, device=CPU).mean().item()
    elbo_100 = evaluate_elbo(model, binary[:100], 100, CPU, samples=10)["negative_elbo"]
    assert elbo_100 - 10 < iw < elbo_100


def test_variations_keep_their_digit(
    shipped: tuple[ConvVAE, dict], mnist_test: Split, classifier: torch.nn.Module
) -> None:
    model, _ = shipped
    digits, labels = mnist_test.batch(slice(0, 300))
    varied = variations(model, digits, 4, DEFAULT_TEMPERATURE, torch.Generator().manual_seed(0))
    with torch.inference_mode():
        read = classifier(varied.flatten(0, 1)).argmax(1).view(-1, 4)
    assert (read == labels[:, None]).float().mean() > 0.93  # the benchmark measures this on 2000 digits


def test_noise_is_more_atypical_than_digits(shipped: tuple[ConvVAE, dict], mnist_test: Split) -> None:
    model, _ = shipped
    digits, _ = mnist_test.batch(slice(0, 200))
    noise = (torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0)) < 0.1).float()
    assert atypicality(model, noise).min() > atypicality(model, digits).quantile(0.95)
