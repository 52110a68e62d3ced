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
    status: str = Field(description="queued, running, solved, failed, published, superseded")
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
                  finished_at=row.finished_at, published_at=row.published_at)


def get_job(session: Session, cls: type[J], job_id: int) -> J:
    row = session.get(cls, job_id)
    if row is None:
        raise Problem(404, f"no {cls.__tablename__[:-1]} {job_id}")
    return row


def queue_job(session: Session, cls: type[J], week: str, user: Caller, request: Request,
              action: str) -> JobOut:
    """Queue a job for ``week`` (audited as ``action``) and hand it to the worker."""
    row = cls()  # the mixin's columns, set one by one so type checkers see them
    row.week, row.status, row.progress, row.created_by = week, "queued", "queued", user.id
    session.add(row)
    audit(session, user, action, f"week:{week}")
    session.commit()
    request.app.state.worker.submit(cls, row.id)
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
