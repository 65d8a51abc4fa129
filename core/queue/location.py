"""Where a queue is, as a person may see it: a JSON file's path, or a PostgreSQL URL
without its secret (SPEC §3: stderr is for people, and never for a password).

Invariants:
- `redact` is the one function that turns a queue location into text for stderr, a JSON
  line (`queue status`, `queue clear`, `doctor`) or a log line: a database URL loses its
  password, in the user part and in the query, whatever else is wrong with it. It never
  raises, so a message about a malformed URL can still name it.
- `check_url` refuses, before libpq sees it, a URL whose percent-escapes cannot be decoded
  (`50%off`, `%00`): libpq's own message quotes the offending part, the password with it.
- `scrub` takes the URL and its password out of a text someone else wrote about it (a
  driver's error message), for what `check_url` cannot foresee.
"""

from __future__ import annotations

import os
import re
import urllib.parse

from ..errors import QueueUnavailable

URL_SCHEMES = ("postgresql://", "postgres://")
#: A `%` not followed by two hex digits, or an escaped NUL: what libpq cannot decode.
BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|%00")


def is_url(location: object) -> bool:
    """A database URL (`postgresql://...`), not a queue file's path."""
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def _split(url: str) -> tuple[str, str, str, str]:
    """scheme://, the user part, the host and path, and the query (the fragment dropped):
    by hand, as urllib raises on some URLs. The user part ends at the last `@`, unless
    what comes before it holds a `=` (then that `@` is in the query): a password with a
    `/` or `?` left unescaped is still a password."""
    scheme, _, rest = url.partition("://")
    rest = rest.partition("#")[0]
    userinfo, at, after = rest.rpartition("@")
    if at and "=" in userinfo:
        userinfo, at, after = rest.partition("?")[0].rpartition("@")
        after += rest[len(userinfo) + len(at) + len(after) :]
    if not at:
        userinfo, after = "", rest
    hostpath, _, query = after.partition("?")
    return f"{scheme}://", userinfo, hostpath, query


def _query_items(query: str) -> list[tuple[str, str]]:
    """The query's raw `key=value` items, as written (nothing decoded)."""
    return [(item.partition("=")[0], item.partition("=")[2]) for item in query.split("&") if item]


def _is_password(key: str) -> bool:
    return urllib.parse.unquote(key).strip().lower() == "password"


def redact(location: str | os.PathLike[str]) -> str:
    """The queue as users may see it: a path as it is, a URL without any password."""
    text = os.fspath(location)
    if not is_url(text):
        return text
    scheme, userinfo, hostpath, query = _split(text)
    # the user name ends at its `:` (a `/` in it: libpq would not have read it as a user)
    user = userinfo.partition(":")[0].partition("/")[0]
    shown = scheme + (f"{user}@" if userinfo else "") + hostpath
    kept = [f"{k}={v}" if v else k for k, v in _query_items(query) if not _is_password(k)]
    return shown + ("?" + "&".join(kept) if kept else "")


def _secrets(url: str) -> list[str]:
    """Every form of the URL's passwords (as written and decoded), longest first."""
    _, userinfo, _, query = _split(url)
    raw = []
    if ":" in userinfo:
        raw.append(userinfo.partition(":")[2])
        first = userinfo.partition("@")[0]  # libpq ends the user part at the first `@`
        if ":" in first:
            raw.append(first.partition(":")[2])
    raw += [v for k, v in _query_items(query) if _is_password(k)]
    found = {form for s in raw if s for form in (s, urllib.parse.unquote(s)) if form}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` with the URL shown redacted and its password, wherever quoted, as `***`."""
    if not is_url(url):
        return text
    text = text.replace(url, redact(url))
    for secret in _secrets(url):
        text = text.replace(f'"{secret}"', '"***"')
        if len(secret) >= 4:  # a short one may be any word: only its quoted form goes
            text = text.replace(secret, "***")
    return text


def check_url(url: str) -> None:
    """Raise `QueueUnavailable` (exit 3), naming the part but not its text, when a part
    of the URL has a percent-escape libpq cannot decode."""
    _, userinfo, hostpath, query = _split(url)
    user, colon, password = userinfo.partition(":")
    parts = (
        ("password", password if colon else ""),
        ("user name", user),
        ("host or database name", hostpath),
        ("query", query),
    )
    for part, text in parts:
        if BAD_ESCAPE.search(text):
            raise QueueUnavailable(
                f"the queue {redact(url)} is not a valid URL: its {part} has a malformed "
                "percent-escape (write a % as %25, a : as %3A, an @ as %40; %00 is not "
                "allowed); fix --queue or XDL_QUEUE"
            )
