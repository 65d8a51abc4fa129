"""Direct HTTP: the one module that owns the `requests.Session` (one per thread).

Requests' exceptions are caught here and re-raised as xdl's own errors.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters
import urllib3.exceptions

from . import __version__, errors
from .inputs import quote, refused
from .names import filename_from_content_disposition
from .network import NetworkOptions

CHUNK = 1 << 20
DEFAULT_TIMEOUT = 30.0
USER_AGENT = f"Mozilla/5.0 (compatible; xdl/{__version__})"

_local = threading.local()
_cookie_jars: dict[str, Any] = {}
_cookie_lock = threading.Lock()


def session() -> requests.Session:
    """This thread's session (connection pooling without sharing across threads)."""
    s: requests.Session | None = getattr(_local, "session", None)
    if s is None:
        s = requests.Session()
        s.headers["User-Agent"] = USER_AGENT
        s.headers["Accept-Encoding"] = "identity"  # byte counts and ranges are of the file
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=4)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        _local.session = s
    return s


def _cookies(path: str | None) -> Any:
    if not path:
        return None
    with _cookie_lock:
        if path not in _cookie_jars:
            from http.cookiejar import LoadError, MozillaCookieJar

            jar = MozillaCookieJar(path)
            try:
                jar.load(ignore_discard=True, ignore_expires=True)
            except (OSError, LoadError) as e:
                raise errors.BadInput(f"cannot read cookies file {path}: {e}") from e
            for cookie in jar:
                if cookie.expires == 0:  # 0 means a session cookie, as for curl and yt-dlp
                    cookie.expires = None
                    cookie.discard = True
            _cookie_jars[path] = jar
        return _cookie_jars[path]


