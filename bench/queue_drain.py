"""Drain a queue with P processes × W worker threads and no download: claim + complete
throughput through the store API, one task per write (`xdl queue run` writes up to -j
at once: this is the store's worst case; bench/run.py runs this).

    python bench/queue_drain.py QUEUE PROCESSES WORKERS     # QUEUE: a path or a database URL

Each process opens the store once (as one `xdl queue run -j W` does) and waits until
every process is connected; then each worker loops on `store.finish(...)`: record the
task it holds as done and claim the next one in the same write, until nothing is left.
Prints one JSON line: {"seconds": <from the start signal to the last task done>,
"tasks": <tasks completed>, "per_process": [...]}.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

RESULT = {"path": "/dev/null", "bytes": 14, "sha256": "0" * 64, "strategy": "http"}


def child(location: str, workers: int) -> int:
    """One process: connect, say ready, wait for `go` on stdin, drain, print the count."""
    from xdl.core.queue import Outcome, Worker, open_store

    store = open_store(location)
    store.is_paused()  # connected (and the schema checked) before the clock starts
    me = Worker.here()
    counts = [0] * workers
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2

    def drain(k: int) -> None:
        claimed = store.finish(me, claim=1, lease=300.0).claimed
        while claimed:
            (task,) = claimed
            finished = store.finish(me, [Outcome(task.id, RESULT)], claim=1, lease=300.0)
            assert finished.recorded == (True,), f"task {task.id} was not recorded"
            counts[k] += 1
            claimed = finished.claimed

    threads = [threading.Thread(target=drain, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    print(json.dumps({"tasks": sum(counts)}), flush=True)
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        return child(argv[1], int(argv[2]))
    location, processes, workers = argv[0], int(argv[1]), int(argv[2])
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", location, str(workers)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for p in procs:
        assert p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            raise SystemExit("a drain process did not start")
    t0 = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    per_process = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a drain process exited {p.returncode}")
        per_process.append(json.loads(out.strip().splitlines()[-1])["tasks"])
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "tasks": sum(per_process), "per_process": per_process}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
