"""Where the shipped models are: found from the source tree, not from the working directory, so that the
studio and the command line behave the same wherever they are started."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: src/digit_studio/ is two levels down
CLASSIFIER = ROOT / "checkpoints" / "classifier.safetensors"
VAE = ROOT / "checkpoints" / "vae.safetensors"
