"""Exceptions for user mistakes.

Every error raised for bad input derives from :class:`UserError` and names the parameter
that is wrong; the command line prints such errors as one line and exits non-zero.
"""


class UserError(ValueError):
    """Bad input from a user: a parameter, a file or a command-line flag."""


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
        self.field = field
        super().__init__(f"{field}: {message}")


class SimulationError(RuntimeError):
    """A simulator or synthesis tool failed to build or run; the message names its log."""
