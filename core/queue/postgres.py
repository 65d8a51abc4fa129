"""The PostgreSQL store: one queue shared by many hosts (SPEC §7). The only module that
imports psycopg (3), so `xdl --help` and the JSON store never load it.

Invariants:
- Durable: every change is one transaction, committed with `synchronous_commit = on`
  (set for the session whatever the server's default) in logged tables; an `add` that
  said `added: true` survives a crash of the server.
- A claim is one statement (`UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)`), so two
  runners never take the same task and never wait for each other. It does what
  `rules.claimed` does, and gives the task a new fencing `token` from a sequence.
- The runner's hot path is one round trip per task: `finish` records the outcome of the
  task held, looks for dead runners' tasks and claims the next one in one statement
  (`FINISH`); only when a dead runner's task is there does a second transaction take it
  back (`rules.recovered`) before claiming. `renew` extends every lease of the process in
  one statement.
- Each thread works on a connection of its own (a small pool: a connection is taken for
  one transaction and given back), so 8 workers' commits overlap instead of queueing
  behind one connection.
- Fencing: a runner renews, completes, fails or releases a task only where its row still
  carries the token of that runner's claim; after a task was taken back (lease expired,
  cancelled, claimed by another host) the old runner's late writes change nothing.
- Time is the database's clock (one clock for every host): leases, backoff, timestamps.
- Every other change reads the rows `FOR UPDATE`, applies the function of `rules` that
  both stores use, and writes the new record back. Settling or releasing a task we hold
  needs no read: the record we claimed is the row as long as its token is ours, so the
  rule is applied to it at `now = 0` and only the columns it changed are written, the
  times it set as offsets from the database's clock.
- Adds are serialized by an advisory lock, so dedupe (by URL, as in the JSON store) holds
  across hosts while `--force` may still add a URL twice.
- The schema is created on first use and versioned in `xdl_queue_schema`; a newer version
  than this xdl knows is `QueueCorrupt` (exit 3).
- A connection lost after it worked (a server restart) is retried for up to `timeout`
  seconds; a server that cannot be reached at all is `QueueUnavailable` (exit 3) at once,
  in one line naming the server without its password (`location.redact`, `scrub`); a URL
  libpq could not decode is refused before libpq sees it (`location.check_url`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ..errors import NotSupported, QueueCorrupt, QueueUnavailable
from . import rules
from .location import check_url, redact, scrub
from .model import (
    STATUSES,
    Added,
    Backup,
    Changed,
    Finished,
    Health,
    NewTask,
    Outcome,
    Record,
    Restored,
    Summary,
    Task,
    Worker,
    domain,
)
from .pghosts import TABLES, PgBoard
from .store import TaskChanges

SCHEMA_VERSION = 2
#: pg_advisory_xact_lock keys: schema migrations, and adds (dedupe across hosts).
MIGRATE_LOCK = 0x78646C_01
ADD_LOCK = 0x78646C_02
HINT = (
    "check that the server is up, the database exists and the credentials "
    "(the URL, PG* variables, ~/.pgpass)"
)

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE xdl_queue_schema (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE xdl_queue_meta (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    paused boolean NOT NULL DEFAULT false
);
INSERT INTO xdl_queue_meta DEFAULT VALUES;
CREATE SEQUENCE xdl_queue_token;
CREATE TABLE xdl_tasks (
    id bigserial PRIMARY KEY,
    url text NOT NULL,
    domain text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    priority integer NOT NULL DEFAULT 0,
    options json NOT NULL DEFAULT '{}',
    attempts integer NOT NULL DEFAULT 0,
    lost integer NOT NULL DEFAULT 0,
    error json,
    result json,
    title text,
    added_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision,
    next_attempt_at double precision,
    worker json,
    lease_until double precision,
    token bigint
);
CREATE INDEX xdl_tasks_claim ON xdl_tasks (priority DESC, id) WHERE status = 'queued';
CREATE INDEX xdl_tasks_backoff ON xdl_tasks (next_attempt_at) WHERE status = 'queued';
CREATE INDEX xdl_tasks_running ON xdl_tasks (lease_until) WHERE status = 'running';
CREATE INDEX xdl_tasks_url ON xdl_tasks (url);
CREATE INDEX xdl_tasks_status ON xdl_tasks (status);
""",
    2: TABLES,  # the host board (core/queue/pghosts.py)
}

