"""ETag / If-None-Match on a volunteer's tasks and calendar feed: 304 while nothing shown
changed, a new ETag after accept, decline, the day changing (details shown or masked) or the
language; and state labels in the caller's language beside the stable state."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.calendar import state_label
from api.conditional import etag, matches
from api.lifecycle import State
from api.models import AuditEntry
from matcher import i18n
from tests.api.conftest import make_user, set_clock
from tests.conftest import WEEK


def _busy_volunteer(published: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    volunteer_id, count = Counter(t["volunteer_id"] for t in published["tasks"]).most_common(1)[0]
    assert count >= 2
    return volunteer_id, [t for t in published["tasks"] if t["volunteer_id"] == volunteer_id]


def _tasks(client: TestClient, headers: dict[str, str], tag: str | None = None,
           lang: str | None = None) -> Any:
    extra = {"If-None-Match": tag} if tag else {}
    if lang:
        extra["Accept-Language"] = lang
    return client.get("/v1/me/tasks", params={"week": str(WEEK)}, headers=headers | extra)


def test_my_tasks_answer_304_until_something_shown_changes(
        client: TestClient, published: dict[str, Any]) -> None:
    volunteer_id, mine = _busy_volunteer(published)
    me = make_user(client, "carol", "volunteer", volunteer_id=volunteer_id)
    first = _tasks(client, me)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert tag.startswith('"') and tag == etag(first.content)
    assert first.json()[0]["state_label"] == "待接受" and first.json()[0]["state"] == "offered"
    again = _tasks(client, me, tag)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    assert _tasks(client, me, f'"other", W/{tag}').status_code == 304
    assert _tasks(client, me, '"other"').status_code == 200
    # English is another representation.
    english = _tasks(client, me, tag, lang="en")
    assert english.status_code == 200 and english.headers["etag"] != tag
    assert english.json()[0]["state_label"] == "offered"
    # Accepting changes the state shown.
    task = mine[0]["id"]
    assert client.post(f"/v1/me/tasks/{task}/accept", headers=me).status_code == 200
    accepted = _tasks(client, me, tag)
    assert accepted.status_code == 200
    tag = accepted.headers["etag"]
    assert {t["id"]: t["state_label"] for t in accepted.json()}[task] == "已接受"
    assert _tasks(client, me, tag).status_code == 304
    # The week begins: the same tasks, now with the beneficiaries' details.
    set_clock(client, WEEK.monday, "07:00")
    shown = _tasks(client, me, tag)
    assert shown.status_code == 200 and shown.headers["etag"] != tag
    assert any(t["details_visible"] for t in shown.json())
    tag = shown.headers["etag"]
    # Declining re-plans: the task leaves this volunteer's list.
    other = mine[1]["id"]
    assert client.post(f"/v1/me/tasks/{other}/decline", json={"reason": "孩子生病"},
                       headers=me).status_code == 200
    declined = _tasks(client, me, tag)
    assert declined.status_code == 200 and declined.headers["etag"] != tag
    assert other not in {t["id"] for t in declined.json()}


def test_a_304_records_no_new_read(client: TestClient, coordinator: dict[str, str],
                                   published: dict[str, Any]) -> None:
    volunteer_id, _ = _busy_volunteer(published)
    me = make_user(client, "carol", "volunteer", volunteer_id=volunteer_id)
    set_clock(client, WEEK.monday, "07:00")
    tag = _tasks(client, me).headers["etag"]

    def reads() -> int:
        db = client.app.state.db  # type: ignore[attr-defined]
        with db.session() as session:
            return len(session.scalars(select(AuditEntry).filter_by(
                action="read", target=f"tasks:{volunteer_id}")).all())

    before = reads()
    assert before >= 1
    assert _tasks(client, me, tag).status_code == 304
    assert reads() == before


def test_the_calendar_feed_answers_304_until_a_task_changes(
        client: TestClient, published: dict[str, Any]) -> None:
    volunteer_id, mine = _busy_volunteer(published)
    me = make_user(client, "carol", "volunteer", volunteer_id=volunteer_id)
    url = "/v1/calendar/cal-carol-token.ics"
    first = client.get(url)
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/calendar")
    tag = first.headers["etag"]
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    assert client.post(f"/v1/me/tasks/{mine[0]['id']}/accept", headers=me).status_code == 200
    changed = client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    tag = changed.headers["etag"]
    set_clock(client, WEEK.monday - dt.timedelta(days=2))  # a day later, nothing shown differs
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    set_clock(client, WEEK.monday, "07:00")  # the week begins: addresses appear
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 200


@pytest.mark.parametrize(("header", "hit"), [
    (None, False), ("", False), ('"abc"', True), ('W/"abc"', True), ('"x", "abc"', True),
    ("*", True), ('"abcd"', False), ("abc", False)])
def test_if_none_match_is_compared_weakly(header: str | None, hit: bool) -> None:
    assert matches(header, '"abc"') is hit


def test_every_task_state_has_a_label_in_both_languages() -> None:
    for state in State:
        with i18n.use("zh_CN"):
            assert state_label(state.value) != state.value
        with i18n.use("en"):
            assert state_label(state.value) == state.value.replace("_", " ")
