"""Checkpoints as safetensors with JSON metadata: weights plus the configs and metrics that made them.

Loading reads tensors and strings only, so a checkpoint can never execute code. Every way a file can be
wrong (missing, truncated, not safetensors, another model's checkpoint) ends in one CheckpointError line
that says what to do.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from digit_studio.errors import CheckpointError

FORMAT = "digit-studio/1"
TRAIN_HINT = {"classifier": "python train_classifier.py", "vae": "python train_vae.py",
              "line_reader": "python train_line_reader.py"}


PLAIN_KEYS = {"format", "kind", "commit", "date"}  # stored as they are; every other entry is JSON


def git_commit() -> str:
    """The checkout's commit, suffixed "-dirty" when files differ from it (the weights then come from code
    that no commit holds exactly); "unknown" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=7"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def save_checkpoint(path: str | Path, model: nn.Module, kind: str, metadata: dict[str, Any]) -> None:
    """Write `model`'s weights and JSON-encoded `metadata` atomically (a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "format": FORMAT,
        "kind": kind,
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    header.update({key: json.dumps(value) for key, value in metadata.items()})
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=header)
    os.replace(tmp, path)


def update_metadata(path: str | Path, kind: str, entries: dict[str, Any]) -> None:
    """Add or replace metadata entries of a checkpoint, its weights untouched (a benchmark records what it
    measured of the model, such as the VAE's not-a-digit threshold, where the model travels)."""
    tensors, meta = read_checkpoint(path, kind)
    header = {key: value if key in PLAIN_KEYS else json.dumps(value) for key, value in {**meta, **entries}.items()}
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    save_file(tensors, str(tmp), metadata=header)
    os.replace(tmp, path)


def _decode(meta: dict[str, str]) -> dict[str, Any]:
    return {key: value if key in PLAIN_KEYS else json.loads(value) for key, value in meta.items()}


def read_checkpoint(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return (tensors, metadata) of a `kind` checkpoint, or raise CheckpointError with a fix."""
    path = Path(path)
    fix = f"train one with `{TRAIN_HINT.get(kind, 'the training script')}` or restore the shipped file"
    if not path.is_file():
        raise CheckpointError(f"{kind} checkpoint not found: {path} ({fix})")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint (truncated or another format: {exc}); {fix}"
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a Digit Studio checkpoint; {fix}")
    if meta.get("kind") != kind:
        raise CheckpointError(
            f"{path} is a {meta.get('kind')} checkpoint, but a {kind} checkpoint is needed here; "
            f"pass the {kind} file instead"
        )
    try:
        return tensors, _decode(meta)
    except json.JSONDecodeError:
        raise CheckpointError(f"{path} has damaged metadata; {fix}") from None


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load `tensors` into `model`, turning shape or name mismatches into a CheckpointError."""
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[1:2] or [str(exc)]
        raise CheckpointError(
            f"{path} does not fit the model its metadata describes ({first[0].strip()}); "
            "the file was edited or is damaged"
        ) from None
