"""The queue store: claim order, leases, backoff, dedupe, tolerant loading, compaction,
crash leftovers, backups and restore. In-process; the process-level guarantees are in
test_queue_procs.py."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import filelock
import pytest

from xdl.core import queue as q
from xdl.core.errors import QueueCorrupt, QueueLocked
from xdl.core.queue import JsonStore, NewTask, Worker
from xdl.core.queue.filestore import fastpath
from xdl.core.queue.filestore import store as filestore
from xdl.core.queue.filestore.backups import BACKUPS_KEPT


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "queue.json"


@pytest.fixture
def store(path: Path) -> JsonStore:
    return JsonStore(path, lock_timeout=5)


@pytest.fixture
def worker() -> Worker:
    return Worker.here()


def urls(n: int, prefix: str = "https://example.com/v") -> list[NewTask]:
    return [NewTask(f"{prefix}{i}") for i in range(n)]


def fresh(path: Path) -> JsonStore:
    """Another process's view: no cached state."""
    return JsonStore(path, lock_timeout=5)


# --- files: journal, compaction, crashes -------------------------------------------------


def test_changes_go_to_the_journal_and_compaction_folds_them(path: Path) -> None:
    store = JsonStore(path)
    store.add(urls(10))
    journal = path.with_name("queue.json.journal")
    before = path.read_bytes()
    store.add([NewTask("https://j.example/1")])
    assert path.read_bytes() == before  # one add = one journal line, not a rewrite
    assert journal.read_text().count("\n") == 2  # header + the add
    assert [t.id for t in fresh(path).tasks()][-1] == 11
    # enough changes to pass the threshold: compacted into a new snapshot
    for _ in range(1100):
        store.set_paused(True)
        store.set_paused(False)
    doc = json.loads(path.read_text())
    assert doc["generation"] > 1 and len(doc["tasks"]) == 11
    assert journal.read_text().count("\n") < 1100
    assert len(fresh(path).tasks()) == 11


@pytest.mark.parametrize("bulk", [True, False])
def test_adds_in_a_row_write_the_snapshot_once_at_their_end(path: Path, bulk: bool) -> None:
    """`queue add` of a long list adds it a chunk at a time. Each chunk past the journal's
    threshold wrote the whole queue again (100,000 URLs: 550,000 tasks written); in
    `bulk` they go to the journal, where other processes see them at once, and the
    snapshot is written once, at the end."""
    store = JsonStore(path)
    generations = []
    with store.bulk() if bulk else contextlib.nullcontext():
        for chunk in range(6):
            store.add(urls(1000, f"https://example.com/{chunk}/"))
            generations.append(json.loads(path.read_text())["generation"])
            assert len(fresh(path).tasks()) == 1000 * (chunk + 1)  # seen meanwhile
    doc = json.loads(path.read_text())
    assert len(fresh(path).tasks()) == 6000
    if bulk:
        assert len(doc["tasks"]) == 6000
        assert generations == [1] * 6  # the first chunk made the file; then the journal
        assert doc["generation"] == 2  # and one snapshot at the end
        journal = path.with_name("queue.json.journal")
        assert journal.read_text().count("\n") == 1  # folded into it: the header only
    else:
        assert generations[-1] > 2  # the chunks' own rewrites


def test_a_killed_writers_temporary_file_is_removed_at_the_next_snapshot(path: Path) -> None:
    """`kill -9` while the snapshot was written left `.queue.json.PID.TID.tmp` for good.
    The next snapshot removes such files once they are an hour old (no live writer takes
    that long); a fresh one may be a live writer's, and stays."""
    import os

    store = JsonStore(path)
    store.add(urls(3))
    old = path.with_name(".queue.json.4242.99.tmp")
    old_journal = path.with_name(".queue.json.journal.4242.99.tmp")
    fresh_one = path.with_name(".queue.json.4343.99.tmp")
    other = path.with_name(".other.json.4242.99.tmp")
    for f in (old, old_journal, fresh_one, other):
        f.write_bytes(b'{"half": ')
    for f in (old, old_journal, other):
        os.utime(f, (time.time() - 7200, time.time() - 7200))
    store.add(urls(2000, "https://b.example/"))  # past the threshold: a new snapshot
    assert json.loads(path.read_text())["generation"] > 1
    assert not old.exists() and not old_journal.exists()
    assert fresh_one.exists() and other.exists()


