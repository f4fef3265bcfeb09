"""One downloadable file per drawing: a zip of the drawing, the full analysis as JSON and every picture."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from digit_studio.studio.analysis import Analysis
from digit_studio.studio.render import Pictures, rgb


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def write_report(path: str | Path, analysis: Analysis, pictures: Pictures,
                 interpolation: np.ndarray | None = None) -> Path:
    """Write the zip: drawing.png, analysis.json (reading, scores, maps, variations), the maps over the
    drawing, one picture per explanation, per line view and per digit's variations, and the interpolation if
    given."""
    path = Path(path)
    files: dict[str, bytes] = {
        "drawing.png": _png(rgb(1 - analysis.ink)),
        "analysis.json": json.dumps(analysis.to_dict(), indent=1).encode(),
    }
    if pictures.overlay is not None:
        files["explanations/all_digits_on_drawing.png"] = _png(pictures.overlay)
    for i, (image, caption) in enumerate(pictures.explanations, start=1):
        files[f"explanations/digit_{i}_{_slug(caption.split('·')[0])}.png"] = _png(image)
    for i, (image, caption) in enumerate(pictures.line_views, start=1):  # the digits the line model read, in order
        files[f"line_views/{i}_{_slug(caption.split('·')[0])}.png"] = _png(image)
    for i, (image, _) in enumerate(pictures.variations, start=1):
        files[f"variations/digit_{i}.png"] = _png(image)
    if interpolation is not None:
        files["variations/interpolation.png"] = _png(interpolation)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path
