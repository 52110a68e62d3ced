"""Grid units (网格): coordinators upload the units as GeoJSON; a grid worker (网格员) sees the
units she looks after, their report and their needs, and nothing of the other units."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import mapping, shape
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.community import audit, load_problem
from api.errors import Problem
from api.models import GridUnitRow
from api.paging import Page, page_of
from api.params import Limit, Offset
from api.security import Caller, Coordinator, Role, SessionDep, require
from matcher.domain import Week
from matcher.grids import GridUnit, assign, parse_grids, unit_reports

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
    if user.role == Role.COORDINATOR.value:
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
        raise Problem(422, f"week: {exc}") from exc
    units = _units(session)
    shown = {u.id for u in _visible(units, user)}
    problem = load_problem(session, iso_week)
    return page_of([UnitReportOut(unit_id=r.unit_id, name=r.name, volunteers=r.volunteers,
                                  needs=r.needs, occurrences=r.occurrences,
                                  red_occurrences=r.red_occurrences, merchants=r.merchants)
                    for r in unit_reports(units, problem) if r.unit_id in shown],
                   limit, offset)


@router.get("/grids/{unit_id}/needs", response_model=Page[UnitNeed],
            summary="The needs in one grid unit (a grid worker: only her own units)")
def unit_needs(unit_id: Annotated[str, Path(max_length=64)], session: SessionDep,
               user: GridReader,
               week: Annotated[str, Query(
                   pattern=r"^\d{4}-W\d{2}$")] = "2026-W48",
               limit: Limit = 100, offset: Offset = 0) -> Page[UnitNeed]:
    units = _units(session)
    if unit_id not in {u.id for u in units}:
        raise Problem(404, f"no grid unit {unit_id}")
    if unit_id not in {u.id for u in _visible(units, user)}:
        raise Problem(403, f"grid unit {unit_id} is not yours")
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
