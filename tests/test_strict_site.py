"""The strict site itself (tests/strict_site.py): each rule holds, so that the
politeness tests and the bench can trust its counters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import pytest
import requests
import strict_site
from strict_site import StrictSite


@pytest.fixture
def strict() -> Iterator[StrictSite]:
    site = strict_site.start()
    yield site
    site.stop()


def get(site: StrictSite, path: str, **kw: object) -> requests.Response:
    return requests.get(site.url(path), timeout=10, **kw)  # type: ignore[arg-type]


def test_serves_files_with_length_etag_and_range(strict: StrictSite) -> None:
    r = get(strict, "/f/3.bin")
    assert r.status_code == 200
    assert r.content == strict_site.file_bytes(3)
    assert r.headers["Content-Length"] == str(strict_site.FILE_SIZE)
    assert r.headers["ETag"]
    part = get(strict, "/f/3.bin", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == strict_site.file_bytes(3)[10:20]
    assert get(strict, "/nothing").status_code == 404
    assert strict.served == 3 and strict.refusals == 0


def test_video_page_points_at_an_mp4(strict: StrictSite) -> None:
    page = get(strict, "/v/7.html")
    assert page.status_code == 200 and '<source src="/media/7.mp4"' in page.text
    clip = get(strict, "/media/7.mp4")
    assert clip.status_code == 200 and clip.content[4:8] == b"ftyp"


def test_refuses_past_r_a_second(strict: StrictSite) -> None:
    strict.reset(per_second=5, retry_after=2)
    answers = [get(strict, f"/f/{i}.bin") for i in range(8)]  # well within one second
    codes = [a.status_code for a in answers]
    assert codes[:5] == [200] * 5
    assert codes[5:] == [429] * 3
    assert all(a.headers["Retry-After"] == "2" for a in answers[5:])
    assert strict.refused == {429: 3} and strict.served == 5
    time.sleep(1.05)  # the window slides: served again
    assert get(strict, "/f/1.bin").status_code == 200


def test_refuses_past_n_in_flight(strict: StrictSite) -> None:
    strict.reset(max_in_flight=2, busy_status=503, delay=0.5)
    with ThreadPoolExecutor(5) as pool:
        codes = sorted(pool.map(lambda i: get(strict, f"/f/{i}.bin").status_code, range(5)))
    assert codes == [200, 200, 503, 503, 503]
    assert strict.refused == {503: 3}
    assert 3 <= strict.peak_in_flight <= 5  # what the client did, refusals included


def test_peak_in_flight_counts_concurrent_requests(strict: StrictSite) -> None:
    strict.reset(delay=0.3)
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda i: get(strict, f"/f/{i}.bin"), range(3)))
    assert strict.peak_in_flight == 3 and strict.refusals == 0
    get(strict, "/f/1.bin")
    strict.reset()
    assert strict.peak_in_flight == 0 and strict.log == []


def test_first_k_of_each_path_refused_then_served(strict: StrictSite) -> None:
    strict.reset(refuse_first=2, refuse_prefix="/v/", retry_after=1)
    codes = [get(strict, "/v/1.html").status_code for _ in range(3)]
    assert codes == [429, 429, 200]
    assert get(strict, "/v/2.html").status_code == 429  # counted per path
    assert get(strict, "/media/1.mp4").status_code == 200  # outside the prefix


def test_retry_after_as_http_date(strict: StrictSite) -> None:
    strict.reset(refuse_first=1, retry_after=2, retry_after_date=True)
    before = time.time()
    r = get(strict, "/f/1.bin")
    assert r.status_code == 429
    when = parsedate_to_datetime(r.headers["Retry-After"]).timestamp()
    assert before + 2 <= when <= before + 4
    assert strict.hits("/f/1.bin")[0].retry_after == r.headers["Retry-After"]


def test_no_retry_after_unless_asked(strict: StrictSite) -> None:
    strict.reset(refuse_first=1)
    r = get(strict, "/f/1.bin")
    assert r.status_code == 429 and "Retry-After" not in r.headers


def test_bans_after_b_refusals_in_w_seconds(strict: StrictSite) -> None:
    strict.reset(refuse_first=10, refuse_prefix="/f/1.", ban_after=4, ban_seconds=0.8)
    codes = [get(strict, "/f/1.bin").status_code for _ in range(6)]
    assert codes == [429, 429, 429, 429, 403, 403]
    assert get(strict, "/f/2.bin").status_code == 403  # everything, while banned
    assert strict.bans == 1 and strict.banned_answers == 3 and strict.refused == {429: 4}
    time.sleep(1.0)  # the ban ends
    assert get(strict, "/f/2.bin").status_code == 200


def test_refusals_outside_the_window_do_not_ban(strict: StrictSite) -> None:
    strict.reset(refuse_first=10, ban_after=3, ban_window=0.5)
    assert [get(strict, "/f/1.bin").status_code for _ in range(2)] == [429, 429]
    time.sleep(0.6)
    assert [get(strict, "/f/1.bin").status_code for _ in range(2)] == [429, 429]
    assert strict.bans == 0


def test_bandwidth_makes_a_download_take_time(strict: StrictSite) -> None:
    strict.reset(bandwidth=64 * 1024)  # 32 KiB at 64 KiB/s: about 0.5 s
    started = time.monotonic()
    assert get(strict, "/f/1.bin").content == strict_site.file_bytes(1)
    assert 0.35 <= time.monotonic() - started < 3  # the last chunk is not waited for
    started = time.monotonic()
    assert get(strict, "/f/2.bin?rate=1000000&delay=0.2").status_code == 200
    assert 0.2 <= time.monotonic() - started < 0.4  # overridden for one request


def test_log_keeps_time_path_and_status(strict: StrictSite) -> None:
    strict.reset(refuse_first=1)
    get(strict, "/f/1.bin")
    get(strict, "/f/1.bin")
    hits = strict.hits()
    assert [(h.path, h.status) for h in hits] == [("/f/1.bin", 429), ("/f/1.bin", 200)]
    assert hits[0].t <= hits[1].t
