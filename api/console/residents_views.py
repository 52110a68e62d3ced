"""邻里工作台, the residents' pages: what is within my 15 minutes (public, on the offline street
map, with the route and directions of GET /v1/nearby), and for coordinators the 15-minute
circle's holes (the accessibility layer of GET /v1/accessibility) with the week's recruiting and
partnering suggestions (/v1/suggestions) on the map and as tables.

Like every console page they read through the JSON API (the browser calls /v1/nearby itself, as
a resident's phone would), and they need nothing from outside: the streets are the community's
own OpenStreetMap network, drawn with the vendored Leaflet (:data:`matcher.mapview.STATIC_DIR`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup

from api.console.views import Ctx, Public, Refused, Session, back_to, chosen_week, problem_text
from matcher import i18n
from matcher.errors import NetworkError
from matcher.mapview import ATTRIBUTION, STATIC_DIR, street_lines
from matcher.resources import CATEGORIES, Category, category_label
from matcher.travel import WalkingNetwork

router = APIRouter(prefix="/console", include_in_schema=False)
MAP_STATIC = "/console/map-static"

# Drawn once per network: the streets are the same for every lookup.
_streets: dict[int, tuple[WalkingNetwork, str]] = {}


def script_json(value: object) -> Markup:
    """JSON safe inside a <script> element: no ``<``, ``>`` or ``&`` can end or open a tag."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e")
                  .replace("&", "\\u0026"))


def _network(ctx: Ctx) -> WalkingNetwork | None:
    try:
        network: WalkingNetwork | None = ctx.request.app.state.networks.get()
    except NetworkError:
        return None
    return network


def _street_json(network: WalkingNetwork) -> Markup:
    cached = _streets.get(id(network))
    if cached is None or cached[0] is not network:
        cached = (network, str(script_json(street_lines(network))))
        _streets[id(network)] = cached
    return Markup(cached[1])


def _categories() -> list[dict[str, str]]:
    return [{"code": c.value, "name": category_label(c)} for c in CATEGORIES]


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


@router.get("/nearby")
async def lookup(ctx: Public, lat: str | None = None, lon: str | None = None,
                 category: str | None = None) -> HTMLResponse:
    """The residents' lookup: pick a place on the map and a kind of place; the page asks
    GET /v1/nearby and shows what is within 15 minutes, with the walking route and directions."""
    network = _network(ctx)
    with i18n.use(ctx.lang):
        categories = _categories()
    if network is None:
        return ctx.render("residents/nearby.html", status=503, streets=None,
                          categories=categories, start=None, category=None)
    here_lat, here_lon = _float(lat), _float(lon)
    if here_lat is None or here_lon is None:  # the middle of the community's streets
        here_lat, here_lon = float(network.lat.mean()), float(network.lon.mean())
    chosen = category if category in {c.value for c in Category} else ""
    return ctx.render("residents/nearby.html", streets=_street_json(network),
                      categories=categories, start=script_json([here_lat, here_lon]),
                      category=chosen, attribution=ATTRIBUTION, map_static=MAP_STATIC)


@router.get("/circle")
async def circle(ctx: Session, week: str | None = None, category: str | None = None,
                 skill: str | None = None) -> HTMLResponse:
    """For coordinators: walking minutes from every street node to the nearest place of a
    category (the accessibility layer) with the households beyond the circle, and the week's
    newest recruiting and partnering suggestions, on the map and as tables."""
    chosen = chosen_week(ctx, week)
    kind = category if category in {c.value for c in Category} else Category.CANTEEN.value
    network = _network(ctx)
    layer: dict[str, Any] | None = None
    if network is not None:
        layer = await ctx.json("/v1/accessibility", params={"category": kind,
                                                             "week": str(chosen)})
    jobs = await ctx.items("/v1/suggestions", params={"week": str(chosen)})
    newest: dict[str, dict[str, Any]] = {}
    for job in jobs:  # newest first: the first of each kind is its latest run
        newest.setdefault(job["kind"], job)
    with i18n.use(ctx.lang):
        categories = _categories()
    return ctx.render(
        "residents/circle.html", week=str(chosen), category=kind, categories=categories,
        layer=layer, partners=newest.get("partners"), recruits=newest.get("recruits"),
        skill=skill or (newest["recruits"]["skill"] if "recruits" in newest else ""),
        streets=_street_json(network) if network is not None else None,
        map_data=script_json({"layer": layer, "partners": _done(newest.get("partners")),
                              "recruits": _done(newest.get("recruits"))}),
        attribution=ATTRIBUTION, map_static=MAP_STATIC, error=ctx.request.query_params.get(
            "error"))


def _done(job: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not job or job.get("status") != "solved" or not job.get("summary"):
        return []
    rows: list[dict[str, Any]] = job["summary"]["suggestions"]
    return rows


@router.post("/circle/suggestions")
async def find_suggestions(ctx: Session) -> Response:
    form = await ctx.request.form()
    week, kind = str(form.get("week", "")), str(form.get("kind", ""))
    body: dict[str, Any] = {"week": week, "kind": kind, "k": int(str(form.get("k") or 3))
                            if str(form.get("k") or "3").isdigit() else 3}
    if kind == "recruits":
        body["skill"] = str(form.get("skill", "")).strip() or None
    response = await ctx.api("POST", "/v1/suggestions", json=body)
    if response.status_code != 202:
        return back_to("/console/circle", week=week, error=problem_text(response))
    return back_to("/console/circle", week=week)


@router.get("/grids")
async def grids(ctx: Session, week: str | None = None, unit: str | None = None
                ) -> HTMLResponse:
    """Grid units side by side (a grid worker: her own), and one unit's needs to edit."""
    chosen = chosen_week(ctx, week)
    report = await ctx.items("/v1/grids/report", params={"week": str(chosen)})
    shown = unit if unit in {r["unit_id"] for r in report} else (
        report[0]["unit_id"] if report else None)
    needs: list[dict[str, Any]] = []
    if shown is not None:
        needs = await ctx.items(f"/v1/grids/{shown}/needs", params={"week": str(chosen)})
    return ctx.render("residents/grids.html", week=str(chosen), report=report, unit=shown,
                      needs=needs, priorities=("red", "yellow", "blue"),
                      error=ctx.request.query_params.get("error"))


@router.post("/grids/{unit_id}/needs/{need_id}")
async def change_need(ctx: Session, unit_id: str, need_id: str) -> Response:
    form = await ctx.request.form()
    week = str(form.get("week", ""))
    change = {key: str(form.get(key, "")).strip() for key in ("days", "window", "priority")}
    body = {k: v for k, v in change.items() if v}
    response = await ctx.api("PATCH", f"/v1/grids/{unit_id}/needs/{need_id}", json=body)
    if response.status_code != 200:
        return back_to("/console/grids", week=week, unit=unit_id,
                       error=problem_text(response))
    return back_to("/console/grids", week=week, unit=unit_id)


def install(app: FastAPI) -> None:
    """Serve these pages and the map's own files (Leaflet, the map's stylesheet)."""
    app.include_router(router)
    app.mount(MAP_STATIC, StaticFiles(directory=STATIC_DIR), name="console-map-static")
    app.mount("/console/residents-static",
              StaticFiles(directory=Path(__file__).parent / "residents_static"),
              name="console-residents-static")


__all__ = ["Refused", "install", "router"]