def test_torn_journal_tail_is_ignored_then_cut(path: Path) -> None:
    store = JsonStore(path)
    store.add(urls(2))
    store.add([NewTask("https://j.example/3")])
    journal = path.with_name("queue.json.journal")
    with open(journal, "ab") as f:
        f.write(b'{"op":"put","task":{"id":9,"url":"https://torn')  # kill -9 mid-append
    assert [t.id for t in fresh(path).tasks()] == [1, 2, 3]
    fresh(path).add([NewTask("https://j.example/4")])
    assert b"torn" not in journal.read_bytes()
    assert [t.id for t in fresh(path).tasks()] == [1, 2, 3, 4]


def test_stale_journal_after_crash_between_renames_is_ignored(path: Path) -> None:
    store = JsonStore(path)
    store.add(urls(2))
    store.add([NewTask("https://j.example/3")])
    journal = path.with_name("queue.json.journal")
    old_journal = journal.read_bytes()
    store._compact(store._refresh())  # snapshot now has task 3 and a new generation
    journal.write_bytes(old_journal)  # as if the crash came before the journal rename
    tasks = fresh(path).tasks()
    assert [t.id for t in tasks] == [1, 2, 3]  # task 3 once, not twice
    fresh(path).add([NewTask("https://j.example/4")])
    assert [t.id for t in fresh(path).tasks()] == [1, 2, 3, 4]


