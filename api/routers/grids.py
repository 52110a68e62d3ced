"""Grid units (网格): coordinators upload the units as GeoJSON; a grid worker (网格员) sees the
units she looks after, their report and their needs, and nothing of the other units."""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import mapping, shape
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, object_session

from api.community import audit, load_problem, row_record
from api.errors import Problem
from api.lifecycle import Now
from api.models import GridUnitRow, NeedRow, ScheduleRow, TaskRow, UnmetRow
from api.paging import Page, page_of
from api.params import Limit, Offset
from api.replanning import review_at_risk
from api.routers.resources import NeedIn, _validate
from api.security import Caller, Coordinator, Role, SessionDep, require
from api.tenancy import check_new_id
from matcher.domain import Location, Priority, Week
from matcher.domain import Problem as Community
from matcher.grids import GridUnit, assign, locate, parse_grids, unit_reports
from matcher.i18n import _

router = APIRouter(prefix="/v1", tags=["grids"])

GridReader = Annotated[Caller, Depends(
    require(Role.COORDINATOR, Role.GRID_WORKER))]


class UnitOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "unit_id": "G01", "name": "景田北第一网格"}]})
    unit_id: str
    name: str


class UnitReportOut(UnitOut):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "unit_id": "G01", "name": "景田北第一网格", "volunteers": 42, "needs": 57,
        "occurrences": 120, "red_occurrences": 26, "merchants": 3}]})
    volunteers: int
    needs: int
    occurrences: int = Field(description="in the week asked for")
    red_occurrences: int
    merchants: int
    schedule_id: int | None = Field(None, description="the week's plan the figures below "
                                    "come from: the published one, else the newest solved")
    occurrences_by_priority: dict[str, int] = Field(default_factory=dict)
    covered_by_priority: dict[str, int] = Field(default_factory=dict)
    unmet_by_reason: dict[str, int] = Field(default_factory=dict)
    volunteers_with_tasks: int = Field(0, description="volunteers of the unit with tasks in "
                                       "the plan")
    volunteer_hours: float = Field(0.0, description="hours of those tasks")


class UnitNeed(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "need_id": "N0031", "service": "meal_delivery", "beneficiary": "张奶奶",
        "priority": "yellow", "days": ["mon", "wed"], "window": "11:00-12:30",
        "lat": 22.5352, "lon": 114.0183}]})
    need_id: str
    service: str
    beneficiary: str
    priority: str
    days: list[str]
    window: str
    lat: float
    lon: float


def _units(session: Session) -> list[GridUnit]:
    rows = session.scalars(select(GridUnitRow).order_by(GridUnitRow.position)).all()
    return [GridUnit(r.unit_id, r.name, shape(json.loads(r.geometry))) for r in rows]


def _visible(units: list[GridUnit], user: Caller) -> list[GridUnit]:
    """A coordinator sees every unit, a grid worker only her own."""
    if user.reads_all:
        return units
    return [u for u in units if u.id in user.units]


@router.put("/grids", response_model=list[UnitOut],
            summary="Replace the grid units with a GeoJSON FeatureCollection (all or nothing)")
def put_grids(session: SessionDep, user: Coordinator,
              document: Annotated[dict[str, Any], Body(
                  description="FeatureCollection of Polygons; each feature's "
                  "properties.unit_id (or id) and properties.name")]) -> list[UnitOut]:
    units = parse_grids(document, "body")  # InputError: 422 naming features[k]
    session.execute(delete(GridUnitRow))
    for unit in units:
        check_new_id(session, GridUnitRow, "grid units", unit.id)
    session.add_all(GridUnitRow(unit_id=u.id, position=k, name=u.name,
                                geometry=json.dumps(mapping(u.geometry)))
                    for k, u in enumerate(units))
    audit(session, user, "update", "grids", f"{len(units)} units")
    session.commit()
    return [UnitOut(unit_id=u.id, name=u.name) for u in units]


