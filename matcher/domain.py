"""Domain types shared by the importer, the solver, the outputs, the CLI and the API.

Everything here is plain, immutable data: no I/O, no solver, no HTTP. Times of day are whole
minutes after midnight; durations are minutes; the week is one ISO week (SCHEMA.md).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property


class Day(StrEnum):
    """A day of the week as written in the spreadsheets (``mon`` ... ``sun``)."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """0 for Monday ... 6 for Sunday (ISO weekday - 1)."""
        return list(Day).index(self)


class Priority(StrEnum):
    """The 红黄蓝 alert scheme: red = urgent/safety, yellow = health, blue = routine."""

    RED = "red"
    YELLOW = "yellow"
    BLUE = "blue"

    @property
    def rank(self) -> int:
        """0 for red (most urgent) ... 2 for blue."""
        return list(Priority).index(self)


class NeedKind(StrEnum):
    """The three families of needs."""

    ELDERLY = "elderly"
    CHILDCARE = "childcare"
    CHARITY = "charity"


_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def parse_hhmm(text: str) -> int:
    """Parse ``HH:MM`` (24-hour) into minutes after midnight; ``24:00`` is the end of the day.

    Raises
    ------
    ValueError
        If the text is not a time of day.
    """
    m = _HHMM.match(text)
    if not m:
        raise ValueError("is not a time HH:MM")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes > 0):
        raise ValueError("is not a time of day (00:00-24:00)")
    return hours * 60 + minutes


def format_hhmm(minutes: int) -> str:
    """Minutes after midnight as ``HH:MM``."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, order=True, slots=True)
