"""The 15-minute circle's holes (服务盲区) for coordinators: walking minutes from every street
node to the nearest resource of a category (the accessibility layer), and the households whose
needs lie beyond the circle of it."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.community import load_problem
from api.errors import Problem
from api.params import IsoWeek
from api.routers.nearby import _edits, _sources
from api.security import Coordinator, SessionDep
from matcher.accessibility import blind_spots, category_layer
from matcher.domain import Week
from matcher.errors import NetworkError
from matcher.i18n import _
from matcher.resources import ATTRIBUTION, Category, Resource, apply_edits
from matcher.settings import get_settings

router = APIRouter(prefix="/v1", tags=["residents"])


class NodeMinutes(BaseModel):
    lat: float
    lon: float
    minutes: float | None = Field(description="to the nearest place of the category; null "
                                  "when the category has no place at all")


class FarNeed(BaseModel):
    need_id: str
    beneficiary: str
    priority: str
    lat: float
    lon: float
    minutes: float | None


class AccessibilityOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "category": "canteen", "circle_min": 15.0, "places": 4,
        "nodes": [{"lat": 22.5412, "lon": 114.0261, "minutes": 6.5}],
        "beyond": [{"need_id": "N0012", "beneficiary": "张**", "priority": "yellow",
                    "lat": 22.538, "lon": 114.021, "minutes": 18.2}],
        "attribution": "© OpenStreetMap contributors (ODbL)"}]})
    category: Category
    circle_min: float
    places: int = Field(description="places of the category in the resource list")
    nodes: list[NodeMinutes]
    beyond: list[FarNeed] = Field(description="needs of the week farther than the circle")
    attribution: str


@router.get("/accessibility", response_model=AccessibilityOut,
            summary="Walking minutes from every street node to the nearest place of a "
            "category, and the needs beyond the circle of it",
            responses={503: {"description": "the street or places file cannot be read"}})
def accessibility(request: Request, session: SessionDep, user: Coordinator,
                  category: Annotated[Category, Query()],
                  week: Annotated[IsoWeek | None, Query()] = None) -> AccessibilityOut:
    try:
        network = request.app.state.networks.get()
        public: list[Resource] = request.app.state.places.get()
    except NetworkError as exc:
        raise Problem(503, _("the street or places file cannot be read: {why}").format(
            why=exc)) from exc
    if network is None:
        # A deployment without streets has no circle to look in: the caller's request is
        # fine, the service cannot answer it (not a server error).
        raise Problem(409, _("no street network is configured (LINLI_NETWORK_PATH)"),
                      code="no_street_network")
    settings = get_settings()
    resources = [r for r in apply_edits(_sources(session, public), _edits(session))
                 if r.category is category]
    layer = category_layer(network, resources, settings, [category])
    problem = load_problem(session, Week.parse(week) if week else Week.containing(
        request.app.state.clock().date()))
    far = blind_spots(network, layer, problem.needs, settings, [category])
    needs = problem.need_by_id

    def finite(value: float) -> float | None:
        return None if math.isinf(value) else round(value, 1)

    return AccessibilityOut(
        category=category, circle_min=settings.circle_min, places=len(resources),
        nodes=[NodeMinutes(lat=round(float(a), 6), lon=round(float(b), 6),
                           minutes=finite(float(m)))
               for a, b, m in zip(network.lat, network.lon, layer[:, 0], strict=True)],
        beyond=[FarNeed(need_id=b.need_id, beneficiary=needs[b.need_id].beneficiary,
                        priority=needs[b.need_id].priority.value,
                        lat=needs[b.need_id].location.lat, lon=needs[b.need_id].location.lon,
                        minutes=finite(b.minutes)) for b in far],
        attribution=ATTRIBUTION)
