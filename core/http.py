"""Direct HTTP: the one module that owns the `requests.Session` (one a process, its
keep-alive pools shared by the downloads).

Requests' exceptions are caught here and re-raised as xdl's own errors.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import requests
import requests.adapters
import requests.cookies
import urllib3.exceptions
import urllib3.util.url

from . import __version__, errors, headers, stopping
from .inputs import quote, refused
from .names import filename_from_content_disposition
from .network import NetworkOptions

if TYPE_CHECKING:
    from .context import Context

CHUNK = 1 << 20
#: A body's reads (`chunks`): the smallest asked for, and how long one takes when the
#: link is fast (ask for more) or slow (ask for less).
FAST_PIECE = 64 * 1024
FAST_READ = 0.05
SLOW_READ = 0.25
DEFAULT_TIMEOUT = 30.0
USER_AGENT = f"Mozilla/5.0 (compatible; xdl/{__version__})"


class _AsGiven:
    """urllib3's pattern for percent-escapes, but the URL's own are kept as given
    (`%2f` is not made `%2F`): a signed URL's signature covers its exact text. The one
    yt-dlp puts in place when imported; here for the downloads that do not import it."""

    def __init__(self, pattern: Any) -> None:
        self._pattern = pattern

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pattern, name)

    def subn(self, repl: Any, string: str, *args: Any, **kwargs: Any) -> tuple[str, int]:
        return string, self._pattern.subn(repl, string, *args, **kwargs)[1]


stopping.install()  # a download's stop ends the wait for any answer (core/stopping.py)
headers.install()  # an answer's usual headers read without the email parser (core/headers.py)

if hasattr(urllib3.util.url, "_PERCENT_RE"):
    urllib3.util.url._PERCENT_RE = _AsGiven(urllib3.util.url._PERCENT_RE)  # type: ignore[assignment]


class _Session(requests.Session):
    """requests' Session, with one way to GET (`get_streaming`) that takes from the
    environment (proxies, a CA bundle, a netrc login) once per scheme and host, not per
    request: requests scans all of os.environ twice a request (a third of a small
    file's CPU) and looks for ~/.netrc and ~/_netrc each time."""

    def get_streaming(
        self, url: str, headers: Mapping[str, str], timeout: Any, proxies: Any = None,
        cookies: Any = None, ctx: Context | None = None,
    ) -> requests.Response:  # fmt: skip
        """`get(url, stream=True)`, redirects followed, prepared without requests' merge
        of session and request settings: this session has none to merge but its headers,
        and that merge checks each value against typing protocols (a fifth of a small
        file's request). The netrc login is the command's (`_netrc_auth`)."""
        merged = requests.structures.CaseInsensitiveDict(self.headers)
        merged.update(headers)
        jar = requests.cookies.RequestsCookieJar()  # the request's own copy, as requests
        if cookies is not None:
            jar.update(cookies)
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method="GET",
            url=url,
            headers={k: v for k, v in merged.items() if v is not None},
            cookies=jar,
            auth=_netrc_auth(_origin(url), ctx),
            hooks=requests.hooks.default_hooks(),
        )
        found = {k: v for k, v in (proxies or {}).items() if v is not None}
        for key, value in _environ_proxies(
            _origin(str(prepared.url)), found.get("no_proxy")
        ).items():
            found.setdefault(key, value)
        _socks_ready(found.values())
        verify = _environ_ca_bundle() or True
        return self.send(prepared, allow_redirects=True, timeout=timeout, stream=True,
                         proxies=found, verify=verify, cert=None)  # fmt: skip


def _socks_ready(proxies: Iterable[Any]) -> None:
    """SOCKS proxies go through yt-dlp's SOCKS support, which it installs into requests
    when its networking is imported (requests alone needs PySocks): imported then."""
    if any(isinstance(p, str) and p.lower().startswith("socks") for p in proxies):
        import yt_dlp.networking._requests  # noqa: F401


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].split('#', 1)[0]}"


@functools.lru_cache(maxsize=256)
def _environ_proxies(origin: str, no_proxy: str | None) -> dict[str, str]:
    """requests' proxies for `origin`, but `no_proxy` entries with a port hold for an IP
    address too (`127.0.0.1:8080`), as urllib and yt-dlp read them."""
    found = dict(requests.utils.get_environ_proxies(origin, no_proxy=no_proxy))
    if found.get("no"):
        hostport = origin.partition("://")[2].rpartition("@")[2]
        bypass: Any = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009
        if bypass(hostport, {"no": found["no"]}):
            return {}
    return found


#: A command's netrc logins are read again after this long (seconds): a `queue run
#: --watch` sees a login changed or removed.
NETRC_FRESH = 60.0


