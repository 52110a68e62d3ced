"""Domain types shared by the importer, the solver, the outputs, the CLI and the API.

Everything here is plain, immutable data: no I/O, no solver, no HTTP. Times of day are whole
minutes after midnight; durations are minutes; the week is one ISO week (SCHEMA.md).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property

from matcher.errors import Invalid
from matcher.i18n import N_, _


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
        return _DAY_NUMBER[self]


# Read for every occurrence of a week and every option of a partition: looked up, not searched.
_DAY_NUMBER = {day: n for n, day in enumerate(Day)}


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


# Limits on what people type. Ids appear in URLs, file names (calendars/<id>.ics) and database
# keys, so they are short and plain; a delivery need's id is built from a donation's and a
# request's id, hence the longer limit for needs (it still fits the database key).
ID_MAX = 24
NEED_ID_MAX = 64
NAME_MAX = 100
ADDRESS_MAX = 200
PHONE_MAX = 32
TOKEN_MAX = 40
MAX_HOURS_WEEK = 7 * 24  # a cap beyond the hours of a week means nothing
LIST_MAX = 1000  # a cell holding a list (availability, skills, days): each item is checked too
_ID = re.compile(r"^[\w.\-]+$")


def check_id(value: str, max_len: int = ID_MAX) -> str:
    """An id: 1 to ``max_len`` letters (Chinese included), digits, ``_``, ``-`` or ``.``.

    Raises
    ------
    ValueError
        With a message fit for an import error, saying what to type instead.
    """
    if not value:
        raise ValueError(N_("is empty: an id is required"))
    if len(value) > max_len:
        raise ValueError(f"is {len(value)} characters long: an id has at most {max_len}")
    if not _ID.match(value) or set(value) == {"."}:
        raise ValueError(N_("is not an id: use letters, digits, '_', '-' or '.' "
                            "(no spaces, no '/')"))
    return value


def check_text(value: str, max_len: int = NAME_MAX, what: str = "a name") -> str:
    """Free text (a name, an address): at most ``max_len`` characters, no control characters.

    Raises
    ------
    ValueError
        With a message fit for an import error.
    """
    if len(value) > max_len:
        raise ValueError(f"is {len(value)} characters long: {what} has at most {max_len}")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError(N_("contains control characters (a tab or line break inside the cell)"))
    return value


_TOKEN = re.compile(r"^[^\s;,]+$")


def check_token(value: str, what: str = "a code") -> str:
    """A code (a skill, a service, a category): 1 to ``TOKEN_MAX`` characters, no spaces, ``;``
    or ``,`` (they separate the items of a list cell).

    Raises
    ------
    ValueError
        With a message fit for an import error.
    """
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise Invalid(N_("{value!r} is not a code (use lower_snake_case, no spaces)"),
                      value=value)
    if len(value) > TOKEN_MAX:
        raise Invalid(N_("{value!r} is longer than {n} characters"), value=value[:40],
                      n=TOKEN_MAX)
    return value


def check_tokens(values: frozenset[str], what: str = "a code") -> frozenset[str]:
    """A set of codes, each checked by :func:`check_token`; a set, not a list or a string."""
    if not isinstance(values, frozenset):
        raise TypeError(f"{what}s must be a frozenset, not {type(values).__name__}")
    for value in values:
        check_token(value, what)
    return values


def check_number(value: float, lo: float, hi: float, what: str) -> float:
    """A finite number within ``[lo, hi]``.

    Raises
    ------
    ValueError
        With a message fit for an import error.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise Invalid(N_("{what} {value!r} is outside {lo:g}..{hi:g}"), what=what, value=value,
                      lo=lo, hi=hi)
    return value


