"""What is within my 15 minutes (便民服务圈): the public lookup of resources near a resident.

No login: a resident's phone or the QR code of the community poster opens it. Lookups are
throttled per client address (the sliding window of the login throttle), since each one runs a
shortest-path search. The partner merchants come from the database at each lookup (so an edit
shows at once); the public places from OpenStreetMap are read once per process.

The lookup is the deployment's, not one community's: the 15-minute circle ignores
administrative lines, so a partner shop of the neighbouring community within a resident's walk
is hers to use, and each community's corrections (a shop hidden, a place added) follow its
places across the line. Only what a shop or a place shows on its door is read: names,
categories, services and where they are; never a need, a volunteer or a beneficiary. The
coordinators' resource list, by contrast, is their own community's (a scoped session).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.community import audit
from api.errors import Problem
from api.models import MerchantRow, ResourceRow
from api.paging import Page, page_of
from api.params import Limit, Offset
from api.security import Coordinator, SessionDep
from api.settings import ApiSettings
from api.tenancy import check_new_id
from api.throttle import SlidingWindow
from matcher import i18n
from matcher.coords import CoordSystem, from_wgs84, in_china, to_wgs84
from matcher.domain import Location
from matcher.errors import NetworkError
from matcher.i18n import _
from matcher.nearby import NearbyIndex
from matcher.resources import (
    ATTRIBUTION,
    Category,
    Edit,
    Resource,
    apply_edits,
    category_label,
    partner_resources,
    read_osm_resources,
)
from matcher.settings import get_settings

router = APIRouter(prefix="/v1", tags=["residents"])


class Places:
    """The public places of the OSM extract named by the settings, read once (lazily)."""

    def __init__(self, settings: ApiSettings) -> None:
        self.sources = [p for p in dict.fromkeys((settings.places_path, settings.network_path))
                        if p is not None and not p.lower().endswith(".graphml")]
        self._found: list[Resource] | None = None
        self._lock = threading.Lock()

    def get(self) -> list[Resource]:
        with self._lock:
            if self._found is None:
                found: list[Resource] = []
                for source in self.sources:
                    found += read_osm_resources(source)
                self._found = found
            return self._found


class Route(BaseModel):
    type: str = Field("LineString", examples=["LineString"])
    coordinates: list[list[float]] = Field(description="[lon, lat] pairs in the caller's "
                                           "coordinate system, from the resident to the place")


class NearbyPlace(BaseModel):
    id: str = Field(examples=["merchant:M001", "osm:n4913522"])
    category: Category
    category_name: str = Field(examples=["社区食堂"])
    name: str = Field(examples=["幸福食堂"])
    source: str = Field(description="osm or merchant", examples=["merchant"])
    services: list[str] = Field(description="a partner merchant's services (服务清单)")
    lat: float
    lon: float
    minutes: float = Field(description="walking minutes on the street network")
    metres: float
    directions: str = Field(examples=["沿景田路向北走350米，右转进入红荔路，走120米，到达幸福食堂"])
    steps: list[str]
    route: Route


ROUTE_EXAMPLE: dict[str, Any] = {"type": "LineString",
                 "coordinates": [[114.0177, 22.5341], [114.0172, 22.5350]]}
PLACE_EXAMPLE: dict[str, Any] = {
    "id": "merchant:M001", "category": "canteen", "category_name": "社区食堂",
    "name": "幸福食堂", "source": "merchant", "services": ["meal"], "lat": 22.535,
    "lon": 114.0172, "minutes": 6.0, "metres": 450.0,
    "directions": "沿景田路向北走350米，右转进入红荔路，走120米，到达幸福食堂",
    "steps": ["沿景田路向北走350米", "右转进入红荔路，走120米", "到达幸福食堂"],
    "route": ROUTE_EXAMPLE}


class NearbyAnswer(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "circle_min": 15, "coords": "wgs84", "places": [PLACE_EXAMPLE],
        "attribution": "© OpenStreetMap contributors"}]})
    circle_min: float
    coords: CoordSystem
    places: list[NearbyPlace]
    attribution: str = Field(description="OpenStreetMap's, to show with the places and routes")


def _sources(session: Session, public: list[Resource], everywhere: bool = False
             ) -> list[Resource]:
    """The public places and the partner merchants on file, before the coordinators' edits:
    the session's community's merchants, or with ``everywhere`` every community's."""
    # The table's columns, not the model's: a scoped session adds its community to every
    # statement about the model, and the residents' lookup must not depend on whether the
    # request happens to carry one.
    c: Any = MerchantRow.__table__.c if everywhere else MerchantRow
    rows = session.execute(select(c.merchant_id, c.name, c.lat, c.lon, c.services)).all()
    resources = list(public)
    for ident, name, m_lat, m_lon, services in rows:
        resources += partner_resources(ident, name, Location(m_lat, m_lon),
                                       list(services))
    return resources


