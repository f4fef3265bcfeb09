"""Digit Insight Studio: draw a number, watch the network read it, explain itself and imagine alternatives.

    python demo.py [--classifier checkpoints/classifier.safetensors] [--vae checkpoints/vae.safetensors]
                   [--host 0.0.0.0] [--port 7860] [--share]

Runs unchanged as a Hugging Face Space: host and port default to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and "MALLOC_ARENA_MAX" not in os.environ:
    # glibc gives each worker thread its own malloc arena; memory freed in one request's thread is then not
    # reused by the next, and the server grew by ~170 MB over 1,000 requests (bench/load.py). Two arenas
    # keep it flat. glibc reads the setting at start-up only, so restart once with it, before any import.
    os.environ["MALLOC_ARENA_MAX"] = "2"
    os.execv(sys.executable, [sys.executable, *sys.argv])

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

from digit_studio.analysis import Studio  # noqa: E402
from digit_studio.app import CONCURRENCY, build_app, launch  # noqa: E402
from digit_studio.cli import run_script  # noqa: E402
from digit_studio.reader import DEFAULT_CLASSIFIER, DEFAULT_VAE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classifier", type=Path, default=Path(DEFAULT_CLASSIFIER), help="classifier checkpoint")
    parser.add_argument("--vae", type=Path, default=Path(DEFAULT_VAE), help="VAE checkpoint")
    parser.add_argument("--host", default=None, help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    args = parser.parse_args()
    studio = Studio.from_checkpoints(args.classifier, args.vae, explainers=CONCURRENCY)
    launch(build_app(studio, classifier=args.classifier, vae=args.vae), args.host, args.port, args.share)


if __name__ == "__main__":
    run_script(main)
