"""wget as a downloader: little more than its command line (it writes to our pipe)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import files

if TYPE_CHECKING:
    from ..job import Job
    from ..result import FetchResult


class Wget:
    name = "wget"
    media = False
    missing = "--strategy wget: wget not on PATH"

    def available(self) -> bool:
        return files.on_path("wget")

    def run(self, job: Job) -> list[FetchResult]:
        net = job.o.net
        cmd = ["wget", "-nv", "-O", "-", f"--tries={job.o.retries + 1}"]
        cmd += [f"--timeout={net.timeout or files.default_timeout():g}"]
        cmd += [f"--user-agent={net.user_agent or files.user_agent()}"]
        cmd += [f"--header={k}: {v}" for k, v in net.headers.items()]
        if net.cookies:
            cmd += [f"--load-cookies={net.cookies}"]
        if net.proxy:
            cmd += ["-e", "use_proxy=yes", "-e", f"http_proxy={net.proxy}"]
            cmd += ["-e", f"https_proxy={net.proxy}"]
        return files.piped(job, self.name, [*cmd, "--", job.url])


WGET = Wget()