@router.get("/grids", response_model=Page[UnitOut], summary="The grid units you may see")
def list_grids(session: SessionDep, user: GridReader, limit: Limit = 100,
               offset: Offset = 0) -> Page[UnitOut]:
    return page_of([UnitOut(unit_id=u.id, name=u.name)
                    for u in _visible(_units(session), user)], limit, offset)


@router.get("/grids/report", response_model=Page[UnitReportOut],
            summary="Volunteers, needs and merchants by grid unit (yours only, for a grid "
            "worker)")
def grid_report(session: SessionDep, user: GridReader,
                week: Annotated[str, Query(
                    pattern=r"^\d{4}-W\d{2}$", examples=["2026-W48"])],
                limit: Limit = 100, offset: Offset = 0) -> Page[UnitReportOut]:
    try:
        iso_week = Week.parse(week)
    except ValueError as exc:
        raise Problem(422, _("week {week} is not a week of the calendar like 2026-W48").format(
            week=week)) from exc
    units = _units(session)
    shown = {u.id for u in _visible(units, user)}
    problem = load_problem(session, iso_week)
    where = assign(units, problem)
    plan = _week_plan(session, str(iso_week))
    out = []
    for r in unit_reports(units, problem):
        if r.unit_id not in shown:
            continue
        report = UnitReportOut(unit_id=r.unit_id, name=r.name, volunteers=r.volunteers,
                               needs=r.needs, occurrences=r.occurrences,
                               red_occurrences=r.red_occurrences, merchants=r.merchants)
        _add_plan(report, problem, where, plan)
        out.append(report)
    return page_of(out, limit, offset)


def _week_plan(session: Session, week: str) -> ScheduleRow | None:
    """The week's published schedule, else its newest solved one."""
    rows = session.scalars(select(ScheduleRow).where(
        ScheduleRow.week == week, ScheduleRow.status.in_(("published", "solved")))
        .order_by(ScheduleRow.id.desc())).all()
    return next((r for r in rows if r.status == "published"), rows[0] if rows else None)


def _add_plan(report: UnitReportOut, problem: Community, where: dict[str, dict[str, str | None]],
              plan: ScheduleRow | None) -> None:
    """Coverage by priority, unmet by reason, and the unit's volunteers' tasks and hours, from
    the week's plan (covered = the unit's occurrences less those the plan left unmet)."""
    unit = report.unit_id
    mine = {n.id for n in problem.needs if where["needs"].get(n.id) == unit}
    totals = Counter(o.need.priority.value for o in problem.occurrences if o.need.id in mine)
    report.occurrences_by_priority = {p.value: totals.get(p.value, 0) for p in Priority}
    if plan is None:
        return
    session = object_session(plan)
    assert session is not None, "a row read from a session"
    report.schedule_id = plan.id
    need_priority = {n.id: n.priority.value for n in problem.needs}
    unmet = session.execute(select(UnmetRow.need_id, UnmetRow.reason_code).where(
        UnmetRow.schedule_id == plan.id)).all()
    mine_unmet = [(need, reason) for need, reason in unmet if need in mine]
    missed = Counter(need_priority[need] for need, _ in mine_unmet)
    report.covered_by_priority = {p: max(0, n - missed.get(p, 0))
                                  for p, n in report.occurrences_by_priority.items()}
    report.unmet_by_reason = dict(sorted(Counter(r for _, r in mine_unmet).items()))
    people = {v for v, u in where["volunteers"].items() if u == unit}
    tasks = session.execute(select(TaskRow.volunteer_id, TaskRow.start, TaskRow.end).where(
        TaskRow.schedule_id == plan.id, TaskRow.state.not_in(("declined", "cancelled")),
        TaskRow.volunteer_id.in_(people))).all() if people else []
    report.volunteers_with_tasks = len({t.volunteer_id for t in tasks})
    report.volunteer_hours = round(sum(t.end - t.start for t in tasks) / 60, 1)