def request_kwargs(net: NetworkOptions, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    headers = dict(net.headers)
    if net.user_agent:
        headers["User-Agent"] = net.user_agent
    headers.update(extra or {})
    timeout = net.timeout or DEFAULT_TIMEOUT
    kwargs: dict[str, Any] = {"headers": headers, "timeout": (min(timeout, 15.0), timeout)}
    if net.proxy:
        kwargs["proxies"] = {"http": net.proxy, "https": net.proxy}
    jar = _cookies(net.cookies)
    if jar is not None:
        kwargs["cookies"] = jar
    return kwargs


@dataclass(frozen=True)
class Head:
    """What a HEAD (or a one-byte GET) says about a URL."""

    url: str
    status: int
    content_type: str | None
    length: int | None
    filename: str | None
    etag: str | None
    last_modified: str | None
    accept_ranges: bool

    @property
    def mime(self) -> str:
        return (self.content_type or "").split(";")[0].strip().lower()


def status_error(status: int, reason: str, url: str) -> errors.XdlError:
    text = f"HTTP {status} {reason}".strip()
    if status in (404, 410):
        return errors.NotFound(text, status=status)
    return errors.HttpError(text, status=status)


def translate(exc: BaseException, url: str) -> errors.XdlError:
    """A requests/urllib3 exception as one of ours."""
    if isinstance(exc, errors.XdlError):
        return exc
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
        return errors.Timeout(f"timed out: {_short(exc)}")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return errors.BadInput(f"not a usable URL: {quote(url)}")
    if isinstance(exc, requests.exceptions.InvalidSchema):
        # `url` was checked before the request: what requests refused is where it led
        # (a redirect to file:///etc/passwd), named in the message.
        return refused(str(exc))
    return errors.NetworkError(_short(exc))


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection broken" in text or "IncompleteRead" in text:
        return "connection broken mid-transfer"
    if "Connection refused" in text:
        return "connection refused"
    return text.splitlines()[0][:200]


def probe(url: str, net: NetworkOptions) -> tuple[Head, requests.Response]:
    """Start a streaming GET of `url` and report what is there from its headers.

    The open response is returned too: a plain file's download goes on reading it (one
    request, not a HEAD and then a GET); the caller closes it when it is not wanted.
    """
    resp = get(url, net)
    if resp.status_code >= 400:
        resp.close()
        raise status_error(resp.status_code, resp.reason or "", url)
    return head_of(resp), resp


def head_of(resp: requests.Response) -> Head:
    h = resp.headers
    length: int | None = None
    if resp.status_code == 206 and "/" in h.get("Content-Range", ""):
        total = h["Content-Range"].rsplit("/", 1)[1]
        length = int(total) if total.isdigit() else None
    elif (h.get("Content-Length") or "").isdigit():
        length = int(h["Content-Length"])
    return Head(
        url=resp.url,
        status=resp.status_code,
        content_type=h.get("Content-Type"),
        length=length,
        filename=filename_from_content_disposition(h.get("Content-Disposition")),
        etag=h.get("ETag"),
        last_modified=h.get("Last-Modified"),
        accept_ranges=h.get("Accept-Ranges", "").lower() == "bytes" or resp.status_code == 206,
    )


def get(
    url: str, net: NetworkOptions, headers: Mapping[str, str] | None = None
) -> requests.Response:
    """A streaming GET; HTTP errors (>= 400) raised as ours, the response closed."""
    try:
        resp = session().get(url, stream=True, allow_redirects=True, **request_kwargs(net, headers))
    except requests.RequestException as e:
        raise translate(e, url) from e
    if resp.status_code >= 400 and resp.status_code != 416:
        resp.close()
        raise status_error(resp.status_code, resp.reason or "", url)
    return resp


def chunks(
    resp: requests.Response, size: int = CHUNK, wanted: Callable[[], int] | None = None
) -> Iterator[bytes]:
    """The body in pieces of up to `size` bytes; a broken transfer raised as ours.

    The read size adapts: it doubles while reads come back fast (large chunks, little
    per-chunk overhead on a fast link) and halves when they are slow, so a slow
    transfer still yields (and notices a stop) several times a second. `wanted()`, when
    given, says how many more bytes the reader takes: a read never waits for more, and
    the body ends when it says 0 (a range that another connection took over).
    """
    raw = resp.raw
    amount = min(size, 64 * 1024)
    try:
        while True:
            began = time.monotonic()
            room = wanted() if wanted is not None else amount
            if room <= 0:
                return
            data = raw.read(min(amount, room))
            if not data:
                return
            yield data
            took = time.monotonic() - began
            if took < 0.05 and amount < size:
                amount = min(size, amount * 2)
            elif took > 0.25 and amount > 16 * 1024:
                amount //= 2
    except (requests.RequestException, OSError, urllib3.exceptions.HTTPError) as e:
        raise translate(e, resp.url) from e


def first_bytes(resp: requests.Response, size: int) -> bytes:
    """Read the body's first `size` bytes to look at; whoever reads the body next (`chunks`,
    `Body`) gets them again first."""
    first = bytes(resp.raw.read(size) or b"")
    resp.raw = _Replayed(first, resp.raw)
    return first


class _Replayed:
    """A response body whose first bytes were read already: `read` gives them again
    first, then goes on with the body; everything else is the body's own."""

    def __init__(self, first: bytes, raw: Any) -> None:
        self.first = first
        self.raw = raw

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        if not self.first:
            return bytes(self.raw.read(amt, *args, **kwargs))
        if amt is None:
            rest = bytes(self.raw.read(None, *args, **kwargs))
            data, self.first = self.first + rest, b""
            return data
        data, self.first = self.first[:amt], self.first[amt:]
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


_BODY_ERRORS = (
    requests.RequestException,
    OSError,
    http.client.HTTPException,
    urllib3.exceptions.HTTPError,
)


class Body:
    """A streaming response's body as it is, not decoded (the bytes of the file), read
    into the caller's buffers for `fetch.receive`: no new bytes per chunk, no copy in
    urllib3. Owns the response until it is closed."""

    def __init__(self, resp: requests.Response, size: int = CHUNK) -> None:
        self.url = resp.url
        raw = resp.raw
        self._first = b""
        if isinstance(raw, _Replayed):
            self._first, raw.first, raw = raw.first, b"", raw.raw
        self._raw = raw
        fp = getattr(raw, "_fp", None)
        #: http.client's response under urllib3's: it reads into a buffer (urllib3 copies)
        self._fp = fp if isinstance(fp, http.client.HTTPResponse) else None
        self._size = size
        self._amount = min(size, 64 * 1024)

    def readinto(self, buffer: memoryview) -> int:
        """Fill the start of `buffer` with the next bytes of the body; 0 at its end (a body
        cut short of its Content-Length is a NetworkError). The amount adapts as
        `chunks` does: large on a fast link, small enough on a slow one that the caller
        sees a stop or shows progress several times a second."""
        if self._first:
            n = min(len(buffer), len(self._first))
            buffer[:n] = self._first[:n]
            self._first = self._first[n:]
            return n
        view = buffer[: self._amount]
        began = time.monotonic()
        try:
            if self._fp is not None:
                n = self._fp.readinto(view)
            else:
                data = self._raw.read(len(view))
                n = len(data)
                view[:n] = data
        except _BODY_ERRORS as e:
            raise translate(e, self.url) from e
        if n == 0 and self._fp is not None:
            if self._fp.length:  # http.client leaves this to its callers, as urllib3 did
                raise errors.NetworkError("connection broken mid-transfer")
            if self._fp.isclosed():
                self._raw.release_conn()  # read to its end: it serves the next request
        took = time.monotonic() - began
        if took < 0.05 and self._amount < self._size:
            self._amount = min(self._size, self._amount * 2)
        elif took > 0.25 and self._amount > 16 * 1024:
            self._amount //= 2
        return n

    def left(self) -> int | None:
        """The bytes of the body still to come, when its length is known."""
        fp = self._fp
        if fp is None or fp.chunked or fp.length is None:
            return None
        return len(self._first) + fp.length
