"""Errors a user can act on. Scripts print their message on one line instead of a traceback."""


class DigitStudioError(Exception):
    """Base class: the message says what is wrong and what to do."""


class ConfigError(DigitStudioError):
    pass


class DataError(DigitStudioError):
    pass


class CheckpointError(DigitStudioError):
    pass


class InputError(DigitStudioError):
    """An input that is not an image the reader can use, or one beyond the limits (limits.py)."""
