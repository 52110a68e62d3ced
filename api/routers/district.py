"""The district report (街道报表) of a week: coverage by priority and unmet visits by reason per
community and per grid unit, volunteers' hours, points issued and redeemed, time-bank minutes
and charity given (:mod:`api.district_report` says where each figure comes from); as JSON, as
``district_report.csv`` (UTF-8 with a byte-order mark, Chinese headers) and as the offline
choropleth (its document for the console, or the whole page).

A street or district admin reads every community below her without naming one (or only the one
she names with ``X-Linli-Community``); a coordinator reads her own community."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.district_report import DistrictView, fill_report
from api.errors import Problem
from api.security import Caller, Role, SessionDep, require
from api.tenancy import CommunityScope, Scope
from matcher import i18n
from matcher.district_report import (
    AreaFigures,
    CommunityReport,
    district_map_document,
    render_district_map,
    report_frame,
)
from matcher.domain import Priority, Week
from matcher.i18n import _
from matcher.settings import Settings

router = APIRouter(prefix="/v1", tags=["district"])

DistrictReader = Annotated[Caller, Depends(require(
    Role.COORDINATOR, Role.STREET_ADMIN, Role.DISTRICT_ADMIN))]
WeekParam = Annotated[str, Query(pattern=r"^\d{4}-W\d{2}$", examples=["2026-W48"],
                                 description="the ISO week")]

_AREA_EXAMPLE: dict[str, Any] = {
    "unit_id": "G01", "unit_name": "景田北第一网格",
    "occurrences_by_priority": {"red": 12, "yellow": 20, "blue": 8},
    "covered_by_priority": {"red": 12, "yellow": 18, "blue": 5},
    "coverage_pct": {"red": 100.0, "yellow": 90.0, "blue": 62.5, "all": 87.5},
    "unmet_by_reason": {"volunteers_busy": 3, "out_of_hours": 2},
    "volunteer_hours": 21.5, "volunteers_active": 9, "points_issued": None,
    "points_redeemed": None, "charity_units": None, "timebank_minutes": None}


class AreaOut(BaseModel):
    """The figures of a community (``unit_id`` null), of one of its grid units, or of its
    needs in no unit (``unit_id`` "")."""

    model_config = ConfigDict(json_schema_extra={"examples": [_AREA_EXAMPLE]})
    unit_id: str | None
    unit_name: str
    occurrences_by_priority: dict[str, int] = Field(description="visits of the week")
    covered_by_priority: dict[str, int] | None = Field(
        description="visits the published plan covers; null without a published plan")
    coverage_pct: dict[str, float | None] = Field(
        description="covered share in per cent by priority and of all (``all``); null with "
        "nothing to cover or no published plan")
    unmet_by_reason: dict[str, int] = Field(description="unmet visits by reason code")
    volunteer_hours: float = Field(description="hours of the tasks on these needs")
    volunteers_active: int = Field(description="volunteers with tasks on these needs")
    points_issued: int | None = Field(description="the community's, in the week's dates; "
                                      "null for a grid unit")
    points_redeemed: int | None
    charity_units: int | None
    timebank_minutes: int | None

    @classmethod
    def of(cls, row: AreaFigures, planned: bool) -> AreaOut:
        coverage: dict[str, float | None] = {
            p.value: row.coverage(p) if planned else None for p in Priority}
        coverage["all"] = row.coverage() if planned else None
        ledger = row.ledger
        return cls(unit_id=row.unit_id, unit_name=row.unit_name,
                   occurrences_by_priority={p.value: row.occurrences[p] for p in Priority},
                   covered_by_priority={p.value: row.covered[p] for p in Priority}
                   if planned else None,
                   coverage_pct=coverage,
                   unmet_by_reason={r.value: n for r, n in sorted(row.unmet.items())},
                   volunteer_hours=row.volunteer_hours,
                   volunteers_active=row.volunteers_active,
                   points_issued=ledger.points_issued, points_redeemed=ledger.points_redeemed,
                   charity_units=ledger.charity_units,
                   timebank_minutes=ledger.timebank_minutes)


_COMMUNITY_EXAMPLE: dict[str, Any] = {
    "code": "jingtian", "name": "景田社区", "status": "optimal", "error": "",
    "area_source": "grids",
    "figures": _AREA_EXAMPLE | {"unit_id": None, "unit_name": "", "points_issued": 1290,
                                "points_redeemed": 300, "charity_units": 14,
                                "timebank_minutes": 1290},
    "units": [_AREA_EXAMPLE]}


class CommunityReportOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_COMMUNITY_EXAMPLE]})
    code: str
    name: str
    status: str = Field(description="the published plan's status (optimal or feasible), "
                        "unpublished (no published plan of the week) or failed (its stored "
                        "rows break a rule: error says which)")
    error: str
    area_source: str = Field(description="what the map draws it from: its grid units "
                             "(grids) or around its needs and volunteers (hull)")
    figures: AreaOut
    units: list[AreaOut] = Field(description="its grid units, then its needs in no unit")

    @classmethod
    def of(cls, code: str, part: CommunityReport) -> CommunityReportOut:
        return cls(code=code, name=part.name, status=part.status, error=part.error,
                   area_source=part.area_source, figures=AreaOut.of(part.figures, part.planned),
                   units=[AreaOut.of(u, part.planned) for u in part.units])


class DistrictReportOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "week": "2026-W48", "ledger_from": "2026-11-23", "ledger_to": "2026-11-29",
        "communities": [_COMMUNITY_EXAMPLE]}]})
    week: str
    ledger_from: str = Field(description="the first day the ledger's figures count")
    ledger_to: str = Field(description="the last day they count")
    communities: list[CommunityReportOut]

    @classmethod
    def of(cls, view: DistrictView) -> DistrictReportOut:
        return cls(week=str(view.report.week), ledger_from=view.ledger_from.isoformat(),
                   ledger_to=view.ledger_to.isoformat(),
                   communities=[CommunityReportOut.of(code, part) for code, part in
                                zip(view.codes, view.report.communities, strict=True)])


class DistrictMapOut(BaseModel):
    """What the console's district map (``LinliDistrictMap.draw``) takes."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "lang": "zh-CN", "title": "邻里 · 街道 · 2026-W48 周",
        "summary": "2 个社区共 40 次服务中已安排 35 次",
        "note": "没有网格的社区按约 100 米取整的位置画出范围。",
        "choose": "按哪类服务的安排比例着色", "choices": [{"key": "red", "label": "红色（紧急）"}],
        "selected": "red",
        "layers": {"communities": {"type": "FeatureCollection", "features": []},
                   "units": {"type": "FeatureCollection", "features": []}},
        "names": {"communities": "社区", "units": "网格"},
        "legend": {"classes": [{"colour": "#4575b4", "label": "95% 及以上"}],
                   "none": {"colour": "#d9d9d9", "label": "没有这类服务"}, "outlines": []},
        "legend_title": "已安排的比例", "tiles": [],
        "attribution": "© OpenStreetMap contributors"}]})
    lang: str = Field(description="the language of the words (zh-CN or en)")
    title: str
    summary: str
    note: str
    choose: str
    choices: list[dict[str, str]] = Field(description="what the areas may be coloured by")
    selected: str
    layers: dict[str, dict[str, Any]] = Field(
        description="GeoJSON FeatureCollections: communities and grid units, each area with "
        "its figures, colours and hover lines")
    names: dict[str, str]
    legend: dict[str, Any]
    legend_title: str
    tiles: list[dict[str, Any]]
    attribution: str


