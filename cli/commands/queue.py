"""`xdl queue`: a persistent, file-locked download queue (SPEC §7)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click
from click.shell_completion import CompletionItem

from xdl.cli.config import profile_option, shared
from xdl.cli.options import (
    Seconds,
    compose,
    download_options,
    exec_options,
    input_options,
    output_options,
    read_inputs,
    table_mode,
    verbosity_options,
    with_hook,
)
from xdl.cli.output import Output
from xdl.cli.progress import Reporter, progress_option, reporter
from xdl.core import feeds
from xdl.core.archive import Archive
from xdl.core.queue import STATUSES

if TYPE_CHECKING:
    from xdl.core.fetch import FetchOptions
    from xdl.core.queue import QueueStore
    from xdl.core.queue.monitor import Monitor
    from xdl.core.queue.run import Download, RunOptions, RunReport

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("xdl")
#: --watch's status lines: at warning level so that they show without -v (-q hides them).
status_log = logging.getLogger("xdl.status")

ADD_CHUNK = 10000
COLUMNS = [
    ("id", "ID"),
    ("status", "STATUS"),
    ("priority", "PRI"),
    ("attempts", "TRIES"),
    ("url", "URL"),
    ("path", "PATH"),
]
SUMMARY_COLUMNS = [
    ("total", "TOTAL"),
    ("queued", "QUEUED"),
    ("running", "RUNNING"),
    ("done", "DONE"),
    ("failed", "FAILED"),
    ("cancelled", "CANCELLED"),
    ("bytes_done", "BYTES"),
    ("active_workers", "WORKERS"),
    ("oldest_queued", "OLDEST QUEUED"),
    ("paused", "PAUSED"),
    ("paused_hosts", "WAITING FOR"),
]


def queue_options(f: F) -> F:
    """--queue FILE|URL (XDL_QUEUE) and --lock-timeout, on every queue command."""
    f = click.option(
        "--lock-timeout",
        type=Seconds(min=0),
        default=30.0,
        show_default=True,
        metavar="SECONDS",
        help="Give up (exit 3) when another xdl holds the queue's lock this long (a "
        "database: when a lost connection cannot be made again this long).",
    )(f)
    return click.option(
        "--queue",
        "queue_path",
        type=click.Path(dir_okay=False),
        envvar="XDL_QUEUE",
        metavar="FILE|URL",
        help="The queue: a JSON file, or postgresql://USER@HOST:PORT/DB for one queue shared "
        "by several hosts [env XDL_QUEUE; default: queue.json in the XDG data dir].",
    )(f)


def _store(queue_path: str | None, lock_timeout: float) -> QueueStore:
    from xdl.core.queue import open_store

    return open_store(queue_path, lock_timeout)


def complete_ids(*statuses: str) -> Callable[[click.Context, click.Parameter, str], list[Any]]:
    """Shell completion for task IDs: read from the queue file, never an error."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        try:
            store = _store(ctx.params.get("queue_path"), 1.0)
            rows = store.task_ids()
        except Exception:
            return []
        items = [
            CompletionItem(str(tid), help=f"{status} {url}")
            for tid, status, url in rows
            if str(tid).startswith(incomplete) and (not statuses or status in statuses)
        ]
        return items[-200:]

    return complete


def _parse_ids(values: Iterable[str], out: Output) -> list[int]:
    from xdl.core.errors import BadInput
    from xdl.core.inputs import quote

    ids = []
    for value in values:
        text = value.strip().lstrip("#")
        if text.isdigit() and int(text) > 0:
            ids.append(int(text))
        else:
            out.fail(value, BadInput(f"not a task ID: {quote(value)} (IDs are numbers)"))
    return ids


def _emit_changes(out: Output, changes: Iterable[Any]) -> None:
    from xdl.core.errors import NotFound

    for change in changes:
        if isinstance(change, int):
            out.fail(str(change), NotFound(f"no task {change} in the queue"), id=change)
        else:
            out.emit(change)


