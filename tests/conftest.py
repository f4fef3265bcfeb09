"""Shared fixtures: real MNIST from $DIGIT_STUDIO_DATA (default ../shared/data), the shipped checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digit_studio.config import DataConfig
from digit_studio.training.data import DATA_ENV, Split, load_mnist

ROOT = Path(__file__).resolve().parent.parent
CLASSIFIER_CHECKPOINT = ROOT / "checkpoints" / "classifier.safetensors"

# Tests run offline: point at the shared MNIST files unless the caller chose another folder.
os.environ.setdefault(DATA_ENV, str(ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_config() -> DataConfig:
    return DataConfig(download=False)


@pytest.fixture(scope="session")
def mnist_test(data_config: DataConfig) -> Split:
    return load_mnist(data_config, train=False)


@pytest.fixture(scope="session")
def classifier():
    """The shipped classifier in eval mode, loaded once."""
    from digit_studio.models.classifier import load_classifier

    model, _ = load_classifier(CLASSIFIER_CHECKPOINT)
    return model


@pytest.fixture(scope="session")
def studio_url(tmp_path_factory: pytest.TempPathFactory):
    """`python demo.py` on a free loopback port, started once per session; only its PID is stopped."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path_factory.mktemp("studio") / "server.log").open("w")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "demo.py", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"demo.py exited with {server.returncode}; see {log.name}")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"demo.py did not answer within 120 s; see {log.name}") from None
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
