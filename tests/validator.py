"""An independent checker of SCHEMA.md rules R1-R9, written from the schema, not the solver.

It reads a problem and the rows of assignments.csv (as domain ``Assignment`` objects) and uses its
own walking-time oracle, so a solver bug in travel, circles or timelines shows up here.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence

import networkx as nx
from geopy.distance import geodesic

from matcher.domain import Assignment, Location, Problem
from matcher.travel import WalkingNetwork

Walk = Callable[[Location, Location], float]
TOL = 1e-6


def geodesic_walk(speed_m_per_min: float = 75.0, factor: float = 1.3) -> Walk:
    """SCHEMA.md's fallback: geodesic metres x 1.3 / 75 m per minute (geopy)."""

    def walk(a: Location, b: Location) -> float:
        return float(geodesic((a.lat, a.lon), (b.lat, b.lon)).meters) * factor / speed_m_per_min

    return walk


def network_walk(network: WalkingNetwork, speed_m_per_min: float = 75.0) -> Walk:
    """Walking minutes on the street graph by networkx Dijkstra (not the solver's csgraph),
    plus each place's straight walk to its nearest street node."""
    snapped: dict[Location, tuple[object, float]] = {}

    def snap(p: Location) -> tuple[object, float]:
        if p not in snapped:
            idx, access = network.snap([p])
            snapped[p] = (network.nodes[int(idx[0])], float(access[0]))
        return snapped[p]

    def walk(a: Location, b: Location) -> float:
        (na, aa), (nb, ab) = snap(a), snap(b)
        path = nx.shortest_path_length(network.graph, na, nb, weight="length")
        return (aa + path + ab) / speed_m_per_min

    return walk


def validate(problem: Problem, assignments: Sequence[Assignment], walk: Walk,
             radius_min: float = 15.0) -> list[str]:
    """Every violation of R1-R9 as a sentence; an empty list means the schedule is valid."""
    errors: list[str] = []
    vols = {v.id: v for v in problem.volunteers}
    needs = {n.id: n for n in problem.needs}
    merchants = {m.id: m for m in problem.merchants}
    by_occurrence: dict[tuple[str, str], list[Assignment]] = defaultdict(list)
    seen_rows: set[tuple[str, str, str]] = set()
    for a in assignments:
        where = f"{a.need_id} {a.day} {a.volunteer_id}"
        if a.need_id not in needs or a.volunteer_id not in vols:
            errors.append(f"{where}: unknown need or volunteer")
            continue
        need, vol = needs[a.need_id], vols[a.volunteer_id]
        if a.day not in need.days or a.date != problem.week.date_of(a.day):
            errors.append(f"{where}: not an occurrence of the week")
        if (a.need_id, a.day, a.volunteer_id) in seen_rows:
            errors.append(f"{where}: the same volunteer twice on one occurrence (R7)")
        seen_rows.add((a.need_id, a.day, a.volunteer_id))
        by_occurrence[(a.need_id, a.day)].append(a)
        # R1 skills
        if not need.skills <= vol.skills:
            errors.append(f"{where}: lacks skills {sorted(need.skills - vol.skills)} (R1)")
        # R2 availability: inside one window of that day
        if not any(av.day == a.day and av.window.start <= a.start and a.end <= av.window.end
                   for av in vol.availability):
            errors.append(f"{where}: {a.start}-{a.end} outside availability (R2)")
        # R3 window
        if not (need.window.start <= a.start and a.end == a.start + need.duration_min
                and a.end <= need.window.end):
            errors.append(f"{where}: {a.start}-{a.end} breaks the need's window (R3)")
        # R4 circle
        if walk(vol.location, need.location) > radius_min + TOL:
            errors.append(f"{where}: need outside the volunteer's circle (R4)")
        if a.merchant_id is not None:
            if a.merchant_id not in merchants:
                errors.append(f"{where}: unknown merchant {a.merchant_id}")
                continue
            m = merchants[a.merchant_id]
            if walk(vol.location, m.location) > radius_min + TOL or \
                    walk(m.location, need.location) > radius_min + TOL:
                errors.append(f"{where}: merchant {m.id} outside a circle (R4)")
            # R8 service and opening hours
            if need.merchant_service not in m.services:
                errors.append(f"{where}: {m.id} does not offer {need.merchant_service} (R8)")
            if not m.open.start <= a.start < m.open.end:
                errors.append(f"{where}: {m.id} closed at start (R8)")
        elif need.merchant_service is not None:
            errors.append(f"{where}: needs a merchant for {need.merchant_service} (R8)")
    # R7 staffing, R9 once
    merchant_day: dict[tuple[str, str], int] = defaultdict(int)
    for (need_id, day), rows in by_occurrence.items():
        need = needs[need_id]
        if len({r.volunteer_id for r in rows}) != need.volunteers_needed:
            errors.append(f"{need_id} {day}: {len(rows)} volunteers, "
                          f"{need.volunteers_needed} needed (R7)")
        if len({r.start for r in rows}) != 1:
            errors.append(f"{need_id} {day}: volunteers start at different times (R7/R9)")
        if len({r.merchant_id for r in rows}) != 1:
            errors.append(f"{need_id} {day}: several merchants for one occurrence (R9)")
        if rows[0].merchant_id is not None:
            merchant_day[(rows[0].merchant_id, day)] += 1
    for (mid, day), count in merchant_day.items():
        if mid in merchants and count > merchants[mid].capacity_per_day:
            errors.append(f"{mid} {day}: {count} occurrences over capacity (R8)")
    # R5 travel between consecutive tasks, R6 hours
    per_day: dict[tuple[str, str], list[Assignment]] = defaultdict(list)
    minutes: dict[str, int] = defaultdict(int)
    for a in assignments:
        if a.volunteer_id in vols and a.need_id in needs:
            per_day[(a.volunteer_id, a.day)].append(a)
            minutes[a.volunteer_id] += a.end - a.start
    for (vid, day), rows in per_day.items():
        rows.sort(key=lambda r: r.start)
        for first, second in itertools.pairwise(rows):
            place = needs[first.need_id].location
            target = needs[second.need_id].location
            if second.merchant_id is not None and second.merchant_id in merchants:
                stop = merchants[second.merchant_id].location
                travel = walk(place, stop) + walk(stop, target)
            else:
                travel = walk(place, target)
            if first.end + travel > second.start + TOL:
                errors.append(f"{vid} {day}: {first.need_id} ends {first.end}, walk "
                              f"{travel:.1f} min, {second.need_id} starts {second.start} (R5)")
    for vid, used in minutes.items():
        if used > 60 * vols[vid].max_hours_week + TOL:
            errors.append(f"{vid}: {used} min over the weekly cap (R6)")
    return errors