_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
_WINDOW = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-\u2010-\u2015~\u301c至到]\s*(\d{1,2}:\d{2})\s*$")


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
        """Parse ``HH:MM-HH:MM``; raises ``ValueError`` with a message fit for an import error.

        What people type in Chinese spreadsheets is read too: one-digit hours, spaces around the
        dash, full-width colons and digits, ``～``/``~``/``至`` or an en dash between the times.
        ``str()`` of the result is the normal form (``09:30-20:30``).
        """
        m = _WINDOW.match(unicodedata.normalize("NFKC", text))
        if not m:
            raise ValueError(N_("is not a time window HH:MM-HH:MM (type e.g. 09:30-20:30)"))
        times: list[int] = []
        for part in (m.group(1), m.group(2)):
            try:
                times.append(parse_hhmm(part))
            except ValueError as exc:
                raise Invalid(N_("is not a time window HH:MM-HH:MM: {part} is not a time of "
                                 "day (00:00-24:00)"), part=part) from exc
        start, end = times
        if start >= end:
            raise ValueError(N_("is not a time window: it ends before it starts (a window "
                                "cannot cross midnight; 24:00 is the end of the day)"))
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

    def __post_init__(self) -> None:
        check_number(self.lat, -90, 90, "lat")
        check_number(self.lon, -180, 180, "lon")


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

    def __post_init__(self) -> None:
        check_id(self.id)
        check_text(self.name)
        check_tokens(self.skills, "a skill")
        for a in self.availability:
            if not isinstance(a, Availability):
                raise TypeError(f"availability holds {a!r}, not an Availability")
        check_number(self.max_hours_week, 0, MAX_HOURS_WEEK, "max_hours_week")

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

    def __post_init__(self) -> None:
        check_id(self.id, NEED_ID_MAX)
        check_text(self.beneficiary)
        check_text(self.service, TOKEN_MAX)
        if not self.service:
            raise Invalid(N_("has no service"))
        NeedKind(self.kind)
        Priority(self.priority)
        if not self.days:
            raise Invalid(N_("lists no day"))
        if len(set(self.days)) != len(self.days) or not all(isinstance(d, Day)
                                                             for d in self.days):
            raise Invalid(N_("days {days} are not distinct days"),
                          days=";".join(str(d) for d in self.days))
        if not isinstance(self.window, TimeWindow):
            raise TypeError(f"window {self.window!r} is not a TimeWindow")
        if isinstance(self.duration_min, bool) or not isinstance(self.duration_min, int) \
                or not 1 <= self.duration_min <= self.window.minutes:
            raise Invalid(N_("duration_min {minutes!r} does not fit the window {window}"),
                          minutes=self.duration_min, window=self.window)
        check_tokens(self.skills, "a skill")
        if isinstance(self.volunteers_needed, bool) or not isinstance(self.volunteers_needed,
                                                                      int) \
                or self.volunteers_needed < 1:
            raise Invalid(N_("volunteers_needed {n!r} is not at least 1"),
                          n=self.volunteers_needed)
        if self.merchant_service is not None:
            check_token(self.merchant_service, "a merchant service")


@dataclass(frozen=True)
class Merchant:
    """A partner shop or canteen (社区合伙人) serving needs inside its circle."""

    id: str
    name: str
    location: Location
    services: frozenset[str]
    capacity_per_day: int
    open: TimeWindow

    def __post_init__(self) -> None:
        check_id(self.id)
        check_text(self.name)
        if not self.services:
            raise Invalid(N_("offers no service"))
        check_tokens(self.services, "a service")
        if isinstance(self.capacity_per_day, bool) or not isinstance(self.capacity_per_day, int) \
                or self.capacity_per_day < 0:
            raise Invalid(N_("capacity_per_day {n!r} is not a whole number of at least 0"),
                          n=self.capacity_per_day)
        if not isinstance(self.open, TimeWindow):
            raise TypeError(f"open {self.open!r} is not a TimeWindow")


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
    PASSED = "occurrence_passed"
    HELD = "held_by_pinned_task"


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


def _hours(hours: float) -> str:
    return (_("{hours:g} hour") if hours == 1 else _("{hours:g} hours")).format(hours=hours)


def day_word(day: Day) -> str:
    """A day as a person reads it: ``mon`` in English, 周一 in Chinese."""
    return {Day.MON: _("mon"), Day.TUE: _("tue"), Day.WED: _("wed"), Day.THU: _("thu"),
            Day.FRI: _("fri"), Day.SAT: _("sat"), Day.SUN: _("sun")}[day]


def skills_word(skills: frozenset[str]) -> str:
    """A need's skills (codes, as in the files), or that it needs none."""
    return " + ".join(sorted(skills)) if skills else _("no special skill")


