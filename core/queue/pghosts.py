"""The PostgreSQL queue's host board: what every runner on every host shares about a site
(SPEC §5a), in two tables beside the tasks (`xdl_hosts`, `xdl_host_slots`).

Times are the database's clock (`clock_timestamp()`): a pause set by one host means the
same moment on every other, whatever their clocks say; what a runner is told is an
offset from now, laid on its own clock. Download slots are leased (the runner's --lease,
renewed while held): a runner killed with its slots frees them when the lease runs out.
A host's pause and interval are read at most every `LOOK_EVERY` seconds per runner.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from ..hosts import CEILING

#: run(work, atomic=...): work(cursor) in one transaction of the queue's database.
Transaction = Callable[..., Any]

LOOK_EVERY = 0.2
NOW = "extract(epoch from clock_timestamp())"

TABLES = """
CREATE TABLE xdl_hosts (
    host text PRIMARY KEY,
    paused_until double precision NOT NULL DEFAULT 0,
    interval double precision NOT NULL DEFAULT 0,
    next_at double precision NOT NULL DEFAULT 0,
    served json NOT NULL DEFAULT '{}',
    recovered_at double precision NOT NULL DEFAULT 0,
    episode double precision NOT NULL DEFAULT 0,
    floor double precision NOT NULL DEFAULT 0
);
CREATE TABLE xdl_host_slots (
    host text NOT NULL,
    slot text NOT NULL,
    lease_until double precision NOT NULL,
    PRIMARY KEY (host, slot)
);
"""

_ENSURE = "INSERT INTO xdl_hosts (host) VALUES (%(host)s) ON CONFLICT (host) DO NOTHING"


class PgBoard:
    """`hosts.Shared` in the queue's database."""

    def __init__(self, run: Transaction, lease: float = 30.0) -> None:
        #: the store's way to run `work(cursor)` in a transaction (`atomic=False`: one
        #: statement), a lost connection made again: `PostgresStore._do`
        self.run = run
        self.lease = lease
        self.runner = secrets.token_hex(6)
        self._mutex = threading.Lock()
        #: host -> (when looked, until, interval, episode)
        self._looked: dict[str, tuple[float, float, float, float]] = {}
        self._held: dict[str, list[str]] = {}
        self._count = 0
        self._renewer: threading.Thread | None = None

    def _one(self, statement: str, values: dict[str, Any]) -> Any:
        def work(cur: Any) -> Any:
            cur.execute(statement, values)
            return cur.fetchone()

        return self.run(work, atomic=False)

    def look(self, host: str) -> tuple[float, float, float]:
        now = time.monotonic()
        with self._mutex:
            seen = self._looked.get(host)
        if seen is not None and now - seen[0] < LOOK_EVERY:
            return seen[1], seen[2], seen[3]
        row = self._one(
            f"SELECT paused_until - {NOW} AS remaining, interval, episode - {NOW} AS began "
            "FROM xdl_hosts WHERE host = %(host)s",
            {"host": host},
        )
        wall = time.time()
        until = wall + row["remaining"] if row and row["remaining"] > 0 else 0.0
        interval = float(row["interval"]) if row else 0.0
        # the episode as an id: the database's time, laid on ours (rounded: it is a key)
        episode = round(wall + row["began"], 3) if row and row["began"] > -1e9 else 0.0
        with self._mutex:
            self._looked[host] = (now, until, interval, episode)
        return until, interval, episode

    def pause(self, host: str, until: float) -> None:
        wait = max(0.0, until - time.time())
        self._one(
            f"INSERT INTO xdl_hosts AS h (host, paused_until, episode) VALUES (%(host)s, {NOW} "
            f"+ %(w)s, {NOW}) ON CONFLICT (host) DO UPDATE SET "
            f"episode = CASE WHEN h.paused_until <= {NOW} THEN {NOW} ELSE h.episode END, "
            f"served = CASE WHEN h.paused_until <= {NOW} THEN '{{}}'::json ELSE h.served END, "
            f"paused_until = greatest(h.paused_until, {NOW} + %(w)s) RETURNING host",
            {"host": host, "w": wait},
        )
        with self._mutex:
            self._looked.pop(host, None)

    def measured(self, host: str, episode: float, served: int, margin: float) -> float:
        def work(cur: Any) -> float:
            cur.execute(_ENSURE, {"host": host})
            cur.execute(
                "SELECT served FROM xdl_hosts WHERE host = %(host)s FOR UPDATE", {"host": host}
            )
            counts = dict(cur.fetchone()["served"] or {})
            counts[self.runner] = served
            total = max(1, sum(int(v) for v in counts.values()))
            interval = 1.0 / (total * margin)
            cur.execute(
                "UPDATE xdl_hosts SET served = %(served)s, interval = %(iv)s, floor = %(fl)s "
                "WHERE host = %(host)s",
                {
                    "host": host,
                    "served": _json(counts),
                    "iv": interval,
                    "fl": 1 / (total * CEILING),
                },
            )
            return interval

        interval = float(self.run(work))
        with self._mutex:
            self._looked.pop(host, None)
        return interval

    def recover(self, host: str, factor: float) -> float:
        row = self._one(
            "UPDATE xdl_hosts SET interval = CASE WHEN greatest(floor, interval * %(f)s) < 0.005 "
            f"THEN 0 ELSE greatest(floor, interval * %(f)s) END, recovered_at = {NOW} "
            f"WHERE host = %(host)s AND recovered_at <= {NOW} - 1 RETURNING interval",
            {"host": host, "f": factor},
        )
        with self._mutex:
            self._looked.pop(host, None)
        if row is not None:
            return float(row["interval"])
        return self.look(host)[1]

    def next_start(self, host: str, interval: float) -> float:
        row = self._one(
            f"INSERT INTO xdl_hosts AS h (host, next_at) VALUES (%(host)s, {NOW} + %(iv)s) "
            f"ON CONFLICT (host) DO UPDATE SET next_at = greatest(h.next_at, {NOW}) + %(iv)s "
            f"RETURNING h.next_at - %(iv)s - {NOW} AS delay",
            {"host": host, "iv": interval},
        )
        return time.time() + max(0.0, float(row["delay"]))

    def take_slot(self, host: str, limit: int) -> bool:
        with self._mutex:
            self._count += 1
            slot = f"{self.runner}-{self._count}"

        def work(cur: Any) -> bool:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%(host)s))", {"host": host})
            cur.execute(
                f"DELETE FROM xdl_host_slots WHERE host = %(host)s AND lease_until < {NOW}",
                {"host": host},
            )
            cur.execute(
                "SELECT count(*) AS n FROM xdl_host_slots WHERE host = %(host)s", {"host": host}
            )
            if cur.fetchone()["n"] >= limit:
                return False
            cur.execute(
                "INSERT INTO xdl_host_slots (host, slot, lease_until) "
                f"VALUES (%(host)s, %(slot)s, {NOW} + %(lease)s)",
                {"host": host, "slot": slot, "lease": self.lease},
            )
            return True

        if not self.run(work):
            return False
        with self._mutex:
            self._held.setdefault(host, []).append(slot)
            start = self._renewer is None
            if start:
                self._renewer = threading.Thread(target=self._renew, name="xdl-hosts", daemon=True)
        if start and self._renewer is not None:
            self._renewer.start()
        return True

    def give_slot(self, host: str) -> None:
        with self._mutex:
            mine = self._held.get(host) or []
            slot = mine.pop() if mine else None
        if slot is not None:
            self._one(
                "DELETE FROM xdl_host_slots WHERE host = %(host)s AND slot = %(slot)s "
                "RETURNING slot",
                {"host": host, "slot": slot},
            )

    def paused(self) -> dict[str, float]:
        def work(cur: Any) -> list[Any]:
            cur.execute(
                f"SELECT host, paused_until - {NOW} AS remaining FROM xdl_hosts "
                f"WHERE paused_until > {NOW}"
            )
            return list(cur.fetchall())

        now = time.time()
        return {row["host"]: now + row["remaining"] for row in self.run(work, atomic=False)}

    def _renew(self) -> None:
        while True:
            time.sleep(self.lease / 3)
            with self._mutex:
                slots = [s for held in self._held.values() for s in held]
            if not slots:
                continue
            try:
                self._one(
                    f"UPDATE xdl_host_slots SET lease_until = {NOW} + %(lease)s "
                    "WHERE slot = ANY(%(slots)s) RETURNING slot",
                    {"lease": self.lease, "slots": slots},
                )
            except Exception:  # the next renewal tries again; the lease is 30 s
                continue


def _json(value: Any) -> Any:
    from psycopg.types.json import Json

    return Json(value)
