"""The VAE: config validation, a few real training steps, the generation API's shapes and contracts, and
one clear line for every kind of bad checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from digit_studio.checkpoint import save_checkpoint
from digit_studio.config import (
    DataConfig,
    VAEConfig,
    VAEModelConfig,
    add_config_arguments,
    config_from_args,
    load_config,
    to_dict,
)
from digit_studio.errors import CheckpointError, ConfigError, DataError
from digit_studio.generation import as_digit_batch, atypicality, interpolate, reconstruct, variations
from digit_studio.models.vae import ConvVAE, load_vae
from digit_studio.training.vae import train_vae

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------------
# Config


def test_yaml_is_the_code_default() -> None:
    assert load_config(VAEConfig, ROOT / "configs" / "vae.yaml") == VAEConfig()
    assert VAEConfig().model.latent_dim == 16


@pytest.mark.parametrize(("overrides", "key"), [
    ({"model.latent": "8"}, "model.latent"),
    ({"training.beta": "strong"}, "training.beta"),
    ({"training.epochs": "2.5"}, "training.epochs"),
    ({"evaluation.iw_samples": "true"}, "evaluation.iw_samples"),
])
def test_bad_values_are_rejected_by_name(overrides: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(VAEConfig, ROOT / "configs" / "vae.yaml", overrides)


def test_every_value_has_a_command_line_flag() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, VAEConfig, str(ROOT / "configs" / "vae.yaml"))
    args = parser.parse_args(["--model.latent_dim", "8", "--training.beta", "0.5", "--device", "cpu",
                              "--output.samples_dir", "elsewhere"])
    config = config_from_args(args, VAEConfig)
    assert (config.model.latent_dim, config.training.beta, config.device) == (8, 0.5, "cpu")
    assert config.output.samples_dir == "elsewhere"


def test_impossible_architecture_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model.channels"):
        ConvVAE(VAEModelConfig(channels=[16, 32, 64]))


# --------------------------------------------------------------------------------------------------
# Training: a few real steps


def small_config(tmp_path: Path, seed: int = 0) -> VAEConfig:
    config = VAEConfig(seed=seed, device="cpu", data=DataConfig(download=False, val_size=500, train_limit=1280))
    t = config.training
    t.epochs, t.batch_size, t.eval_batch_size, t.sample_every, t.kl_warmup_epochs = 2, 64, 1000, 2, 0.5
    e = config.evaluation
    e.elbo_samples, e.iw_samples, e.iw_digits = 1, 20, 20
    config.output.checkpoint = str(tmp_path / "vae.safetensors")
    config.output.results_dir = str(tmp_path / "results")
    config.output.samples_dir = str(tmp_path / "samples")
    return config


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return train_vae(small_config(tmp_path_factory.mktemp("vae")))


def test_loss_falls(reference_run: dict) -> None:
    losses = reference_run["step_losses"]
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    history = reference_run["history"]
    assert history[-1]["val_negative_elbo"] < history[0]["val_negative_elbo"]
    assert reference_run["best_epoch"] == 2


@pytest.mark.slow
def test_same_seed_same_run(reference_run: dict, tmp_path: Path) -> None:
    again = train_vae(small_config(tmp_path), write_outputs=False)
    assert again["step_losses"] == reference_run["step_losses"]
    assert again["test_negative_elbo"] == reference_run["test_negative_elbo"]
    other = train_vae(small_config(tmp_path, seed=1), write_outputs=False)
    assert other["step_losses"] != reference_run["step_losses"]


def test_outputs_written(reference_run: dict) -> None:
    checkpoint = Path(reference_run["checkpoint"])
    model, meta = load_vae(checkpoint)
    assert meta["kind"] == "vae" and meta["metrics"]["test_negative_elbo"] == reference_run["test_negative_elbo"]
    assert meta["train_config"]["training"]["epochs"] == 2
    m = reference_run
    # The bound and the importance-weighted estimate are consistent: IW tightens the ELBO.
    assert m["test_negative_elbo"] == pytest.approx(m["test_reconstruction"] + m["test_kl"], rel=1e-5)
    assert m["iw_subset"]["iw_nll"] < m["iw_subset"]["negative_elbo"]
    samples = checkpoint.parent / "samples"
    for name in ("epoch_002_samples.png", "epoch_002_reconstructions.png"):
        assert (samples / name).stat().st_size > 5_000
    assert (checkpoint.parent / "results" / "metrics.json").is_file()


# --------------------------------------------------------------------------------------------------
# Generation API (an untrained model is enough for shapes and contracts)


@pytest.fixture(scope="module")
def model() -> ConvVAE:
    torch.manual_seed(0)
    return ConvVAE(VAEModelConfig(latent_dim=5, channels=[8, 8], hidden=16)).eval()


def test_encode_decode_shapes(model: ConvVAE) -> None:
    mean, logvar = model.encode(torch.rand(3, 1, 28, 28))
    assert mean.shape == logvar.shape == (3, 5)
    assert model.decode(torch.randn(4, 5)).shape == (4, 1, 28, 28)


def test_variations_shapes_and_range(model: ConvVAE) -> None:
    out = variations(model, torch.rand(3, 1, 28, 28), k=4)
    assert out.shape == (3, 4, 1, 28, 28) and 0 <= out.min() and out.max() <= 1
    assert variations(model, torch.rand(28, 28), k=2).shape == (1, 2, 1, 28, 28)


def test_temperature_zero_is_the_reconstruction(model: ConvVAE) -> None:
    digits = torch.rand(2, 1, 28, 28)
    out = variations(model, digits, k=3, temperature=0.0)
    assert torch.allclose(out, reconstruct(model, digits)[:, None].expand_as(out), atol=1e-6)
    free = variations(model, digits, k=3, temperature=1.0)
    assert not torch.allclose(free[:, 0], free[:, 1])


def test_variations_reproducible_and_batched(model: ConvVAE) -> None:
    digits = torch.rand(3, 1, 28, 28)
    a = variations(model, digits, 2, 1.0, torch.Generator().manual_seed(7))
    b = variations(model, digits, 2, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    one_by_one = torch.cat([atypicality(model, d) for d in digits])
    assert torch.allclose(atypicality(model, digits), one_by_one, rtol=1e-4)


def test_interpolation_ends_are_reconstructions(model: ConvVAE) -> None:
    a, b = torch.rand(1, 28, 28), torch.rand(1, 28, 28)
    walk = interpolate(model, a, b, steps=6)
    assert walk.shape == (6, 1, 28, 28)
    ends = reconstruct(model, torch.stack([a, b]))
    assert torch.allclose(walk[[0, -1]], ends, atol=1e-6)


@pytest.mark.parametrize("bad", [
    torch.rand(2, 3, 28, 28), torch.rand(2, 1, 32, 32), torch.zeros(0, 1, 28, 28),
    torch.randint(0, 255, (1, 28, 28), dtype=torch.uint8), torch.full((1, 28, 28), 2.0),
    torch.full((1, 28, 28), float("nan")), [[0.0] * 28] * 28,
])
def test_bad_digits_are_clear_errors(bad: object) -> None:
    with pytest.raises(DataError, match="digit"):
        as_digit_batch(bad)  # type: ignore[arg-type]


def test_bad_arguments_are_clear_errors(model: ConvVAE) -> None:
    digit = torch.rand(1, 28, 28)
    with pytest.raises(DataError, match="k"):
        variations(model, digit, k=0)
    with pytest.raises(DataError, match="temperature"):
        variations(model, digit, temperature=-1.0)
    with pytest.raises(DataError, match="one digit at each end"):
        interpolate(model, torch.rand(2, 28, 28), digit)


# --------------------------------------------------------------------------------------------------
# Bad checkpoints: the classifier's safe loader, with the VAE's hints


def saved(model: ConvVAE, path: Path, model_config: dict | None = None) -> Path:
    save_checkpoint(path, model, "vae", {"model_config": model_config or to_dict(model.config)})
    return path


def assert_one_clear_line(path: Path, *fragments: str) -> None:
    with pytest.raises(CheckpointError) as info:
        load_vae(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_round_trip(model: ConvVAE, tmp_path: Path) -> None:
    loaded, meta = load_vae(saved(model, tmp_path / "v.safetensors"))
    assert meta["kind"] == "vae"
    z = torch.randn(2, 5)
    assert torch.equal(loaded.decode(z), model.decode(z))


def test_missing_checkpoint(tmp_path: Path) -> None:
    assert_one_clear_line(tmp_path / "nope.safetensors", "not found", "train_vae.py")


def test_truncated_checkpoint(model: ConvVAE, tmp_path: Path) -> None:
    path = saved(model, tmp_path / "v.safetensors")
    path.write_bytes(path.read_bytes()[:1000])
    assert_one_clear_line(path, "not a readable safetensors checkpoint")


def test_classifier_checkpoint_is_refused(tmp_path: Path) -> None:
    from digit_studio.config import ClassifierModelConfig
    from digit_studio.models.classifier import DigitCNN

    path = tmp_path / "c.safetensors"
    save_checkpoint(path, DigitCNN(ClassifierModelConfig(stages=[[4], [4]])), "classifier",
                    {"model_config": {"stages": [[4], [4]]}})
    assert_one_clear_line(path, "is a classifier checkpoint", "vae checkpoint is needed")


def test_metadata_that_does_not_fit_the_weights(model: ConvVAE, tmp_path: Path) -> None:
    edited = {**to_dict(model.config), "hidden": 32}
    assert_one_clear_line(saved(model, tmp_path / "v.safetensors", edited), "does not fit")
