"""The per-host budget (SPEC §5a): a site's limits are the site's, not one worker's.

Everything that talks to one host draws on one `Budget`: every worker and every
downloader of one command (its `context.Context` holds it) and, through a `Shared`
board, every runner of one queue on every host. Per host it keeps

- slots: at most `per_host` downloads at once (a yt-dlp job holds its slot throughout);
- pacing: at least `sleep` seconds between two request starts;
- pauses: a `429`, or a `503` with `Retry-After`, pauses the host for everyone until then
  (capped at `MAX_PAUSE`, never less than `MIN_PAUSE`: `Retry-After: 0` does not spin); a
  `429` without it backs off (1, 2, 4... s, up to `MAX_BACKOFF`);
- AIMD: a refusal halves the host's concurrency and its request rate (measured: what the
  site served in the last second, less a margin); after a quiet spell that doubles with
  every refusal, successes give a slot back and shorten the interval, as TCP and Scrapy's
  AutoThrottle do. One decrease per refusal episode: answers to requests that started
  before the last decrease do not count again.

A host is `hostname[:port]` (the port when the URL names one). Times of pauses are wall
clock (they are shared between processes and hosts); pacing within a process is
monotonic.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from . import errors

log = logging.getLogger("xdl.hosts")

#: The longest pause a Retry-After can ask for (a day); longer values are capped, and said.
MAX_PAUSE = 86400.0
#: The shortest pause after a refusal: `Retry-After: 0` does not make xdl spin.
MIN_PAUSE = 1.0
#: A 429 without Retry-After backs off 1, 2, 4... seconds per host, up to this.
MAX_BACKOFF = 60.0
#: After a refusal the host's rate is the one it served, times this (a margin); steps back
#: up never go past `CEILING` times it (a site's limit is found once, not probed again).
RATE_MARGIN = 0.97
CEILING = 0.99
#: After a refusal, nothing is given back for this long (doubled per refusal, capped).
QUIET = 8.0
MAX_QUIET = 120.0
#: A 403 this soon (seconds) after a host refused requests is a ban: it pauses the host.
BANNED_AFTER = 300.0
#: A ban (a 403 after refusals) pauses its host this long (seconds), at least.
BAN_PAUSE = 600.0
#: What a recovery step gives back: the interval shortened by this factor.
RECOVER = 0.95


def is_refusal(e: errors.XdlError) -> bool:
    """The site said "too many": a 429, or a 503 with Retry-After."""
    if not isinstance(e, errors.HttpError):
        return False
    status = e.details.get("status")
    return status == 429 or (status == 503 and e.retry_after is not None)


def host_of(url: str) -> str:
    """The budget's key for `url`: its host name (lower case, IDNA, no trailing dot;
    an IPv6 address in brackets) and its port when it is not the scheme's own."""
    try:
        parts = urlsplit(url)
        name = (parts.hostname or "").lower().rstrip(".")
        port = parts.port
    except ValueError:
        return ""
    return host_key(name, port, parts.scheme.lower())


def host_key(name: str, port: int | None = None, scheme: str = "") -> str:
    """`name[:port]` as the budget keys a host (a config table's name goes through it too)."""
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and "]" in name:  # "[::1]:8080" as written in a config file
        inner, _, rest = name[1:].partition("]")
        name = inner
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif name.count(":") == 1:
        name, _, given = name.partition(":")
        port = int(given) if given.isascii() and given.isdigit() else port
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    if ":" in name:
        name = f"[{name}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return name
    return f"{name}:{port}"


@dataclass(frozen=True)
class HostRule:
    """What the user set for a host: at most `per_host` downloads at once (None: no cap
    beyond -j), at least `sleep` seconds between two requests."""

    per_host: int | None = None
    sleep: float = 0.0

    def merged(self, other: HostRule) -> HostRule:
        """The stricter of two rules (a task's options and the config's host table)."""
        caps = [c for c in (self.per_host, other.per_host) if c is not None]
        return HostRule(min(caps) if caps else None, max(self.sleep, other.sleep))


