"""Removing secrets (passwords in storage URLs and DSNs) from anything a report writes."""

from __future__ import annotations

import dataclasses
import re
from typing import TypeVar

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host (password may hold a raw '@')
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^\s/]*(?=@)")
# password=secret in a query string or a libpq key/value DSN
_KEY_PASSWORD = re.compile(r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?:'[^']*'|[^&\s;]+)", re.I)
_SECRET_KEYS = re.compile(r"password|passwd|secret|token", re.I)

T = TypeVar("T")


def redact_text(text: str) -> str:
    """``text`` with the password of every URL or ``password=`` pair in it replaced by ***."""
    text = _URL_PASSWORD.sub(lambda match: match["head"] + MASK, text)
    return _KEY_PASSWORD.sub(lambda match: match["head"] + MASK, text)


def redact(value: T) -> T:
    """A copy of ``value`` (str, dict, list, tuple or dataclass, nested) with secrets masked.

    Strings are passed through :func:`redact_text`; the values of dict keys that name a
    secret (password, secret, token) are replaced by *** whatever they hold.
    """
    if isinstance(value, str):
        return redact_text(value)  # type: ignore[return-value]  # T is str here: isinstance narrows no TypeVar
    if isinstance(value, dict):
        return {  # type: ignore[return-value]  # T is a dict here, as above
            key: MASK if isinstance(key, str) and _SECRET_KEYS.search(key) and item else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(redact(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(
            value, **{item.name: redact(getattr(value, item.name)) for item in dataclasses.fields(value)}
        )
    return value
