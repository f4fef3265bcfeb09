"""What every command-line entry point shares: user errors as one line, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from digit_studio.errors import DigitStudioError


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