#: The columns a record is written back to (id, url, domain and added_at never change).
WRITTEN = (
    "status",
    "priority",
    "options",
    "attempts",
    "lost",
    "error",
    "result",
    "title",
    "updated_at",
    "started_at",
    "finished_at",
    "next_attempt_at",
    "worker",
    "lease_until",
)
JSON = frozenset({"options", "error", "result", "worker"})
FIELDS = "id, url, status, priority, options, attempts, lost, error, result, title, " + (
    "added_at, updated_at, started_at, finished_at, next_attempt_at, worker, lease_until, token"
)
#: The claims (`CLAIM` after taking back dead runners' tasks, else `CLAIMED` in `FINISH`)
#: take `{limit}` tasks, written into the text: as a parameter, PostgreSQL's generic plan
#: (used after five runs of a prepared statement) guesses a tenth of the table and turns
#: the claim into a hash join over every row (measured: claims 28 % slower at 5,000).
CLAIM = f"""
UPDATE xdl_tasks t SET
    status = 'running', attempts = t.attempts + 1, worker = %(worker)s,
    lease_until = %(now)s + %(lease)s, started_at = %(now)s, updated_at = %(now)s,
    next_attempt_at = NULL, token = nextval('xdl_queue_token')
FROM (
    SELECT id FROM xdl_tasks
    WHERE status = 'queued' AND coalesce(next_attempt_at, 0) <= %(now)s
        AND id <> ALL(%(skip)s::bigint[])
    ORDER BY priority DESC, id LIMIT {{limit}}
    FOR UPDATE SKIP LOCKED
) c
WHERE t.id = c.id
RETURNING {", ".join("t." + f.strip() for f in FIELDS.split(","))}
"""

#: Adds of this many new tasks or more may refresh the table's statistics (`_analyze`).
ANALYZE_AFTER = 1000
#: The columns that hold times (epoch seconds on the database's clock).
TIMES = frozenset({"updated_at", "started_at", "finished_at", "next_attempt_at", "lease_until"})
#: The database's clock and the pause flag, read once by a statement (`FINISH`).
CLOCK = (
    "clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now, paused "
    "FROM xdl_queue_meta)"
)
NOW = "(SELECT now FROM clock)"
#: `rules.pid_is_ours` in SQL: the worker's host, boot and PID namespace are all ours
#: (the values from `_ours()`; a NULL one matches nothing, as a missing field).
OURS = " AND ".join(f"worker->>'{key}' = %(ours_{key})s" for key in rules.HERE)
#: Running tasks that may belong to dead runners: lease expired, or with a pid of ours
#: (`OURS`) not known to be alive. While there are any, `FINISH` claims nothing and the
#: store takes them back first (`_recover`, with the pid check that SQL cannot do).
SUSPECTS = f"""suspects AS (
    SELECT id FROM xdl_tasks
    WHERE status = 'running' AND (lease_until < {NOW} OR ({OURS}
        AND NOT coalesce(worker->>'pid' = ANY(%(alive)s::text[]), true)))
)"""
CLAIMED = f"""claimed AS (
    UPDATE xdl_tasks t SET
        status = 'running', attempts = t.attempts + 1, worker = %(worker)s,
        lease_until = {NOW} + %(lease)s, started_at = {NOW}, updated_at = {NOW},
        next_attempt_at = NULL, token = nextval('xdl_queue_token')
    FROM (
        SELECT id FROM xdl_tasks
        WHERE status = 'queued' AND coalesce(next_attempt_at, 0) <= {NOW}
            AND id <> ALL(%(skip)s::bigint[]) AND NOT (SELECT paused FROM clock)
            AND NOT EXISTS (SELECT 1 FROM suspects)
        ORDER BY priority DESC, id LIMIT {{limit}}
        FOR UPDATE SKIP LOCKED
    ) c
    WHERE t.id = c.id
    RETURNING {", ".join("t." + f.strip() for f in FIELDS.split(","))}
)"""

T = TypeVar("T")


