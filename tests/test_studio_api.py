"""The live studio (`python demo.py` on a loopback port) driven through its API with gradio_client."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from digit_studio.training.synth import draw_number, pick_digits

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "314159.png"


@pytest.fixture(scope="module")
def client(studio_url: str) -> Client:
    return Client(studio_url, verbose=False)


def _error(client: Client, *args, api_name: str = "/read") -> str:
    with pytest.raises(Exception) as caught:
        client.predict(*args, api_name=api_name)
    return str(caught.value)


def test_reads_a_drawing_of_mnist_test_digits(client: Client, mnist_test, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    drawing = draw_number("3708", pick_digits(mnist_test, "3708", rng), rng)
    path = tmp_path / "drawing.png"
    Image.fromarray(drawing.image).save(path)
    reading = client.predict(handle_file(str(path)), api_name="/read")
    assert reading["text"] == "3708"
    assert [d["label"] for d in reading["digits"]] == list("3708")
    assert all(len(d["top3"]) == 3 and len(d["box"]) == 4 for d in reading["digits"])


def test_reads_the_sketchpad_value(client: Client) -> None:
    value = {"background": handle_file(str(EXAMPLE)), "layers": [], "composite": None}
    assert client.predict(value, api_name="/read")["text"] == "314159"


def test_full_analysis(client: Client) -> None:
    result = client.predict(handle_file(str(EXAMPLE)), "integrated_gradients", True, 3, 0.5, api_name="/analyze")
    assert result["text"] == "314159" and result["method"] == "integrated_gradients" and result["why_not"]
    digit = result["digits"][0]
    assert np.array(digit["explanation"]["map"]).shape == (28, 28)
    assert np.array(digit["variations"]).shape == (3, 28, 28)
    assert digit["explanation"]["target"] == int(digit["top3"][1]["label"])
    assert result["timings_ms"]["total"] > 0


@pytest.mark.parametrize("empty", [None, {"background": None, "layers": [], "composite": None}])
def test_empty_canvas_gets_a_friendly_prompt(client: Client, empty) -> None:
    reading = client.predict(empty, api_name="/read")
    assert reading["text"] == "" and reading["message"] == "Draw a number" and reading["digits"] == []


def test_blank_image_gets_a_friendly_prompt(client: Client, tmp_path: Path) -> None:
    Image.new("RGB", (800, 400), "white").save(tmp_path / "blank.png")
    assert client.predict(handle_file(str(tmp_path / "blank.png")), api_name="/read")["message"] == "Draw a number"


@pytest.mark.parametrize("payload, message", [
    ({"foo": 1}, "keys background, layers, composite"),
    ({}, "keys background, layers, composite"),
    ("hello", "the drawing is of type str"),
    (42, "the drawing is of type int"),
    ([1, 2, 3], "the drawing is of type list"),
    ({"background": "/etc/hostname", "layers": [], "composite": None}, "background is not an uploaded file"),
    ({"path": "/etc/hostname"}, "the drawing is not an uploaded file"),
    ({"background": None, "layers": "one", "composite": None}, "layers must be a list"),
    ({"background": None, "layers": [7], "composite": None}, "layer 1 is not an uploaded file"),
])
def test_bad_payloads_get_clear_messages(client: Client, payload, message: str) -> None:
    assert message in _error(client, payload)


def test_non_image_and_huge_files_are_refused(client: Client, tmp_path: Path) -> None:
    assert "not an image file" in _error(client, handle_file(str(ROOT / "demo.py")))
    huge = tmp_path / "huge.png"
    Image.new("1", (6000, 6000), 1).save(huge)  # a few kB on disk, 36 megapixels decoded
    assert re.search(r"too large to read: send a PNG.* of at most 4096×4096 pixels",
                     _error(client, handle_file(str(huge))))


@pytest.mark.parametrize("options, message", [
    (("saliency",), "unknown explanation method"),
    (("gradcam", "yes"), "why_not must be true or false"),
    (("gradcam", False, 100), "variations must be a whole number"),
    (("gradcam", False, 4, -2.0), "temperature must be a number"),
])
def test_bad_options_get_clear_messages(client: Client, options: tuple, message: str) -> None:
    assert message in _error(client, handle_file(str(EXAMPLE)), *options, api_name="/analyze")


@pytest.mark.slow
def test_random_payloads_never_break_the_server(client: Client) -> None:
    rng = np.random.default_rng(0)
    atoms = [None, True, 0, -1, 3.5, float("inf"), "", "x" * 1000, [], {}, [None], {"meta": {}},
             {"meta": {"_type": "gradio.FileData"}, "path": 5}, {"layers": [[]]}, {"composite": {"x": 1}}]

    def payload(depth: int = 0):
        kind = rng.integers(4 if depth < 2 else 1)
        if kind == 0:
            return atoms[rng.integers(len(atoms))]
        if kind == 1:
            return [payload(depth + 1) for _ in range(rng.integers(3))]
        keys = ["background", "layers", "composite", "meta", "path", "junk"]
        return {keys[i]: payload(depth + 1) for i in rng.choice(len(keys), rng.integers(1, 4), replace=False)}

    for _ in range(200):
        try:
            client.predict(payload(), api_name="/read")
        except Exception as exc:  # every refusal is a sentence, never a traceback or a silent failure
            assert re.search(r"[a-z].{10,}", str(exc)) and "Traceback" not in str(exc)
    assert client.predict(handle_file(str(EXAMPLE)), api_name="/read")["text"] == "314159"


def test_readme_snippet_runs_as_written(studio_url: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use the API", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setenv("STUDIO_URL", studio_url)
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md: Use the API", "exec"), {})
    assert "314159" in capsys.readouterr().out
