"""`python -m digit_studio read`: the number per image as text or JSON, per-file errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digit_studio.__main__ import main
from digit_studio.cli import run_script
from digit_studio.training.data import Split
from digit_studio.training.synth import Style, draw_number, pick_digits

ROOT = Path(__file__).resolve().parent.parent
CLASSIFIER_CHECKPOINT = ROOT / "checkpoints" / "classifier.safetensors"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, mnist_test: Split) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    paths = {}
    for name, text, canvas in (("year", "2025", (800, 400)), ("two_lines", "31\n4", (800, 600))):
        drawing = draw_number(text, pick_digits(mnist_test, text, rng), rng, Style(canvas=canvas))
        Image.fromarray(drawing.image).save(folder / f"{name}.png")
        paths[name] = folder / f"{name}.png"
    Image.new("RGB", (300, 200), "white").save(folder / "blank.png")
    (folder / "notes.png").write_text("not an image")
    paths.update(blank=folder / "blank.png", broken=folder / "notes.png", missing=folder / "missing.png")
    return paths


def read(*args: str | Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "digit_studio", "read", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


def read_here(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, *args: str | Path) -> tuple[int, str, str]:
    """The same command run in this process (a fresh interpreter costs seconds of imports)."""
    monkeypatch.setattr(sys, "argv", ["digit_studio", "read", *map(str, args)])
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exit:
        run_script(main)
    out, err = capsys.readouterr()
    return exit.value.code, out, err


def test_text_output_and_per_file_errors(images: dict[str, Path]) -> None:
    names = ["year", "broken", "two_lines", "missing", "blank"]
    done = read(*(images[n] for n in names))
    assert done.returncode == 1  # some files failed; the others were still read
    assert done.stdout.splitlines() == [
        f"{images['year']}\t2025",
        f"{images['two_lines']}\t31 / 4",
        f"{images['blank']}\t(Draw a number)",
    ]
    errors = done.stderr.splitlines()
    assert len(errors) == 2 and all(e.startswith("error: ") for e in errors)
    assert str(images["broken"]) in errors[0] and "not an image" in errors[0]
    assert str(images["missing"]) in errors[1] and "no such file" in errors[1]
    assert "Traceback" not in done.stderr


def test_json_output(images: dict[str, Path], capsys, monkeypatch) -> None:
    code, out, err = read_here(capsys, monkeypatch, "--json", images["year"], images["two_lines"])
    assert code == 0 and err == ""
    year, two_lines = map(json.loads, out.splitlines())
    assert year["path"] == str(images["year"]) and year["text"] == "2025"
    assert [d["label"] for d in year["digits"]] == list("2025")
    for digit in year["digits"]:
        x0, y0, x1, y1 = digit["box"]
        assert 0 <= x0 < x1 <= 800 and 0 <= y0 < y1 <= 400 and 0 < digit["confidence"] <= 1
    assert [d["box"][0] for d in year["digits"]] == sorted(d["box"][0] for d in year["digits"])
    assert two_lines["text"] == "31\n4" and len(two_lines["digits"]) == 3


def test_one_image_prints_just_the_number(images: dict[str, Path], capsys, monkeypatch) -> None:
    code, out, _ = read_here(capsys, monkeypatch, images["year"], "--classifier", CLASSIFIER_CHECKPOINT)
    assert (code, out) == (0, "2025\n")


def test_a_bad_checkpoint_stops_everything(images: dict[str, Path], tmp_path: Path, capsys, monkeypatch) -> None:
    code, out, err = read_here(capsys, monkeypatch, images["year"], "--classifier", tmp_path / "none.safetensors")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "none.safetensors" in err