class PostgresStore(TaskChanges):
    """The queue in a PostgreSQL database; a connection per thread at work (a small pool)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        check_url(url)  # before libpq, whose message would quote the password
        self.url = url
        self._name = redact(url)
        self.timeout = timeout
        self._mutex = threading.Lock()  # guards the pool and the records held
        self._idle: list[Any] = []  # connections not in use now
        self._open: set[Any] = set()  # every connection made (closed by close())
        self._connected_once = False
        self._migrated = False
        #: task id -> (the fencing token of our claim, the record as we claimed it)
        self._held: dict[int, tuple[int, Record]] = {}
        #: pids of ours (`rules.pid_is_ours`), other than this process's, seen holding
        #: tasks while alive: their tasks are not suspects while they live (`SUSPECTS`).
        self._alive: set[int] = set()
        self._board: PgBoard | None = None
        #: In `bulk`: the tasks inserted so far, their statistics gathered at its end.
        self._bulk_inserted: int | None = None
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise QueueUnavailable(
                f"the queue {self._name} is a PostgreSQL database, and the driver is not "
                "installed: pip install 'xdl[postgres]'"
            ) from None

    @property
    def name(self) -> str:
        return self._name

    def host_board(self, lease: float = 30.0) -> PgBoard:
        """What every runner of this queue shares about sites (pauses, slots, pacing);
        a slot not renewed for `lease` seconds is free again (its runner died)."""
        if self._board is None:
            self._board = PgBoard(self._do, lease)
        return self._board

    def close(self) -> None:
        with self._mutex:
            conns, self._open, self._idle = self._open, set(), []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()

    # -- connecting --

    def _connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(2, min(30, int(self.timeout) or 2)),
            application_name="xdl",
        )
        conn.execute("SET synchronous_commit TO on")
        if not self._migrated:
            self._migrate(conn)
            self._migrated = True
        return conn

    def _checkout(self) -> Any:
        """A connection for this thread's transaction: an idle one, else a new one."""
        with self._mutex:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
                self._open.discard(conn)
        conn = self._connect()
        with self._mutex:
            self._open.add(conn)
            self._connected_once = True
        return conn

    def _checkin(self, conn: Any) -> None:
        with self._mutex:
            if conn in self._open and not conn.closed:
                self._idle.append(conn)

    def _discard(self, conn: Any, everything: bool = False) -> None:
        """Close a broken connection (and, after a lost server, the idle ones too)."""
        with self._mutex:
            self._open.discard(conn)
            idle = self._idle if everything else []
            if everything:
                self._idle = []
                self._open.difference_update(idle)
        for c in [conn, *idle]:
            if c is not None:
                with contextlib.suppress(Exception):
                    c.close()

    def _migrate(self, conn: Any) -> None:
        version = self._schema_version(conn)
        if version == SCHEMA_VERSION:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            version = self._schema_version(conn)
            for step in range(version + 1, SCHEMA_VERSION + 1):
                conn.execute(MIGRATIONS[step])
                conn.execute("INSERT INTO xdl_queue_schema (version) VALUES (%s)", (step,))

    def _schema_version(self, conn: Any) -> int:
        # (pg_class read with this statement's snapshot: a concurrent first use that just
        # committed is seen; to_regclass's catalog cache may not have caught up yet)
        (found,) = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relname = 'xdl_queue_schema' "
            "AND n.nspname = current_schema())"
        ).fetchone()
        if not found:
            return 0
        (version,) = conn.execute("SELECT max(version) FROM xdl_queue_schema").fetchone()
        version = int(version or 0)
        if version > SCHEMA_VERSION:
            raise QueueCorrupt(
                f"the queue {self._name} has schema version {version}; this xdl knows up to "
                f"{SCHEMA_VERSION}: upgrade xdl on this host"
            )
        return version

    def _do(self, work: Callable[[Any], T], *, atomic: bool = True) -> T:
        """Run `work(cursor)` in one transaction (`atomic=False`: work that is one
        statement, which is a transaction of its own, without BEGIN and COMMIT). A
        connection lost after it worked is made again and the work retried, for up to
        `timeout` seconds (a server restart)."""
        import psycopg
        from psycopg.rows import dict_row

        deadline = time.monotonic() + self.timeout
        delay = 0.1
        while True:
            conn = None
            try:
                conn = self._checkout()
                if atomic:
                    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                        done = work(cur)
                else:
                    with conn.cursor(row_factory=dict_row) as cur:
                        done = work(cur)
                self._checkin(conn)
                return done
            except psycopg.OperationalError as e:
                self._discard(conn, everything=True)
                if not self._connected_once or time.monotonic() + delay > deadline:
                    raise QueueUnavailable(
                        f"cannot use the queue {self._name}: {_reason(e, self.url)}; {HINT}"
                    ) from None
                time.sleep(delay)
                delay = min(2.0, delay * 2)
            except psycopg.Error as e:
                self._discard(conn)
                raise QueueUnavailable(
                    f"the queue {self._name} failed: {_reason(e, self.url)}; {HINT}"
                ) from None
            except BaseException:
                self._discard(conn)  # in an unknown state: never handed to another thread
                raise

    @staticmethod
    def _now(cur: Any) -> tuple[float, bool]:
        """The database's clock (one for every host), and whether the queue is paused."""
        cur.execute(
            "SELECT extract(epoch FROM clock_timestamp())::float8 AS now, paused "
            "FROM xdl_queue_meta"
        )
        row = cur.fetchone()
        return float(row["now"]), bool(row["paused"])

    # -- records --

    def _write(self, cur: Any, rec: Mapping[str, Any]) -> None:
        values = _params(rec)
        sets = ", ".join(f"{c} = %({c})s" for c in WRITTEN)
        token = "token = %(token)s" if rec.get("status") == "running" else "token = NULL"
        cur.execute(f"UPDATE xdl_tasks SET {sets}, {token} WHERE id = %(id)s", values)

    def _locked_rows(self, cur: Any, ids: Iterable[int]) -> dict[int, Record]:
        cur.execute(
            f"SELECT {FIELDS} FROM xdl_tasks WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            (list(ids),),
        )
        return {row["id"]: _record(row) for row in cur.fetchall()}

    # -- reading --

    def health(self) -> Health:
        def work(cur: Any) -> Health:
            cur.execute("SELECT max(version) AS v FROM xdl_queue_schema")
            version = cur.fetchone()["v"]
            cur.execute(
                "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'running') AS r "
                "FROM xdl_tasks"
            )
            row = cur.fetchone()
            server = cur.connection.info.parameter_status("server_version") or "?"
            return Health(
                True,
                f"{self._name}: PostgreSQL {server}, queue schema {version}, "
                f"{row['n']} tasks ({row['r']} running), healthy",
                int(row["n"]),
            )

        return self._do(work)

    def tasks(
        self, ids: Sequence[int] | None = None, statuses: Iterable[str] | None = None
    ) -> list[Task | int]:
        """Tasks in queue order (or the given ids, in that order; an unknown id stays an int)."""

        def work(cur: Any) -> list[Task | int]:
            if ids is not None:
                cur.execute(f"SELECT {FIELDS} FROM xdl_tasks WHERE id = ANY(%s)", (list(ids),))
                found = {row["id"]: _task(row) for row in cur.fetchall()}
                return [found.get(tid, tid) for tid in ids]
            if statuses:
                cur.execute(
                    f"SELECT {FIELDS} FROM xdl_tasks WHERE status = ANY(%s) ORDER BY id",
                    (list(statuses),),
                )
            else:
                cur.execute(f"SELECT {FIELDS} FROM xdl_tasks ORDER BY id")
            return [_task(row) for row in cur.fetchall()]

        return self._do(work)

    def task_ids(self) -> list[tuple[int, str, str]]:
        def work(cur: Any) -> list[tuple[int, str, str]]:
            cur.execute("SELECT id, status, url FROM xdl_tasks ORDER BY id")
            return [(r["id"], r["status"], r["url"]) for r in cur.fetchall()]

        return self._do(work)

    def summary(self) -> Summary:
        """By SQL: counts and sums grouped in the database, never every task loaded."""

        def work(cur: Any) -> Summary:
            now, paused = self._now(cur)
            cur.execute(
                """SELECT status, count(*) AS n,
                       sum(CASE WHEN json_typeof(result->'bytes') = 'number'
                           THEN (result->>'bytes')::numeric END) AS bytes,
                       min(added_at) AS oldest
                   FROM xdl_tasks GROUP BY status"""
            )
            counts: dict[str, int] = {}
            bytes_done, oldest = 0, None
            for row in cur.fetchall():
                counts[row["status"]] = int(row["n"])
                if row["status"] == "done":
                    bytes_done = int(row["bytes"] or 0)
                elif row["status"] == "queued":
                    oldest = row["oldest"]
            cur.execute(
                "SELECT domain, count(*) AS n FROM xdl_tasks GROUP BY domain "
                "ORDER BY n DESC, min(id) LIMIT 20"
            )
            domains = {row["domain"]: int(row["n"]) for row in cur.fetchall()}
            cur.execute(
                "SELECT worker, lease_until FROM xdl_tasks WHERE status = 'running' ORDER BY id"
            )
            workers: dict[tuple[Any, ...], dict[str, Any]] = {}
            for row in cur.fetchall():
                w = row["worker"] or {}
                if (row["lease_until"] or 0) >= now and not rules.worker_gone(w):
                    key = (w.get("host"), w.get("pid"), w.get("runner"))
                    entry = workers.setdefault(
                        key, {"host": w.get("host"), "pid": w.get("pid"), "tasks": 0}
                    )
                    entry["tasks"] += 1
            return Summary(
                self._name,
                sum(counts.values()),
                {s: counts.get(s, 0) for s in STATUSES},
                bytes_done,
                domains,
                oldest,
                list(workers.values()),
                paused,
            )

        return self._do(work)

    def is_paused(self) -> bool:
        def work(cur: Any) -> bool:
            cur.execute("SELECT paused FROM xdl_queue_meta")
            return bool(cur.fetchone()["paused"])

        return self._do(work, atomic=False)

    def next_wakeup(self) -> float | None:
        """Seconds until a queued task may be claimed (0: now); None when nothing is queued."""

        def work(cur: Any) -> float | None:
            cur.execute(
                f"WITH {CLOCK} SELECT (SELECT now FROM clock) AS now, EXISTS (SELECT 1 FROM "
                "xdl_tasks WHERE status = 'queued' AND coalesce(next_attempt_at, 0) <= "
                f"{NOW}) AS ready, (SELECT min(next_attempt_at) FROM xdl_tasks "
                "WHERE status = 'queued') AS soon"
            )
            row = cur.fetchone()
            if row["ready"]:
                return 0.0
            return None if row["soon"] is None else max(0.0, row["soon"] - row["now"])

        return self._do(work, atomic=False)

    # -- changing --

    def add(self, items: Sequence[NewTask], *, force: bool = False) -> list[Added]:
        """Add tasks; a URL already queued, running, done or cancelled is not added again
        unless `force`; a failed one is requeued (`rules.is_duplicate`, `rules.requeued`)."""
        if not items:
            return []

        inserted = 0

        def work(cur: Any) -> list[Added]:
            nonlocal inserted
            now, _ = self._now(cur)
            now = round(now, 3)
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (ADD_LOCK,))
            existing: dict[str, Record] = {}
            if not force:
                cur.execute(
                    f"SELECT DISTINCT ON (url) {FIELDS} FROM xdl_tasks WHERE url = ANY(%s) "
                    "ORDER BY url, (status <> 'failed') DESC, id DESC",
                    (list({item.url for item in items}),),
                )
                existing = {row["url"]: _record(row) for row in cur.fetchall()}
            # An Added, or (k, url, added) about the k-th new task (its id comes later).
            rows: list[Added | tuple[int, str, bool]] = []
            fresh: list[NewTask] = []
            seen: dict[str, int | tuple[int]] = {}
            for item in items:
                if not force and item.url in seen:  # twice in this batch
                    first = seen[item.url]
                    if isinstance(first, int):
                        rows.append(Added(first, item.url, "queued", False, first))
                    else:
                        rows.append((first[0], item.url, False))
                    continue
                rec = existing.get(item.url)
                if rec is not None and rules.is_duplicate(rec):
                    rows.append(Added(rec["id"], item.url, rec["status"], False, rec["id"]))
                    continue
                if rec is not None:  # failed: requeue it, with the new options
                    self._write(cur, rules.requeued(rec, item, dict(item.options), now))
                    seen[item.url] = rec["id"]
                    rows.append(Added(rec["id"], item.url, "queued", True, requeued=True))
                    continue
                seen[item.url] = (len(fresh),)
                rows.append((len(fresh), item.url, True))
                fresh.append(item)
            ids = self._insert(cur, fresh, now) if fresh else []
            inserted = len(ids)
            return [
                r
                if isinstance(r, Added)
                else Added(ids[r[0]], r[1], "queued", r[2], None if r[2] else ids[r[0]])
                for r in rows
            ]

        added = self._do(work)
        if self._bulk_inserted is not None:
            self._bulk_inserted += inserted
        else:
            self._describe(inserted)
        return added

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Adds in a row (one `queue add` of a long list): the table's statistics are
        gathered once, at their end, not after each add (100,000 URLs added 10,000 at a
        time ran ANALYZE ten times: 1.1 of 6.5 s)."""
        self._bulk_inserted = 0
        try:
            yield
        except BaseException:  # (an add interrupted: what went in is still described)
            with contextlib.suppress(Exception):
                self._end_bulk()
            raise
        self._end_bulk()

    def _end_bulk(self) -> None:
        inserted, self._bulk_inserted = self._bulk_inserted or 0, None
        self._describe(inserted)

    def _describe(self, inserted: int) -> None:
        """After `inserted` new tasks, the table's statistics when they may be out of date."""
        if inserted >= ANALYZE_AFTER:
            self._do(self._analyze(inserted), atomic=False)

    @staticmethod
    def _analyze(inserted: int) -> Callable[[Any], None]:
        """After a large add, the table's statistics at once when they no longer describe
        it (never gathered, or the add grew it by more than a tenth). Otherwise, until
        autovacuum comes by (a minute or more), the planner may believe few tasks are
        queued, and sort every queued task on each claim instead of reading the claim
        index's first entry: O(n) per claim."""

        def work(cur: Any) -> None:
            cur.execute("SELECT reltuples FROM pg_class WHERE oid = 'xdl_tasks'::regclass")
            row = cur.fetchone()
            known = float(row["reltuples"]) if row else -1.0
            if known < 0 or inserted > known / 10:
                cur.execute("ANALYZE xdl_tasks")  # not the owner: a warning, nothing done

        return work

    def _insert(self, cur: Any, items: Sequence[NewTask], now: float) -> list[int]:
        """New tasks, by COPY (100,000 in one call); their ids, in order."""
        cur.execute(
            "SELECT nextval('xdl_tasks_id_seq') AS id FROM generate_series(1, %s)", (len(items),)
        )
        ids = [int(row["id"]) for row in cur.fetchall()]
        dumped: dict[int, str] = {}  # an options object shared by many items: dumped once
        columns = "id, url, domain, status, priority, options, title, added_at, updated_at"
        with cur.copy(f"COPY xdl_tasks ({columns}) FROM STDIN") as copy:
            for tid, item in zip(ids, items):
                rec = rules.new_record(tid, item, None, now)
                options = dumped.get(id(item.options))
                if options is None:
                    options = json.dumps(dict(item.options), ensure_ascii=False)
                    dumped[id(item.options)] = options
                copy.write_row(
                    (
                        tid,
                        item.url,
                        domain(item.url),
                        rec["status"],
                        rec.get("priority", 0),
                        options,
                        rec.get("title"),
                        now,
                        now,
                    )
                )
        return ids

    def finish(
        self,
        worker: Worker,
        outcomes: Sequence[Outcome] = (),
        *,
        claim: int = 0,
        lease: float | None = None,
    ) -> Finished:
        """Record how our tasks went and, with `claim`, take back dead runners' tasks and
        claim up to that many next ones: one statement (`FINISH`: an UPDATE per outcome,
        then the claim) unless a dead runner's task is there to take back first."""
        if claim and lease is None:
            raise ValueError("a claim needs a lease")
        lease = lease or 0.0
        with self._mutex:
            held = [self._held.pop(outcome.task_id, None) for outcome in outcomes]
        ctes = [CLOCK]
        values: dict[str, Any] = {"runner": worker.runner}
        recorded: list[str] = []
        for n, (outcome, mine) in enumerate(zip(outcomes, held)):
            new = None
            if mine is not None:
                token, rec = mine
                retry_in = None  # the runner's clock, as an offset on the database's
                if outcome.retry_at is not None:
                    retry_in = max(0.0, outcome.retry_at - time.time())
                # applied at now = 0: the times it sets are offsets from the database's clock
                changed = Outcome(outcome.task_id, outcome.result, outcome.error, retry_in)
                new = rules.settled(rec, worker, changed, 0.0)
            if new is None:
                recorded.append("0")
                continue
            sets, changes = _changes(rec, new, f"_{n}")
            values.update(changes, **{f"id_{n}": rec["id"], f"token_{n}": token})
            ctes.append(
                f"settled_{n} AS (UPDATE xdl_tasks SET {', '.join(sets)} WHERE id = %(id_{n})s "
                f"AND token = %(token_{n})s AND status = 'running' "
                "AND worker->>'runner' = %(runner)s RETURNING id)"
            )
            recorded.append(f"(SELECT count(*) FROM settled_{n})")
        if not claim and len(ctes) == 1:
            return Finished((False,) * len(outcomes))
        columns = f"ARRAY[{', '.join(recorded)}]::int[] AS recorded"
        if claim:
            ctes += [SUSPECTS, CLAIMED.format(limit=int(claim))]
            skip = [outcome.task_id for outcome in outcomes]
            values.update(
                worker=_json(worker.to_dict()),
                lease=lease,
                skip=skip,
                alive=self._alive_pids(),
                **_ours(),
            )
            statement = (
                f"WITH {', '.join(ctes)} SELECT {columns}, "
                "(SELECT count(*) FROM suspects) AS suspects, claimed.* "
                "FROM (VALUES (1)) AS one LEFT JOIN claimed ON true"
            )
        else:
            statement = f"WITH {', '.join(ctes)} SELECT {columns}"

        def work(cur: Any) -> list[Mapping[str, Any]]:
            cur.execute(statement, values)
            rows: list[Mapping[str, Any]] = cur.fetchall()
            return rows

        rows = self._do(work, atomic=False)
        done = tuple(bool(n) for n in rows[0]["recorded"])
        if not claim:
            return Finished(done)
        if rows[0]["suspects"]:  # a dead runner's task, maybe: taken back first, then a claim
            recover = self._do(lambda cur: self._recover_and_claim(cur, worker, lease, skip, claim))
            return Finished(done, *recover)
        return Finished(done, tuple(self._hold(row) for row in rows if row.get("id") is not None))

    def _hold(self, row: Mapping[str, Any]) -> Task:
        """A task we just claimed: its token and record kept, to renew and settle it."""
        rec = _record(row)
        with self._mutex:
            self._held[rec["id"]] = (int(rec.pop("token")), rec)
        return Task.from_record(rec, {})

    def _alive_pids(self) -> list[str]:
        """Our pid, and those of the other runners on this host that are still alive."""
        with self._mutex:
            known = list(self._alive)
        gone = {pid for pid in known if not rules.pid_alive(pid)}
        if gone:
            with self._mutex:
                self._alive -= gone
        return [str(os.getpid()), *(str(pid) for pid in known if pid not in gone)]

    def _recover_and_claim(
        self, cur: Any, worker: Worker, lease: float, skip: list[int], claim: int
    ) -> tuple[tuple[Task, ...], tuple[Task, ...]]:
        now, paused = self._now(cur)
        given_up = self._recover(cur, now)
        if paused:
            return (), given_up
        cur.execute(
            CLAIM.format(limit=int(claim)),
            {"worker": _json(worker.to_dict()), "now": now, "lease": lease, "skip": skip},
        )
        return tuple(self._hold(row) for row in cur.fetchall()), given_up

    def _recover(self, cur: Any, now: float) -> tuple[Task, ...]:
        """Take back the running tasks of dead runners (`rules.recovered`): lease expired,
        or with a pid of ours (`rules.pid_is_ours`) that is gone; the tasks that failed
        for good are returned. The pids of ours found alive are remembered (their tasks
        are not suspects)."""
        cur.execute(
            "SELECT id, worker, lease_until FROM xdl_tasks WHERE status = 'running' "
            f"AND (lease_until < %(now)s OR ({OURS}))",
            {"now": now, **_ours()},
        )
        due = []
        for row in cur.fetchall():
            if rules.needs_recovery(row, now):
                due.append(row["id"])
            elif rules.pid_is_ours(row["worker"]):
                pid = row["worker"].get("pid")
                if isinstance(pid, int) and pid != os.getpid():
                    with self._mutex:
                        self._alive.add(pid)
        if not due:
            return ()
        cur.execute(
            f"SELECT {FIELDS} FROM xdl_tasks WHERE id = ANY(%s) AND status = 'running' "
            "ORDER BY id FOR UPDATE SKIP LOCKED",
            (due,),
        )
        given_up = []
        for row in cur.fetchall():
            rec = _record(row)
            if not rules.needs_recovery(rec, now):
                continue
            new = rules.recovered(rec, now)
            self._write(cur, new)
            if new["status"] == "failed":
                given_up.append(Task.from_record(new, {}))
        return tuple(given_up)

    def renew(
        self,
        worker: Worker,
        ids: Iterable[int],
        lease: float,
        received: Mapping[int, int] | None = None,
    ) -> set[int]:
        """Extend the leases of our running tasks (and record the bytes each has
        `received` so far, in its worker), all in one statement; returns the ids that
        are no longer ours (cancelled, removed or taken back: their token changed),
        whose downloads stop."""
        ids = list(ids)
        with self._mutex:
            mine = [(tid, self._held[tid][0]) for tid in ids if tid in self._held]
        got = [(received or {}).get(tid) for tid, _ in mine]

        def work(cur: Any) -> set[int]:
            cur.execute(
                "UPDATE xdl_tasks t SET lease_until = extract(epoch FROM clock_timestamp())"
                "::float8 + %s, worker = CASE WHEN m.bytes IS NULL THEN t.worker ELSE "
                "(t.worker::jsonb || jsonb_build_object('bytes', m.bytes))::json END "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS m(id, token, bytes) "
                "WHERE t.id = m.id AND t.token = m.token AND t.status = 'running' "
                "AND t.worker->>'runner' = %s RETURNING t.id",
                (lease, [m[0] for m in mine], [m[1] for m in mine], got, worker.runner),
            )
            return {row["id"] for row in cur.fetchall()}

        renewed = self._do(work, atomic=False) if mine else set()
        return set(ids) - renewed

    def release(self, worker: Worker, ids: Iterable[int]) -> None:
        """Put our running tasks back to `queued`, the attempt not counted (graceful stop)."""
        with self._mutex:
            mine = [self._held.pop(tid) for tid in list(ids) if tid in self._held]
        writes = []
        for token, rec in mine:
            if rules.owned(rec, worker):
                sets, values = _changes(rec, rules.released(rec, 0.0))
                values.update(id=rec["id"], token=token, runner=worker.runner)
                writes.append((sets, values))
        if not writes:
            return

        def work(cur: Any) -> None:
            for sets, values in writes:
                cur.execute(
                    f"WITH {CLOCK} UPDATE xdl_tasks SET {', '.join(sets)} WHERE id = %(id)s "
                    "AND token = %(token)s AND status = 'running' "
                    "AND worker->>'runner' = %(runner)s",
                    values,
                )

        self._do(work)

    def _change(
        self,
        ids: Sequence[int],
        change: Callable[[Record, float], Record | str | None],
        action: str,
    ) -> list[Changed | int]:
        """Apply a rule to each task: a new record, None (remove it) or why it was skipped."""

        def work(cur: Any) -> list[Changed | int]:
            now, _ = self._now(cur)
            recs = self._locked_rows(cur, ids)
            out: list[Changed | int] = []
            for tid in ids:
                rec = recs.get(tid)
                if rec is None:
                    out.append(tid)
                    continue
                new = change(rec, now)
                if isinstance(new, str):
                    out.append(Changed(tid, rec["url"], rec.get("status"), action, new))
                elif new is None:
                    cur.execute("DELETE FROM xdl_tasks WHERE id = %s", (tid,))
                    del recs[tid]
                    out.append(Changed(tid, rec["url"], "removed", action))
                else:
                    self._write(cur, new)
                    recs[tid] = new
                    out.append(Changed(tid, rec["url"], new["status"], action))
            return out

        return self._do(work)

    def retry(self, ids: Sequence[int] | None) -> list[Changed | int]:
        """Requeue failed or cancelled tasks (all failed ones when `ids` is None)."""
        if ids is None:
            ids = self._do(
                lambda cur: [
                    r["id"]
                    for r in cur.execute(
                        "SELECT id FROM xdl_tasks WHERE status = 'failed' ORDER BY id"
                    ).fetchall()
                ]
            )
        return self._change(ids, rules.retried, "retry")

    def clear(self, statuses: Iterable[str]) -> int:
        """Delete every task with one of these statuses (never running ones)."""
        wanted = sorted(set(statuses) - {"running"})

        def work(cur: Any) -> int:
            cur.execute("DELETE FROM xdl_tasks WHERE status = ANY(%s)", (wanted,))
            return int(cur.rowcount)

        return self._do(work)

    def set_paused(self, paused: bool) -> bool:
        def work(cur: Any) -> bool:
            cur.execute("UPDATE xdl_queue_meta SET paused = %s RETURNING paused", (paused,))
            return bool(cur.fetchone()["paused"])

        return self._do(work)

    # -- what a database does better --

    def backups(self) -> list[Backup]:
        raise NotSupported(self._backup_hint())

    def restore(self, backup: str | None = None) -> Restored:
        raise NotSupported(self._backup_hint())

    def _backup_hint(self) -> str:
        return (
            f"the queue {self._name} is a PostgreSQL database: back it up with the "
            "database's own tools (pg_dump -t 'xdl_*' DB > queue.sql; restore: psql DB "
            "< queue.sql), or its continuous archiving"
        )


