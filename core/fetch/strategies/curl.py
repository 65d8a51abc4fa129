"""curl as a downloader: little more than its command line (it writes to our pipe)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import files

if TYPE_CHECKING:
    from ..job import Job
    from ..result import FetchResult


class Curl:
    name = "curl"
    media = False
    missing = "--strategy curl: curl not on PATH"

    def available(self) -> bool:
        return files.on_path("curl")

    def run(self, job: Job) -> list[FetchResult]:
        net = job.o.net
        cmd = ["curl", "--fail", "--location", "--silent", "--show-error", "--globoff"]
        cmd += ["--proto", "=http,https", "--proto-redir", "=http,https"]
        cmd += ["--retry", str(job.o.retries), "--connect-timeout", "15"]
        if net.timeout:
            cmd += ["--speed-time", str(-int(-net.timeout // 1)), "--speed-limit", "1"]  # whole s
        cmd += ["--user-agent", net.user_agent or files.user_agent()]
        for k, v in net.headers.items():
            cmd += ["--header", f"{k}: {v}"]
        if net.cookies:
            cmd += ["--cookie", net.cookies]
        if net.proxy:
            cmd += ["--proxy", net.proxy]
        return files.piped(job, self.name, [*cmd, "--", job.url])


CURL = Curl()