def _netrc_auth(origin: str, ctx: Context | None) -> tuple[str, str] | None:
    """requests' netrc login for `origin` (`$NETRC`, else in `$HOME`), as requests looks
    it up, but once a command and a minute (curl reads it once), not twice a request;
    without a command's context, every time."""
    env = os.environ
    if ctx is None:
        return _read_netrc(origin)
    key = (origin, env.get("NETRC"), env.get("HOME"))
    known: dict[Any, tuple[float, tuple[str, str] | None]] = ctx.once("netrc", dict)
    now = time.monotonic()
    seen = known.get(key)
    if seen is None or now - seen[0] > NETRC_FRESH:
        seen = known[key] = (now, _read_netrc(origin))
    return seen[1]


def _read_netrc(origin: str) -> tuple[str, str] | None:
    found = requests.utils.get_netrc_auth(origin)
    return (str(found[0]), str(found[1])) if found else None


@functools.lru_cache(maxsize=1)
def _environ_ca_bundle() -> str | None:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


def _session() -> _Session:
    """The process's session: one keep-alive pool per host, shared by every download
    (a host sees as many connections as it has requests in flight, which `--per-host`
    caps, not one a worker thread). Requests' adapter pools are thread-safe; the
    session's own jar keeps no cookie (`_KeepNone`: the command's jar does)."""
    global _shared
    with _sharing:
        if _shared is None:
            s = _Session()
            s.headers["User-Agent"] = USER_AGENT
            s.headers["Accept-Encoding"] = "identity"  # counts and ranges are of the file
            s.cookies.set_policy(_KeepNone())
            adapter = requests.adapters.HTTPAdapter(pool_connections=32, pool_maxsize=64)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            _shared = s
        return _shared


_shared: _Session | None = None
_sharing = threading.Lock()


def _cookies(path: str | None, ctx: Context | None) -> Any:
    """The command's cookie jar (one per context, which the answers' Set-Cookie update
    for its later requests, whatever thread makes them): the `--cookies` file's, or an
    empty one. Without a context, the file's read afresh, or none."""
    if ctx is not None:
        empty = requests.cookies.RequestsCookieJar
        return ctx.once(("cookies", path), lambda: _read_cookies(path) if path else empty())
    return _read_cookies(path) if path else None


class _KeepNone(DefaultCookiePolicy):
    """The policy of the session's own jar: it keeps no cookie (the command's jar does:
    a cookie is never carried from one command to another in the same process)."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False


def _read_cookies(path: str) -> Any:
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
    return jar


def request_kwargs(
    net: NetworkOptions, extra: Mapping[str, str] | None = None, ctx: Context | None = None
) -> dict[str, Any]:
    headers = dict(net.headers)
    if net.user_agent:
        headers["User-Agent"] = net.user_agent
    headers.update(extra or {})
    timeout = net.timeout or DEFAULT_TIMEOUT
    kwargs: dict[str, Any] = {"headers": headers, "timeout": (min(timeout, 15.0), timeout)}
    if net.proxy:
        kwargs["proxies"] = {"http": net.proxy, "https": net.proxy}
        _socks_ready([net.proxy])
    jar = _cookies(net.cookies, ctx)
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


def status_error(
    status: int, reason: str, url: str, headers: Mapping[str, str] | None = None
) -> errors.XdlError:
    """An HTTP error status as ours; a refusal's `Retry-After` kept on it (not in its line)."""
    text = f"HTTP {status} {reason}".strip()
    if status in (404, 410):
        return errors.NotFound(text, status=status)
    error = errors.HttpError(text, status=status)
    error.retry_after = (headers or {}).get("Retry-After")
    return error


def translate(exc: BaseException, url: str) -> errors.XdlError:
    """A requests/urllib3 exception as one of ours."""
    if isinstance(exc, errors.XdlError):
        return exc
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
        return errors.Timeout(f"timed out: {_short(exc)}")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return errors.BadInput(f"not a usable URL: {quote(url)}")
    if isinstance(exc, urllib3.exceptions.LocationValueError):  # a redirect's: unwrapped
        return errors.BadInput(f"led to a URL that is not usable: {_short(exc)}")
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


def probe(
    url: str,
    net: NetworkOptions,
    headers: Mapping[str, str] | None = None,
    ctx: Context | None = None,
    stop: threading.Event | None = None,
) -> tuple[Head, requests.Response]:
    """Start a streaming GET of `url` and report what is there from its headers.

    The open response is returned too: a plain file's download goes on reading it (one
    request, not a HEAD and then a GET); the caller closes it when it is not wanted.
    `headers` (a feed's If-None-Match) may make it a 304, status 304 in the `Head`.
    """
    resp = get(url, net, headers, ctx, stop)
    if resp.status_code >= 400:
        resp.close()
        raise status_error(resp.status_code, resp.reason or "", url, resp.headers)
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
    url: str,
    net: NetworkOptions,
    headers: Mapping[str, str] | None = None,
    ctx: Context | None = None,
    stop: threading.Event | None = None,
) -> requests.Response:
    """A streaming GET; HTTP errors (>= 400) raised as ours, the response closed.
    `stop` set while the server has not answered ends the wait (`Interrupted`)."""
    kwargs = request_kwargs(net, headers, ctx)
    try:
        with stopping.during(stop):
            resp = _session().get_streaming(url, **kwargs, ctx=ctx)
    except (requests.RequestException, urllib3.exceptions.LocationValueError) as e:
        if stop is not None and stop.is_set():
            raise errors.Interrupted("interrupted while waiting for the server") from None
        raise translate(e, url) from e
    jar = kwargs.get("cookies")
    keep: Any = requests.cookies.extract_cookies_to_jar  # untyped
    for answer in (*resp.history, resp) if jar is not None else ():
        if "Set-Cookie" in answer.raw.headers or "Set-Cookie2" in answer.raw.headers:
            keep(jar, answer.request, answer.raw)
    if any(_cut_short(answer) for answer in (*resp.history, resp)):
        # http.client takes headers cut by a closed connection as whole (headers.py);
        # a redirect's too, its Location cut in the middle and followed
        resp.close()
        raise errors.NetworkError(
            f"the connection closed in the middle of the answer's headers: {quote(url)}"
        )
    if resp.status_code >= 400 and resp.status_code != 416:
        resp.close()
        raise status_error(resp.status_code, resp.reason or "", url, resp.headers)
    return resp