def _edit(row: Any) -> Edit:
    """A coordinator's edit, from its row (a :class:`ResourceRow` or a row of its table)."""
    services = tuple(row.services)
    return Edit(Resource(row.resource_id, Category(row.category), row.name,
                         Location(row.lat, row.lon), "coordinator", services), row.hidden)


def _edits(session: Session, everywhere: bool = False) -> list[Edit]:
    """The coordinators' edits: the session's community's, or with ``everywhere`` every
    community's (plain statements, as :func:`_sources`)."""
    if everywhere:
        return [_edit(row) for row in session.execute(select(ResourceRow.__table__))]
    return [_edit(row) for row in session.scalars(select(ResourceRow))]


def _caller_address(request: Request) -> str:
    return request.client.host if request.client else ""


def _out(lat: float, lon: float, system: CoordSystem) -> tuple[float, float]:
    out_lat, out_lon = from_wgs84(lat, lon, system)
    return round(out_lat, 6), round(out_lon, 6)


@router.get("/nearby", response_model=NearbyAnswer,
            summary="What is within a 15-minute walk (public, no login)",
            responses={429: {"description": "too many lookups from this address; wait "
                             "Retry-After seconds"},
                       503: {"description": "the street or places file cannot be read"}})
def nearby(request: Request, session: SessionDep,
           lat: Annotated[float, Query(ge=-90, le=90, description="where the resident is")],
           lon: Annotated[float, Query(ge=-180, le=180)],
           category: Annotated[Category | None, Query(description="only this kind")] = None,
           coords: Annotated[CoordSystem, Query(
               description="the system of lat/lon, and of the answer: wgs84, gcj02 "
               "(Amap/Tencent) or bd09 (Baidu)")] = CoordSystem.WGS84,
           limit: Annotated[int, Query(ge=1, le=100)] = 20) -> NearbyAnswer:
    """The resources within the circle, nearest first: partner merchants and public places
    from OpenStreetMap, each with walking minutes, its route as a GeoJSON LineString and short
    directions from street names (Chinese unless ``Accept-Language`` asks for English).

    Every community's partner shops count: the circle is the resident's walk, and a shop
    across the line to the neighbouring community is as near as one of her own."""
    guard: SlidingWindow = request.app.state.nearby_guard
    address = _caller_address(request)
    wait = guard.retry_after(address)
    if wait:
        raise Problem(429, _("too many lookups; try again in {wait} s").format(wait=wait),
                      headers={"Retry-After": str(wait)})
    guard.add(address)
    if not in_china(lat, lon):
        raise Problem(422, _("the place is outside China (are lat and lon swapped?)"),
                      errors=[{"path": ["query", "lat"], "message": _("outside China"),
                               "type": "outside_china"}])
    try:
        network = request.app.state.networks.get()
        public: list[Resource] = request.app.state.places.get()
    except NetworkError as exc:  # a bad file in the settings: the operator's to fix
        raise Problem(503, _("the street or places file cannot be read: {why}").format(
            why=exc)) from exc
    if network is None:
        # A deployment without streets has no circle to look in: the caller's request is
        # fine, the service cannot answer it (not a server error).
        raise Problem(409, _("no street network is configured (LINLI_NETWORK_PATH)"),
                      code="no_street_network")
    resources = apply_edits(_sources(session, public, everywhere=True),
                            _edits(session, everywhere=True))
    settings = get_settings()
    here = Location(*to_wgs84(lat, lon, coords))
    with i18n.use(i18n.negotiate(request.headers.get("accept-language"))):
        found = NearbyIndex(network, resources, settings).lookup(here, category, limit)
        places = []
        for f in found:
            r = f.resource
            p_lat, p_lon = _out(r.location.lat, r.location.lon, coords)
            line = [list(reversed(_out(y, x, coords))) for x, y in f.route]
            places.append(NearbyPlace(
                id=r.id, category=r.category, category_name=category_label(r.category),
                name=r.label, source=r.source, services=list(r.services), lat=p_lat,
                lon=p_lon, minutes=round(f.minutes, 1), metres=round(f.metres),
                directions=f.text, steps=f.steps, route=Route(coordinates=line)))
    return NearbyAnswer(circle_min=settings.circle_min, coords=coords, places=places,
                        attribution=ATTRIBUTION)