def _view(session: SessionDep, user: Caller, scope: CommunityScope, week: str
          ) -> DistrictView:
    try:
        iso_week = Week.parse(week)
    except ValueError as exc:
        raise Problem(422, _("week: {why}").format(why=exc)) from exc
    return fill_report(session, user, scope.id, iso_week)


def _language(request: Request) -> str:
    return i18n.negotiate(request.headers.get("accept-language"))


@router.get("/district/report", response_model=DistrictReportOut,
            summary="The district report of a week: each community and grid unit")
def district_report(week: WeekParam, session: SessionDep, user: DistrictReader, scope: Scope,
                    request: Request) -> DistrictReportOut:
    """Coverage by priority and unmet visits by reason from each community's published plan,
    volunteers' hours, and the ledger's figures for the week's dates, for every community the
    caller may read (an admin: all of hers unless she names one)."""
    with i18n.use(_language(request)):
        return DistrictReportOut.of(_view(session, user, scope, week))


@router.get("/district/report.csv", response_class=Response,
            summary="The district report as CSV (UTF-8 with a byte-order mark)",
            responses={200: {"content": {"text/csv": {}}}})
def district_report_csv(week: WeekParam, session: SessionDep, user: DistrictReader,
                        scope: Scope, request: Request) -> Response:
    """``district_report.csv``: a row per community, then one per grid unit of it; headers
    ``中文/code``."""
    with i18n.use(_language(request)):
        view = _view(session, user, scope, week)
        frame = report_frame(view.report)
    name = re.sub(r"[^0-9W-]", "", week)
    # UTF-8 with a byte-order mark: Excel on Chinese Windows then opens it correctly.
    return Response(frame.to_csv(index=False).encode("utf-8-sig"), media_type="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="district_report-{name}.csv"'})


@router.get("/district/map", response_model=DistrictMapOut,
            summary="The district's choropleth of a week (what the console's map draws)")
def district_map(week: WeekParam, session: SessionDep, user: DistrictReader, scope: Scope,
                 request: Request) -> DistrictMapOut:
    """Each community's area (its grid units, or around its places) and its units, coloured
    by the share of visits covered; the words in the caller's language."""
    with i18n.use(_language(request)):
        view = _view(session, user, scope, week)
        try:
            return DistrictMapOut(**district_map_document(view.report, Settings()))
        except ValueError as exc:  # tiles asked for without their key
            raise Problem(422, _("the map cannot be drawn: {why}").format(why=exc)) from exc


@router.get("/district/map.html", response_class=HTMLResponse,
            summary="The district's choropleth as one offline page (district_map.html)")
def district_map_page(week: WeekParam, session: SessionDep, user: DistrictReader,
                      scope: Scope, request: Request) -> HTMLResponse:
    """The same page ``linli district`` writes: Leaflet inline, nothing loaded from outside
    unless tiles are configured."""
    with i18n.use(_language(request)):
        view = _view(session, user, scope, week)
        try:
            return HTMLResponse(render_district_map(view.report, Settings()))
        except ValueError as exc:
            raise Problem(422, _("the map cannot be drawn: {why}").format(why=exc)) from exc