def _cut_short(resp: requests.Response) -> bool:
    original = getattr(resp.raw, "_original_response", None)
    return getattr(getattr(original, "msg", None), "cut_short", False) is True


def _socket_of(resp: requests.Response) -> socket.socket | None:
    """The socket a response's body comes from: its connection's, or (a body that ends
    when the server closes: the connection let it go) the one its file reads."""
    sock = getattr(getattr(resp.raw, "connection", None), "sock", None)
    if sock is None:  # urllib3 -> http.client's response -> its buffered SocketIO
        reader = getattr(getattr(getattr(resp.raw, "_fp", None), "fp", None), "raw", None)
        sock = getattr(reader, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def watch(resp: requests.Response, stop: threading.Event | None) -> int | None:
    """`stop` set shuts `resp`'s connection until `stopping.done(key)`."""
    return stopping.watch(stop, _socket_of(resp))


@contextlib.contextmanager
def watched(resp: requests.Response, stop: threading.Event | None) -> Iterator[None]:
    """While the block reads `resp`'s body, `stop` set shuts its connection."""
    key = watch(resp, stop)
    try:
        yield
    finally:
        stopping.done(key)


def chunks(
    resp: requests.Response,
    size: int = CHUNK,
    wanted: Callable[[], int] | None = None,
    stop: threading.Event | None = None,
) -> Iterator[bytes]:
    """The body in pieces of up to `size` bytes; a broken transfer raised as ours.
    `stop` set ends the reading (`Interrupted`) even while the connection sends nothing:
    the connection is shut, and the end that makes is never taken for the body's.

    A read does not wait long for its piece, so a slow transfer yields, and notices a
    stop, as its bytes come (a read of 64 KiB at 2 KiB/s held a Ctrl-C for 30 s). On a
    slow link a read takes what the connection has (urllib3's read1: one receive); while
    reads come back fast they ask for more, doubling up to `size` (big pieces: little
    work per byte), and halve when they turn slow, down to read1 again. `wanted()`,
    when given, says how many more bytes the reader takes: a read never asks for more,
    and the body ends when it says 0 (a range that another connection took over).
    """
    raw = resp.raw
    read_some = getattr(raw, "read1", None)  # urllib3 < 2 has none: reads of a FAST_PIECE
    amount = 0 if read_some else min(size, FAST_PIECE)  # 0: what comes (read1)
    got = 0
    watching = watch(resp, stop)
    try:
        while True:
            room = wanted() if wanted is not None else size
            if room <= 0:
                return
            began = time.monotonic()
            if amount >= FAST_PIECE:  # to a multiple of it: the writes stay page-aligned
                data = raw.read(min(amount - got % FAST_PIECE, room))
            elif amount:  # `size` below FAST_PIECE (a --limit-rate's pieces)
                data = raw.read(min(amount, room))
            else:
                data = read_some(min(FAST_PIECE, size, room))  # type: ignore[misc]
            if not data:
                if stop is not None and stop.is_set():
                    raise errors.Interrupted("interrupted")
                return
            got += len(data)
            took = time.monotonic() - began
            # One quick receive of 4 KiB says the link is fast (bytes were waiting): more
            # read1 calls on a fast link doubled the kernel's time for the whole body
            # (1 GiB from loopback: 2.4-5.2 s of system CPU, not 0.9-1.1; alternating runs).
            if took < FAST_READ and (amount or len(data) >= FAST_PIECE // 16):
                amount = min(size, max(FAST_PIECE, 2 * amount))
            elif took > SLOW_READ and amount:
                amount = amount // 2 if amount > FAST_PIECE else (0 if read_some else amount)
            yield data
    except (requests.RequestException, OSError, urllib3.exceptions.HTTPError) as e:
        if stop is not None and stop.is_set():
            raise errors.Interrupted("interrupted") from None
        raise translate(e, resp.url) from e
    finally:
        stopping.done(watching)