def check_rule(per_host: object, sleep: object, where: str) -> HostRule:
    """A rule from a config table or a stored task; BadInput naming the wrong value."""
    if per_host is not None and (
        not isinstance(per_host, int) or isinstance(per_host, bool) or per_host < 1
    ):
        raise errors.BadInput(f"{where}: per-host must be a whole number >= 1, not {per_host!r}")
    if sleep is None:
        sleep = 0.0
    if (
        not isinstance(sleep, int | float)
        or isinstance(sleep, bool)
        or not math.isfinite(sleep)
        or not 0 <= sleep <= MAX_PAUSE
    ):
        raise errors.BadInput(
            f"{where}: sleep must be a number of seconds from 0 to {MAX_PAUSE:.0f}, not {sleep!r}"
        )
    return HostRule(per_host, float(sleep))


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds, or an HTTP date); None when
    absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true, and no int
        return float(int(value[:12]))
    import email.utils  # here: only an HTTP date needs it (11 ms a start)

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Shared(Protocol):
    """What the runners of one queue share (a file beside the JSON queue, or PostgreSQL
    tables): by host, its pause and its request interval after refusals, the next
    request start, and download slots."""

    def look(self, host: str) -> tuple[float, float, float]:
        """`host`'s pause (until when, wall clock; 0: none), its shared interval, and
        when (wall clock) its last refusal episode began (0: none)."""
        ...

    def pause(self, host: str, until: float) -> None:
        """Pause `host` until then; a refusal while it is not paused begins an episode."""
        ...

    def measured(self, host: str, episode: float, served: int, margin: float) -> float:
        """What this runner had served from `host` in the second before the refusal
        `episode` began: the host's interval becomes 1 / (what every runner reported for
        it * margin); each runner reports once an episode, so the total only grows.
        Returns the interval."""
        ...

    def recover(self, host: str, factor: float) -> float:
        """A step back up: the host's interval times `factor` (not below the rate the
        refusals found, times `CEILING`), at most once a second whichever runner asks.
        Returns the interval."""
        ...

    def next_start(self, host: str, interval: float) -> float:
        """Reserve the next request start to `host`, `interval` after the last one
        reserved by anyone: when (wall clock) it may start."""
        ...

    def take_slot(self, host: str, limit: int) -> bool:
        """One of `host`'s `limit` download slots, if one is free (leased: a runner that
        dies frees its slots)."""
        ...

    def give_slot(self, host: str) -> None: ...

    def paused(self) -> dict[str, float]:
        """Every host paused now, and until when (for `queue status`)."""
        ...


@dataclass
class _Host:
    active: int = 0  # downloads holding a slot here (in this process)
    window: float = math.inf  # AIMD concurrency cap
    interval: float = 0.0  # adaptive interval between request starts (0: none)
    next_start: float = 0.0  # monotonic
    paused_until: float = 0.0  # wall clock
    backoff: float = 0.0  # the last backoff without Retry-After
    refusals: int = 0  # refusal episodes so far
    decreased_at: float = -math.inf  # monotonic: the last decrease
    #: (monotonic) the refusal whose rate is still to be measured, once the pause is over
    #: and the requests in flight then have come back.
    pending: float | None = None
    reported: float = 0.0  # the board's refusal episode this runner reported its count for
    floor: float = 0.0  # the shortest interval recovery goes back to (the site's rate)
    quiet_until: float = 0.0  # monotonic: no recovery before
    #: when each served request started (monotonic)
    served: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=512))
    successes: int = 0  # since the last change of budget
    told: float = 0.0  # the pause last said on stderr


#: A pause said on stderr is said again when it is extended by more than this (seconds):
#: the refusals of the requests in flight extend it a little each (14 lines a pause).
SAY_AGAIN = 5.0
#: waiting(host, until_wall_clock): told when a download waits for a paused host.
Waiting = Callable[[str, float], None]