def _json(value: Any) -> Any:
    from psycopg.types.json import Json

    return None if value is None else Json(value)


def _params(rec: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"id": rec["id"], "token": rec.get("token")}
    for column in WRITTEN:
        value = rec.get(column)
        if column in JSON:
            value = _json(value if column != "options" else dict(value or {}))
        values[column] = value
    values["priority"] = int(rec.get("priority") or 0)
    values["attempts"] = int(rec.get("attempts") or 0)
    values["lost"] = int(rec.get("lost") or 0)
    values["updated_at"] = rec.get("updated_at") or rec.get("added_at")
    return values


def _changes(
    old: Mapping[str, Any], new: Mapping[str, Any], suffix: str = ""
) -> tuple[list[str], dict[str, Any]]:
    """The SET clauses that turn row `old` into `new`, where `new` came from a rule applied
    at now = 0: only the columns it changed; the times it set are offsets from the
    database's clock (`NOW`, from the statement's `clock`). `suffix` ends the parameters'
    names (several rows changed by one statement)."""
    sets: list[str] = []
    values: dict[str, Any] = {}
    for column in WRITTEN:
        value = new.get(column)
        if value == old.get(column):
            continue
        if value is None:
            sets.append(f"{column} = NULL")
            continue
        name = f"v_{column}{suffix}"
        if column in TIMES:
            sets.append(f"{column} = {NOW} + %({name})s")
            value = float(value)
        else:
            sets.append(f"{column} = %({name})s")
            if column in JSON:
                value = _json(dict(value) if column == "options" else value)
        values[name] = value
    if new.get("status") != "running":
        sets.append("token = NULL")
    return sets, values


def _ours() -> dict[str, str | None]:
    """The parameters of `OURS`: all NULL when one of ours is unknown (no pid judged)."""
    known = None not in rules.HERE.values()
    return {f"ours_{k}": str(v) if known else None for k, v in rules.HERE.items()}


def _record(row: Mapping[str, Any]) -> Record:
    """A row as a record: the fields `rules` reads (nulls left out, as the JSON store)."""
    return {k: v for k, v in row.items() if v is not None}


def _task(row: Mapping[str, Any]) -> Task:
    return Task.from_record(_record(row), {})


def _reason(e: BaseException, url: str) -> str:
    """The server's words, in one line, without the URL's password (libpq's messages
    about a URL it cannot parse quote the URL, or the part it could not decode)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = next((line for line in reversed(lines) if "FATAL" in line), lines[-1] if lines else "")
    text = scrub(text.replace("FATAL:", "").strip(), url) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."
