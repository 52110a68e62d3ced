"""The map of a schedule (:mod:`matcher.mapview`): the community's own streets as the base layer,
needs by priority and coverage, volunteers, merchants and each busy volunteer's 15-minute walk,
with the legend in the caller's language; what ``LinliMap.draw`` takes, so the console draws it
with the vendored Leaflet and nothing from outside."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.community import guest_volunteers, load_problem, with_guests
from api.errors import Problem, label
from api.models import ScheduleRow
from api.params import Id
from api.scheduling import stored_schedule
from api.security import Coordinator, SessionDep
from api.weekly import get_job
from matcher import i18n
from matcher.domain import (
    Week,
)
from matcher.i18n import _
from matcher.mapview import map_document
from matcher.settings import Settings

router = APIRouter(prefix="/v1", tags=["schedules"])


class MapOut(BaseModel):
    """What the console's map (``LinliMap.draw``) takes: GeoJSON layers and the page's words."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "lang": "zh-CN", "title": "邻里 · 2026-W48 周", "summary": "共 767 / 867 次服务已安排",
        "note": "位置只精确到约 100 米。",
        "layers": {"streets": {"type": "FeatureCollection", "features": []},
                   "needs": {"type": "FeatureCollection", "features": []}},
        "names": {"streets": "街道", "needs": "需求"},
        "legend": [{"symbol": "need", "colour": "#d7301f", "label": "红色（紧急）"}],
        "legend_title": "图例", "tiles": [], "attribution": "© OpenStreetMap contributors"}]})
    lang: str = Field(description="the language of the words below (zh-CN or en)")
    title: str
    summary: str
    note: str
    layers: dict[str, dict[str, Any]] = Field(
        description="GeoJSON FeatureCollections by name: streets, circles, needs, volunteers, "
        "merchants")
    names: dict[str, str] = Field(description="each layer's name, to show")
    legend: list[dict[str, str]] = Field(description="rows: a symbol, its colour, its label")
    legend_title: str
    tiles: list[dict[str, Any]] = Field(description="tile layers LINLI_TILES configures; none "
                                        "by default (the streets are the base layer)")
    attribution: str


@router.get("/schedules/{schedule_id}/map", response_model=MapOut,
            summary="The schedule's map: streets, needs, volunteers, merchants, legend")
def schedule_map(schedule_id: Id, session: SessionDep, user: Coordinator,
                 request: Request) -> MapOut:
    """GeoJSON layers (``streets``, ``circles``, ``needs``, ``volunteers``, ``merchants``),
    the legend and titles in the caller's language, and the tiles ``LINLI_TILES`` configures
    (none by default: the streets are the base layer). People and merchants are rounded to
    about 100 m. 409 until the schedule is solved."""
    row = get_job(session, ScheduleRow, schedule_id)
    if row.summary is None:
        raise Problem(409, _("schedule {id} is {status}; its map is drawn once it is solved")
                      .format(id=schedule_id, status=label(row.status)), code="job_not_solved")
    problem = with_guests(load_problem(session, Week.parse(row.week)),
                          guest_volunteers(session, row.id))
    schedule = stored_schedule(session, row)
    network = request.app.state.networks.get()
    with i18n.use(i18n.negotiate(request.headers.get("accept-language"))):
        try:
            return MapOut(**map_document(problem, schedule, network, Settings()))
        except ValueError as exc:  # tiles asked for without their key
            raise Problem(422, _("the map cannot be drawn: {why}").format(why=exc)) from exc