class Budget:
    """One command's budget for every host (thread-safe); `shared`, when given, is the
    queue's board that every runner of the queue draws on too: pauses, the interval
    learnt from refusals, pacing and slots are then the board's."""

    def __init__(
        self,
        rules: Mapping[str, HostRule] | None = None,
        shared: Shared | None = None,
    ) -> None:
        self.rules = dict(rules or {})
        self.shared = shared
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        #: refusals seen per host, for --metrics.
        self.refused_total: collections.Counter[str] = collections.Counter()
        self.on_waiting: Waiting | None = None

    def rule(self, host: str, given: HostRule | None = None) -> HostRule:
        configured = self.rules.get(host)
        if configured is None and ":" in host and not host.endswith("]"):
            configured = self.rules.get(host.rsplit(":", 1)[0])
        rule = given or HostRule()
        return rule.merged(configured) if configured else rule

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host()
        return state

    # -- a download's slot ------------------------------------------------------------

    @contextlib.contextmanager
    def download(
        self, url: str, given: HostRule | None = None, stop: threading.Event | None = None
    ) -> Iterator[None]:
        """Hold one of the host's download slots while the body runs."""
        host = host_of(url)
        rule = self.rule(host, given)
        shared = self.shared if rule.per_host is not None else None
        with self._freed:
            state = self._host(host)
            while True:
                if stop is not None and stop.is_set():
                    raise errors.Interrupted("interrupted while waiting for a slot on " + host)
                cap = rule.per_host or math.inf
                if state.window < cap:  # lowered after refusals
                    cap = max(1, int(state.window))
                if state.active < cap:
                    if shared is None or shared.take_slot(host, int(rule.per_host or 0)):
                        break
                    self._freed.wait(0.2)  # another runner holds the host's slots
                    continue
                self._freed.wait(0.5)
            state.active += 1
        try:
            yield
        finally:
            with self._freed:
                state.active -= 1
                self._freed.notify_all()
            if shared is not None:
                shared.give_slot(host)

    # -- each request -----------------------------------------------------------------

    def before_request(
        self,
        url: str,
        given: HostRule | None = None,
        stop: threading.Event | None = None,
        max_wait: float = math.inf,
    ) -> float:
        """Wait until a request to `url`'s host may start: its pause over, and the
        interval since the last request start passed. Returns when it starts (monotonic:
        hand it to `served`). Interrupted when `stop` is set; RateLimited at once when
        the host is paused for longer than `max_wait` seconds (a queue defers the task)."""
        host = host_of(url)
        rule = self.rule(host, given)
        told = 0.0
        while True:
            # what the other runners said, read before the lock is taken: a file read
            # under it kept every worker waiting on one another's (6 % of a queue run)
            seen = self.shared.look(host) if self.shared is not None else None
            with self._lock:
                state = self._host(host)
                wall = time.time()
                until = state.paused_until
                shared_interval = episode = 0.0
                if seen is not None:
                    shared_until, shared_interval, episode = seen
                    until = state.paused_until = max(until, shared_until)
                if until <= wall:
                    if self.shared is not None and episode > state.reported:
                        shared_interval = self._report(host, state, episode)
                    elif self.shared is None and state.pending is not None:
                        self._measure(host, state)
                    interval = max(rule.sleep, shared_interval if self.shared else state.interval)
                    now = time.monotonic()
                    if interval > 0 and self.shared is not None:
                        start = self.shared.next_start(host, interval) - wall + now
                    else:
                        start = max(now, state.next_start)
                    state.next_start = start + interval
                    break
            if until - wall > max_wait:
                raise paused_error(host, until)
            if until > told:
                told = until
                with self._lock:  # said once per pause, not by every worker waiting,
                    said = state.told  # nor again as each refusal in flight extends it
                    first = until > (said + SAY_AGAIN if said > wall else 0.0)
                    if first:
                        state.told = until
                if first:
                    log.warning("%s refused requests: waiting until %s", host, _clock(until))
                    if self.on_waiting is not None:
                        self.on_waiting(host, until)
            _wait(min(until - wall, 5.0), stop)
        delay = start - time.monotonic()
        if delay > 0:
            _wait(delay, stop)
        return max(start, time.monotonic() - 0.001)

    def refused(self, url: str, status: int, retry_after_header: str | None) -> float:
        """The host refused a request (`429`, or `503` with Retry-After): pause it for
        everyone and lower its budget. Returns until when (wall clock) it is paused."""
        host = host_of(url)
        wall = time.time()
        ra = retry_after(retry_after_header, wall)
        with self._lock:
            state = self._host(host)
            self.refused_total[host] += 1
            now = time.monotonic()
            # One episode: the other answers to requests of that moment are the same
            # refusal (one decrease, one step of backoff).
            episode = state.refusals == 0 or now - state.decreased_at > max(state.interval, 0.5)
            if ra is None:
                if episode:
                    state.backoff = min(MAX_BACKOFF, max(MIN_PAUSE, state.backoff * 2))
                wait = max(MIN_PAUSE, state.backoff)
            else:
                if ra > MAX_PAUSE:
                    log.warning(
                        "%s asked to wait %.0f s (Retry-After); waiting a day at most",
                        host,
                        ra,
                    )
                wait = min(MAX_PAUSE, max(MIN_PAUSE, ra))
            if status == 403:  # banned: the site is left alone for a while, whatever it said
                wait = max(wait, BAN_PAUSE)
            until = max(state.paused_until, wall + wait)
            state.paused_until = until
            if episode:
                state.refusals += 1
                state.decreased_at = state.pending = now
                state.window = max(1.0, (state.active or 1) / 2)
                quiet = min(MAX_QUIET, QUIET * 2 ** (state.refusals - 1))
                state.quiet_until = now + quiet
                state.successes = 0
        if self.shared is not None:
            self.shared.pause(host, until)
        return until

    def _measure(self, host: str, state: _Host) -> None:
        """After a refusal's pause: the site's rate is what it served in the second
        before it refused; from now on ask for that, less a margin. (Lock held.)"""
        at, state.pending = state.pending or 0.0, None
        served = sum(1 for t in state.served if at - 1.0 <= t <= at)
        state.interval = 1.0 / (max(1, served) * RATE_MARGIN)
        state.floor = 1.0 / (max(1, served) * CEILING)
        self._said(host, state, served)

    def _report(self, host: str, state: _Host, episode: float) -> float:
        """After a refusal episode on the board (ours or another runner's): what we had
        served in the second before it began; the board adds every runner's. (Lock held.)"""
        assert self.shared is not None
        state.reported, state.pending = episode, None
        at = episode - time.time() + time.monotonic()
        served = sum(1 for t in state.served if at - 1.0 <= t <= at)
        state.interval = self.shared.measured(host, episode, served, RATE_MARGIN)
        if state.refusals == 0:  # another runner's refusal: we wait and recover as it does
            state.refusals = 1
            state.quiet_until = time.monotonic() + QUIET
        self._said(host, state, served)
        return state.interval

    def _said(self, host: str, state: _Host, served: int) -> None:
        log.debug(
            "%s: budget down to %.1f at once, a request every %.3f s (%d served here in the"
            " second before the refusal)",
            host,
            state.window,
            state.interval,
            served,
        )

    def served(self, url: str, started: float | None = None) -> None:
        """A request to `url`'s host, started at `started` (monotonic; from
        `before_request`), was served: count it; after a quiet spell give back."""
        host = host_of(url)
        with self._lock:
            state = self._host(host)
            now = time.monotonic()
            state.served.append(now if started is None else started)
            state.backoff = 0.0
            if state.refusals == 0 or state.pending is not None:
                return
            state.successes += 1
            if state.window < 64 and state.successes >= state.window:  # AIMD: +1 a window
                state.window += 1
                state.successes = 0
                self._freed.notify_all()
            if now < state.quiet_until or state.interval <= 0:
                return
            state.quiet_until = now + 1.0  # then a step a second
            if self.shared is None:
                state.interval = max(state.floor, state.interval * RECOVER)
                if state.interval < 0.005:
                    state.interval = 0.0
                return
        state.interval = self.shared.recover(host, RECOVER)

    def refuses(self, url: str, e: errors.XdlError) -> bool:
        """`e` is the site saying "too many": a 429, a 503 with Retry-After, or a 403 from a
        host that refused requests in the last `BANNED_AFTER` seconds (a ban, as sites
        answer a client that went on: never a reason to try another downloader)."""
        if is_refusal(e):
            return True
        if not isinstance(e, errors.HttpError) or e.details.get("status") != 403:
            return False
        host = host_of(url)
        with self._lock:
            state = self._hosts.get(host)
            recent = state is not None and time.monotonic() - state.decreased_at < BANNED_AFTER
        if not recent and self.shared is not None:
            recent = time.time() - self.shared.look(host)[2] < BANNED_AFTER
        return recent

    def paused(self) -> dict[str, float]:
        """Hosts paused now, and until when (wall clock)."""
        wall = time.time()
        with self._lock:
            found = {h: s.paused_until for h, s in self._hosts.items() if s.paused_until > wall}
        if self.shared is not None:
            for host, until in self.shared.paused().items():
                found[host] = max(until, found.get(host, 0.0))
        return found


def _wait(seconds: float, stop: threading.Event | None) -> None:
    if seconds <= 0:
        return
    if stop is None:
        time.sleep(seconds)
    elif stop.wait(seconds):
        raise errors.Interrupted("interrupted while waiting for the site")


def paused_error(host: str, until: float, why: str = "") -> errors.RateLimited:
    """The line of an input that does not wait for its host's pause (`until`, wall)."""
    return errors.RateLimited(
        f"{host} refused requests{f' ({why})' if why else ''}; paused until "
        + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(until)),
        host=host,
        until=round(until, 3),
    )


def _clock(wall: float) -> str:
    """A moment for people: the time of day, with the date when it is not within a day."""
    if abs(wall - time.time()) < 43200:
        return time.strftime("%H:%M:%S", time.localtime(wall))
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall))