class TimeWindow:
    """A half-open interval of the day ``[start, end)`` in minutes after midnight."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= 24 * 60:
            raise ValueError(f"is not a time window ({self.start}-{self.end})")

    @classmethod
    def parse(cls, text: str) -> TimeWindow:
        """Parse ``HH:MM-HH:MM``; raises ``ValueError`` with a message fit for an import error."""
        parts = text.split("-")
        if len(parts) != 2:
            raise ValueError("is not a time window HH:MM-HH:MM")
        try:
            start, end = parse_hhmm(parts[0]), parse_hhmm(parts[1])
        except ValueError as exc:
            raise ValueError("is not a time window HH:MM-HH:MM") from exc
        if start >= end:
            raise ValueError("is not a time window: it ends before it starts")
        return cls(start, end)

    @property
    def minutes(self) -> int:
        """Length in minutes."""
        return self.end - self.start

    def contains(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` lies inside this window."""
        return self.start <= start and end <= self.end

    def __str__(self) -> str:
        return f"{format_hhmm(self.start)}-{format_hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class Location:
    """A WGS84 point in decimal degrees."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Availability:
    """One weekly availability window of a volunteer."""

    day: Day
    window: TimeWindow

    def __str__(self) -> str:
        return f"{self.day} {self.window}"


@dataclass(frozen=True)
class Volunteer:
    """A resident who gives time (志愿者): home, skills, weekly availability and hours cap."""

    id: str
    name: str
    location: Location
    skills: frozenset[str] = frozenset()
    availability: tuple[Availability, ...] = ()
    max_hours_week: float = 4.0

    @property
    def max_minutes_week(self) -> int:
        """The weekly cap in whole minutes (R6: 60 x max_hours_week)."""
        return round(60 * self.max_hours_week)

    def windows_on(self, day: Day) -> tuple[TimeWindow, ...]:
        """The availability windows on ``day``, sorted."""
        return tuple(sorted(a.window for a in self.availability if a.day == day))


@dataclass(frozen=True)
class Need:
    """A recurring weekly need: one :class:`Occurrence` per listed day."""

    id: str
    kind: NeedKind
    service: str
    beneficiary: str
    location: Location
    days: tuple[Day, ...]
    window: TimeWindow
    duration_min: int
    skills: frozenset[str] = frozenset()
    volunteers_needed: int = 1
    priority: Priority = Priority.BLUE
    merchant_service: str | None = None


@dataclass(frozen=True)
class Merchant:
    """A partner shop or canteen (社区合伙人) serving needs inside its circle."""

    id: str
    name: str
    location: Location
    services: frozenset[str]
    capacity_per_day: int
    open: TimeWindow


@dataclass(frozen=True, order=True, slots=True)
class Week:
    """An ISO week such as ``2026-W48``."""

    year: int
    week: int

    _PATTERN = re.compile(r"^(\d{4})-W(\d{2})$")

    @classmethod
    def parse(cls, text: str) -> Week:
        """Parse ``YYYY-Www``; raises ``ValueError`` when it is not a real ISO week."""
        m = cls._PATTERN.match(text.strip())
        if not m:
            raise ValueError(f"{text!r} is not an ISO week like 2026-W48")
        year, week = int(m.group(1)), int(m.group(2))
        try:  # every day of it must be a date, not only its Monday
            dt.date.fromisocalendar(year, week, 1)
            dt.date.fromisocalendar(year, week, 7)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an ISO week of {year}") from exc
        return cls(year, week)

    @classmethod
    def containing(cls, day: dt.date) -> Week:
        """The ISO week that contains ``day``."""
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @property
    def monday(self) -> dt.date:
        """The week's Monday."""
        return dt.date.fromisocalendar(self.year, self.week, 1)

    def date_of(self, day: Day) -> dt.date:
        """The calendar date of ``day`` in this week."""
        return self.monday + dt.timedelta(days=day.number)

    def __str__(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One day of a need in the solved week: what gets covered or not."""

    need: Need
    day: Day
    date: dt.date

    @property
    def key(self) -> tuple[str, Day]:
        """``(need_id, day)``: unique within a week."""
        return (self.need.id, self.day)

    @property
    def earliest_start(self) -> int:
        return self.need.window.start

    @property
    def latest_start(self) -> int:
        return self.need.window.end - self.need.duration_min


@dataclass
class Problem:
    """A community's week: who can help, who needs help, which partners serve.

    Ids are unique within each list (the importer guarantees it; :meth:`__post_init__` checks).
    """

    week: Week
    volunteers: list[Volunteer]
    needs: list[Need]
    merchants: list[Merchant] = field(default_factory=list)

    def __post_init__(self) -> None:
        for label, items in (
            ("volunteer", self.volunteers),
            ("need", self.needs),
            ("merchant", self.merchants),
        ):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise ValueError(f"duplicate {label} id {item.id!r}")
                seen.add(item.id)

    @cached_property
    def occurrences(self) -> list[Occurrence]:
        """Every need expanded to one occurrence per listed day, in need then day order."""
        return [
            Occurrence(need, day, self.week.date_of(day))
            for need in self.needs
            for day in sorted(set(need.days), key=lambda d: d.number)
        ]

    @cached_property
    def volunteer_by_id(self) -> dict[str, Volunteer]:
        return {v.id: v for v in self.volunteers}

    @cached_property
    def need_by_id(self) -> dict[str, Need]:
        return {n.id: n for n in self.needs}

    @cached_property
    def merchant_by_id(self) -> dict[str, Merchant]:
        return {m.id: m for m in self.merchants}


class UnmetReason(StrEnum):
    """Why an occurrence was not covered, most fundamental first (unmet.csv ``reason_code``)."""

    NO_SKILLED_VOLUNTEER_IN_CIRCLE = "no_skilled_volunteer_in_circle"
    NO_MERCHANT_IN_CIRCLE = "no_merchant_in_circle"
    NOT_ENOUGH_VOLUNTEERS = "not_enough_volunteers"
    NO_AVAILABLE_VOLUNTEER = "no_available_volunteer"
    VOLUNTEERS_BUSY = "volunteers_busy"
    OUT_OF_HOURS = "volunteers_out_of_hours"
    MERCHANT_CLOSED = "merchant_closed"
    MERCHANT_FULL = "merchant_full"
    SOLVER_LIMIT = "solver_time_limit"


@dataclass(frozen=True, slots=True)
class Assignment:
    """One volunteer on one covered occurrence (one row of assignments.csv)."""

    need_id: str
    day: Day
    date: dt.date
    start: int
    end: int
    volunteer_id: str
    merchant_id: str | None
    walk_min: float


@dataclass(frozen=True, slots=True)
class Unmet:
    """One uncovered occurrence with its diagnosis (one row of unmet.csv).

    ``candidates`` names the volunteers who could serve it but were used elsewhere or ran out of
    hours; ``fix`` says what would make it coverable, in a coordinator's words.
    """

    need_id: str
    day: Day
    date: dt.date
    reason: UnmetReason
    detail: str
    fix: str = ""
    candidates: tuple[str, ...] = ()


class SolveStatus(StrEnum):
    """How far the solver got: every stage proven, a feasible schedule, or nothing to solve."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class LevelResult:
    """Coverage at one priority level: what was reached and the best proven bound."""

    covered: int
    occurrences: int
    bound: int
    optimal: bool


@dataclass
class Schedule:
    """The solver's answer for a week: assignments, unmet occurrences with reasons, statistics.

    ``levels`` holds one :class:`LevelResult` per priority; ``status`` is ``optimal`` only when
    every coverage level is proven optimal.
    """

    week: Week
    assignments: list[Assignment]
    unmet: list[Unmet]
    levels: dict[Priority, LevelResult]
    status: SolveStatus
    total_walk_min: float
    solve_seconds: float
    stats: dict[str, float | int | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = [(u.need_id, u.day) for u in self.unmet]
        if len(keys) != len(set(keys)):
            raise ValueError("an occurrence is listed as unmet twice")

    @property
    def occurrences(self) -> int:
        return sum(level.occurrences for level in self.levels.values())

    @property
    def covered(self) -> int:
        return sum(level.covered for level in self.levels.values())

    def covered_keys(self) -> set[tuple[str, Day]]:
        """``(need_id, day)`` of every covered occurrence."""
        return {(a.need_id, a.day) for a in self.assignments}

    def summary(self) -> dict[str, object]:
        """The contents of summary.json (SCHEMA.md)."""
        return {
            "week": str(self.week),
            "occurrences": self.occurrences,
            "covered": self.covered,
            "covered_by_priority": {p.value: lv.covered for p, lv in self.levels.items()},
            "occurrences_by_priority": {p.value: lv.occurrences for p, lv in self.levels.items()},
            "bound": {p.value: lv.bound for p, lv in self.levels.items()},
            "optimal_by_priority": {p.value: lv.optimal for p, lv in self.levels.items()},
            "total_walk_min": round(self.total_walk_min, 1),
            "status": self.status.value,
            "solve_seconds": round(self.solve_seconds, 2),
            "unmet_by_reason": self.unmet_by_reason(),
            "stats": self.stats,
        }

    def unmet_by_reason(self) -> dict[str, int]:
        """How many occurrences are unmet for each reason code, most frequent first."""
        counts: dict[str, int] = {}
        for u in self.unmet:
            counts[u.reason.value] = counts.get(u.reason.value, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
