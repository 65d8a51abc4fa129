"""Time one queue operation in-process, as one `xdl queue ...` call would do it, without
the interpreter start-up and the imports (bench/run.py runs this in a fresh process).

    python bench/queue_probe.py QUEUE_FILE add|claim|summary [URL]

Prints one JSON line: {"seconds": <the cold operation: open the store, load the snapshot
and journal, lock, change, write>, "warm": <the same operation again in this process>}.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    path, op = argv[0], argv[1]
    url = argv[2] if len(argv) > 2 else "http://127.0.0.1/t/probe.txt"
    from xdl.core.queue import JsonStore, NewTask, QueueStore, Worker

    worker = Worker.here()
    result = {"path": "/dev/null", "bytes": 14, "sha256": "0" * 64, "strategy": "http"}

    def once(store: QueueStore, n: int) -> None:
        if op == "add":
            added = store.add([NewTask(f"{url}?{n}" if n else url)])
            assert added and added[0].added, added
        elif op == "claim":
            task = store.claim(worker, 300.0)
            assert task is not None, "nothing to claim"
            assert store.complete(worker, task.id, result)
        elif op == "summary":
            store.summary()
        else:
            raise SystemExit(f"unknown operation {op}")

    t0 = time.perf_counter()
    store = JsonStore(path)
    once(store, 0)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    once(store, 1)
    warm = time.perf_counter() - t0
    print(json.dumps({"seconds": cold, "warm": warm}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