@router.get("/grids/{unit_id}/needs", response_model=Page[UnitNeed],
            summary="The needs in one grid unit (a grid worker: only her own units)")
def unit_needs(unit_id: Annotated[str, Path(max_length=64)], session: SessionDep,
               user: GridReader,
               week: Annotated[str, Query(
                   pattern=r"^\d{4}-W\d{2}$")] = "2026-W48",
               limit: Limit = 100, offset: Offset = 0) -> Page[UnitNeed]:
    units = _units(session)
    if unit_id not in {u.id for u in units}:
        raise Problem(404, _("no grid unit {unit}").format(unit=unit_id))
    if unit_id not in {u.id for u in _visible(units, user)}:
        raise Problem(403, _("grid unit {unit} is not yours").format(unit=unit_id),
                      code="grid_unit_not_yours")
    problem = load_problem(session, Week.parse(week))
    where = assign(units, problem)["needs"]
    mine = [n for n in problem.needs if where[n.id] == unit_id][offset:offset + limit]
    total = sum(1 for n in problem.needs if where[n.id] == unit_id)
    for n in mine:  # only the needs shown are read
        audit(session, user, "read", f"need:{n.id}", f"grid {unit_id}")
    session.commit()
    return Page(items=[UnitNeed(need_id=n.id, service=n.service, beneficiary=n.beneficiary,
                                priority=n.priority.value, days=[d.value for d in n.days],
                                window=str(n.window), lat=n.location.lat, lon=n.location.lon)
                       for n in mine], total=total, limit=limit, offset=offset)


class NeedChange(BaseModel):
    """What a grid worker may change of a need in her units: when and how it is served. Who it
    is and where stay as the coordinators recorded them."""

    model_config = ConfigDict(extra="forbid")
    days: str | None = Field(None, examples=["mon;wed;fri"])
    window: str | None = Field(None, examples=["11:00-12:30"])
    duration_min: int | None = None
    volunteers_needed: int | None = None
    priority: Literal["red", "yellow", "blue"] | None = None


@router.patch("/grids/{unit_id}/needs/{need_id}", response_model=UnitNeed,
              summary="Change when and how a need of your unit is served (a grid worker: only "
              "her own units)")
def change_unit_need(unit_id: Annotated[str, Path(max_length=64)],
                     need_id: Annotated[str, Path(min_length=1, max_length=64)],
                     body: NeedChange, session: SessionDep, user: GridReader,
                     request: Request, now: Now) -> UnitNeed:
    """Checked like a row of an import (422 naming the field); published upcoming tasks the
    change breaks are marked at risk, as for any edit of a need."""
    units = _units(session)
    if unit_id not in {u.id for u in units}:
        raise Problem(404, _("no grid unit {unit}").format(unit=unit_id))
    if unit_id not in {u.id for u in _visible(units, user)}:
        raise Problem(403, _("grid unit {unit} is not yours").format(unit=unit_id),
                      code="grid_unit_not_yours")
    row = session.get(NeedRow, need_id)
    if row is None or locate([u for u in units], [Location(row.lat, row.lon)])[0] != unit_id:
        raise Problem(404, _("no need {need} in grid unit {unit}").format(need=need_id,
                                                                           unit=unit_id))
    record = row_record(row, "needs") | {"phone": row.phone, "address": row.address}
    record |= {k: v for k, v in body.model_dump().items() if v is not None}
    values = _validate("needs", NeedIn(**record))
    for key, value in values.items():
        setattr(row, key, value)
    audit(session, user, "update", f"need:{need_id}", f"grid {unit_id}")
    review_at_risk(session, request.app.state, now)
    session.commit()
    return UnitNeed(need_id=row.need_id, service=row.service, beneficiary=row.beneficiary,
                    priority=row.priority, days=list(row.days), window=row.window, lat=row.lat,
                    lon=row.lon)
