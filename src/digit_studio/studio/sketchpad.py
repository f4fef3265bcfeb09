"""gradio's sketchpad, held to the studio's limits on the path the page itself uses.

The page uploads each stroke's export through the sketchpad's `accept_blobs` server function, and gradio
decodes the images of an event's value in `preprocess`, before the event's function runs. gradio keeps an
export that no event takes forever, grows a layer list as long as any `index` sent, and decodes whatever PIL
opens. Here `preprocess` checks limits.py from the headers first (a refusal says what to send), a layer index
beyond limits.MAX_LAYERS is refused, and the oldest exports go once the store holds more than
BLOB_BYTES_KEPT. (gradio's multipart parser already refuses a part over the server's max_file_size.)

The checks are bound to the instance: a subclass of a gradio component makes gradio write a .pyi file beside
its module at import, into the source tree or an installed package."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import HTTPException

from digit_studio import limits
from digit_studio.errors import InputError

BLOB_BYTES_KEPT = 64 * 2**20  # exports awaiting their event, all browsers together (a stroke's: ~30 KB)


def _blob_bytes(blobs: Any) -> int:
    return sum(len(part) for part in (blobs.background, blobs.composite, *blobs.layers) if part)


def _check(pad: gr.Sketchpad, payload: Any) -> None:
    """The limits, from the image headers of the value an event sent (files, or an export's bytes)."""
    source = (pad.blob_storage.get(payload.id) if payload.id is not None else None) or payload
    layers = [layer for layer in source.layers or [] if layer is not None]
    limits.check_layers(len(layers))
    parts = [(source.background, "background"), (source.composite, "composite"),
             *((layer, f"layer {i + 1}") for i, layer in enumerate(layers))]
    for part, what in parts:
        if part is not None:
            limits.open_image(part if isinstance(part, bytes) else Path(part.path), what).close()


def bounded_sketchpad(**options: Any) -> gr.Sketchpad:
    """A gr.Sketchpad(**options) whose decoding and blob store are bounded (module doc)."""
    pad = gr.Sketchpad(**options)
    preprocess, accept_blobs = pad.preprocess, pad.accept_blobs

    def checked_preprocess(self: gr.Sketchpad, payload: Any) -> Any:
        if payload is not None:
            try:
                _check(self, payload)
            except InputError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
        return preprocess(payload)

    def bounded_accept_blobs(self: gr.Sketchpad, data: Any) -> None:
        index = data.data.get("index")
        if index not in (None, "", "null") and not (str(index).isdigit() and int(index) < limits.MAX_LAYERS):
            raise HTTPException(400, f"the sketchpad sent layer {index!r}; it may have at most {limits.MAX_LAYERS} "
                                     "layers")
        accept_blobs(data)
        kept = {key: _blob_bytes(blobs) for key, blobs in self.blob_storage.items()}
        for key in list(kept):  # oldest first: a dict keeps insertion order
            if sum(kept.values()) <= BLOB_BYTES_KEPT:
                break
            self.blob_storage.pop(key, None)
            del kept[key]

    bounded_accept_blobs._is_server_fn = True  # what gradio's component_server route asks of a server function
    pad.preprocess = types.MethodType(checked_preprocess, pad)
    pad.accept_blobs = types.MethodType(bounded_accept_blobs, pad)
    return pad
