"""A volunteer's week shared between communities: what is left of it for one community's plan
once her tasks elsewhere are counted.

A volunteer is registered in one community and may serve a neighbouring one's needs that lie
within her circle, so her week can hold tasks of several communities' published schedules. A
community plans with :func:`remaining_week` of each volunteer: her availability less each task
elsewhere (widened by the walk, see :func:`margins`) and her weekly cap less those tasks'
minutes (R6 counts every task's minutes, end minus start, whatever community it serves). Any
valid plan for the remaining week, together with her tasks elsewhere, is then a valid week
(R2, R5 and R6 over all her tasks).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial import cKDTree

from matcher.domain import Availability, Day, Location, TimeWindow, Volunteer
from matcher.settings import Settings


@dataclass(frozen=True, slots=True)
class Busy:
    """One of a volunteer's tasks in another community's schedule: its day, start and end
    (minutes after midnight), and whether she goes via a merchant to it."""

    day: Day
    start: int
    end: int
    via_merchant: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.day, Day):
            raise TypeError(f"day {self.day!r} is not a Day")
        if not 0 <= self.start < self.end <= 24 * 60:
            raise ValueError(f"is not a task's time ({self.start}-{self.end})")

    @property
    def minutes(self) -> int:
        """The minutes R6 counts for this task."""
        return self.end - self.start


def margins(busy: Busy, circle_min: float, merchant_legs: bool = True) -> tuple[int, int]:
    """Minutes kept free before and after ``busy`` so she can walk between it and any task of
    the other plan, without knowing where that task will be.

    Every place she serves lies within her circle (R4: a need, a merchant, and the merchant's
    leg to the need), and walks obey the triangle inequality through her home, so the walk
    between two needs is at most two radii, and one via a merchant at most three (two to the
    merchant, one from it to the need). Before ``busy`` she walks to its merchant (when it has
    one) and on to its place; after it, from its place to the next task's stop and on: three
    radii when the plan may send her via a merchant (``merchant_legs``), else two.
    """
    radius = math.ceil(circle_min)
    before = 2 * radius + (radius if busy.via_merchant else 0)
    after = 2 * radius + (radius if merchant_legs else 0)
    return before, after


def _cut(window: TimeWindow, holes: Sequence[tuple[int, int]]) -> list[TimeWindow]:
    """``window`` less the half-open ``holes``, as windows (empty pieces dropped)."""
    pieces = [(window.start, window.end)]
    for lo, hi in holes:
        pieces = [part for start, end in pieces
                  for part in ((start, min(end, lo)), (max(start, hi), end))
                  if part[0] < part[1]]
    return [TimeWindow(start, end) for start, end in pieces]


def remaining_week(volunteer: Volunteer, busy: Iterable[Busy], circle_min: float,
                   merchant_legs: bool = True) -> Volunteer:
    """``volunteer`` as one community may plan her, given her tasks elsewhere (``busy``): each
    window less every busy task widened by :func:`margins`, and her weekly cap less the busy
    tasks' minutes, never below zero. Without busy tasks she is returned unchanged."""
    tasks = list(busy)
    if not tasks:
        return volunteer
    holes: dict[Day, list[tuple[int, int]]] = {}
    for task in tasks:
        before, after = margins(task, circle_min, merchant_legs)
        holes.setdefault(task.day, []).append((task.start - before, task.end + after))
    windows = tuple(Availability(a.day, piece) for a in volunteer.availability
                    for piece in _cut(a.window, holes.get(a.day, [])))
    left = max(0, volunteer.max_minutes_week - sum(task.minutes for task in tasks))
    return replace(volunteer, availability=windows, max_hours_week=left / 60)


# A straight line is never longer than the walk (the network's edges follow the streets, the
# geodesic estimate multiplies by the detour): a pair farther apart than the circle's walking
# metres by a straight line is never within the circle. The slack covers the flat-earth metres.
_SLACK = 1.02


def flat_metres(places: Sequence[Location]) -> np.ndarray:
    """``places`` as flat-earth metres (east, north) around their middle, one row each: exact
    enough at a district's size."""
    lat = np.array([p.lat for p in places])
    lon = np.array([p.lon for p in places])
    x = (lon - lon.mean()) * math.cos(math.radians(float(lat.mean()))) * 111_320.0
    return np.column_stack([x, (lat - lat.mean()) * 110_540.0])


def straight_reach_m(settings: Settings) -> float:
    """The straight-line metres beyond which nothing lies within the circle's walk."""
    return settings.circle_min * settings.walk_speed_m_per_min * _SLACK


def within_reach(homes: Sequence[Location], places: Sequence[Location],
                 settings: Settings | None = None) -> list[bool]:
    """For each home, whether it could lie within the circle of one of ``places``: the
    straight-line prefilter (never false for a place truly within the circle; the circles
    decide the rest)."""
    if not homes or not places:
        return [False] * len(homes)
    xy = flat_metres([*homes, *places])
    reach = straight_reach_m(settings or Settings())
    distances, _ = cKDTree(xy[len(homes):]).query(xy[:len(homes)],
                                                  distance_upper_bound=reach)
    return [bool(d <= reach) for d in np.atleast_1d(distances)]
