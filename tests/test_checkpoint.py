"""Checkpoints: metadata round trip, and one clear line for every kind of bad file."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from digit_studio.checkpoint import read_checkpoint, save_checkpoint
from digit_studio.config import ClassifierModelConfig, to_dict
from digit_studio.errors import CheckpointError
from digit_studio.models.classifier import DigitCNN, load_classifier

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "classifier.safetensors"


def test_round_trip_keeps_weights_and_metadata(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DigitCNN(ClassifierModelConfig(stages=[[8], [12]])).eval()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model, "classifier", {
        "model_config": to_dict(model.config), "metrics": {"test_accuracy": 0.5}, "parameters": 123,
    })
    loaded, meta = load_classifier(path)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))
    assert meta["kind"] == "classifier" and meta["metrics"] == {"test_accuracy": 0.5}
    assert meta["model_config"]["stages"] == [[8], [12]] and meta["parameters"] == 123
    assert meta["date"].startswith("20") and meta["commit"]
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def assert_one_clear_line(path: Path, *fragments: str) -> None:
    with pytest.raises(CheckpointError) as info:
        load_classifier(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing(tmp_path: Path) -> None:
    assert_one_clear_line(tmp_path / "nope.safetensors", "not found", "train_classifier.py")


def test_truncated(tmp_path: Path) -> None:
    path = tmp_path / "truncated.safetensors"
    data = SHIPPED.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_one_clear_line(path, "not a readable safetensors checkpoint")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.safetensors"
    path.write_bytes(torch.randint(0, 256, (5000,), dtype=torch.uint8).numpy().tobytes())
    assert_one_clear_line(path, "not a readable safetensors checkpoint")


def test_wrong_kind(tmp_path: Path) -> None:
    path = tmp_path / "vae.safetensors"
    save_checkpoint(path, torch.nn.Linear(2, 2), "vae", {})
    assert_one_clear_line(path, "is a vae checkpoint", "classifier checkpoint is needed")


def test_foreign_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    assert_one_clear_line(path, "not a Digit Studio checkpoint")


def test_weights_that_do_not_fit_the_metadata(tmp_path: Path) -> None:
    path = tmp_path / "edited.safetensors"
    model = DigitCNN(ClassifierModelConfig(stages=[[8], [12]]))
    save_checkpoint(path, model, "classifier", {"model_config": {"stages": [[8], [16]], "dropout": 0.1}})
    assert_one_clear_line(path, "does not fit")


def test_pickle_is_never_executed(tmp_path: Path) -> None:
    path = tmp_path / "pickled.safetensors"
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):  # what a malicious pickle would run when unpickled
            return (Path.touch, (marker,))

    path.write_bytes(pickle.dumps(Exploit()))
    assert_one_clear_line(path, "not a readable safetensors checkpoint")
    assert not marker.exists()


def test_read_checkpoint_returns_plain_tensors() -> None:
    tensors, meta = read_checkpoint(SHIPPED, "classifier")
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    assert meta["format"] == "digit-studio/1"


@pytest.mark.slow
def test_script_gives_one_line_for_a_bad_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    shutil.copy(ROOT / "configs" / "classifier.yaml", bad)
    run = subprocess.run(
        [sys.executable, str(ROOT / "evaluate_classifier.py"), "--config", str(ROOT / "configs" / "classifier.yaml"),
         "--checkpoint", str(bad), "--output.results_dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0]
