"""Calendar feeds (api/calendar.py and the feed, link and token routes): a valid RFC 5545
document whose events carry STATUS and a rising SEQUENCE, cancelled tasks sent as CANCELLED,
links built from the request or LINLI_PUBLIC_URL, secret tokens rotated and never logged."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.main import create_app
from tests.api.conftest import make_user, set_clock, wait_for
from tests.conftest import WEEK

VOLUNTEER = {"volunteer_id": "V9", "name": "王芳", "lat": 22.534, "lon": 114.017,
             "skills": "meal_delivery", "availability": "mon 08:00-12:00"}


def parse_feed(text: str) -> dict[int, Any]:
    """Parse a feed and check what RFC 5545 requires of it; its events by task id."""
    cal = Calendar.from_ical(text)
    assert cal["VERSION"] == "2.0" and cal["PRODID"]
    zones = {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")}
    events = {}
    for event in cal.walk("VEVENT"):
        for prop in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SEQUENCE", "STATUS", "SUMMARY"):
            assert prop in event, prop
        # DTSTAMP is in UTC; every TZID has its VTIMEZONE (RFC 5545, 3.2.19).
        assert event["DTSTAMP"].dt.utcoffset() == dt.timedelta(0)
        for prop in ("DTSTART", "DTEND"):
            assert str(event[prop].params["TZID"]) in zones
            assert event[prop].dt.utcoffset() == dt.timedelta(hours=8)
        assert event["DTSTART"].dt < event["DTEND"].dt
        assert event["STATUS"] in ("TENTATIVE", "CONFIRMED", "CANCELLED")
        uid = str(event["UID"])
        assert uid.startswith("task-") and uid.endswith("@linli")
        events[int(uid.removeprefix("task-").removesuffix("@linli"))] = event
    assert not cal.get_missing_tzids()
    for zone in cal.walk("VTIMEZONE"):
        assert zone.walk("STANDARD") or zone.walk("DAYLIGHT")
    return events


def feed_of(client: TestClient, token: str) -> dict[int, Any]:
    response = client.get(f"/v1/calendar/{token}.ics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    return parse_feed(response.text)


def test_feed_is_valid_with_status_sequence_and_cancelled_tasks(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    set_clock(client, WEEK.monday)
    by_volunteer = Counter(t["volunteer_id"] for t in published["tasks"])
    volunteer_id, count = by_volunteer.most_common(1)[0]
    assert count >= 2
    mine = [t for t in published["tasks"] if t["volunteer_id"] == volunteer_id]
    me = make_user(client, "carol", "volunteer", volunteer_id=volunteer_id)
    events = feed_of(client, "cal-carol-token")
    assert set(events) == {t["id"] for t in mine}
    assert {e["STATUS"] for e in events.values()} == {"TENTATIVE"}  # offered
    task = mine[0]["id"]
    before = events[task]
    # Accepted: CONFIRMED, a higher SEQUENCE, a later DTSTAMP.
    assert client.post(f"/v1/me/tasks/{task}/accept", headers=me).status_code == 200
    accepted = feed_of(client, "cal-carol-token")[task]
    assert accepted["STATUS"] == "CONFIRMED"
    assert accepted["SEQUENCE"] > before["SEQUENCE"]
    assert accepted["DTSTAMP"].dt >= before["DTSTAMP"].dt
    assert accepted["DTSTART"].dt == before["DTSTART"].dt
    # Declined: still sent, as CANCELLED, so the subscribed calendar removes it.
    assert client.post(f"/v1/me/tasks/{task}/decline", json={"reason": "孩子生病"},
                       headers=me).status_code == 200
    declined = feed_of(client, "cal-carol-token")[task]
    assert declined["STATUS"] == "CANCELLED"
    assert declined["SEQUENCE"] > accepted["SEQUENCE"]
    # A new schedule replaces this one (its volunteer's other offers may be kept as they are,
    # moved or dropped): what it no longer holds stays in the feed as CANCELLED with a higher
    # SEQUENCE, beside what it offers.
    job = client.post("/v1/schedules", json={"week": str(WEEK)}, headers=coordinator).json()
    assert wait_for(client, coordinator, job["id"])["status"] == "solved"
    assert client.post(f"/v1/schedules/{job['id']}/publish", json={"supersede": True},
                       headers=coordinator).status_code == 200
    after = feed_of(client, "cal-carol-token")
    new = client.get(f"/v1/schedules/{job['id']}/tasks", params={"limit": 500},
                     headers=coordinator).json()["items"]
    held = {t["id"] for t in new if t["volunteer_id"] == volunteer_id
            and t["state"] not in ("declined", "cancelled")}
    assert {i for i, e in after.items() if e["STATUS"] != "CANCELLED"} == held
    for old in mine[1:]:
        if old["id"] not in held:
            assert after[old["id"]]["STATUS"] == "CANCELLED"
            assert after[old["id"]]["SEQUENCE"] > events[old["id"]]["SEQUENCE"]
    assert after[task]["STATUS"] == "CANCELLED"  # the declined one stays declined
    # Weeks later the cancelled tasks have left the feed.
    set_clock(client, WEEK.monday + dt.timedelta(weeks=6))
    later = feed_of(client, "cal-carol-token")
    assert not set(later) & ({t["id"] for t in mine} - held)
    assert set(later) == held  # what stands stays, as the week's record


def _volunteer(client: TestClient, coordinator: dict[str, str]) -> dict[str, str]:
    assert client.post("/v1/volunteers", json=VOLUNTEER,
                       headers=coordinator).status_code == 201
    return make_user(client, "wangfang", "volunteer", volunteer_id="V9")


def test_calendar_link_is_built_from_the_request_or_the_public_url(
        client: TestClient, coordinator: dict[str, str]) -> None:
    me = _volunteer(client, coordinator)
    url = client.get("/v1/me", headers=me).json()["calendar_url"]
    assert url == "http://testserver/v1/calendar/cal-wangfang-token.ics"
    assert client.get(urlsplit(url).path).status_code == 200
    # Behind a trusted proxy (uvicorn's middleware, which `linli serve` runs), the scheme and
    # host the client used.
    behind = TestClient(ProxyHeadersMiddleware(client.app, trusted_hosts="*"),
                        base_url="http://linli.example.org")
    url = behind.get("/v1/me", headers=me | {"X-Forwarded-Proto": "https"}).json()[
        "calendar_url"]
    assert url == "https://linli.example.org/v1/calendar/cal-wangfang-token.ics"
    client.app.state.settings.public_url = "https://linli.example.org/community/"  # type: ignore[attr-defined]
    url = client.get("/v1/me", headers=me).json()["calendar_url"]
    assert url == "https://linli.example.org/community/v1/calendar/cal-wangfang-token.ics"


def test_a_new_calendar_token_kills_the_old_link(client: TestClient,
                                                 coordinator: dict[str, str]) -> None:
    me = _volunteer(client, coordinator)
    assert client.get("/v1/calendar/cal-wangfang-token.ics").status_code == 200
    rotated = client.post("/v1/me/calendar-token", headers=me)
    assert rotated.status_code == 200
    url = rotated.json()["calendar_url"]
    assert url != "http://testserver/v1/calendar/cal-wangfang-token.ics"
    assert client.get("/v1/me", headers=me).json()["calendar_url"] == url
    assert client.get("/v1/calendar/cal-wangfang-token.ics").status_code == 404
    assert client.get(urlsplit(url).path).status_code == 200
    user_id = client.get("/v1/me", headers=me).json()["id"]
    log = client.get("/v1/audit?action=calendar_token", headers=coordinator).json()
    assert [(e["user_id"], e["target"]) for e in log["items"]] == [(user_id,
                                                                    f"user:{user_id}")]
    assert client.post("/v1/me/calendar-token").status_code == 401


@pytest.mark.parametrize("token", ["cal%00-wangfang-token", "%00%00%00%00%00%00%00%00",
                                   "x" * 5000, "%F0%9F%98%80%F0%9F%98%80abc", "a%20b%27c%22d",
                                   "cal-wangfang-token%0A", "..%2F..%2Fetc", "short"])
def test_odd_calendar_tokens_are_not_found(client: TestClient, coordinator: dict[str, str],
                                           token: str) -> None:
    _volunteer(client, coordinator)
    response = client.get(f"/v1/calendar/{token}.ics")
    # A NUL is refused by the request guard before routing (422), any other odd token is 404.
    assert response.status_code == (422 if "%00" in token else 404)
    assert response.headers["content-type"] == "application/problem+json"


def test_the_access_log_never_shows_a_calendar_token(client: TestClient) -> None:
    """uvicorn logs each request's path (its h11 and httptools protocols make this call); the
    app keeps the token out, with one filter however often it is built."""
    create_app(client.app.state.settings)  # type: ignore[attr-defined]
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    keep, level = Keep(), access.level
    access.addHandler(keep)
    access.setLevel(logging.INFO)
    try:
        for path in ("/v1/calendar/s3cr3t-Token_value.ics",
                     "/v1/calendar/s3cr3t-Token_value.ics?x=1", "/v1/me/tasks?week=2026-W48"):
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", path, "1.1", 200)
    finally:
        access.removeHandler(keep)
        access.setLevel(level)
    assert sum(type(f).__name__ == "RedactFeedTokens" for f in access.filters) == 1
    assert not any("s3cr3t" in line for line in seen)
    assert seen[0] == '127.0.0.1:50000 - "GET /v1/calendar/<token> HTTP/1.1" 200'
    assert seen[2] == '127.0.0.1:50000 - "GET /v1/me/tasks?week=2026-W48 HTTP/1.1" 200'
