"""What only the PostgreSQL store has to get right: a real server (tests/pg_server.py),
its errors as one line and exit 3 (never a password, never a traceback), the schema
version, durability across a crash of the server, runners that outlive a restart, and
the commands a database does better (backups) saying what to use instead."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import pg_server as pg
from xdl.core.errors import QueueCorrupt, QueueUnavailable
from xdl.core.fetch.result import FetchResult
from xdl.core.queue import NewTask, Worker, open_store
from xdl.core.queue.run import RunOptions, RunReport, run_queue


def test_the_driver_is_loaded_only_by_the_postgres_store(tmp_path: Path) -> None:
    code = (
        "import sys; from xdl.cli.main import main; sys.argv = ['xdl', '--help']\n"
        "try: main()\nexcept SystemExit: pass\n"
        "from xdl.core.queue import open_store, NewTask\n"
        f"open_store({str(tmp_path / 'q.json')!r}).add([NewTask('https://a.example/')])\n"
        "assert 'psycopg' not in sys.modules, 'psycopg was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_server_down_is_exit_3_in_one_line_without_the_password(
    xdl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At once: a server never reached is not retried (a retry waits before it: none)."""
    from types import SimpleNamespace

    from xdl.core.queue import postgres

    waits: list[float] = []
    clock = SimpleNamespace(monotonic=time.monotonic, time=time.time, sleep=waits.append)
    monkeypatch.setattr(postgres, "time", clock)
    url = f"postgresql://xdl:{pg.PASSWORD}@127.0.0.1:{pg.free_port()}/nothing"
    ran = xdl("queue", "add", "https://a.example/", "--queue", url, "--lock-timeout", "5")
    assert ran.exit_code == 3
    assert waits == []
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith("xdl: error: cannot use the queue postgresql://xdl@127.0.0.1:")
    assert pg.PASSWORD not in ran.stderr + ran.stdout
    assert "Traceback" not in ran.stderr and ran.stdout == ""


def test_wrong_password_and_missing_database_are_exit_3(xdl: Any, pg_server: Any) -> None:
    wrong = pg_server.url("postgres").replace(pg.PASSWORD, "not-it")
    ran = xdl("queue", "status", "--queue", wrong)
    assert ran.exit_code == 3
    assert "password authentication failed" in ran.stderr and "not-it" not in ran.stderr
    missing = pg_server.url("no_such_db")
    ran = xdl("queue", "status", "--summary", "--queue", missing)
    assert ran.exit_code == 3
    assert 'database "no_such_db" does not exist' in ran.stderr
    assert pg.PASSWORD not in ran.stderr


def test_credentials_from_libpq_environment(
    xdl: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg.PASSWORD)
    monkeypatch.setenv("XDL_QUEUE", pg_url.replace(f":{pg.PASSWORD}", ""))
    ran = xdl("queue", "add", "https://a.example/1")
    assert ran.exit_code == 0, ran.stderr
    assert ran.lines[0]["added"] is True


def test_backups_and_restore_say_to_use_pg_dump(xdl: Any, pg_url: str) -> None:
    for command in ("backups", "restore"):
        ran = xdl("queue", command, "--queue", pg_url)
        assert ran.exit_code == 2
        assert "pg_dump" in ran.stderr and pg.PASSWORD not in ran.stderr


def test_a_newer_schema_is_exit_3(xdl: Any, pg_url: str) -> None:
    store = open_store(pg_url)
    store.add([NewTask("https://a.example/")])
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO xdl_queue_schema (version) VALUES (99)")
    with pytest.raises(QueueCorrupt, match="schema version 99"):
        open_store(pg_url).tasks()
    ran = xdl("queue", "status", "--queue", pg_url)
    assert ran.exit_code == 3 and "upgrade xdl" in ran.stderr
    store.close()


