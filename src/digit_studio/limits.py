"""The limits every drawing is held to, however it arrives: the API, the studio's own events, the command
line and the library all check here, so that no input costs unbounded time or memory, and every refusal
says what to send instead."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from digit_studio.errors import InputError

MAX_SIDE_PX = 4096
MAX_PIXELS = MAX_SIDE_PX * MAX_SIDE_PX  # larger images are refused before being decoded
MAX_BYTES = 20 * 1024 * 1024  # an image file
MAX_LAYERS = 16  # sketchpad layers (the studio's own sketchpad sends one)
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # no other decoder is ever reached (EPS, ...)
SEND = f"send a PNG, JPEG, WebP, GIF, BMP or TIFF image of at most {MAX_SIDE_PX}×{MAX_SIDE_PX} pixels"

# PIL refuses to decode more than twice MAX_IMAGE_PIXELS (and warns between): this also bounds the decoding
# gradio does itself, before a UI event's image reaches our code. The warning is ours to give, not PIL's.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


def check_size(width: int, height: int, what: str = "the image") -> None:
    if width * height > MAX_PIXELS:
        raise InputError(f"{what} is {width}×{height} pixels, too large to read: {SEND}")


def check_layers(count: int) -> None:
    if count > MAX_LAYERS:
        raise InputError(f"the sketchpad sent {count} layers; send at most {MAX_LAYERS} (flatten the drawing)")


def open_image(source: Path | bytes, what: str | None = None) -> Image.Image:
    """The image in the file at `source` (or in these bytes), its header checked (format, size, bytes)
    before any pixel is decoded."""
    what = what or str(source) if isinstance(source, Path) else what or "the image"
    if isinstance(source, Path):
        if not source.is_file():
            raise InputError(f"{what}: {'not a file' if source.exists() else 'no such file'}")
        size = source.stat().st_size
    else:
        size = len(source)
    if size > MAX_BYTES:
        raise InputError(f"{what} is {size / 2**20:.0f} MB; {SEND}, at most {MAX_BYTES // 2**20} MB")
    try:
        image = Image.open(source if isinstance(source, Path) else io.BytesIO(source), formats=FORMATS)
    except Image.DecompressionBombError:  # PIL's own check, from the header, at twice MAX_IMAGE_PIXELS
        raise InputError(f"{what} has more than {MAX_PIXELS:,} pixels, too large to read: {SEND}") from None
    except UnidentifiedImageError:
        raise InputError(f"{what}: not an image file the studio reads; {SEND}") from None
    except OSError as exc:
        raise InputError(f"{what}: cannot read the image ({exc}); {SEND}") from None
    check_size(image.width, image.height, what)
    return image
