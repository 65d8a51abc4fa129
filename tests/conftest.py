"""Shared fixtures: the loopback media site, a clean xdl environment, and runners."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import media_site
from xdl.cli.main import cli

# -- make test-fast: the tests that were quick the last time they ran ---------------------

#: Where each test's last time (setup, call and teardown, seconds) is kept, by node id.
DURATIONS = "xdl/durations"
_timed: dict[str, float] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--quick",
        type=float,
        metavar="SECONDS",
        help="Leave out the tests that took longer than SECONDS the last time they ran "
        "(make test-fast; a test never timed runs).",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    limit = config.getoption("--quick")
    if limit is None or getattr(config, "cache", None) is None:
        return
    took: dict[str, float] = config.cache.get(DURATIONS, {})
    slow = [item for item in items if took.get(item.nodeid, 0.0) > limit]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if took.get(item.nodeid, 0.0) <= limit]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _timed[report.nodeid] = _timed.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or getattr(config, "cache", None) is None or not _timed:
        return  # an xdist worker: its controller saw the same reports
    took: dict[str, float] = config.cache.get(DURATIONS, {})
    took.update((name, round(seconds, 3)) for name, seconds in _timed.items())
    config.cache.set(DURATIONS, took)


TESTS = Path(__file__).parent


@pytest.fixture(scope="session")
def site() -> Iterator[Any]:
    """The loopback media site, one per test run."""
    running = media_site.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def extractor_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """yt-dlp's extractor index, built once per test process (~1 s) for every test's own
    cache directory to start with, as a user's has after the first run."""
    from xdl.core import extractors

    path = tmp_path_factory.mktemp("extractor-index") / extractors.CACHE_NAME
    key = extractors.installed_key()
    assert key is not None
    extractors._write(path, key, extractors.Index(extractors.build()))
    return path


@pytest.fixture(autouse=True)
def xdl_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extractor_index: Path) -> Path:
    """Every test gets its own XDL_HOME and working directory; nothing from the user leaks
    in. Its cache holds the extractor index (a hard link: a test replacing it replaces
    the link only)."""
    home = tmp_path / "xdl-home"
    (home / "cache").mkdir(parents=True)
    os.link(extractor_index, home / "cache" / extractor_index.name)
    for name in list(os.environ):
        xdg = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")
        if name.startswith("XDL_") or name in xdg:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDL_HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


@pytest.fixture
def xdl() -> Any:
    """Run xdl in-process with CliRunner: xdl("info", URL, input="...")."""

    def invoke(*args: str, input: str | bytes | None = None) -> Ran:
        result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
        return Ran(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture
def xdl_cmd() -> Any:
    """Run the real console script as a subprocess: xdl_cmd("info", URL, input=b"...")."""

    def run(*args: str, input: bytes | None = None, timeout: float = 120, **kw: Any) -> Ran:
        exe = Path(sys.executable).parent / "xdl"
        proc = subprocess.run(
            [str(exe), *args],
            input=input if input is not None else b"",
            capture_output=True,
            timeout=timeout,
            **kw,
        )
        return Ran(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    return run


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A real PostgreSQL server (tests/pg_server.py), one per test run; skipped only when
    the server's binaries or the driver are not installed, and never in CI."""
    import pg_server as pg

    missing = (
        None if pg.bindir() else "PostgreSQL server binaries not found (apt-get install postgresql)"
    )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing = missing or "psycopg is not installed (pip install 'xdl[postgres]')"
    if missing:
        if os.environ.get("CI"):  # in CI they must run: .ci/run installs the server
            pytest.fail(missing)
        pytest.skip(missing)
    where = pg.bindir()
    assert where is not None
    server = pg.Server(where)
    yield server
    server.destroy()


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """A fresh, empty database on the test server, as a queue URL (with its password)."""
    return str(pg_server.url(pg_server.new_database()))


# -- a queue on both stores ------------------------------------------------------------


@pytest.fixture(params=["json", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the queue is: a JSON file, or a fresh database on the test server."""
    if request.param == "json":
        return str(tmp_path / "queue.json")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def opened(location: str) -> Iterator[Callable[[], Any]]:
    """Open the queue as another process would (no cached state); all closed at the end."""
    from xdl.core.queue import open_store

    stores: list[Any] = []

    def open_one() -> Any:
        stores.append(open_store(location, lock_timeout=5))
        return stores[-1]

    yield open_one
    for s in stores:
        s.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