def _merge(windows: list[TimeWindow]) -> list[TimeWindow]:
    """Overlapping or touching windows joined (as the importer does)."""
    out: list[TimeWindow] = []
    for w in sorted(windows):
        if out and w.start <= out[-1].end:
            out[-1] = TimeWindow(out[-1].start, max(out[-1].end, w.end))
        else:
            out.append(w)
    return out


@dataclass(frozen=True, slots=True)
class ExtraWindow:
    """Fix: the volunteer is also available ``window`` on ``day``."""

    volunteer_id: str
    day: Day
    window: TimeWindow

    def apply(self, problem: Problem) -> Problem:
        """A copy of ``problem`` with the change made."""
        def widened(v: Volunteer) -> Volunteer:
            same = [a.window for a in v.availability if a.day == self.day]
            others = tuple(a for a in v.availability if a.day != self.day)
            merged = tuple(Availability(self.day, w) for w in _merge([*same, self.window]))
            return replace(v, availability=others + merged)
        return replace(problem, volunteers=[widened(v) if v.id == self.volunteer_id else v
                                            for v in problem.volunteers])

    def describe(self, problem: Problem) -> str:
        now = problem.volunteer_by_id[self.volunteer_id].windows_on(self.day)
        day = day_word(self.day)
        had = (_(" (now {day} {windows})").format(day=day,
                                                   windows=", ".join(str(w) for w in now))
               if now else _(" (not available {day} now)").format(day=day))
        return _("{volunteer} could if also available {day} {window}").format(
            volunteer=self.volunteer_id, day=day, window=self.window) + had


@dataclass(frozen=True, slots=True)
class HigherCap:
    """Fix: the volunteer's weekly cap raised to ``max_hours_week``."""

    volunteer_id: str
    max_hours_week: float

    def apply(self, problem: Problem) -> Problem:
        """A copy of ``problem`` with the change made."""
        return replace(problem, volunteers=[
            replace(v, max_hours_week=self.max_hours_week) if v.id == self.volunteer_id else v
            for v in problem.volunteers])

    def describe(self, problem: Problem) -> str:
        was = problem.volunteer_by_id[self.volunteer_id].max_hours_week
        return _("{volunteer} could if their cap were {more} higher ({hours:g} a week)").format(
            volunteer=self.volunteer_id, more=_hours(self.max_hours_week - was),
            hours=self.max_hours_week)


@dataclass(frozen=True, slots=True)
class MerchantCapacity:
    """Fix: the merchant serves ``capacity_per_day`` occurrences a day."""

    merchant_id: str
    capacity_per_day: int

    def apply(self, problem: Problem) -> Problem:
        """A copy of ``problem`` with the change made."""
        return replace(problem, merchants=[
            replace(m, capacity_per_day=self.capacity_per_day) if m.id == self.merchant_id
            else m for m in problem.merchants])

    def describe(self, problem: Problem) -> str:
        return _("{merchant} could serve it with capacity {capacity} a day").format(
            merchant=self.merchant_id, capacity=self.capacity_per_day)


@dataclass(frozen=True, slots=True)
class MerchantHours:
    """Fix: the merchant opens ``open``."""

    merchant_id: str
    open: TimeWindow

    def apply(self, problem: Problem) -> Problem:
        """A copy of ``problem`` with the change made."""
        return replace(problem, merchants=[
            replace(m, open=self.open) if m.id == self.merchant_id else m
            for m in problem.merchants])

    def describe(self, problem: Problem) -> str:
        was = problem.merchant_by_id[self.merchant_id].open
        return _("{merchant} could serve it if open {open} (now {was})").format(
            merchant=self.merchant_id, open=self.open, was=was)


@dataclass(frozen=True, slots=True)
class NewVolunteers:
    """Fix: ``count`` more volunteers living at the need's place, with its skills, free on
    ``day`` during its window (the sentence says "near the beneficiary")."""

    need_id: str
    day: Day
    count: int

    def volunteers(self, problem: Problem) -> list[Volunteer]:
        need = problem.need_by_id[self.need_id]
        hours = max(4.0, need.duration_min / 60)
        return [Volunteer(f"new-{self.need_id}-{n}", "new volunteer", need.location, need.skills,
                          (Availability(self.day, need.window),), hours)
                for n in range(1, self.count + 1)]

    def apply(self, problem: Problem) -> Problem:
        """A copy of ``problem`` with the volunteers added (after the others)."""
        return replace(problem, volunteers=[*problem.volunteers, *self.volunteers(problem)])

    def describe(self, problem: Problem) -> str:
        need = problem.need_by_id[self.need_id]
        return _("{count} more volunteer(s) with {skills} living near the beneficiary, free "
                 "{day} {window}").format(
            count=self.count, skills=skills_word(need.skills), day=day_word(self.day),
            window=need.window)


