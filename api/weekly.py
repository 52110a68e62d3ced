"""The service behind schedule and allocation jobs: queue, cancel, list, and publishing (one
published result per week, replaced only on purpose). Routers call these; they return rows, and
the routers answer with :class:`api.schemas.JobOut`."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.community import audit
from api.errors import Problem, label
from api.jobs import Job
from api.models import JobColumns
from api.paging import page_rows
from api.security import Caller
from matcher.domain import Week
from matcher.i18n import N_, _

J = TypeVar("J", bound=Job)
# What a person calls a job of each kind, inside a sentence.
KINDS = {"schedules": N_("schedule"), "allocations": N_("allocation"),
         "suggestions": N_("suggestion"), "district_runs": N_("district run")}


def _kind(cls: type[JobColumns]) -> str:
    return _(KINDS.get(cls.__tablename__, cls.__tablename__[:-1]))


def get_job(session: Session, cls: type[J], job_id: int) -> J:
    row = session.get(cls, job_id)
    if row is None:
        raise Problem(404, _("no {what} {id}").format(what=_kind(cls), id=job_id))
    return row


def queue_job(session: Session, state: Any, cls: type[J], week: str, user: Caller,
              action: str, **columns: Any) -> J:
    """Queue a job for ``week`` (audited as ``action``), with the job kind's own ``columns``;
    a job worker claims it from the database."""
    row = cls(**columns)  # the mixin's columns, set one by one so type checkers see them
    row.week, row.status, row.progress, row.created_by = week, "queued", "queued", user.id
    row.attempts, row.cancel_requested = 0, False
    session.add(row)
    audit(session, user, action, f"week:{week}")
    session.commit()
    if state.worker is not None:  # a worker thread in this process (tests, the demo)
        state.worker.wake()
    return row


def cancel_job(session: Session, cls: type[J], job_id: int, user: Caller) -> J:
    """Cancel a job: a queued one at once; a running one is asked to stop, and its worker
    cancels it at its next progress report. Cancelling a cancelled job changes nothing.

    Raises
    ------
    Problem
        404 for no such job; 409 when it already finished (solved, failed, published...).
    """
    row = session.get(cls, job_id, with_for_update=True)
    if row is None:
        raise Problem(404, _("no {what} {id}").format(what=_kind(cls), id=job_id))
    stop_job(row)
    audit(session, user, "cancel", f"{cls.__tablename__[:-1]}:{job_id}")
    session.commit()
    return row


def stop_job(row: JobColumns) -> None:
    """Cancel ``row`` of any job table (the caller locked it, and commits): a queued job at
    once, a running one at its worker's next progress report.

    Raises
    ------
    Problem
        409 when it already finished.
    """
    what = _kind(type(row))
    if row.status not in ("queued", "running", "cancelled"):
        raise Problem(409, _("{what} {id} is {status}; only a queued or running job can be "
                             "cancelled").format(what=what, id=row.id,
                                                 status=label(row.status)),
                      code="job_finished")
    if row.status == "queued":
        row.status, row.progress = "cancelled", "cancelled"
        row.finished_at = dt.datetime.now(dt.UTC)
    if row.status == "running":
        row.cancel_requested = True


def list_jobs(session: Session, cls: type[J], week: str | None, limit: int,
              offset: int) -> tuple[list[J], int]:
    """One page of the jobs of a kind, newest first, of one week if given; and their count."""
    query = select(cls).order_by(cls.id.desc())
    if week:
        query = query.where(cls.week == str(Week.parse(week)))
    return page_rows(session, query, limit, offset)


def mark_published(session: Session, cls: type[J], row: J, supersede: bool) -> J | None:
    """Publish ``row`` (in the caller's transaction); returns the result it supersedes, if any.

    Raises
    ------
    Problem
        409 when ``row`` is not solved, or its week is published and ``supersede`` is false.
    """
    what = _kind(cls)
    if row.status != "solved":
        raise Problem(409, _("{what} {id} is {status}; only a solved {what} can be published")
                      .format(what=what, id=row.id, status=label(row.status)),
                      code="job_not_solved")
    current = session.scalars(select(cls).where(cls.week == row.week,
                                                cls.status == "published")).one_or_none()
    if current is not None:
        if not supersede:
            raise Problem(409, _("week {week} already has published {what} {id}; publish "
                                 "with supersede=true to replace it").format(
                week=row.week, what=what, id=current.id), code="week_already_published")
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
        raise Problem(409, _("week {week} was published by someone else meanwhile").format(
            week=row.week), code="week_already_published") from exc


def publish_job(session: Session, cls: type[J], user: Caller, job_id: int,
                supersede: bool) -> J:
    """Publish an allocation run (or any job whose publication is only its status): atomic,
    one per week unless ``supersede``."""
    row = get_job(session, cls, job_id)
    mark_published(session, cls, row, supersede)
    audit(session, user, "publish", f"{cls.__tablename__[:-1]}:{job_id}")
    commit_published(session, row)
    return row