def test_a_cached_store_sees_other_processes_changes(path: Path) -> None:
    a, b = JsonStore(path), JsonStore(path)
    a.add(urls(1))
    b.add([NewTask("https://b.example/")])
    a.add([NewTask("https://a.example/")])
    assert [t.id for t in b.tasks()] == [1, 2, 3]
    b._compact(b._refresh())
    a.add([NewTask("https://a.example/2")])
    assert [t.id for t in b.tasks()] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b'{"version": 1, "tasks": [{"id": 1}]}',
        b'{"version": 1, "tasks": "nope"}',
        b'"a string"',
        b'{"version": 99, "tasks": []}',
        b'{"version": "one", "tasks": []}',
    ],
)
def test_unreadable_file_is_never_overwritten(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    store = JsonStore(path)
    w = Worker.here()
    for op in (
        lambda: store.add(urls(1)),
        lambda: store.tasks(),
        lambda: store.summary(),
        lambda: store.claim(w, 60),
        lambda: store.clear(["done"]),
        lambda: store.set_paused(True),
        lambda: store.cancel([1]),
    ):
        with pytest.raises(QueueCorrupt) as e:
            op()
        assert str(path) in e.value.message
        assert "xdl queue restore" in e.value.message
    assert path.read_bytes() == content
    assert not store.health().ok


def test_newer_version_names_the_way_out(path: Path) -> None:
    path.write_text('{"version": 2, "tasks": []}')
    with pytest.raises(QueueCorrupt, match="newer xdl"):
        JsonStore(path).tasks()


def test_corrupt_journal_line_is_not_overwritten(path: Path) -> None:
    store = JsonStore(path)
    store.add(urls(1))
    store.add(urls(1, "https://b.example/"))
    journal = path.with_name("queue.json.journal")
    lines = journal.read_bytes().split(b"\n")
    lines.insert(1, b"garbage")
    journal.write_bytes(b"\n".join(lines))
    damaged = journal.read_bytes()
    with pytest.raises(QueueCorrupt, match="journal line 2"):
        fresh(path).add(urls(1, "https://c.example/"))
    assert journal.read_bytes() == damaged


def test_tolerant_load_of_older_and_foreign_files(path: Path) -> None:
    # version 0: a bare list, other tools' status names, string ids, inline options,
    # unknown fields (kept).
    path.write_text(
        json.dumps(
            [
                {"id": "7", "url": "https://a.example/1", "status": "completed", "mine": 1},
                {"url": "https://a.example/2", "status": "pending", "options": {"audio": True}},
                {"id": 3, "url": "https://a.example/3", "status": "error", "priority": "2"},
            ]
        )
    )
    original = path.read_bytes()
    store = JsonStore(path)
    tasks = {t.url: t for t in store.tasks()}
    assert tasks["https://a.example/1"].status == "done"
    assert tasks["https://a.example/1"].id == 7
    assert tasks["https://a.example/2"].status == "queued"
    assert tasks["https://a.example/2"].options == {"audio": True}
    assert tasks["https://a.example/3"].status == "failed"
    assert tasks["https://a.example/3"].priority == 2
    assert path.read_bytes() == original  # reading never rewrites
    store.add([NewTask("https://a.example/new")])
    doc = json.loads(path.read_text())  # migrated on the first change...
    assert doc["version"] == q.SCHEMA_VERSION
    assert next(t for t in doc["tasks"] if t["id"] == 7)["mine"] == 1
    (backup,) = [b for b in store.backups() if b.path.endswith("-v0.json")]
    assert Path(backup.path).read_bytes() == original  # ...the original kept as a backup


def test_unknown_top_level_keys_survive(path: Path) -> None:
    path.write_text(json.dumps({"version": 1, "tasks": [], "note": "keep me"}))
    JsonStore(path).add(urls(1))
    assert json.loads(path.read_text())["note"] == "keep me"


def test_lock_timeout_raises_queue_locked(path: Path) -> None:
    store = JsonStore(path, lock_timeout=0.2)
    store.add(urls(1))
    before = path.read_bytes()
    held = filelock.FileLock(str(path) + ".lock")
    with held:
        result: list[BaseException] = []

        def other() -> None:
            try:
                JsonStore(path, lock_timeout=0.2).add(urls(1, "https://z.example/"))
            except BaseException as e:
                result.append(e)

        th = threading.Thread(target=other)
        th.start()
        th.join()
    assert isinstance(result[0], QueueLocked)
    assert "locked by another xdl process" in result[0].message
    assert path.read_bytes() == before


# --- backups and restore ----------------------------------------------------------------


def test_backups_every_10_minutes_and_last_10_kept(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1_800_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    store = JsonStore(path)
    store.add(urls(1))  # empty before: nothing to back up
    assert store.backups() == []
    store.add(urls(1, "https://b.example/"))
    assert len(store.backups()) == 1
    for i in range(30):  # activity every minute for 30 minutes: 3 more backups
        clock[0] += 60
        store.add([NewTask(f"https://c.example/{i}")])
    assert len(store.backups()) == 4
    for i in range(20):
        clock[0] += 601
        store.add([NewTask(f"https://d.example/{i}")])
    assert len(store.backups()) == BACKUPS_KEPT


def test_restore_moves_a_corrupt_file_aside(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = JsonStore(path)
    store.add(urls(2))
    store.add(urls(3, "https://b.example/"))  # backup of the 2-task state
    path.write_bytes(b"\x00\x00 garbage")
    with pytest.raises(QueueCorrupt):
        fresh(path).tasks()
    restored = fresh(path).restore()
    assert restored.tasks == 2
    assert restored.kept and Path(restored.kept).read_bytes() == b"\x00\x00 garbage"
    assert len(fresh(path).tasks()) == 2
    fresh(path).add(urls(1, "https://after.example/"))
    assert len(fresh(path).tasks()) == 3


def test_restore_of_a_healthy_queue_backs_it_up_first(path: Path) -> None:
    store = JsonStore(path)
    store.add(urls(2))
    store.add(urls(1, "https://b.example/"))
    (first,) = store.backups()
    restored = store.restore(Path(first.path).name)
    assert restored.tasks == 2
    assert restored.kept is not None and "before-restore" in restored.kept
    assert len(json.loads(Path(restored.kept).read_text())["tasks"]) == 3
    assert len(store.tasks()) == 2


def test_restore_without_backups_is_fatal(path: Path) -> None:
    path.write_text("{")
    from xdl.core.errors import Fatal

    with pytest.raises(Fatal, match="no backups"):
        JsonStore(path).restore()
    assert path.read_text() == "{"


# --- a cold process's add: the snapshot is searched, not parsed -------------------------


@pytest.mark.parametrize("seed", range(6))
def test_cold_add_agrees_with_a_full_load(tmp_path: Path, seed: int) -> None:
    """A fresh process adding a few URLs looks them up in the snapshot's bytes and the
    journal; whatever the history (forced duplicates, failures, cancels, removals, odd
    characters), it must decide exactly as a store that parsed everything."""
    import random
    import shutil

    rng = random.Random(seed)
    base = tmp_path / "base" / "queue.json"
    store = JsonStore(base)
    pool = [f"https://r.example/{i}" for i in range(40)] + [
        'https://r.example/quote"d',
        "https://r.example/ünï",
        "https://r.example/back\\slash",
        "https://r.example/a,b}c",
    ]
    w = Worker.here()
    for step in range(rng.randint(5, 40)):
        action = rng.random()
        if action < 0.5:
            sample = rng.sample(pool, rng.randint(1, 5))
            store.add([NewTask(u) for u in sample], force=rng.random() < 0.2)
        elif action < 0.7:
            t = store.claim(w, 60)
            if t is not None:
                if rng.random() < 0.5:
                    store.complete(w, t.id, {"bytes": 1})
                else:
                    store.fail(w, t.id, {"code": "network", "message": "x"}, None)
        elif action < 0.8:
            ids = [t.id for t in store.tasks()]  # type: ignore[union-attr]
            if ids:
                store.cancel([rng.choice(ids)])
        elif action < 0.9:
            ids = [t.id for t in store.tasks()]  # type: ignore[union-attr]
            if ids:
                store.remove([rng.choice(ids)])
        elif step % 3 == 0:
            store._compact(store._refresh())
    for trial in range(5):
        wanted = [NewTask(u) for u in rng.sample(pool, rng.randint(1, 4))]
        dirs = []
        for name in ("light", "full"):
            d = tmp_path / f"{name}-{trial}"
            shutil.copytree(base.parent, d)
            dirs.append(d / "queue.json")
        light = JsonStore(dirs[0])
        with light._locked(load=False):
            assert light._light_base(len(wanted)) is not None  # the path under test
        light = JsonStore(dirs[0])
        full = JsonStore(dirs[1])
        full.tasks()  # loaded: the full path
        got, expected = light.add(wanted), full.add(wanted)
        assert [a.to_dict() for a in got] == [a.to_dict() for a in expected]
        as_seen = [t.to_dict() for t in JsonStore(dirs[0]).tasks()]  # type: ignore[union-attr]
        should = [t.to_dict() for t in JsonStore(dirs[1]).tasks()]  # type: ignore[union-attr]
        strip = ("added_at", "updated_at")
        assert [{k: v for k, v in t.items() if k not in strip} for t in as_seen] == [
            {k: v for k, v in t.items() if k not in strip} for t in should
        ]


def test_cold_add_does_not_parse_the_snapshot(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    JsonStore(path).add(urls(500))
    JsonStore(path).add([NewTask("https://example.com/other")])  # a backup, a journal line
    calls = []
    real = filestore.state_from_document
    monkeypatch.setattr(
        filestore,
        "state_from_document",
        lambda *a: calls.append(1) or real(*a),  # type: ignore[func-returns-value]
    )
    added = JsonStore(path).add([NewTask("https://example.com/v3"), NewTask("https://new/")])
    assert [(a.added, a.id) for a in added] == [(False, 4), (True, 502)]
    assert calls == []
    assert len(JsonStore(path).tasks()) == 502


@pytest.mark.parametrize("seed", range(8))
def test_cold_claim_and_finish_agree_with_a_full_load(tmp_path: Path, seed: int) -> None:
    """A fresh runner records a result and claims the next task from the snapshot's claim
    hint and the journal; it must pick exactly what a store that parsed everything picks
    (priorities, backoff, pauses, cancels, removals, compactions in between)."""
    import random
    import shutil
    import time as clock

    rng = random.Random(seed)
    base = tmp_path / "base" / "queue.json"
    store = JsonStore(base)
    me = Worker.here()
    mine: list[int] = []
    for step in range(rng.randint(10, 60)):
        action = rng.random()
        if action < 0.35:
            store.add(
                [
                    NewTask(f"https://c.example/{step}/{i}", priority=rng.choice([0, 0, 1, 5]))
                    for i in range(rng.randint(1, 30))
                ]
            )
        elif action < 0.6:
            t = store.claim(me, 60)
            if t is not None:
                roll = rng.random()
                if roll < 0.4:
                    store.complete(me, t.id, {"bytes": 1})
                elif roll < 0.6:
                    later = clock.time() + rng.choice([-5, 3600])
                    store.fail(me, t.id, {"code": "network", "message": "x"}, later)
                else:
                    mine.append(t.id)  # still running, ours
        elif action < 0.7:
            ids = [t.id for t in store.tasks(statuses=["queued"])]  # type: ignore[union-attr]
            if ids:
                store.cancel([rng.choice(ids)])
        elif action < 0.8:
            ids = [t.id for t in store.tasks(statuses=["queued", "done"])]  # type: ignore[union-attr]
            if ids:
                store.remove([rng.choice(ids)])
        elif action < 0.85:
            store.set_paused(rng.random() < 0.3)
        elif base.exists():
            store._compact(store._refresh())
    running = [t for t in mine if JsonStore(base).tasks(ids=[t])[0].status == "running"]  # type: ignore[union-attr]
    light_used = 0
    for trial in range(6):
        dirs = []
        for name in ("light", "full"):
            d = tmp_path / f"{name}-{trial}"
            shutil.copytree(base.parent, d)
            dirs.append(d / "queue.json")
        outcome = None
        if running and rng.random() < 0.7:
            tid = running.pop()
            error = None if rng.random() < 0.6 else {"code": "network", "message": "y"}
            outcome = q.Outcome(tid, {"bytes": 2}, error, None)
        lease = 60.0 if rng.random() < 0.8 else None
        probe = JsonStore(dirs[0])
        with probe._locked(load=False):
            start = probe._light_base(2)
            light_used += bool(start and fastpath.light_finish(start, me, outcome, lease))
        shutil.rmtree(dirs[0].parent)
        shutil.copytree(base.parent, dirs[0].parent)
        light, full = JsonStore(dirs[0]), JsonStore(dirs[1])
        full.tasks()  # loaded: the full path
        outcomes = [outcome] if outcome else []
        got = light.finish(me, outcomes, claim=int(lease is not None), lease=lease)
        expected = full.finish(me, outcomes, claim=int(lease is not None), lease=lease)
        assert (got.recorded, [t.id for t in got.claimed]) == (
            expected.recorded,
            [t.id for t in expected.claimed],
        )
        strip = ("updated_at", "started_at", "finished_at", "lease_until")
        seen = [
            {k: v for k, v in t.to_dict().items() if k not in strip}  # type: ignore[union-attr]
            for t in JsonStore(dirs[0]).tasks()
        ]
        should = [
            {k: v for k, v in t.to_dict().items() if k not in strip}  # type: ignore[union-attr]
            for t in JsonStore(dirs[1]).tasks()
        ]
        assert seen == should
    assert light_used >= 3  # the light path is what these trials test