@click.group()
def command() -> None:
    """A persistent download queue: add URLs now, download them later, safely.

    The queue is one JSON file (--queue FILE, XDL_QUEUE, default queue.json in the XDG
    data dir) changed only under a file lock and written atomically, so several xdl
    processes can add and run at once, and a crash never loses or tears it. A queue file
    that cannot be read is never overwritten: commands exit 3 and `xdl queue restore`
    brings back a backup.

    With --queue postgresql://USER@HOST:PORT/DB (or XDL_QUEUE) the same queue lives in a
    PostgreSQL database that runners on several hosts share (pip install 'xdl[postgres]';
    the password from libpq's PGPASSWORD or ~/.pgpass, never shown): claims take row
    locks, a runner that lost its lease can no longer write, and cancels reach runners
    on other hosts within seconds. Back it up with pg_dump.

    \b
    Examples:
      xdl info --flat https://example.com/feed.xml | xdl queue add --audio
      xdl queue run -j 4
      xdl queue status --summary
      xdl queue retry --failed && xdl queue run
    """


@command.command("add")
@input_options("url")
@profile_option
@download_options
@click.option(
    "--priority", type=int, default=0, show_default=True, help="Higher runs first, then oldest."
)
@click.option("--force", is_flag=True, help="Add a URL even when it is already queued or done.")
@queue_options
@verbosity_options
def add(
    inputs: tuple[str, ...],
    batch_file: IO[bytes] | None,
    options: FetchOptions,
    priority: int,
    force: bool,
    queue_path: str | None,
    lock_timeout: float,
) -> int:
    """Add URLs to the queue, with the download options they will be fetched with.

    Takes the same options as `xdl fetch`; they are stored with each task (the output
    directory as an absolute path), so `queue run` can run later from anywhere. A URL
    already queued, running, done or cancelled is not added twice (`"added": false` and
    the `existing` task's ID) unless --force, so a cron job can re-add a feed safely; a
    failed one is queued again (`"requeued": true`).

    A feed entry's line (`xdl info --flat FEED`) keeps its fields with the task, so it
    is named and tagged as `xdl fetch` would; one already in the --archive (by its guid)
    is not added: `"skipped": "archive"`.

    Fields: id, url, status, added, existing (the task already there), requeued, skipped.

    \b
    Examples:
      xdl queue add https://example.com/a.mp4 https://example.com/b.mp4
      xdl queue add -a urls.txt --audio -o ~/Podcasts --priority 5
      xdl info --flat https://example.com/feed.xml | xdl queue add
    """
    from xdl.core import errors
    from xdl.core.queue import NewTask
    from xdl.core.stopping import SignalsStop, blocking, take_signals

    store = _store(queue_path, lock_timeout)
    plain = options.for_input(None)
    base = plain.to_dict()
    out = Output(None, None)
    pending: list[Any] = []
    good = 0

    def flush() -> None:
        items = [p for p in pending if not isinstance(p, (tuple, dict))]
        with blocking():  # another process's lock: a signal still ends the wait
            added = iter(store.add(items, force=force)) if items else iter(())
        with out.together():  # a chunk's lines are ready at once: one write, not 10,000
            for p in pending:
                if isinstance(p, tuple):
                    out.fail(p[0], p[1])
                elif isinstance(p, dict):
                    out.emit(p)
                else:
                    out.emit(next(added))
        pending.clear()

    archive = Archive(options.archive) if options.archive else None

    def read(item: Any) -> bool:
        """One input line into `pending`; True when it is a task to add."""
        if item.error is not None:
            pending.append((item, item.error))
            return False
        if archive is not None and feeds.archive_key(item.fields) in archive:
            pending.append({"ok": True, "url": item.value, "skipped": "archive"})
            return False  # a feed entry downloaded already, whatever its URL's token today
        try:  # the one rule `xdl fetch` uses for a line's fields (sha256, template...)
            task_options = options.for_input(item.fields)
        except errors.XdlError as e:
            pending.append((item, e))
            return False
        stored = base if task_options is plain else task_options.to_dict()
        if entry := feeds.entry_line(item.fields):  # a feed entry: named and tagged as fetch
            stored = {**stored, "entry": entry}
        title = item.get("title")
        pending.append(
            NewTask(item.value, stored, priority, title if isinstance(title, str) else None)
        )
        return True

    # Ctrl-C (SIGTERM) stops the reading: what was read is added, every task added has
    # its line, then exit 130 (143). Raised where it landed, it lost the lines of a chunk
    # already added (the attack: 10,000 tasks added, 6,773 lines).
    take_signals()
    signals = SignalsStop(threading.Event()).take()
    source = read_inputs(inputs, batch_file)
    landed: KeyboardInterrupt | None = None
    try:
        with store.bulk():  # the snapshot is written once, at the end
            while not signals.stop.is_set():
                try:
                    item = signals.next_input(source)  # a silent pipe: a signal ends it
                except KeyboardInterrupt as e:  # (SIGTERM's too) the lines read from the
                    landed = e  # pipe are still added: its writer cannot send them again
                    break
                if item is None:
                    break
                if read(item):
                    good += 1
                    if good % ADD_CHUNK == 0:
                        flush()
            flush()
    finally:
        signals.give_back()
    if landed is not None:
        raise landed
    signals.raise_signalled()  # as the signal would have: exit 130 (143)
    return out.close()


