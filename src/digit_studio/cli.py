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


def training_parser(doc: str | None, config_class: type, default_config: str) -> argparse.ArgumentParser:
    """A training script's parser: --config, one option per config value, and --resume."""
    from digit_studio.config import add_config_arguments

    result = parser(doc)
    add_config_arguments(result, config_class, default_config)
    result.add_argument("--resume", metavar="FILE",
                        help="continue from the .resume.pt file a run leaves beside its checkpoint after each epoch")
    return result


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
