"""The one exception family for mistakes a user can make (bad flag, file, name or value), and how errors
are shown in one line."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; its message is one sentence, shown without a traceback.

    The command line prints it and exits with status 2.
    """


class SpecError(UserError):
    """A schedule spec file or value is invalid; the message names the bad field."""


class DataError(UserError):
    """A dataset cannot be found, provisioned or read."""


class StudyError(UserError):
    """A study file, flag or storage is invalid or unreachable."""


def one_line(error: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