def test_doctor_checks_the_database(xdl: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDL_QUEUE", pg_url)
    open_store(pg_url).add([NewTask("https://a.example/")])
    ran = xdl("doctor", "--json")
    (queue,) = [r for r in ran.lines if r.get("check") == "queue" or r.get("name") == "queue"]
    assert queue["status"] == "ok", queue
    assert "queue schema 2, 1 tasks" in queue["message"]
    assert pg.PASSWORD not in ran.stdout + ran.stderr


def test_concurrent_first_use_creates_the_schema_once(pg_url: str) -> None:
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            store = open_store(pg_url)
            store.add([NewTask(f"https://a.example/{i}")])
            store.close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(open_store(pg_url).tasks()) == 6


def test_a_hundred_thousand_adds_in_one_call(pg_url: str) -> None:
    store = open_store(pg_url)
    options = {"output_dir": "/srv"}
    started = time.monotonic()
    added = store.add([NewTask(f"https://a.example/{i}", options) for i in range(20000)])
    assert time.monotonic() - started < 10
    assert [a.id for a in added[:3]] == [1, 2, 3] and all(a.added for a in added)
    again = store.add([NewTask("https://a.example/5"), NewTask("https://a.example/new")])
    assert [(a.added, a.id) for a in again] == [(False, 6), (True, 20001)]
    assert store.summary().total == 20001


# --- the server fails ---------------------------------------------------------------------


@pytest.mark.slow
def test_adds_that_said_added_survive_a_crash_of_the_server(pg_server: Any) -> None:
    """`pg_ctl stop -m immediate` (a crash) during a burst of adds from another process:
    every URL whose line said `added: true` is there after the restart."""
    url = pg_server.url(pg_server.new_database())
    script = (
        "import json, sys\n"
        "from xdl.core.queue import open_store, NewTask\n"
        "store = open_store(sys.argv[1], lock_timeout=0.5)\n"
        "for i in range(100000):\n"
        "    (a,) = store.add([NewTask(f'https://burst.example/{i}')])\n"
        "    print(json.dumps({'url': a.url, 'added': a.added}), flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(1.5)
    pg_server.stop("immediate")
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        pg_server.start()
    assert proc.returncode != 0 and b"cannot use the queue" in err
    said = [line for line in out.decode().splitlines() if '"added": true' in line]
    assert len(said) > 10
    stored = {t.url for t in open_store(url).tasks()}  # type: ignore[union-attr]
    import json

    assert {json.loads(line)["url"] for line in said} <= stored


@pytest.mark.slow
def test_a_runner_outlives_a_server_restart(pg_server: Any) -> None:
    url = pg_server.url(pg_server.new_database())
    store = open_store(url, lock_timeout=30)
    store.add([NewTask(f"https://r.example/{i}") for i in range(40)])
    done: list[int] = []

    def download(task: Any, stop: threading.Event, progress: Any = None) -> FetchResult:
        time.sleep(0.05)
        done.append(task.id)
        return FetchResult(ok=True, url=task.url, path=f"/x/{task.id}", bytes=1)

    report: list[Any] = []
    runner = threading.Thread(
        target=lambda: report.append(
            [
                e
                for e in run_queue(store, download, options=RunOptions(jobs=4, lease=30, poll=0.05))
                if isinstance(e, RunReport)
            ][-1]
        )
    )
    runner.start()
    time.sleep(0.2)
    pg_server.stop("fast")
    try:
        time.sleep(1.0)
    finally:
        pg_server.start()
    runner.join(timeout=60)
    assert report and report[0].done + report[0].failed >= 1
    tasks = open_store(url).tasks()
    assert all(t.status == "done" for t in tasks), [t.status for t in tasks]  # type: ignore[union-attr]
    assert len(set(done)) == 40
    assert QueueUnavailable  # (the error a runner would raise after --lock-timeout)


def test_claims_race_across_many_stores(pg_url: str) -> None:
    open_store(pg_url).add([NewTask(f"https://c.example/{i}") for i in range(300)])
    claimed: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        s, w = open_store(pg_url), Worker.here()
        while (t := s.claim(w, 60)) is not None:
            assert s.complete(w, t.id, {"bytes": 1})
            with lock:
                claimed.append(t.id)
        s.close()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == list(range(1, 301))


class Statements:
    """Counts the statements psycopg sends (and the BEGINs of transactions)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import psycopg

        self.sent: list[str] = []
        cursor_execute = psycopg.Cursor.execute
        connection_execute = psycopg.Connection.execute

        def on_cursor(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            self.sent.append(str(query).split()[0].upper())
            return cursor_execute(cur, query, *args, **kwargs)

        def on_connection(conn: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            self.sent.append(str(query).split()[0].upper())
            return connection_execute(conn, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", on_cursor)
        monkeypatch.setattr(psycopg.Connection, "execute", on_connection)

    def count(self, work: Any) -> int:
        before = len(self.sent)
        work()
        return len(self.sent) - before


def test_a_runner_pays_one_statement_per_task_and_one_per_renewal(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path: record the task held and claim the next in one statement (no BEGIN,
    no COMMIT, no SELECT before it), and every lease of the process renewed in one."""
    from xdl.core.queue import Outcome

    store = open_store(pg_url)
    store.add([NewTask(f"https://one.example/{i}") for i in range(6)])
    worker = Worker.here()
    store.is_paused()  # connected
    sent = Statements(monkeypatch)
    held = [store.claim(worker, 60) for _ in range(3)]
    assert all(held) and len(sent.sent) == 3
    ids = [t.id for t in held if t]
    assert sent.count(lambda: store.renew(worker, ids, 60, {ids[0]: 10})) == 1
    finished: list[Any] = []
    n = sent.count(
        lambda: finished.append(store.finish(worker, [Outcome(ids[0], {})], claim=1, lease=60))
    )
    assert n == 1 and finished[0].recorded == (True,) and len(finished[0].claimed) == 1
    assert sent.count(lambda: store.complete(worker, ids[1], {"bytes": 1})) == 1
    assert "BEGIN" not in sent.sent and "SELECT" not in sent.sent
    statuses = {t.id: t.status for t in open_store(pg_url).tasks()}  # type: ignore[union-attr]
    assert [statuses[i] for i in ids] == ["done", "done", "running"]
    store.close()


def test_a_runner_whose_lease_was_lost_cannot_write_after_a_fast_claim(pg_url: str) -> None:
    """Fencing holds on the one-statement path: the late runner's outcome changes
    nothing, and the task it lost is taken back before anything else is claimed."""
    from xdl.core.queue import Outcome

    slow, fast = open_store(pg_url), open_store(pg_url)
    slow.add([NewTask("https://fence.example/a"), NewTask("https://fence.example/b")])
    late, other = Worker("another-host", 1, "late"), Worker.here()
    t = slow.claim(late, 0.5)
    assert t is not None and t.id == 1
    time.sleep(0.6)
    again = fast.claim(other, 60)  # the expired lease is taken back first: task 1 again
    assert again is not None and again.id == 1 and again.lost == 1
    finished = slow.finish(late, [Outcome(1, {"path": "/late"})], claim=1, lease=60)
    assert finished.recorded == (False,)
    assert slow.renew(late, [1], 60) == {1}
    assert fast.complete(other, 1, {"path": "/right"})
    (task,) = fast.tasks(ids=[1])
    assert task.result == {"path": "/right"}  # type: ignore[union-attr]
    slow.close()
    fast.close()


def test_threads_of_one_store_do_not_wait_for_each_other(pg_url: str) -> None:
    """Each thread works on a connection of its own: a transaction held open in one
    thread (here: a claim that waits on a row lock) does not stop another's claims."""
    import psycopg

    store = open_store(pg_url)
    store.add([NewTask(f"https://par.example/{i}") for i in range(3)])
    worker = Worker.here()
    with psycopg.connect(pg_url, autocommit=True) as blocker:
        with blocker.transaction():
            blocker.execute("SELECT * FROM xdl_queue_meta FOR UPDATE")  # set_paused waits
            stuck = threading.Thread(target=store.set_paused, args=(False,), daemon=True)
            stuck.start()
            time.sleep(0.3)
            assert stuck.is_alive()
            got: list[Any] = []
            claimer = threading.Thread(target=lambda: got.append(store.claim(worker, 60)))
            claimer.start()
            claimer.join(timeout=60)  # (a bound on a wait that must end, not on speed)
            assert got and got[0] is not None, "a claim waited for another thread's transaction"
        stuck.join(timeout=10)
        claimer.join(timeout=10)
    store.close()


def test_a_large_add_leaves_claims_on_the_claim_index(pg_url: str) -> None:
    """Right after a large add the planner knows the tasks are queued, so a claim reads
    the first entry of the claim index instead of sorting every queued task."""
    import psycopg

    store = open_store(pg_url)
    store.add([NewTask(f"https://big.example/{i}", {"output_dir": "/x"}) for i in range(1000)])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN SELECT id FROM xdl_tasks WHERE status = 'queued' AND "
                "coalesce(next_attempt_at, 0) <= 1e12 ORDER BY priority DESC, id LIMIT 1 "
                "FOR UPDATE SKIP LOCKED"
            ).fetchall()
        )
    assert "xdl_tasks_claim" in plan and "Sort" not in plan, plan
    store.close()


