"""Hostile payloads against the live studio, through the API (gradio_client) and through the UI's own event
(the queue request the page sends when a stroke ends): each is refused with a sentence that says what to
send, the server keeps answering, and its memory stays within 300 MB of where it started. The sketchpad's
blob store (`accept_blobs`) is bounded."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from digit_studio import limits
from digit_studio.studio.sketchpad import BLOB_BYTES_KEPT

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "314159.png"
RSS_BOUND_MB = 300


class Page:
    """What the studio's page sends: files uploaded to /upload, then the sketchpad's change event joined to
    the queue, its answer read from the event stream."""

    def __init__(self, url: str) -> None:
        self.api = url + "gradio_api/"
        self.http = httpx.Client(timeout=120)
        config = self.http.get(url + "config").json()
        self.pad = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "sketchpad")
        self.event = next(i for i, d in enumerate(config["dependencies"]) if [self.pad, "change"] in d["targets"])
        self.session = secrets.token_hex(6)

    def upload(self, path: Path) -> dict:
        answer = self.http.post(self.api + "upload", files={"files": (path.name, path.read_bytes())})
        answer.raise_for_status()
        return {"path": answer.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def stroke(self, value: dict) -> dict:
        """The change event with this sketchpad value; returns the process_completed message."""
        self.http.post(self.api + "queue/join", json={
            "data": [value], "event_data": None, "fn_index": self.event, "trigger_id": self.pad,
            "session_hash": self.session}).raise_for_status()
        with self.http.stream("GET", self.api + "queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
        raise AssertionError("the event stream ended without an answer")

    def accept_blobs(self, blob_id: str, kind: str, content: bytes, index: int | None = None) -> httpx.Response:
        return self.http.post(self.api + "component_server/", data={
            "session_hash": self.session, "component_id": str(self.pad), "fn_name": "accept_blobs", "id": blob_id,
            "type": kind, "index": "null" if index is None else str(index)}, files={"file": ("blob", content)})


def hostile_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, the words its refusal must contain)."""
    huge = folder / "huge.png"
    Image.new("1", (13000, 13000), 1).save(huge)  # ~20 kB on disk, 169 megapixels decoded
    eps = folder / "drawing.eps"  # PIL would hand this to Ghostscript
    eps.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nnewpath 0 0 moveto 100 100 lineto stroke\n")
    text = folder / "notes.png"
    text.write_text("not a picture")
    return {"huge": (huge, "too large to read"), "eps": (eps, "not an image file"),
            "text": (text, "not an image file")}


def test_hostile_payloads_through_the_api_and_the_page(studio, tmp_path: Path) -> None:
    client, page = Client(studio.url, verbose=False), Page(studio.url)
    client.predict(handle_file(str(EXAMPLE)), api_name="/read")  # warm: models and buffers in place
    start = studio.rss_mb()
    for name, (path, words) in hostile_files(tmp_path).items():
        with pytest.raises(Exception, match=words):
            client.predict({"background": None, "layers": [], "composite": handle_file(str(path))}, api_name="/read")
        answer = page.stroke({"background": None, "layers": [], "composite": page.upload(path), "id": None})
        assert not answer["success"] and words in (answer["output"].get("error") or ""), (name, answer)
    small = page.upload(EXAMPLE)
    many = page.stroke({"background": None, "layers": [small] * (limits.MAX_LAYERS + 1), "composite": small})
    assert not many["success"] and "layers" in many["output"]["error"]
    fine = page.stroke({"background": None, "layers": [], "composite": small})
    assert fine["success"], fine
    assert client.predict(handle_file(str(EXAMPLE)), api_name="/read")["text"] == "314159"
    assert studio.rss_mb() - start < RSS_BOUND_MB


def test_the_sketchpad_blob_store_is_bounded(studio) -> None:
    page = Page(studio.url)
    start = studio.rss_mb()
    blob = secrets.token_bytes(8 * 2**20)  # incompressible, as a PNG export is
    for i in range(40):  # 320 MB of exports that no event will ever take
        assert page.accept_blobs(f"spam{i}", "composite", blob).status_code == 200
    assert studio.rss_mb() - start < BLOB_BYTES_KEPT / 2**20 + 100
    refused = page.accept_blobs("far", "layer", b"x", index=10**9)  # gradio would grow a list this long
    assert refused.status_code >= 400 and "at most" in refused.text
    assert page.accept_blobs("over", "composite", b"x" * (21 * 2**20)).status_code == 413  # max_file_size
    assert Client(studio.url, verbose=False).predict(handle_file(str(EXAMPLE)), api_name="/read")["text"] == "314159"
