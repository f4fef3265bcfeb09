"""Digit Insight Studio: draw a number, watch the network read it, explain itself and imagine alternatives.

    python demo.py [--classifier checkpoints/classifier.safetensors] [--vae checkpoints/vae.safetensors]
                   [--line-reader checkpoints/line_reader.safetensors] [--host 0.0.0.0] [--port 7860] [--share]

Runs unchanged as a Hugging Face Space: host and port default to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT.
"""

from __future__ import annotations

import os
import sys

# glibc's malloc, tuned for a long-lived server (it reads these at start-up only, so demo.py restarts itself
# once with them, before any import). Each worker thread gets its own arena by default, and memory freed in
# one request's thread is not reused by the next: two arenas. And the buffers of a request's tensors (a few
# MB each) would move from mmap to the heap as glibc raises its mmap threshold, where they fragment: a fixed
# threshold keeps them mmapped and handed back when freed. Without these the server grew by ~170 MB, then
# ~70 MB, over 1,000 requests (bench/load.py); with them it stays flat.
MALLOC_SETTINGS = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536"}
if __name__ == "__main__" and any(key not in os.environ for key in MALLOC_SETTINGS):
    os.environ.update({key: os.environ.get(key, value) for key, value in MALLOC_SETTINGS.items()})
    os.execv(sys.executable, [sys.executable, *sys.argv])

from pathlib import Path  # noqa: E402

from digit_studio import cli, resources  # noqa: E402
from digit_studio.cli import run_script  # noqa: E402


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--classifier", type=Path, default=resources.CLASSIFIER, help="classifier checkpoint")
    parser.add_argument("--vae", type=Path, default=resources.VAE, help="VAE checkpoint")
    parser.add_argument("--line-reader", type=Path, default=resources.LINE_READER,
                        help="CTC line model checkpoint (the cuts alone read where the default is not installed)")
    parser.add_argument("--host", default=None, help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    args = parser.parse_args()
    # torch and gradio load only now: --help answers at once
    from digit_studio.studio.analysis import Studio
    from digit_studio.studio.app import CONCURRENCY, build_app, launch

    studio = Studio.from_checkpoints(args.classifier, args.vae, explainers=CONCURRENCY, line_reader=args.line_reader)
    launch(build_app(studio, classifier=args.classifier, vae=args.vae, line_reader=args.line_reader),
           args.host, args.port, args.share)


if __name__ == "__main__":
    run_script(main)
