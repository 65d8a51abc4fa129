"""A real PostgreSQL server for the tests: Debian's binaries, `initdb` + `pg_ctl` in a
temporary directory on a free port, run as `nobody` when the tests run as root (the server
refuses root). TCP logins need a password (scram), so the tests see how xdl treats one.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "xdl"
PASSWORD = "s3cret-Pw-7"


def bindir() -> Path | None:
    """Where initdb and pg_ctl are: PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and Path(found).resolve().with_name("pg_ctl").exists():
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        """`durable`: fsync and full-page writes on, as a production server runs (the
        benchmark); off by default, the tests only need the semantics."""
        self.bin = bin_dir
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="xdl-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "nobody", "nogroup")
        self.log = self.root / "server.log"
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_root:
            shutil.chown(pwfile, "nobody", "nogroup")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            "--pwfile",
            str(pwfile),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self.start()
        self.databases = 0

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / tool), *args]
        if self.as_root:
            cmd = ["runuser", "-u", "nobody", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd=self.root)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def url(self, db: str, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        self.databases += 1
        name = f"q{self.databases}_{os.getpid()}"
        deadline = time.monotonic() + 30
        while True:
            done = self._run(
                "psql",
                "-h",
                str(self.root),
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                "postgres",
                "-c",
                f"CREATE DATABASE {name}",
                check=False,
            )
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot create a database: {done.stderr}")
            time.sleep(0.2)  # just restarted
        return name

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
