"""Volunteers' private calendar feeds (RFC 5545) and their secret links.

A feed is subscribed to, so a calendar application keeps its own copy of each event (by UID)
and replaces it when the SEQUENCE rises: every change of a task's state or time goes through
:func:`task_changed`. Offered tasks are TENTATIVE, taken ones CONFIRMED; cancelled and declined
tasks of the last weeks stay in the feed as CANCELLED, so subscribed calendars remove them.

The link's token is the only secret of a feed: it is kept out of the access log
(:class:`RedactFeedTokens`) and a volunteer can replace it, which kills the old link.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from dataclasses import dataclass

from icalendar import Calendar, Event
from sqlalchemy import ColumnElement, and_, or_

from api.community import TZ
from api.models import ScheduleRow, TaskRow
from api.replanning import STANDING
from matcher import i18n
from matcher.i18n import _

STATUS = {"offered": "TENTATIVE", "accepted": "CONFIRMED", "checked_in": "CONFIRMED",
          "completed": "CONFIRMED", "confirmed": "CONFIRMED", "cancelled": "CANCELLED",
          "declined": "CANCELLED"}
GONE = ("cancelled", "declined")


def state_label(state: str) -> str:
    """A task's state as a person reads it, in the current language, beside the ``state`` code
    programs read (the console's catalog names each state)."""
    if i18n.current() == "en":
        return state.replace("_", " ")
    return _(state)

# How long a cancelled or declined task stays in the feed: long enough for every subscribed
# calendar to have fetched it once.
KEEP_GONE = dt.timedelta(weeks=4)
TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")
FEED_PATH = re.compile(r"(/v1/calendar/)[^\s?\"/]+")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def plausible_token(token: str) -> bool:
    """Whether ``token`` could be a feed token at all; anything else (a NUL byte, odd
    characters, a huge string) is answered 404 without asking the database."""
    return TOKEN.fullmatch(token) is not None


def task_changed(task: TaskRow, at: dt.datetime | None = None) -> None:
    """Record that a task's state or time changed (call it wherever one does): the calendar's
    SEQUENCE rises and DTSTAMP becomes the time of the change."""
    task.sequence = (task.sequence or 0) + 1
    task.updated_at = at or dt.datetime.now(dt.UTC)


def in_feed(today: dt.date) -> ColumnElement[bool]:
    """Which tasks (joined with their schedule) a volunteer's feed shows: the published ones
    standing, and recent cancelled or declined ones, also of superseded schedules (publishing
    a new schedule cancels the old one's tasks)."""
    return or_(and_(ScheduleRow.status == "published", TaskRow.state.in_(STANDING)),
               and_(ScheduleRow.status.in_(("published", "superseded")),
                    TaskRow.state.in_(GONE), TaskRow.date >= today - KEEP_GONE))


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One task as its volunteer may see it (the privacy rules are the caller's)."""

    task_id: int
    date: dt.date
    start: int  # minutes after midnight, Asia/Shanghai
    end: int
    state: str
    sequence: int
    changed_at: dt.datetime
    summary: str
    location: str


def feed(name: str, events: list[FeedEvent]) -> bytes:
    """The iCalendar document: one VEVENT per task, with the VTIMEZONE its times refer to."""
    cal = Calendar()
    cal.add("prodid", "-//Linli//tasks//ZH")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", str(TZ))
    for item in events:
        event = Event()
        event.add("uid", f"task-{item.task_id}@linli")
        event.add("summary", item.summary)
        midnight = dt.datetime.combine(item.date, dt.time(0, 0), TZ)
        event.add("dtstart", midnight + dt.timedelta(minutes=item.start))
        event.add("dtend", midnight + dt.timedelta(minutes=item.end))
        # No METHOD: then DTSTAMP is the time of the last change (RFC 5545, 3.8.7.2).
        event.add("dtstamp", item.changed_at.astimezone(dt.UTC))
        event.add("last-modified", item.changed_at.astimezone(dt.UTC))
        event.add("sequence", item.sequence)
        event.add("status", STATUS[item.state])
        event.add("location", item.location)
        cal.add_component(event)
    if events:
        # Transitions covering the feed's dates only, not the library's default of decades.
        cal.add_missing_timezones(min(e.date for e in events) - dt.timedelta(days=1),
                                  max(e.date for e in events) + dt.timedelta(days=2))
    return bytes(cal.to_ical())


class RedactFeedTokens(logging.Filter):
    """Hide feed tokens in uvicorn's access log lines (``GET /v1/calendar/<token>.ics``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(FEED_PATH.sub(r"\1<token>", a) if isinstance(a, str) else a
                                for a in record.args)
        if isinstance(record.msg, str):
            record.msg = FEED_PATH.sub(r"\1<token>", record.msg)
        return True


def redact_access_log(logger: logging.Logger | None = None) -> None:
    """Install :class:`RedactFeedTokens` on uvicorn's access logger (once)."""
    logger = logger or logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactFeedTokens) for f in logger.filters):
        logger.addFilter(RedactFeedTokens())
