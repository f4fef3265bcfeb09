"""What every command-line entry point shares: a parser that refuses abbreviated flags, and user errors
as one line, not a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from digit_studio.errors import DigitStudioError


def parser(doc: str | None, **kwargs) -> argparse.ArgumentParser:
    """The script's parser, its docstring as the description. Abbreviations are refused: `--training.epoch 3`
    must not silently start a run as `--training.epochs 3`."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False, **kwargs)


def run_script(main: Callable[[], int | None]) -> None:
    try:
        code = main()
    except DigitStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code or 0)
