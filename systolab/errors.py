"""Exceptions for user mistakes.

Every error raised for bad input derives from :class:`UserError` and carries the
parameter that is wrong (:attr:`UserError.parameter`); the command line prints such
errors as one line, puts the parameter into its JSON error object, and exits with 2.
"""
from __future__ import annotations

import re

_LEADING_NAME = re.compile(r"\s*([A-Za-z_][\w.\[\]-]*)\s*:\s")


class UserError(ValueError):
    """Bad input from a user: a parameter, a file or a command-line flag.

    Parameters
    ----------
    message : str
        What is wrong, including the bad value. By convention it starts with the
        parameter's name and a colon (``"seq-len: must be ..."``).
    parameter : str, optional
        The parameter as the user spells it; when omitted, the name before the first
        colon of ``message``.
    """

    def __init__(self, message: str, *, parameter: str | None = None):
        super().__init__(message)
        if parameter is None:
            m = _LEADING_NAME.match(message)
            parameter = m.group(1) if m else None
        self.parameter: str | None = parameter


class ConfigError(UserError):
    """A configuration field holds a bad value.

    Parameters
    ----------
    field : str
        Name of the offending field, as the user spells it.
    message : str
        What is wrong, including the bad value.
    """

    def __init__(self, field: str, message: str):
        self.field = field = str(field)        # a YAML key may be an integer: the parameter is its text
        super().__init__(f"{field}: {message}", parameter=field)


class SimulationError(RuntimeError):
    """A simulator or synthesis tool failed to build or run; the message names its log."""
