"""Render caption files to Markdown in many ways and record what came out, so that two
versions of xdl can be compared: `render` writes one JSON line per case (the Markdown's
sha256 and the result line, or the error's code and message); `compare` tells the cases
whose lines differ.

    PYTHONPATH=/path/to/old/tree python tools/same_markdown.py render old.jsonl DIR...
    python tools/same_markdown.py render new.jsonl DIR...
    python tools/same_markdown.py compare old.jsonl new.jsonl

`--generated` adds rolling automatic captions of 0.2 to 200 MB (bench/captions.py) and a
few other generated shapes. Not a test: it needs an old tree to compare with.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

SUFFIXES = {".vtt", ".srt", ".ttml", ".xml", ".dfxp", ".sbv", ".json3", ".srv3", ".static"}


class Pipe(io.RawIOBase):
    """Bytes that cannot be read again (a pipe), a little at a time."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), len(self.data), 1000)
        buffer[:n] = self.data[:n]
        self.data = self.data[n:]
        return n


def mutants(data: bytes) -> Iterator[tuple[str, bytes]]:
    """The file and some of what can happen to a file on its way to a user."""
    yield "as-is", data
    yield "crlf", data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        yield "utf16-bom", text.encode("utf-16")
        yield "utf8-bom", b"\xef\xbb\xbf" + data
        yield "cp1252-tail", data + "\n\n99:00:00.000 --> 99:00:01.000\ncafé\n".encode("cp1252")
        yield "half", data[: len(data) // 2]
    yield "doubled", data + b"\n\n" + data


def layouts(markdown: Any) -> Iterator[tuple[str, Any]]:
    yield "default", markdown.Layout()
    yield "stamps", markdown.Layout(timestamps=True, speakers=False, title="A title")
    yield "short", markdown.Layout(min_words=8, max_words=30, gap=0.5, sound_labels="drop")


def outcome(run: Callable[[], tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    try:
        text, row = run()
    except Exception as e:  # what the user would be told
        code = getattr(e, "code", None)
        return {"error": [code or type(e).__name__, str(e)]}
    return {"md": hashlib.sha256(text.encode()).hexdigest(), "row": row}


def cases(name: str, data: bytes, full: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    from xdl.core import markdown

    def streamed(layout: Any, rolling: Any, chunk: int | None, pipe: bool) -> Any:
        def run() -> tuple[str, dict[str, Any]]:
            sink = io.BytesIO()
            source: Any = io.BufferedReader(Pipe(data)) if pipe else io.BytesIO(data)
            done = markdown.render_stream(source, layout, sink, rolling=rolling, chunk=chunk)
            return sink.getvalue().decode(), markdown.summary("x", None, done).to_dict()

        return run

    def whole(layout: Any, rolling: Any) -> Any:
        def run() -> tuple[str, dict[str, Any]]:
            text, caps, paras = markdown.convert(data, layout, rolling=rolling)
            return text, {"format": caps.format, "words": sum(p.count for p in paras)}

        return run

    for lname, layout in layouts(markdown):
        if not full and lname != "default":
            continue
        for rolling in (None, True, False) if full else (None,):
            for chunk in (None, 997, 65536) if full else (None,):
                for pipe in (False, True) if chunk else (False,):
                    key = f"{name} {lname} rolling={rolling} chunk={chunk} pipe={pipe}"
                    yield key, outcome(streamed(layout, rolling, chunk, pipe))
            if full:
                yield f"{name} {lname} rolling={rolling} whole", outcome(whole(layout, rolling))


def generated() -> Iterator[tuple[str, bytes]]:
    from captions import rolling_vtt

    for size in (200_000, 2_800_000, 15_000_000, 40_000_000, 200_000_000):
        yield f"rolling-{size}", rolling_vtt(size).encode()
    text = rolling_vtt(300_000)
    blocks = text.split("\n\n")
    for n in range(40, len(blocks) - 1, 97):  # blocks of unusual shapes here and there
        blocks[n] = [
            "intro\n" + blocks[n],
            "NOTE a comment\n\n" + blocks[n],
            blocks[n] + "\n\nand what follows a blank line",
            blocks[n] + " <i>Tom</i> &amp; Jerry",
            blocks[n] + "\n",
            blocks[n].replace("00:", "100:", 2),
        ][n % 6]
    yield "unusual-rolling", "\n\n".join(blocks).encode()
    srt = "".join(
        f"{i}\n00:{i // 60 % 60:02d}:{i % 60:02d},000 --> 00:{i // 60 % 60:02d}:{i % 60:02d},900\n"
        f"SPEAKER {i % 3}: line {i}. and more words here\n\n"
        for i in range(1, 30_000)
    )
    yield "labelled-srt", srt.encode()
    yield "labelled-srt-cp1252", (srt + "1\n00:00:01,000 --> 00:00:02,000\ncafé\n").encode("cp1252")


def render(out: Path, dirs: list[str], with_generated: bool) -> int:
    from xdl.core import markdown

    count = 0
    t0 = time.monotonic()
    with out.open("w") as f:

        def emit(key: str, result: dict[str, Any]) -> None:
            nonlocal count
            f.write(json.dumps({"case": key, **result}, ensure_ascii=False) + "\n")
            count += 1

        for d in dirs:
            for path in sorted(Path(d).iterdir()):
                if path.suffix.lower() not in SUFFIXES:
                    continue
                data = path.read_bytes()
                for mname, mdata in mutants(data):
                    for key, result in cases(f"{path.name}:{mname}", mdata, full=True):
                        emit(key, result)
        if with_generated:
            for name, data in generated():
                big = len(data) > 20_000_000
                for key, result in cases(name, data, full=not big and len(data) < 1_000_000):
                    emit(key, result)
                with tempfile.TemporaryDirectory() as tmp:  # a real file: its size is known
                    path = Path(tmp) / "auto.vtt"
                    path.write_bytes(data)
                    del data

                    def run(path: Path = path) -> tuple[str, dict[str, Any]]:
                        row, text = markdown.convert_file(
                            str(path), markdown.MarkdownOptions(), output="-"
                        )
                        return text, row.to_dict() | {"path": None}

                    emit(f"{name} file", outcome(run))
    print(f"{count} cases in {time.monotonic() - t0:.0f} s -> {out}", file=sys.stderr)
    return 0


def compare(a: Path, b: Path) -> int:
    old = [json.loads(line) for line in a.open()]
    new = [json.loads(line) for line in b.open()]
    if [r["case"] for r in old] != [r["case"] for r in new]:
        print("the two runs did not render the same cases", file=sys.stderr)
        return 2
    differ = [(x, y) for x, y in zip(old, new) if x != y]
    for x, y in differ[:20]:
        print(f"differs: {x['case']}\n  old: {x}\n  new: {y}")
    files = {r["case"].split(" ", 1)[0] for r in old}
    print(f"{len(old)} cases over {len(files)} inputs; identical: {len(old) - len(differ)}")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render")
    r.add_argument("out", type=Path)
    r.add_argument("dirs", nargs="*")
    r.add_argument("--generated", action="store_true")
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    args = parser.parse_args()
    if args.command == "render":
        return render(args.out, args.dirs, args.generated)
    return compare(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
