"""Where xdl's time goes: a few costs measured inside one fresh process, for the
"Where the time goes" section of BENCHMARKS.md (run by bench/run.py).

    python bench/diagnose.py BASE_URL

Prints one JSON object; a probe whose xdl function is missing reports null, not a guess.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(base: str) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    block = bytes(range(256)) * 4096  # 1 MiB
    h = hashlib.sha256()
    found["sha256_mb_per_s"] = (
        256 * len(block) / 1e6 / timed(lambda: [h.update(block) for _ in range(256)])
    )
    found["import_yt_dlp_s"] = timed(lambda: __import__("yt_dlp"))
    try:
        from xdl.core import extractors
    except ImportError:
        return found
    probe = getattr(extractors, "extractor_for", None)
    if probe is None:
        found["extractor_for_first_s"] = found["extractor_for_per_url_ms"] = None
        return found
    found["extractor_for_first_s"] = timed(lambda: probe(f"{base}/t/first.txt"))
    n = 50
    found["extractor_for_per_url_ms"] = (
        timed(lambda: [probe(f"{base}/t/diag{i}.txt") for i in range(n)]) / n * 1000
    )
    return found


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9")))
