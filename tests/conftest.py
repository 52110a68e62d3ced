"""Shared fixtures: small hand-built communities and the shipped street network."""

from __future__ import annotations

from pathlib import Path

import pytest

from matcher.domain import (
    Availability,
    Day,
    Location,
    Merchant,
    Need,
    NeedKind,
    Priority,
    Problem,
    TimeWindow,
    Volunteer,
    Week,
)
from matcher.travel import WalkingNetwork

ROOT = Path(__file__).resolve().parent.parent
NETWORK = ROOT / "data" / "shenzhen-futian" / "shenzhen_futian_walk.graphml"
WEEK = Week(2026, 48)
CENTRE = Location(22.53407, 114.01766)


def offset(metres_north: float, metres_east: float) -> Location:
    """A point so many metres from the centre (small distances, equirectangular)."""
    return Location(CENTRE.lat + metres_north / 110_540,
                    CENTRE.lon + metres_east / (111_320 * 0.9237))


def volunteer(vid: str, north: float = 0, east: float = 0, skills: tuple[str, ...] = (),
              windows: str = "mon 08:00-12:00", hours: float = 4) -> Volunteer:
    avail = tuple(Availability(Day(w.split()[0]), TimeWindow.parse(w.split()[1]))
                  for w in windows.split(";"))
    return Volunteer(vid, vid, offset(north, east), frozenset(skills), avail, hours)


def need(nid: str, north: float = 0, east: float = 0, days: str = "mon",
         window: str = "09:00-11:00", duration: int = 30, skills: tuple[str, ...] = (),
         k: int = 1, priority: Priority = Priority.BLUE, merchant: str | None = None) -> Need:
    return Need(nid, NeedKind.ELDERLY, "home_visit", f"{nid}奶奶", offset(north, east),
                tuple(Day(d) for d in days.split(";")), TimeWindow.parse(window), duration,
                frozenset(skills), k, priority, merchant)


def merchant(mid: str, north: float = 0, east: float = 0, services: str = "meal",
             capacity: int = 10, hours: str = "10:00-20:00") -> Merchant:
    return Merchant(mid, mid, offset(north, east), frozenset(services.split(";")), capacity,
                    TimeWindow.parse(hours))


@pytest.fixture(scope="session")
def futian() -> WalkingNetwork:
    """The shipped OSM walking network of western Futian, Shenzhen (loaded once)."""
    return WalkingNetwork.from_file(NETWORK)


@pytest.fixture
def two_elders() -> Problem:
    """One volunteer, two red visits 300 m apart that both fit the morning in either order."""
    return Problem(WEEK, [volunteer("V1")],
                   [need("N1", 0, 0, priority=Priority.RED), need("N2", 300, 0)])


def visits_a_walk_apart() -> Problem:
    """One volunteer free mon 09:00-11:00, 500 m east of two red half-hour visits 1 km apart:
    A (09:00-09:30) then C (latest start 09:35). Without walks both fit back to back; the
    18-minute walk from A means C could start 09:48 at the earliest, so only one fits."""
    return Problem(WEEK, [volunteer("V1", 0, 500, windows="mon 09:00-11:00")], [
        need("A", 0, 0, window="09:00-09:30", duration=30, priority=Priority.RED),
        need("C", 0, 1000, window="09:30-10:05", duration=30, priority=Priority.RED),
    ])
