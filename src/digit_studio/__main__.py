"""Command line: read the number drawn in each image.

    python -m digit_studio read IMAGE [IMAGE ...] [--json] [--classifier PATH] [--vae PATH | --no-vae]
                               [--line-reader PATH | --no-line-reader]
    python -m digit_studio figures [--only evaluation explanations studio]

Prints the number read from each image, one line per image (a two-line number's lines joined by " / ";
preceded by the path and a tab when there are several images, like grep), or with --json one object per
image and line (lines joined by "\\n" in its text). A file that cannot be read gets a one-line error
on stderr and exit code 1; the other files are still read.

`figures` regenerates the README's pictures in results/ from the shipped checkpoints (research/figures.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from digit_studio import resources
from digit_studio.cli import run_script
from digit_studio.errors import DigitStudioError

# research/figures.py's sets, named here for --help: that module loads torch
FIGURE_SETS = ("evaluation", "explanations", "studio", "two_readers")

if TYPE_CHECKING:
    from digit_studio.reading.reader import Reading


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m digit_studio", description="Digit Insight Studio", allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    read = commands.add_parser("read", help="print the number drawn in each image", allow_abbrev=False)
    read.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    read.add_argument("--json", action="store_true", help="one JSON object per image and line")
    read.add_argument("--classifier", default=resources.CLASSIFIER, help="classifier checkpoint")
    read.add_argument("--vae", default=resources.VAE, help="VAE checkpoint (helps split touching digits)")
    read.add_argument("--no-vae", dest="vae", action="store_const", const=None, help="read without the VAE")
    read.add_argument("--line-reader", default=resources.LINE_READER,
                      help="CTC line model checkpoint: the second reader, which settles touching digits")
    read.add_argument("--no-line-reader", dest="line_reader", action="store_const", const=None,
                      help="read by segmentation alone")
    figures = commands.add_parser("figures", help="regenerate the README's pictures in results/", allow_abbrev=False)
    figures.add_argument("--only", nargs="+", choices=FIGURE_SETS, default=list(FIGURE_SETS), metavar="SET",
                         help=f"some of: {', '.join(FIGURE_SETS)} (default: all)")
    return parser


def _line(path: str, reading: Reading, as_json: bool, with_path: bool) -> str:
    if as_json:
        return json.dumps({"path": path, **reading.to_dict()})
    shown = reading.text.replace("\n", " / ") if reading.text else f"({reading.message})"
    return f"{path}\t{shown}" if with_path else shown


def main() -> int:
    args = _parser().parse_args()
    if args.command == "figures":
        from digit_studio.research.figures import make_figures

        make_figures(args.only)
        return 0
    from digit_studio.reading.reader import Reader  # torch loads only now: --help answers at once

    # a bad checkpoint stops everything: run_script
    reader = Reader.from_checkpoint(args.classifier, args.vae, line_reader=args.line_reader)
    failed = 0
    for path in args.images:
        try:
            reading = reader.read(path)
        except DigitStudioError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(_line(path, reading, args.json, with_path=len(args.images) > 1), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    run_script(main)
