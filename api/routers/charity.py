"""Charity organisers' side: allocation runs as jobs, publication (the deliveries then join the
week's schedule), and the public monthly report (信息公开).

Donations and requests themselves are resources like volunteers (``/v1/donations``,
``/v1/requests`` in :mod:`api.routers.resources`), imported the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from api.community import audit
from api.models import AllocationLineRow, AllocationRow, ShortRow
from api.params import Id, IsoWeek, YearMonth
from api.routers.weekly_jobs import (
    JobOut,
    PublishIn,
    WeekIn,
    cancel_job,
    commit_published,
    get_job,
    job_view,
    list_jobs,
    mark_published,
    queue_job,
)
from api.security import SessionDep, SettingsDep, Staff
from api.timebank import community_month
from matcher.domain import Week
from matcher.report import (
    LINE_COLUMNS,
    SHORT_COLUMNS,
    MonthReport,
    month_report,
    report_html,
    timebank_table,
)

router = APIRouter(prefix="/v1", tags=["charity"])
Month = Annotated[YearMonth, Path(examples=["2026-11"], description="YYYY-MM")]


@router.post("/allocations", status_code=202, response_model=JobOut,
             summary="Allocate donations to requests for a week (returns a job to poll)")
def create_allocation(body: WeekIn, session: SessionDep, user: Staff,
                      request: Request) -> JobOut:
    """Every donation and request on file, less what published allocations of other weeks gave
    out; the week decides which goods have expired and which schedule gets the deliveries."""
    return queue_job(session, AllocationRow, body.week, user, request, "allocate")


@router.get("/allocations", response_model=list[JobOut], summary="Allocation runs")
def list_allocations(session: SessionDep, user: Staff,
                     week: Annotated[IsoWeek | None, Query()] = None) -> list[JobOut]:
    return list_jobs(session, AllocationRow, week)


@router.get("/allocations/{allocation_id}", response_model=JobOut,
            summary="An allocation job: progress, then fulfilment per priority and its bound")
def read_allocation(allocation_id: Id, session: SessionDep, user: Staff) -> JobOut:
    return job_view(get_job(session, AllocationRow, allocation_id))


@router.get("/allocations/{allocation_id}/lines",
            summary="Units of each donation per request, with the day of the hand-over")
def allocation_lines(allocation_id: Id, session: SessionDep,
                     user: Staff) -> list[dict[str, Any]]:
    get_job(session, AllocationRow, allocation_id)
    rows = session.scalars(select(AllocationLineRow).where(
        AllocationLineRow.allocation_id == allocation_id).order_by(AllocationLineRow.id))
    return [{"donation_id": r.donation_id, "request_id": r.request_id, "category": r.category,
             "priority": r.priority, "quantity": r.quantity, "walk_min": r.walk_min,
             "delivery": "yes" if r.delivery else "no",
             "deliver_on": r.date.isoformat() if r.date and r.delivery else None,
             "collect_by": r.date.isoformat() if r.date and not r.delivery else None}
            for r in rows]


@router.get("/allocations/{allocation_id}/short",
            summary="Requests not filled completely, with the reason")
def allocation_short(allocation_id: Id, session: SessionDep,
                     user: Staff) -> list[dict[str, Any]]:
    get_job(session, AllocationRow, allocation_id)
    rows = session.scalars(select(ShortRow).where(ShortRow.allocation_id == allocation_id)
                           .order_by(ShortRow.id))
    return [{"request_id": r.request_id, "category": r.category, "priority": r.priority,
             "requested": r.requested, "allocated": r.allocated,
             "reason_code": r.reason_code, "reason": r.reason} for r in rows]


@router.post("/allocations/{allocation_id}/cancel", response_model=JobOut,
             summary="Cancel an allocation run (queued: at once; running: when it reports)")
def cancel_allocation(allocation_id: Id, session: SessionDep, user: Staff) -> JobOut:
    return cancel_job(session, AllocationRow, allocation_id, user)


@router.post("/allocations/{allocation_id}/publish", response_model=JobOut,
             summary="Publish an allocation (atomic); its deliveries join the week's schedule")
def publish_allocation(allocation_id: Id, body: PublishIn, session: SessionDep,
                       user: Staff) -> JobOut:
    """From now on the stock it gives out is gone for later runs, the public report counts it,
    and the next schedule of its week includes its ``goods_delivery`` needs. A superseded run's
    deliveries leave the schedule inputs (re-solve the week if it was already published)."""
    row = get_job(session, AllocationRow, allocation_id)
    mark_published(session, AllocationRow, row, body.supersede)
    audit(session, user, "publish", f"allocation:{allocation_id}")
    commit_published(session, row)
    return job_view(row)


def _month_rows(session: SessionDep, month: str) -> tuple[list[dict[str, Any]],
                                                         list[dict[str, Any]]]:
    """Lines and short requests of the allocations published for weeks starting in ``month``."""
    first = dt.date.fromisoformat(f"{month}-01")
    weeks: set[str] = set()
    day = first - dt.timedelta(days=first.weekday())  # the Monday on or before the 1st
    while day < first + dt.timedelta(days=31):
        if day.strftime("%Y-%m") == month:
            iso = day.isocalendar()
            weeks.add(str(Week(iso.year, iso.week)))
        day += dt.timedelta(days=7)
    runs = dict(session.execute(select(AllocationRow.id, AllocationRow.week).where(
        AllocationRow.status == "published", AllocationRow.week.in_(weeks))).all())
    lines = [{c: getattr(r, c, None) for c in LINE_COLUMNS} | {"week": runs[r.allocation_id]}
             for r in session.scalars(select(AllocationLineRow).where(
                 AllocationLineRow.allocation_id.in_(runs)))]
    short = [{c: getattr(r, c, None) for c in SHORT_COLUMNS} | {"week": runs[r.allocation_id]}
             for r in session.scalars(select(ShortRow).where(ShortRow.allocation_id.in_(runs)))]
    return lines, short


def _report(session: SessionDep, settings: SettingsDep, month: str) -> MonthReport:
    lines, short = _month_rows(session, month)
    report = month_report(pd.DataFrame(lines), pd.DataFrame(short), month, settings.community)
    report.timebank = timebank_table(community_month(session, month), settings.community)
    return report


@router.get("/reports/allocations/{month}.csv", response_class=Response,
            summary="Public monthly allocation report as CSV (no login)",
            responses={200: {"content": {"text/csv": {}}}})
def report_csv(month: Month, session: SessionDep, settings: SettingsDep,
               table: Annotated[Literal["categories", "households", "timebank"], Query(
                   description="totals per category and priority, one row per "
                   "anonymised household, or the time bank's minutes")] = "categories"
               ) -> Response:
    report = _report(session, settings, month)
    frame = {"categories": report.categories, "households": report.households,
             "timebank": report.timebank}[table]
    name = re.sub(r"[^0-9-]", "", month)
    # UTF-8 with a byte-order mark: Excel on Chinese Windows then opens it correctly.
    return Response(frame.to_csv(index=False).encode("utf-8-sig"), media_type="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="allocations-{name}-{table}.csv"'})


@router.get("/reports/allocations/{month}", response_class=HTMLResponse,
            summary="Public monthly allocation report as a page (no login)")
def report_page(month: Month, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    return HTMLResponse(report_html(_report(session, settings, month)))
