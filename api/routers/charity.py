"""Charity organisers' side: allocation runs as jobs, publication (the deliveries then join the
week's schedule), and the public monthly report (信息公开).

Donations and requests themselves are resources like volunteers (``/v1/donations``,
``/v1/requests`` in :mod:`api.routers.resources`), imported the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api import allocating
from api.models import AllocationLineRow, AllocationRow, ShortRow
from api.paging import Page
from api.params import Id, IsoWeek, Limit, Offset, YearMonth
from api.schemas import JobOut, PublishIn, WeekIn
from api.security import SessionDep, SettingsDep, Staff
from api.settings import ApiSettings
from api.tenancy import public_community
from api.weekly import cancel_job, get_job, list_jobs, publish_job, queue_job
from matcher.report import report_html

router = APIRouter(prefix="/v1", tags=["charity"])
Month = Annotated[YearMonth, Path(examples=["2026-11"], description="YYYY-MM")]


class LineOut(BaseModel):
    """Units of one donation for one request, and the day of the hand-over."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "donation_id": "D017", "request_id": "R0102", "category": "rice_5kg",
        "priority": "yellow", "quantity": 2, "walk_min": 7.5, "delivery": "no",
        "deliver_on": None, "collect_by": "2026-11-29"}]})
    donation_id: str
    request_id: str
    category: str
    priority: str
    quantity: int
    walk_min: float
    delivery: Literal["yes", "no"] = Field(description="yes when a volunteer delivers")
    deliver_on: dt.date | None
    collect_by: dt.date | None

    @classmethod
    def of(cls, r: AllocationLineRow) -> LineOut:
        return cls(donation_id=r.donation_id, request_id=r.request_id, category=r.category,
                   priority=r.priority, quantity=r.quantity, walk_min=r.walk_min,
                   delivery="yes" if r.delivery else "no",
                   deliver_on=r.date if r.date and r.delivery else None,
                   collect_by=r.date if r.date and not r.delivery else None)


class ShortOut(BaseModel):
    """A request not filled completely, with the reason."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "request_id": "R0140", "category": "winter_coat", "priority": "blue", "requested": 3,
        "allocated": 1, "reason_code": "stock_short",
        "reason": "冬衣捐赠不够，先给了更急的家庭"}]})
    request_id: str
    category: str
    priority: str
    requested: int
    allocated: int
    reason_code: str
    reason: str

    @classmethod
    def of(cls, row: ShortRow) -> ShortOut:
        return cls.model_validate(row)


@router.post("/allocations", status_code=202, response_model=JobOut,
             summary="Allocate donations to requests for a week (returns a job to poll)")
def create_allocation(body: WeekIn, session: SessionDep, user: Staff,
                      request: Request) -> JobOut:
    """Every donation and request on file, less what published allocations of other weeks gave
    out; the week decides which goods have expired and which schedule gets the deliveries."""
    return JobOut.of(queue_job(session, request.app.state, AllocationRow, body.week, user,
                               "allocate"))


@router.get("/allocations", response_model=Page[JobOut], summary="Allocation runs, newest first")
def list_allocations(session: SessionDep, user: Staff,
                     week: Annotated[IsoWeek | None, Query()] = None,
                     limit: Limit = 100, offset: Offset = 0) -> Page[JobOut]:
    rows, total = list_jobs(session, AllocationRow, week, limit, offset)
    return Page(items=[JobOut.of(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/allocations/{allocation_id}", response_model=JobOut,
            summary="An allocation job: progress, then fulfilment per priority and its bound")
def read_allocation(allocation_id: Id, session: SessionDep, user: Staff) -> JobOut:
    return JobOut.of(get_job(session, AllocationRow, allocation_id))


@router.get("/allocations/{allocation_id}/lines", response_model=Page[LineOut],
            summary="Units of each donation per request, with the day of the hand-over")
def allocation_lines(allocation_id: Id, session: SessionDep, user: Staff,
                     limit: Limit = 100, offset: Offset = 0) -> Page[LineOut]:
    rows, total = allocating.lines(session, allocation_id, limit, offset)
    return Page(items=[LineOut.of(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/allocations/{allocation_id}/short", response_model=Page[ShortOut],
            summary="Requests not filled completely, with the reason")
def allocation_short(allocation_id: Id, session: SessionDep, user: Staff,
                     limit: Limit = 100, offset: Offset = 0) -> Page[ShortOut]:
    rows, total = allocating.short(session, allocation_id, limit, offset)
    return Page(items=[ShortOut.of(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/allocations/{allocation_id}/cancel", response_model=JobOut,
             summary="Cancel an allocation run (queued: at once; running: when it reports)")
def cancel_allocation(allocation_id: Id, session: SessionDep, user: Staff) -> JobOut:
    return JobOut.of(cancel_job(session, AllocationRow, allocation_id, user))


@router.post("/allocations/{allocation_id}/publish", response_model=JobOut,
             summary="Publish an allocation (atomic); its deliveries join the week's schedule")
def publish_allocation(allocation_id: Id, body: PublishIn, session: SessionDep,
                       user: Staff) -> JobOut:
    """From now on the stock it gives out is gone for later runs, the public report counts it,
    and the next schedule of its week includes its ``goods_delivery`` needs. A superseded run's
    deliveries leave the schedule inputs (re-solve the week if it was already published)."""
    return JobOut.of(publish_job(session, AllocationRow, user, allocation_id, body.supersede))


PublicCommunity = Annotated[str | None, Query(
    max_length=40, description="the community's code; needed when the deployment serves "
    "several (GET /v1/communities lists them)")]


def _public_name(session: Session, code: str | None, settings: ApiSettings) -> str:
    """Scope ``session`` to the report's community; its name (a single community's deployment
    keeps the name in its settings)."""
    community = public_community(session, code)
    return community.name if code is not None else settings.community


@router.get("/reports/allocations/{month}.csv", response_class=Response,
            summary="Public monthly allocation report as CSV (no login)",
            responses={200: {"content": {"text/csv": {}}}})
def report_csv(month: Month, session: SessionDep, settings: SettingsDep,
               table: Annotated[Literal["categories", "households", "timebank"], Query(
                   description="totals per category and priority, one row per "
                   "anonymised household, or the time bank's minutes")] = "categories",
               community: PublicCommunity = None) -> Response:
    report = allocating.report(session, month, _public_name(session, community, settings))
    frame = {"categories": report.categories, "households": report.households,
             "timebank": report.timebank}[table]
    name = re.sub(r"[^0-9-]", "", month)
    # UTF-8 with a byte-order mark: Excel on Chinese Windows then opens it correctly.
    return Response(frame.to_csv(index=False).encode("utf-8-sig"), media_type="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="allocations-{name}-{table}.csv"'})


@router.get("/reports/allocations/{month}", response_class=HTMLResponse,
            summary="Public monthly allocation report as a page (no login)")
def report_page(month: Month, session: SessionDep, settings: SettingsDep,
                community: PublicCommunity = None) -> HTMLResponse:
    return HTMLResponse(report_html(allocating.report(
        session, month, _public_name(session, community, settings))))
