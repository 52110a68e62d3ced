"""An HTML map of the week (folium/Leaflet): volunteers, needs by priority and coverage, merchants,
and 15-minute circles. The page needs nothing but map tiles; locations are coarsened to about 100 m
because the map is shared beyond the volunteers (SCHEMA.md privacy)."""

from __future__ import annotations

import folium
import numpy as np
from scipy.spatial import ConvexHull, QhullError

from matcher.domain import Location, Priority, Problem, Schedule
from matcher.settings import Settings
from matcher.travel import WalkingNetwork

COLOURS = {Priority.RED: "#d62728", Priority.YELLOW: "#e6a800", Priority.BLUE: "#1f77b4"}
ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"


def coarse(location: Location, digits: int = 3) -> tuple[float, float]:
    """Round to ``digits`` decimals (3 = about 100 m): enough to see where, not which door."""
    return round(location.lat, digits), round(location.lon, digits)


def service_areas(network: WalkingNetwork, homes: list[Location], settings: Settings
                  ) -> list[list[tuple[float, float]]]:
    """The outline of each home's 15-minute circle on the street network: the convex hull of
    the street nodes within ``circle_min`` minutes' walk (one shortest-path run for all homes).
    An outline, not the exact reach: it can bulge over blocks the streets do not enter. A home
    whose reach is too small for an outline gets an empty list."""
    reach_m = settings.circle_min * settings.walk_speed_m_per_min
    areas = []
    for inside in network.reachable_from(homes, reach_m):
        points = np.column_stack([network.lat[inside], network.lon[inside]])
        try:
            hull = ConvexHull(points) if len(points) >= 3 else None
        except QhullError:  # all on one street: no area to draw
            hull = None
        areas.append([] if hull is None else
                     [(float(points[i, 0]), float(points[i, 1])) for i in hull.vertices])
    return areas


def schedule_map(problem: Problem, schedule: Schedule, settings: Settings,
                 network: WalkingNetwork | None = None) -> folium.Map:
    """The week on a map. With a ``network``, each busy volunteer's 15-minute circle is drawn
    as the outline of the streets she can reach (:func:`service_areas`); without one, as the
    straight-line radius the geodesic fallback uses."""
    circle_m = settings.circle_straight_m
    points = [n.location for n in problem.needs] + [v.location for v in problem.volunteers]
    lat = sum(p.lat for p in points) / max(len(points), 1)
    lon = sum(p.lon for p in points) / max(len(points), 1)
    fmap = folium.Map(location=(lat, lon), zoom_start=15, tiles="OpenStreetMap",
                      attr=ATTRIBUTION)
    covered = schedule.covered_keys()
    unmet = {(u.need_id, u.day): u for u in schedule.unmet}
    needs_layer = folium.FeatureGroup("需求 needs")
    for need in problem.needs:
        days = list(need.days)
        done = sum(1 for d in days if (need.id, d) in covered)
        reasons = sorted({unmet[(need.id, d)].reason.value for d in days if (need.id, d) in unmet})
        text = (f"{need.id} {need.service} ({need.priority.value})<br>"
                f"covered {done}/{len(days)} days")
        if reasons:
            text += f"<br>{', '.join(reasons)}"
        folium.CircleMarker(
            coarse(need.location), radius=6, color=COLOURS[need.priority],
            fill=True, fill_opacity=0.9 if done == len(days) else 0.15, weight=2,
            tooltip=text,
        ).add_to(needs_layer)
    needs_layer.add_to(fmap)
    vol_layer = folium.FeatureGroup("志愿者 volunteers")
    circles = folium.FeatureGroup("15分钟生活圈 circles", show=False)
    busy = {a.volunteer_id for a in schedule.assignments}
    for v in problem.volunteers:
        folium.CircleMarker(coarse(v.location), radius=3,
                            color="#2ca02c" if v.id in busy else "#7f7f7f", fill=True,
                            tooltip=v.id).add_to(vol_layer)
    # Circles from the coarsened home, like the markers: an outline must not point at a door.
    helpers = [v for v in problem.volunteers if v.id in busy]
    homes = [Location(*coarse(v.location)) for v in helpers]
    if network is not None:
        for v, area in zip(helpers, service_areas(network, homes, settings), strict=True):
            if area:
                folium.Polygon(area, color="#2ca02c", weight=1, fill=False, opacity=0.4,
                               tooltip=f"{v.id}: 15 min on foot").add_to(circles)
    else:
        for home in homes:
            folium.Circle((home.lat, home.lon), radius=circle_m, color="#2ca02c", weight=1,
                          fill=False, opacity=0.3).add_to(circles)
    vol_layer.add_to(fmap)
    circles.add_to(fmap)
    shops = folium.FeatureGroup("合伙商家 merchants")
    for m in problem.merchants:
        label = f"{m.name} {m.id}: {', '.join(sorted(m.services))}"
        folium.Marker(coarse(m.location), tooltip=label,
                      icon=folium.Icon(color="purple", icon="shopping-cart")).add_to(shops)
    shops.add_to(fmap)
    folium.LayerControl().add_to(fmap)
    return fmap
