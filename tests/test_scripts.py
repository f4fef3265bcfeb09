"""The scripts' command lines: --help answers without loading torch or gradio and lists only the script's
own options; abbreviated flags are refused rather than taken for the option they start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["train_classifier.py", "train_vae.py", "train_line_reader.py", "evaluate_classifier.py", "demo.py"]
# Runs a script's --help in a fresh interpreter, then says which heavy modules it imported.
PROBE = """
import runpy, sys
sys.argv = [{script!r}, "--help"]
try:
    runpy.run_path({script!r}, run_name="__main__")
except SystemExit:
    pass
print("LOADED", sorted(m for m in ("torch", "gradio", "matplotlib") if m in sys.modules))
"""


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_loads_no_heavy_module(script: str) -> None:
    code = PROBE.format(script=str(ROOT / script))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536"})
    assert "usage:" in done.stdout and "LOADED []" in done.stdout, done.stdout + done.stderr


def test_the_package_command_help_loads_no_heavy_module() -> None:
    code = "import sys; from digit_studio.__main__ import _parser; print(sorted(m for m in ('torch', 'gradio') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip() == "[]"


def test_evaluation_offers_only_what_it_uses() -> None:
    help_text = subprocess.run([sys.executable, "evaluate_classifier.py", "--help"], capture_output=True, text=True,
                               cwd=ROOT, timeout=60).stdout
    assert "--data.root" in help_text and "--training.eval_batch_size" in help_text
    assert "--training.epochs" not in help_text and "--augment." not in help_text


def test_an_abbreviated_flag_is_refused() -> None:
    done = subprocess.run([sys.executable, "train_classifier.py", "--training.epoch", "3"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "unrecognized arguments: --training.epoch" in done.stderr


def test_figures_command_names_every_figure_set() -> None:
    from digit_studio.__main__ import FIGURE_SETS
    from digit_studio.research.figures import FIGURES

    assert FIGURE_SETS == tuple(FIGURES)
