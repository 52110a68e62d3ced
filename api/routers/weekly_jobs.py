"""What schedule and allocation jobs share: a week to work on, the job as clients see it, and
publishing (one published result per week, replaced only on purpose)."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.community import audit
from api.errors import Problem
from api.jobs import Job
from api.params import IsoWeek
from api.security import Caller
from matcher.domain import Week

J = TypeVar("J", bound=Job)


class WeekIn(BaseModel):
    week: IsoWeek = Field(examples=["2026-W48"], description="ISO week to plan")


class JobOut(BaseModel):
    id: int
    week: str
    status: str = Field(description="queued, running, solved, failed, cancelled, published, "
                        "superseded (a running job asked to stop keeps running until its "
                        "worker sees the request, then is cancelled)")
    attempts: int = Field(0, description="how many times a worker took the job (a second "
                          "time only when the first worker stopped)")
    cancel_requested: bool = False
    progress: str
    summary: dict[str, Any] | None = None
    error: str | None = None
    created_at: dt.datetime
    finished_at: dt.datetime | None = None
    published_at: dt.datetime | None = None


class PublishIn(BaseModel):
    supersede: bool = Field(False, description="replace the week's published result; without "
                            "it, publishing over a published week is refused (409)")


def job_view(row: Job) -> JobOut:
    return JobOut(id=row.id, week=row.week, status=row.status, progress=row.progress,
                  summary=row.summary, error=row.error, created_at=row.created_at,
                  finished_at=row.finished_at, published_at=row.published_at,
                  attempts=row.attempts, cancel_requested=row.cancel_requested)


def get_job(session: Session, cls: type[J], job_id: int) -> J:
    row = session.get(cls, job_id)
    if row is None:
        raise Problem(404, f"no {cls.__tablename__[:-1]} {job_id}")
    return row


def queue_job(session: Session, cls: type[J], week: str, user: Caller, request: Request,
              action: str, **columns: Any) -> JobOut:
    """Queue a job for ``week`` (audited as ``action``), with the job kind's own ``columns``;
    a job worker claims it from the database."""
    row = cls(**columns)  # the mixin's columns, set one by one so type checkers see them
    row.week, row.status, row.progress, row.created_by = week, "queued", "queued", user.id
    row.attempts, row.cancel_requested = 0, False
    session.add(row)
    audit(session, user, action, f"week:{week}")
    session.commit()
    if request.app.state.worker is not None:  # a worker thread in this process (tests)
        request.app.state.worker.wake()
    return job_view(row)


def cancel_job(session: Session, cls: type[J], job_id: int, user: Caller) -> JobOut:
    """Cancel a job: a queued one at once; a running one is asked to stop, and its worker
    cancels it at its next progress report. Cancelling a cancelled job changes nothing.

    Raises
    ------
    Problem
        404 for no such job; 409 when it already finished (solved, failed, published...).
    """
    row = session.get(cls, job_id, with_for_update=True)
    if row is None:
        raise Problem(404, f"no {cls.__tablename__[:-1]} {job_id}")
    if row.status not in ("queued", "running", "cancelled"):
        raise Problem(409, f"{cls.__tablename__[:-1]} {job_id} is {row.status}; only a queued "
                      "or running job can be cancelled")
    if row.status == "queued":
        row.status, row.progress = "cancelled", "cancelled"
        row.finished_at = dt.datetime.now(dt.UTC)
    if row.status == "running":
        row.cancel_requested = True
    audit(session, user, "cancel", f"{cls.__tablename__[:-1]}:{job_id}")
    session.commit()
    return job_view(row)


def list_jobs(session: Session, cls: type[J], week: str | None) -> list[JobOut]:
    """The newest 100 jobs of a kind, of one week if given."""
    query = select(cls).order_by(cls.id.desc())
    if week:
        query = query.where(cls.week == str(Week.parse(week)))
    return [job_view(r) for r in session.scalars(query.limit(100))]


def mark_published(session: Session, cls: type[J], row: J, supersede: bool) -> J | None:
    """Publish ``row`` (in the caller's transaction); returns the result it supersedes, if any.

    Raises
    ------
    Problem
        409 when ``row`` is not solved, or its week is published and ``supersede`` is false.
    """
    what = cls.__tablename__[:-1]
    if row.status != "solved":
        raise Problem(409, f"{what} {row.id} is {row.status}; only a solved {what} can be "
                      "published")
    current = session.scalars(select(cls).where(cls.week == row.week,
                                                cls.status == "published")).one_or_none()
    if current is not None:
        if not supersede:
            raise Problem(409, f"week {row.week} already has published {what} {current.id}; "
                          "publish with supersede=true to replace it")
        current.status = "superseded"
        session.flush()  # the unique index allows one published row per week
    row.status = "published"
    row.published_at = dt.datetime.now(dt.UTC)
    return current


def commit_published(session: Session, row: Job) -> None:
    """Commit a publication: everything the caller changed, or nothing."""
    try:
        session.commit()
    except IntegrityError as exc:  # another publish of this week won the race
        session.rollback()
        raise Problem(409, f"week {row.week} was published by someone else meanwhile") from exc
