"""How to reach the network: options shared by every command that does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NetworkOptions:
    """How to reach the network: shared by every command that does."""

    timeout: float | None = None
    proxy: str | None = None
    user_agent: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: str | None = None
    retries: int | None = None

    def ytdlp_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.timeout is not None:
            params["socket_timeout"] = self.timeout
        if self.proxy:
            params["proxy"] = self.proxy
        headers = dict(self.headers)
        if self.user_agent:
            headers["User-Agent"] = self.user_agent
        if headers:
            params["http_headers"] = headers
        if self.cookies:
            params["cookiefile"] = self.cookies
        if self.retries is not None:
            params["retries"] = params["extractor_retries"] = self.retries
            params["fragment_retries"] = self.retries
        return params