#: What run_options' options hand over as RunOptions; --per-host and --sleep, declared among
#: them, pass through to the command: they are the downloader's.
_RUN_PARAMS = ("jobs", "watch", "max_tasks", "lease", "retries", "backoff", "max_wait", "poll")


def run_options(f: F) -> F:
    """What the runner takes (-j, --watch, --lease, retries...), handed over as `options`."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from xdl.core.queue.run import RunOptions

        kwargs["options"] = RunOptions(**{name: kwargs.pop(name) for name in _RUN_PARAMS})
        return f(*args, **kwargs)

    return compose(
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(1, 64),
            default=1,
            show_default=True,
            help="Workers.",
        ),
        click.option("--watch", is_flag=True, help="Keep polling for new tasks until interrupted."),
        click.option(
            "--max-tasks",
            type=click.IntRange(min=1),
            metavar="N",
            help="Stop after taking N tasks.",
        ),
        click.option(
            "--lease",
            type=Seconds(min=0.5),
            default=60.0,
            show_default=True,
            metavar="SECONDS",
            help="A running task whose runner stops renewing it this long is taken back.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(min=0),
            default=3,
            show_default=True,
            help="Retry a failed download this many times (not-found and the like: never).",
        ),
        click.option(
            "--backoff",
            type=Seconds(min=0),
            default=10.0,
            show_default=True,
            metavar="SECONDS",
            help="Wait before the first retry; doubled for each one after.",
        ),
        click.option(
            "--per-host",
            type=click.IntRange(min=1),
            metavar="N",
            help="At most N downloads from one site at once, across every runner of this queue"
            " (a task added with a lower --per-host keeps its own).",
        ),
        click.option(
            "--sleep",
            type=Seconds(min=0),
            default=0.0,
            metavar="SECONDS",
            help="At least this long between two requests to one site, across every runner.",
        ),
        click.option(
            "--max-wait",
            type=Seconds(min=0, max=30 * 86400.0),
            default=86400.0,
            show_default=True,
            metavar="SECONDS",
            help="A task whose site refuses it (429, Retry-After) waits for the site without"
            " spending an attempt, this long at most; then it fails rate_limited.",
        ),
        click.option(
            "--poll",
            type=Seconds(min=0.05),
            default=1.0,
            show_default=True,
            metavar="SECONDS",
            help="How often to look for new tasks when there are none.",
        ),
    )(wrapper)  # type: ignore[return-value]


@command.command("run")
@run_options
@click.option(
    "--status-every",
    type=Seconds(min=0),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="With --watch: log a status line (the queue's counts, this run's) this often; 0: "
    "never. With --watch every stderr line starts with its UTC time.",
)
@click.option(
    "--metrics",
    "metrics_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="After each task, write the queue's counts, bytes done, this run's failures and "
    "retries and its last success time to FILE in Prometheus text format, atomically "
    "(for node_exporter's textfile collector: name it *.prom).",
)
@exec_options
@progress_option
@queue_options
@verbosity_options
def run(
    options: RunOptions,
    per_host: int | None,
    sleep: float,
    status_every: float,
    metrics_file: str | None,
    exec_cmd: str | None,
    exec_failed: str | None,
    progress: str,
    queue_path: str | None,
    lock_timeout: float,
) -> int:
    """Download queued tasks with N workers, one result line per finished task.

    Claims tasks atomically (two runners never take the same one) and downloads them with
    the same engine as `xdl fetch`. While downloads are short (under 1 s on average), up
    to -j more tasks are claimed ahead (status: running) and results are written -j at a
    time, each within 50 ms; not while a download runs long (a task held ahead and not
    started within 2 s goes back to queued). Without --watch it drains the queue and
    exits: 0 when every task it took is done, 1 when a task ended failed during the run,
    whatever the reason (the cron shape). Failures are
    retried with exponential backoff; tasks of a runner that died are taken back (at
    once when its pid is gone from this host's boot and PID namespace, else when its
    lease expires) without using
    up --retries: such losses count in `lost`, and a task fails (worker_lost) only after
    10 of them. SIGINT/SIGTERM put in-flight
    tasks back to queued, keeping their .part files, then exit 130/143. At a terminal
    a bar per running download and an overall count show on stderr (nothing in a pipe
    or cron); a running task's bytes so far reach `queue status` with each lease renewal.

    Fields: the `xdl fetch` result (ok, url, path, bytes, sha256, strategy, title, id
    (the media's), files, error...) plus task (the task's number) and attempt (1 for
    the first try of this task), exec_failed (with --exec: the hook that failed).

    Progress events (--progress json, on stderr): as `xdl fetch`'s, with task; a task
    that will be retried keeps its events open until its last attempt's done.

    \b
    Examples:
      xdl queue run -j 4
      xdl queue run --exec 'cp {} /mnt/archive/'
      xdl queue run --watch --lease 120
      xdl queue run --watch --status-every 60 --metrics /var/lib/node_exporter/xdl.prom
      */15 * * * * xdl queue run -q >> ~/fetched.jsonl
    """
    from xdl.core.queue.run import fetch_download

    store = _store(queue_path, lock_timeout)
    ctx = shared()
    ctx.budget.shared = store.host_board(options.lease)  # one budget per site for every runner
    out = Output(None, None)
    quiet = bool(click.get_current_context().meta.get("xdl.quiet"))
    with _service_logs(options.watch):
        total = None
        if progress == "bars" and not options.watch:  # the overall bar: what is queued now
            total = store.summary().counts.get("queued", 0)
            total = min(total, options.max_tasks) if options.max_tasks else total
        bars = reporter(progress, total, ctx.budget)
        from xdl.core.queue.monitor import Monitor

        every = status_every if options.watch and not quiet else 0
        monitor = Monitor(store, ctx.budget, metrics_file, every)
        try:
            report = _run_and_print(
                store,
                options,
                functools.partial(fetch_download, per_host=per_host, sleep=sleep, ctx=ctx),
                out,
                bars,
                monitor,
                exec_cmd,
                exec_failed,
            )
        finally:
            if bars:
                bars.close()
    code = out.close()
    return max(code, 1) if report.failed else code


def _run_and_print(
    store: QueueStore,
    opts: RunOptions,
    download: Download,
    out: Output,
    bars: Reporter | None,
    monitor: Monitor,
    exec_cmd: str | None,
    exec_failed: str | None,
) -> RunReport:
    """Iterate the run (as `xdl fetch` iterates `fetch_many`): print each task's line,
    keep the bars, the metrics and the status lines. SIGINT/SIGTERM stop the run; what
    it records meanwhile is still printed, then the interrupt is raised again."""
    from xdl.core.queue.run import RunReport, run_queue
    from xdl.core.stopping import take_signals

    stop = threading.Event()
    take_signals()  # Ctrl-C stops the run; every line still comes, then exit 130
    events = iter(
        run_queue(
            store,
            download,
            options=opts,
            stop=stop,
            progress=(
                (lambda t, key, done, total: bars.update(t.url, key, done, total, t.id))
                if bars
                else None
            ),
        )
    )
    report = RunReport(0, 0, 0, 0, False)
    interrupt: KeyboardInterrupt | None = None
    while True:
        try:
            event = next(events)
            if isinstance(event, RunReport):
                report = event
                monitor.tallied(event)
            else:
                monitor.tallied(event.report)
                if event.final:
                    row = event.row
                    if bars:
                        bars.finished(row, row.get("task"))
                    row = with_hook(row, exec_cmd, exec_failed)
                    monitor.emitted(row)
                    if bars:
                        with bars.above():
                            out.emit(row)
                    else:
                        out.emit(row)
            monitor.tick()
        except StopIteration:
            break
        except KeyboardInterrupt as e:  # the run stops its workers, we keep reading
            stop.set()
            interrupt = interrupt or e
    monitor.tick()
    if interrupt is not None:
        raise interrupt
    return report


@contextlib.contextmanager
def _service_logs(watch: bool) -> Iterator[None]:
    """With --watch (a service), every stderr line starts with its UTC time."""
    import logging

    handlers = logging.getLogger("xdl").handlers
    kept = [(h, h.formatter) for h in handlers]
    if watch:
        stamped = logging.Formatter("%(asctime)s xdl: %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        stamped.converter = time.gmtime
        for h, _ in kept:
            h.setFormatter(stamped)
    try:
        yield
    finally:
        for h, formatter in kept:
            h.setFormatter(formatter)


@command.command("status")
@click.argument("ids", nargs=-1, metavar="[ID]...", shell_complete=complete_ids())
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only tasks with this status (repeatable).",
)
@click.option("--summary", is_flag=True, help="One line: counts, bytes, domains, workers.")
@output_options
@queue_options
@verbosity_options
def status(
    ids: tuple[str, ...],
    statuses: tuple[str, ...],
    summary: bool,
    as_json: bool | None,
    queue_path: str | None,
    lock_timeout: float,
) -> int:
    """Show tasks, one line each (a table on a terminal), or a --summary line.

    Fields: id, url, status, priority, attempts, lost (runs that died holding it), title,
    path, bytes, sha256, strategy,
    last_error, added_at, updated_at, started_at, finished_at, next_attempt_at, worker
    (host, pid, runner; boot and pidns: where that pid is one), lease_until, options.
    With --summary: queue, total, a count per status (queued, running, done, failed,
    cancelled), bytes_done, domains (tasks per domain), oldest_queued, active_workers,
    workers, paused, paused_hosts (sites that refused requests, and until when every
    runner waits for them).

        \b
        Examples:
          xdl queue status
          xdl queue status --status failed | jq -r '.url + "  " + .last_error.message'
          xdl queue status --summary | jq .done
    """
    store = _store(queue_path, lock_timeout)
    if summary:
        out = Output(table_mode(as_json), SUMMARY_COLUMNS, key="queue")
        paused = store.host_board().paused()
        out.emit(dataclasses.replace(store.summary(), paused_hosts=paused))
        return out.close()
    out = Output(table_mode(as_json), COLUMNS, key="id")
    if ids:
        _emit_changes(out, store.tasks(ids=_parse_ids(ids, out)))
    else:
        for task in store.tasks(statuses=statuses or None):
            out.emit(task)
    return out.close()


@command.command("retry")
@click.argument(
    "ids", nargs=-1, metavar="[ID]...", shell_complete=complete_ids("failed", "cancelled")
)
@click.option("--failed", "all_failed", is_flag=True, help="Retry every failed task.")
@queue_options
@verbosity_options
def retry(
    ids: tuple[str, ...], all_failed: bool, queue_path: str | None, lock_timeout: float
) -> int:
    """Queue failed or cancelled tasks again, their attempts reset.

    Fields: id, url, status, action, skipped (why nothing was done to it).

    \b
    Examples:
      xdl queue retry 12 15
      xdl queue retry --failed && xdl queue run
    """
    if not ids and not all_failed:
        raise click.UsageError("give task IDs, or --failed for every failed task")
    out = Output(None, None, key="id")
    parsed = _parse_ids(ids, out)
    store = _store(queue_path, lock_timeout)
    if all_failed:
        _emit_changes(out, store.retry(None))
    if parsed:
        _emit_changes(out, store.retry(parsed))
    return out.close()


def _ids_command(name: str, doc: str, statuses: tuple[str, ...]) -> None:
    @command.command(name, help=doc)
    @click.argument(
        "ids", nargs=-1, required=True, metavar="ID...", shell_complete=complete_ids(*statuses)
    )
    @queue_options
    @verbosity_options
    def change(ids: tuple[str, ...], queue_path: str | None, lock_timeout: float) -> int:
        out = Output(None, None, key="id")
        parsed = _parse_ids(ids, out)
        if parsed:
            store = _store(queue_path, lock_timeout)
            _emit_changes(out, getattr(store, name)(parsed))
        return out.close()


_ids_command(
    "cancel",
    """Cancel queued or running tasks (a runner stops a cancelled download).

    Fields: id, url, status, action, skipped (why nothing was done to it).

    \b
    Examples:
      xdl queue cancel 12 13
      xdl queue status --status queued | jq 'select(.priority<0).id' | xargs xdl queue cancel
    """,
    ("queued", "running"),
)
_ids_command(
    "remove",
    """Delete tasks from the queue (cancel a running one first). Files stay on disk.

    Fields: id, url, status, action, skipped (why nothing was done to it).

    \b
    Examples:
      xdl queue remove 12
      xdl queue status --status cancelled | jq .id | xargs xdl queue remove
    """,
    (),
)


@command.command("clear")
@click.option("--done", is_flag=True, help="Delete done tasks.")
@click.option("--failed", is_flag=True, help="Delete failed tasks.")
@click.option("--cancelled", is_flag=True, help="Delete cancelled tasks.")
@queue_options
@verbosity_options
def clear(
    done: bool, failed: bool, cancelled: bool, queue_path: str | None, lock_timeout: float
) -> int:
    """Delete finished tasks: done, failed and cancelled ones, or only those asked for.

    Queued and running tasks are never cleared. Downloaded files stay on disk.

    Fields: queue, cleared (how many tasks), statuses.

    \b
    Examples:
      xdl queue clear --done
      xdl queue clear
    """
    chosen = [s for s, on in (("done", done), ("failed", failed), ("cancelled", cancelled)) if on]
    chosen = chosen or ["done", "failed", "cancelled"]
    store = _store(queue_path, lock_timeout)
    n = store.clear(chosen)
    out = Output(None, None, key="queue")
    out.emit({"ok": True, "queue": store.name, "cleared": n, "statuses": chosen})
    return out.close()


def _pause_command(name: str, paused: bool, doc: str) -> None:
    @command.command(name, help=doc)
    @queue_options
    @verbosity_options
    def change(queue_path: str | None, lock_timeout: float) -> int:
        store = _store(queue_path, lock_timeout)
        out = Output(None, None, key="queue")
        out.emit({"ok": True, "queue": store.name, "paused": store.set_paused(paused)})
        return out.close()


_pause_command(
    "pause",
    True,
    """Stop runners from taking new tasks; tasks already running finish.

    Fields: queue, paused.

    \b
    Examples:
      xdl queue pause
    """,
)
_pause_command(
    "resume",
    False,
    """Let runners take tasks again after `xdl queue pause`.

    Fields: queue, paused.

    \b
    Examples:
      xdl queue resume && xdl queue run
    """,
)


@command.command("backups")
@queue_options
@verbosity_options
def backups(queue_path: str | None, lock_timeout: float) -> int:
    """List the queue's backups, newest first.

    A backup is taken before a change at most every 10 minutes of activity; the last 10
    are kept, in QUEUE.backups/ next to the queue file.

    Fields: backup (its name), path, created_at, bytes.

    \b
    Examples:
      xdl queue backups
      xdl queue restore "$(xdl queue backups | jq -r .backup | sed -n 2p)"
    """
    out = Output(None, None, key="path")
    for backup in _store(queue_path, lock_timeout).backups():
        out.emit(backup)
    return out.close()


@command.command("restore")
@click.argument("backup", required=False)
@queue_options
@verbosity_options
def restore(backup: str | None, queue_path: str | None, lock_timeout: float) -> int:
    """Put a backup (default: the newest) in place of the queue file.

    Nothing is thrown away: a queue file that does not parse is moved aside as
    QUEUE.corrupt-TIMESTAMP, and a healthy one is backed up first.

    Fields: queue, restored (the backup's path), tasks, kept (where the old queue went).

    \b
    Examples:
      xdl queue restore
      xdl queue restore queue-20261121T101500.000000Z.json
    """
    out = Output(None, None, key="queue")
    out.emit(_store(queue_path, lock_timeout).restore(backup))
    return out.close()
