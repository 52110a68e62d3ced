"""What is within my 15 minutes: the resources a resident can walk to, nearest first, each with
its route on the street network and short directions from OSM street names.

One lookup is one shortest-path search from the resident's street node, stopped at the circle
(scipy csgraph Dijkstra with a cutoff, in C), with the predecessors kept to trace each route.
Walking minutes count the straight legs from the resident to her street node and from the
resource's node to the resource, as everywhere in Linli.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import dijkstra

from matcher.domain import Location
from matcher.i18n import _
from matcher.resources import Category, Resource
from matcher.settings import Settings
from matcher.travel import WalkingNetwork

# Turns, by the change of heading in degrees (right is clockwise): below the first bound the
# walker goes straight on, below the second she bears left or right, beyond the last she turns
# back.
STRAIGHT_DEG = 30.0
SLIGHT_DEG = 60.0
BACK_DEG = 150.0
# Directions are rounded to tens of metres: nobody counts a pavement to the metre.
ROUND_M = 10


def bearing_deg(a: Location, b: Location) -> float:
    """Initial compass bearing from ``a`` to ``b`` in degrees (0 north, 90 east)."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dlon = math.radians(b.lon - a.lon)
    x = math.sin(dlon) * math.cos(phi2)
    y = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlon)
    return (math.degrees(math.atan2(x, y)) + 360.0) % 360.0


