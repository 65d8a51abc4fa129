"""A queue URL's password is never printed (SPEC §3): not by a queue command, not by
`doctor`, not at -v, not when libpq cannot even parse the URL. One function names a queue
for people (`core.queue.location.redact`); these tests read every output for the secret."""

from __future__ import annotations

from typing import Any

import pytest

import pg_server as pg
from xdl.core.errors import QueueUnavailable
from xdl.core.queue.location import check_url, redact, scrub

#: URLs whose password libpq cannot decode (its message quoted it), and the secret in each.
MALFORMED = [
    ("postgresql://u:50%off@127.0.0.1/db", "50%off"),
    ("postgresql://u:p%00w@127.0.0.1/db", "p%00w"),
    ("postgres://u:sec%zzret@127.0.0.1:5432/db", "sec%zzret"),
    ("postgresql://u@127.0.0.1/db?password=half%2", "half%2"),
]
#: Every command that opens the queue, with what it needs besides --queue.
COMMANDS = [
    ("queue", "add", "https://a.example/v"),
    ("queue", "status"),
    ("queue", "status", "--summary", "-v"),
    ("queue", "run", "-v"),
    ("queue", "cancel", "1"),
    ("queue", "retry", "1"),
    ("queue", "remove", "1"),
    ("queue", "clear"),
    ("queue", "pause"),
    ("queue", "resume"),
    ("queue", "backups"),
    ("queue", "restore"),
]


@pytest.mark.parametrize(("url", "secret"), MALFORMED)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_a_url_libpq_cannot_parse_is_exit_3_without_the_password(
    xdl: Any, url: str, secret: str, command: tuple[str, ...]
) -> None:
    ran = xdl(*command, "--queue", url)
    assert ran.exit_code == 3, ran.stderr
    assert secret not in ran.stdout + ran.stderr
    assert ran.stdout == ""
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith(f"xdl: error: the queue {redact(url)} is not a valid URL: its ")
    assert "malformed percent-escape" in line and "%25" in line


@pytest.mark.parametrize(("url", "secret"), MALFORMED)
def test_doctor_names_a_malformed_queue_url_without_its_password(
    xdl: Any, url: str, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDL_QUEUE", url)
    ran = xdl("doctor", "--json", "-v")
    assert secret not in ran.stdout + ran.stderr
    (queue,) = [line for line in ran.lines if line["check"] == "queue"]
    assert queue["status"] == "warn" and "not a valid URL" in queue["message"]
    assert queue["path"] == redact(url)


def test_a_url_libpq_quotes_whole_is_shown_redacted(xdl: Any) -> None:
    """libpq's own parse errors quote the whole URI: that text is scrubbed too."""
    pytest.importorskip("psycopg")
    ran = xdl("queue", "status", "--queue", "postgresql://u:hunter22@[::1/db")
    assert ran.exit_code == 3
    assert "hunter22" not in ran.stdout + ran.stderr
    assert "postgresql://u@[::1/db" in ran.stderr


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("/var/q.json", "/var/q.json"),
        ("postgresql://h/db", "postgresql://h/db"),
        ("postgresql://u@h:5/db", "postgresql://u@h:5/db"),
        ("postgresql://u:pw@h/db", "postgresql://u@h/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u@h/db"),
        ("postgresql://u:pa/ss@h/db", "postgresql://u@h/db"),
        ("postgresql://u:pa?ss@h/db", "postgresql://u@h/db"),
        ("postgresql://u:50%off@h/db", "postgresql://u@h/db"),
        ("postgresql://u:pw@[::1/db", "postgresql://u@[::1/db"),
        ("postgresql://h/db?sslmode=require&password=pw", "postgresql://h/db?sslmode=require"),
        ("postgresql://h/db?user=me@corp&PASSWORD=pw", "postgresql://h/db?user=me@corp"),
        ("postgres://u:pw@h/db#frag", "postgres://u@h/db"),
    ],
)
def test_redact(location: str, shown: str) -> None:
    assert redact(location) == shown


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("postgresql://u:50%off@h/db", "password"),
        ("postgresql://u:p%00w@h/db", "password"),
        ("postgresql://u%zz:pw@h/db", "user name"),
        ("postgresql://u:pw@h/d%b", "host or database name"),
        ("postgresql://h/db?password=50%", "query"),
    ],
)
def test_check_url_names_the_part_not_its_text(url: str, part: str) -> None:
    with pytest.raises(QueueUnavailable) as raised:
        check_url(url)
    assert f"its {part} has a malformed percent-escape" in raised.value.message
    assert raised.value.exit_code == 3


@pytest.mark.parametrize(
    "url", ["postgresql://u:50%25off@h/db", "postgresql://u:p%40w@h/db?sslmode=require"]
)
def test_check_url_passes_well_formed_escapes(url: str) -> None:
    check_url(url)


def test_scrub_takes_the_password_out_of_a_driver_s_words() -> None:
    url = "postgresql://u:50%off@h/db"
    assert scrub('invalid percent-encoded token: "50%off"', url) == (
        'invalid percent-encoded token: "***"'
    )
    assert scrub(f'bad URI: "{url}"', url) == 'bad URI: "postgresql://u@h/db"'


def test_a_working_queue_url_is_shown_without_its_password(
    xdl: Any, pg_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password in the query (libpq reads it there too): status, pause, clear,
    doctor and a run at -v name the queue, never the password."""
    url = pg_server.url(pg_server.new_database())
    user, _, rest = url.partition(f":{pg.PASSWORD}@")
    url = f"{user}@{rest}?password={pg.PASSWORD}"
    outputs = []
    for command in [
        ("queue", "add", "https://a.example/v"),
        ("queue", "status", "--summary", "--json", "-v"),
        ("queue", "pause"),
        ("queue", "resume"),
        ("queue", "cancel", "1"),
        ("queue", "clear"),
        ("queue", "run", "-v"),
    ]:
        ran = xdl(*command, "--queue", url)
        assert ran.exit_code == 0, ran.stderr
        outputs.append(ran.stdout + ran.stderr)
    monkeypatch.setenv("XDL_QUEUE", url)
    ran = xdl("doctor", "--json", "-v")
    outputs.append(ran.stdout + ran.stderr)
    (queue,) = [line for line in ran.lines if line["check"] == "queue"]
    assert queue["status"] == "ok" and queue["path"] == redact(url)
    assert all(pg.PASSWORD not in text for text in outputs), outputs
    assert redact(url) in outputs[1]  # status --summary names the queue