# Coordinators keep the resource list: correct or hide a place from OpenStreetMap or a merchant
# (under its id), or add one of their own.

ResourceId = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:\-]+$",
                                 description="osm:n123, merchant:M001, or an id of your own")]


class ResourceEdit(BaseModel):
    """A place of the resource list as a coordinator sets it (WGS84)."""

    model_config = ConfigDict(extra="forbid")
    category: Category
    name: str = Field(max_length=128, examples=["景田社康中心"])
    lat: float = Field(ge=18.0, le=54.0, description="WGS84, inside China")
    lon: float = Field(ge=73.0, le=135.5)
    services: list[Annotated[str, Field(min_length=1, max_length=64,
                                        pattern=r"^[^;]+$")]] = Field(
        default_factory=list, max_length=50)
    hidden: bool = Field(False, description="leave this place out of lookups and the poster")


class ResourceEntry(ResourceEdit):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "merchant:M001", "category": "canteen", "name": "幸福食堂", "lat": 22.535,
        "lon": 114.0172, "services": ["meal"], "hidden": False, "source": "merchant",
        "edited": False}]})
    id: str
    source: str = Field(description="osm, merchant or coordinator")
    edited: bool = Field(description="a coordinator has corrected, added or hidden it")


def _entry(r: Resource, edited: bool, hidden: bool = False) -> ResourceEntry:
    return ResourceEntry(id=r.id, category=r.category, name=r.name, lat=r.location.lat,
                         lon=r.location.lon, services=list(r.services), hidden=hidden,
                         source=r.source, edited=edited)


@router.get("/resources", response_model=Page[ResourceEntry],
            summary="The resource list (资源清单), hidden places included")
def list_resources(request: Request, session: SessionDep, user: Coordinator,
                   category: Annotated[Category | None, Query()] = None,
                   limit: Limit = 100, offset: Offset = 0) -> Page[ResourceEntry]:
    try:
        public: list[Resource] = request.app.state.places.get()
    except NetworkError as exc:
        raise Problem(503, _("the places file cannot be read: {why}").format(why=exc)) from exc
    sources = _sources(session, public)
    edits = _edits(session)
    edited = {e.resource.id for e in edits}
    hidden = [e for e in edits if e.hidden]
    source_of = {r.id: r for r in sources}
    out = [_entry(r, r.id in edited) for r in apply_edits(sources, edits)]
    out += [_entry(replace(source_of.get(e.resource.id, e.resource),
                           source=source_of[e.resource.id].source
                           if e.resource.id in source_of else "coordinator"), True, True)
            for e in hidden]
    return page_of(sorted((e for e in out if category is None or e.category is category),
                          key=lambda e: (e.category.value, e.id)), limit, offset)


@router.put("/resources/{resource_id}", response_model=ResourceEntry,
            summary="Correct, hide or add a place of the resource list")
def put_resource(resource_id: ResourceId, body: ResourceEdit, session: SessionDep,
                 user: Coordinator) -> ResourceEntry:
    row = session.get(ResourceRow, resource_id)
    if row is None:
        merchant = resource_id.removeprefix("merchant:")
        if merchant != resource_id and session.get(MerchantRow, merchant) is None:
            raise Problem(404, _("no merchant {id}").format(id=repr(merchant)))
        check_new_id(session, ResourceRow, "resources", resource_id)
        row = ResourceRow(resource_id=resource_id)
        session.add(row)
    row.category, row.name = body.category.value, body.name.strip()
    row.lat, row.lon = body.lat, body.lon
    row.services, row.hidden = list(body.services), body.hidden
    edit = _edit(row)
    audit(session, user, "hide" if body.hidden else "update", f"resource:{resource_id}")
    session.commit()
    return _entry(edit.resource, True, edit.hidden)


@router.delete("/resources/{resource_id}", status_code=204,
               summary="Undo a coordinator's edit: the place is as its source says again")
def delete_resource(resource_id: ResourceId, session: SessionDep, user: Coordinator) -> None:
    row = session.get(ResourceRow, resource_id)
    if row is None:
        raise Problem(404, _("no edit of resource {id}").format(id=resource_id))
    session.delete(row)
    audit(session, user, "delete", f"resource:{resource_id}")
    session.commit()
