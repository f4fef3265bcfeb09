"""Where the shipped files are: the checkpoints, the examples and the measured figures in results/. In a
checkout they sit beside src/; after `pip install .` they sit under the environment's share/digit-studio/,
where pyproject's data-files puts them. Found from the code's own location, never from the working
directory, so the studio and the command line behave the same wherever they are started."""

from __future__ import annotations

import sys
from pathlib import Path


def _root() -> Path:
    checkout = Path(__file__).resolve().parents[2]  # src/digit_studio/ is two levels down
    return checkout if (checkout / "checkpoints").is_dir() else Path(sys.prefix) / "share" / "digit-studio"


ROOT = _root()
CLASSIFIER = ROOT / "checkpoints" / "classifier.safetensors"
VAE = ROOT / "checkpoints" / "vae.safetensors"
LINE_READER = ROOT / "checkpoints" / "line_reader.safetensors"
EXAMPLES = ROOT / "examples"
RESULTS = ROOT / "results"


def shown(path: str | Path) -> str:
    """`path` as the results files record it: relative to the checkout when inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)
