"""One set of limits for every way a drawing arrives (digit_studio.limits): size, bytes, layers, formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digit_studio import limits
from digit_studio.errors import InputError
from digit_studio.reading.inputs import ink_map


def test_pil_itself_refuses_what_the_studio_refuses() -> None:
    # gradio decodes a UI event's image with PIL before our code runs: PIL's own bound must be ours
    assert 2 * Image.MAX_IMAGE_PIXELS == limits.MAX_PIXELS


def test_only_the_listed_formats_are_decoded(tmp_path: Path) -> None:
    eps = tmp_path / "drawing.eps"
    eps.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n")
    with pytest.raises(InputError, match="not an image file the studio reads; send a PNG, JPEG"):
        ink_map(eps)
    for name, fmt in (("ok.webp", "WEBP"), ("ok.gif", "GIF"), ("ok.bmp", "BMP"), ("ok.tiff", "TIFF")):
        Image.new("L", (40, 20), 255).save(tmp_path / name, fmt)
        assert not ink_map(tmp_path / name).mask.any()


def test_files_layers_and_arrays_beyond_the_limits_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with big.open("wb") as f:  # sparse: as large as the limit allows plus one byte, without the disk
        f.truncate(limits.MAX_BYTES + 1)
    with pytest.raises(InputError, match="at most 20 MB"):
        ink_map(big)
    layer = np.zeros((20, 40, 4), np.uint8)
    with pytest.raises(InputError, match=f"send at most {limits.MAX_LAYERS}"):
        ink_map({"background": None, "layers": [layer] * (limits.MAX_LAYERS + 1), "composite": None})
    with pytest.raises(InputError, match="4097×4096 pixels, too large to read"):
        ink_map(np.zeros((4096, 4097), np.uint8))
    assert ink_map(np.full((4096, 4096), 255, np.uint8)).size == (4096, 4096)