@dataclass(frozen=True, slots=True)
class NewMerchant:
    """Fix: a partner merchant at the need's place offering its service during its window, one
    occurrence a day (the sentence says "near the beneficiary")."""

    need_id: str

    def merchant(self, problem: Problem) -> Merchant:
        need = problem.need_by_id[self.need_id]
        assert need.merchant_service is not None, "only needs with a merchant service"
        return Merchant(f"new-{self.need_id}", "new partner", need.location,
                        frozenset({need.merchant_service}), 1, need.window)

    def apply(self, problem: Problem) -> Problem:
        """A copy of ``problem`` with the merchant added (after the others)."""
        return replace(problem, merchants=[*problem.merchants, self.merchant(problem)])

    def describe(self, problem: Problem) -> str:
        need = problem.need_by_id[self.need_id]
        return _("a partner merchant offering {service!r} near the beneficiary, open "
                 "{window}").format(service=need.merchant_service, window=need.window)


# A change to a week's inputs that would make one unmet occurrence coverable.
Fix = ExtraWindow | HigherCap | MerchantCapacity | MerchantHours | NewVolunteers | NewMerchant


@dataclass(frozen=True, slots=True)
class Unmet:
    """One uncovered occurrence with its diagnosis (one row of unmet.csv).

    ``candidates`` names the volunteers who could serve it but were used elsewhere or ran out of
    hours; ``fix`` says what would make it coverable, in a coordinator's words. ``change`` is
    that fix as a change to the inputs (``fix`` is its sentence): applied to a copy of the
    problem, the rest of the week as planned, the occurrence can be covered. ``None`` when no
    single change was found (``fix`` then says so) or none is needed (``solver_time_limit``).
    """

    need_id: str
    day: Day
    date: dt.date
    reason: UnmetReason
    detail: str
    fix: str = ""
    candidates: tuple[str, ...] = ()
    change: Fix | None = None


class HeldReason(StrEnum):
    """Why a pinned assignment is kept outside the model (stable codes)."""

    NO_LONGER_FITS = "no_longer_fits"  # skills, circle, availability, window or merchant
    CONFLICT = "conflicts_with_pinned"  # another pin's time, hours or merchant capacity
    UNDERSTAFFED = "understaffed"  # its need wants more volunteers and none can join


@dataclass(frozen=True, slots=True)
class HeldPin:
    """A pinned assignment kept as agreed although the rules no longer allow it."""

    assignment: Assignment
    reason: HeldReason
    detail: str


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
    every coverage level is proven optimal. ``held`` lists the pinned assignments kept as agreed
    although they break a rule (see :mod:`matcher.pinning`); they are among ``assignments``
    and their occurrences among ``unmet`` (``held_by_pinned_task``).
    """

    week: Week
    assignments: list[Assignment]
    unmet: list[Unmet]
    levels: dict[Priority, LevelResult]
    status: SolveStatus
    total_walk_min: float
    solve_seconds: float
    stats: dict[str, float | int | str] = field(default_factory=dict)
    held: list[HeldPin] = field(default_factory=list)
    limit: str = "deterministic"  # what the time limit counted: deterministic or wall_clock
    deterministic_time: float = 0.0  # CP-SAT's deterministic time spent, in its units
    deterministic_limit: float | None = None  # the budget in those units, when deterministic

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
            "limit": self.limit,
            "deterministic_time": round(self.deterministic_time, 3),
            "deterministic_limit": self.deterministic_limit,
            "unmet_by_reason": self.unmet_by_reason(),
            "stats": self.stats,
        }

    def unmet_by_reason(self) -> dict[str, int]:
        """How many occurrences are unmet for each reason code, most frequent first."""
        counts: dict[str, int] = {}
        for u in self.unmet:
            counts[u.reason.value] = counts.get(u.reason.value, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
