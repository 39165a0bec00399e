"""SQLite (the embedded default) compares LIKE case-insensitively, and lower() and upper() change
case, for ASCII only.

Django's icontains/iexact on SQLite are LIKE; replacing SQLite's like() with a Unicode-aware
one makes "петр" find "Петров" there as it does on PostgreSQL. lower() and upper() (Lower, Upper:
a tag matched in any case by the import, an e-mail) are replaced by Python's for the same reason.
"""

import re
from functools import lru_cache


@lru_cache(maxsize=256)
def _like_regex(pattern: str, escape: str | None) -> re.Pattern:
    parts, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if escape and ch == escape and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def unicode_like(pattern, value, escape=None):
    if pattern is None or value is None:
        return None
    return _like_regex(str(pattern).casefold(), escape).fullmatch(str(value).casefold()) is not None


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def _upper(value):
    return value.upper() if isinstance(value, str) else value


def install(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function("lower", 1, _lower, deterministic=True)
        connection.connection.create_function("upper", 1, _upper, deterministic=True)
        connection.connection.create_function("like", 2, unicode_like, deterministic=True)
        connection.connection.create_function("like", 3, unicode_like, deterministic=True)