def test_adds_in_a_row_gather_the_statistics_once_at_their_end(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`queue add` of a long list adds it in chunks; ANALYZE ran after each (ten times
    for 100,000 URLs, a sixth of the add). In `bulk` it runs once, at the end, and the
    planner then knows every task, as after one large add."""
    import psycopg

    from xdl.core.queue.postgres import PostgresStore

    gathered: list[int] = []
    real = PostgresStore._analyze
    monkeypatch.setattr(
        PostgresStore, "_analyze", staticmethod(lambda n: gathered.append(n) or real(n))
    )
    store = open_store(pg_url)
    with store.bulk():
        for chunk in range(3):
            store.add([NewTask(f"https://bulk.example/{chunk}/{i}") for i in range(1000)])
        assert gathered == []
    assert gathered == [3000]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        (known,) = conn.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'xdl_tasks'::regclass"
        ).fetchone()
    assert known == 3000
    store.add([NewTask(f"https://one.example/{i}") for i in range(1000)])  # alone: at once
    assert gathered == [3000, 1000]
    store.close()


def test_a_runner_uses_three_connections_whatever_its_workers(pg_url: str) -> None:
    """Workers only download: one keeper records and claims for them all, the heartbeat
    renews leases, and the caller's thread has its own (here: the add). So `queue run
    -j 8` on each of many hosts does not use up the server's max_connections (before:
    one connection per worker).

    No bound here depends on thread timing: the first 8 downloads wait for each other
    (a barrier), so every worker is at work when they count the store's connections; the
    promise is the upper bound, and the lower bound (the store's own connection, which
    its pool keeps open) only shows that the count sees the store's connections."""
    import psycopg

    store = open_store(pg_url)
    store.add([NewTask(f"https://c.example/{i}") for i in range(40)])
    seen: list[int] = []
    all_at_work = threading.Barrier(8, timeout=120)

    def download(task: Any, stop: threading.Event, progress: Any = None) -> FetchResult:
        if task.id <= 8 and not task.lost:  # the first 8: all 8 workers at work at once
            all_at_work.wait()
        with psycopg.connect(pg_url, autocommit=True, application_name="probe") as probe:
            (n,) = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND application_name <> 'probe'"
            ).fetchone()  # type: ignore[misc]
        seen.append(int(n))
        return FetchResult(ok=True, url=task.url, path=f"/x/{task.id}", bytes=1)

    options = RunOptions(jobs=8, lease=3)  # renewals every second: the heartbeat is there
    report = [e for e in run_queue(store, download, options=options) if isinstance(e, RunReport)]
    assert report[-1].done == 40 and len(seen) == 40
    assert all(1 <= n <= 3 for n in seen), seen
    store.close()
