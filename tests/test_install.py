"""`pip install .` into a fresh environment, then the command line and the studio from a directory that is
not the checkout: they find the shipped checkpoints (resources.py) and read exactly as the checkout does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from digit_studio.research.server import running_studio

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
SHIPPED = ["pyproject.toml", "src", "checkpoints", "examples", "results/classifier", "results/bench", "demo.py"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the package installed (not editable) from a copy of the checkout; torch, gradio and the
    rest come from this environment through a .pth line, so nothing is downloaded."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    for name in SHIPPED:  # a copy: building in the checkout would leave build/ and egg-info behind
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, target, **({"ignore": shutil.ignore_patterns("__pycache__", "*.egg-info")}
                                     if (ROOT / name).is_dir() else {}))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(source)],
                   check=True, cwd=base)
    shutil.rmtree(source)  # the installed package must not lean on the copy
    return python


def test_installed_package_lives_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = subprocess.check_output(
        [installed, "-c", "import digit_studio.resources as r; print(r.__file__); print(r.CLASSIFIER)"],
        cwd=tmp_path, text=True).split()
    assert not where[0].startswith(str(ROOT)) and not where[1].startswith(str(ROOT))
    assert Path(where[1]).is_file()


def test_read_from_any_directory_reads_as_the_checkout(installed: Path, tmp_path: Path) -> None:
    command = ["-m", "digit_studio", "read", "--json", *map(str, EXAMPLES)]
    here = subprocess.run([installed, *command], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    checkout = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    readings = [json.loads(line) for line in here.splitlines()]
    assert [r["text"] for r in readings] == [json.loads(line)["text"] for line in checkout.splitlines()]
    assert len(readings) == len(EXAMPLES) and all(r["text"] for r in readings)


def test_studio_from_any_directory_reads_as_the_checkout(installed: Path, tmp_path: Path) -> None:
    with running_studio(tmp_path / "server.log", python=installed, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}) as server:
        drawing = {"background": None, "layers": [], "composite": handle_file(str(EXAMPLES[0]))}
        reading = Client(server.url, verbose=False).predict(drawing, api_name="/read")
    expected = subprocess.run([sys.executable, "-m", "digit_studio", "read", str(EXAMPLES[0])], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert reading["text"] == expected