def compass(bearing: float) -> str:
    """One of eight compass directions for people ("north", "northeast" ...)."""
    names = (_("north"), _("northeast"), _("east"), _("southeast"), _("south"),
             _("southwest"), _("west"), _("northwest"))
    return names[int(((bearing + 22.5) % 360.0) // 45.0)]


def turn(change: float) -> str | None:
    """The turn for a change of heading (degrees, clockwise positive, in -180..180); None for
    straight on."""
    size = abs(change)
    if size < STRAIGHT_DEG:
        return None
    if size >= BACK_DEG:
        return _("turn back")
    if size < SLIGHT_DEG:
        return _("bear right") if change > 0 else _("bear left")
    return _("turn right") if change > 0 else _("turn left")


@dataclass(frozen=True)
class Leg:
    """A stretch of the route along one street (``street`` "" for a path without a name):
    its heading where it starts and where it ends (compass degrees)."""

    street: str
    metres: float
    bearing: float
    end_bearing: float


def _metres(m: float) -> int:
    return max(ROUND_M, round(m / ROUND_M) * ROUND_M)


def directions(legs: Sequence[Leg], destination: str) -> list[str]:
    """Short directions, one sentence per street: "Walk north along 景田路 for 350 m", "turn
    right onto 红荔路 and walk 120 m", then "arrive at X". A leg of an unnamed path is a "path".
    """
    steps: list[str] = []
    previous: Leg | None = None
    for leg in legs:
        street = leg.street or _("the path")
        if previous is None:
            steps.append(_("Walk {direction} along {street} for {metres} m").format(
                direction=compass(leg.bearing), street=street, metres=_metres(leg.metres)))
        else:
            change = (leg.bearing - previous.end_bearing + 540.0) % 360.0 - 180.0
            action = turn(change)
            if action is None:
                steps.append(_("go straight on along {street} for {metres} m").format(
                    street=street, metres=_metres(leg.metres)))
            else:
                steps.append(_("{turn} onto {street} and walk {metres} m").format(
                    turn=action, street=street, metres=_metres(leg.metres)))
        previous = leg
    steps.append(_("arrive at {place}").format(place=destination))
    return steps


@dataclass(frozen=True)
class Found:
    """One resource within the circle: minutes, metres, route (lon/lat pairs as GeoJSON wants)
    and directions."""

    resource: Resource
    minutes: float
    metres: float
    route: list[tuple[float, float]]
    steps: list[str]

    @property
    def text(self) -> str:
        """The directions as one sentence."""
        return _(", ").join(self.steps)

    def geojson(self) -> dict[str, object]:
        """The route as a GeoJSON LineString (WGS84, ``[lon, lat]``)."""
        return {"type": "LineString", "coordinates": [list(p) for p in self.route]}


class NearbyIndex:
    """The resources of a community snapped once to the street network, ready for lookups.

    Parameters
    ----------
    network
        The walking graph; its edges' ``name`` are the street names of the directions.
    resources
        The places to find.
    settings
        Walking speed and the circle radius.
    """

    def __init__(self, network: WalkingNetwork, resources: Sequence[Resource],
                 settings: Settings) -> None:
        self.network = network
        self.resources = list(resources)
        self.settings = settings
        if self.resources:
            self.nodes, self.access = network.snap([r.location for r in self.resources])
        else:
            self.nodes, self.access = np.zeros(0, dtype=np.int64), np.zeros(0)
        self.categories = np.array([r.category.value for r in self.resources], dtype=object)

    @property
    def cutoff_m(self) -> float:
        return self.settings.circle_min * self.settings.walk_speed_m_per_min

    def lookup(self, origin: Location, category: Category | None = None,
               limit: int | None = None) -> list[Found]:
        """The resources (of ``category``, or all) within the circle of ``origin``, by walking
        minutes then id, at most ``limit`` of them."""
        net = self.network
        start, start_access = net.snap([origin])
        source, lead_in = int(start[0]), float(start_access[0])
        cutoff = self.cutoff_m
        if lead_in > cutoff or not self.resources:
            return []
        dist, pred = dijkstra(net.csr, directed=False, indices=source, limit=cutoff - lead_in,
                              return_predecessors=True)
        total = lead_in + dist[self.nodes] + self.access
        wanted = total <= cutoff
        if category is not None:
            wanted &= self.categories == category.value
        picked = np.flatnonzero(wanted)
        order = sorted(picked.tolist(), key=lambda k: (float(total[k]), self.resources[k].id))
        if limit is not None:
            order = order[:limit]
        speed = self.settings.walk_speed_m_per_min
        return [self._found(k, origin, source, pred, float(total[k]), speed) for k in order]

    def _found(self, k: int, origin: Location, source: int, pred: np.ndarray, metres: float,
               speed: float) -> Found:
        net = self.network
        resource = self.resources[k]
        path = [int(self.nodes[k])]
        while path[-1] != source:
            path.append(int(pred[path[-1]]))
        path.reverse()
        points = [Location(float(net.lat[i]), float(net.lon[i])) for i in path]
        route = [(origin.lon, origin.lat)] + [(p.lon, p.lat) for p in points] + [
            (resource.location.lon, resource.location.lat)]
        legs = route_legs(net, path, points)
        return Found(resource, metres / speed, metres, route, directions(legs, resource.label))


# An unnamed stretch shorter than this (a crossing, a gate) is told as part of the street
# before it: "cross 6 m of path" helps nobody.
JOIN_UNNAMED_M = 25.0


def route_legs(net: WalkingNetwork, path: Sequence[int], points: Sequence[Location]
               ) -> list[Leg]:
    """The route's edges grouped into legs by street name."""
    legs: list[Leg] = []
    for a, b, pa, pb in zip(path, path[1:], points, points[1:], strict=False):
        data = net.graph.edges[net.nodes[a], net.nodes[b]]
        street, length = str(data.get("name") or ""), float(data["length"])
        heading = bearing_deg(pa, pb)
        if legs and legs[-1].street == street:
            last = legs[-1]
            legs[-1] = Leg(street, last.metres + length, last.bearing, heading)
        else:
            legs.append(Leg(street, length, heading, heading))
    joined: list[Leg] = []
    for k, leg in enumerate(legs):
        short = not leg.street and leg.metres < JOIN_UNNAMED_M
        if short and joined:
            last = joined[-1]
            joined[-1] = Leg(last.street, last.metres + leg.metres, last.bearing,
                             last.end_bearing)
        elif short and k + 1 < len(legs):
            nxt = legs[k + 1]
            legs[k + 1] = Leg(nxt.street, nxt.metres + leg.metres, nxt.bearing,
                              nxt.end_bearing)
        elif joined and joined[-1].street == leg.street:
            last = joined[-1]
            joined[-1] = Leg(leg.street, last.metres + leg.metres, last.bearing,
                             leg.end_bearing)
        else:
            joined.append(leg)
    return joined
