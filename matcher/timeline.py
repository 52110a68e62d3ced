"""Volunteers' days as timelines: can one more task be added without breaking R2-R8?

Used by the greedy baseline to build a schedule, by the diagnosis to explain why an occurrence
stayed unmet, and by "who could take this" recommendations. (The tests' validator is separate.)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from matcher.circles import Candidates, Option, walk_ceil
from matcher.domain import Day, Priority


@dataclass(frozen=True, slots=True)
class Task:
    """A planned task: occurrence index, start and end minute, merchant index or None."""

    occurrence: int
    start: int
    end: int
    merchant: int | None


class Cover(NamedTuple):
    """How a plan covers one occurrence: its start minute, its merchant's index (None without
    one) and the indices of its volunteers' options."""

    start: int
    merchant: int | None
    options: tuple[int, ...]


@dataclass
class Plan:
    """A schedule in index form: per covered occurrence (index) its :class:`Cover`."""

    covered: dict[int, Cover] = field(default_factory=dict)


def keeps_pins(cand: Candidates, plan: Plan, occurrences: Iterable[int] | None = None) -> bool:
    """Whether ``plan`` has every pinned option (of ``occurrences``, default all) chosen."""
    chosen = {i for _, _, options in plan.covered.values() for i in options}
    todo = None if occurrences is None else set(occurrences)
    return all(i in chosen for i in cand.pinned
               if todo is None or cand.options[i].occurrence in todo)


def covered_count(cand: Candidates, plan: Plan, priority: Priority) -> int:
    """Occurrences of ``priority`` that ``plan`` covers."""
    return sum(1 for o in plan.covered if cand.problem.occurrences[o].need.priority is priority)


class Blocker(StrEnum):
    """Why a volunteer cannot take a task now."""

    HOURS = "hours"
    BUSY = "busy"
    WINDOW = "window"


class Timelines:
    """Every volunteer's tasks per day, minutes used in the week and merchants' daily loads."""

    def __init__(self, cand: Candidates) -> None:
        self.cand = cand
        self.tasks: dict[tuple[int, Day], list[Task]] = {}
        self.used: list[int] = [0] * len(cand.problem.volunteers)
        self.merchant_load: dict[tuple[int, Day], int] = {}

    def day_of(self, occurrence: int) -> Day:
        return self.cand.problem.occurrences[occurrence].day

    def duration(self, occurrence: int) -> int:
        return self.cand.problem.occurrences[occurrence].need.duration_min

    def blocker(self, option: Option, start: int, merchant: int | None) -> Blocker | None:
        """What stops the option's volunteer from serving at ``start`` via ``merchant``, if any."""
        if not option.lo <= start <= option.hi:
            return Blocker.WINDOW
        o, v = option.occurrence, option.volunteer
        duration = self.duration(o)
        cap = self.cand.minutes_cap(v)
        if self.used[v] + duration > cap:
            return Blocker.HOURS
        end = start + duration
        for task in self.tasks.get((v, self.day_of(o)), []):
            after = task.end + walk_ceil(self.cand.transition(task.occurrence, o, merchant))
            before = end + walk_ceil(self.cand.transition(o, task.occurrence, task.merchant))
            if not (after <= start or before <= task.start):
                return Blocker.BUSY
        return None

    def start_points(self, occurrence: int) -> list[int]:
        """Starts worth trying for an occurrence: its window and option bounds, and the first
        minute after each capable volunteer's tasks that day (plus the walk)."""
        cand = self.cand
        occ = cand.problem.occurrences[occurrence]
        points = {occ.earliest_start}
        merchants: set[int | None] = {None}
        for i in cand.by_occurrence[occurrence]:
            option = cand.options[i]
            points.update((option.lo, option.hi))
            merchants.update(option.merchants)
        for lo, hi in cand.occ_merchants[occurrence].values():
            points.update((lo, hi))
        for i in cand.by_occurrence[occurrence]:
            for task in self.tasks.get((cand.options[i].volunteer, occ.day), []):
                for j in merchants:
                    walk = cand.transition(task.occurrence, occurrence, j)
                    if walk < float("inf"):
                        points.add(task.end + walk_ceil(walk))
        return sorted(p for p in points if occ.earliest_start <= p <= occ.latest_start)

    def merchant_free(self, occurrence: int, merchant: int, start: int) -> bool:
        """R8: open at start (static bounds) and capacity left that day."""
        bounds = self.cand.merchant_starts.get((occurrence, merchant))
        if bounds is None or not bounds[0] <= start <= bounds[1]:
            return False
        capacity = self.cand.merchant_capacity(merchant, self.day_of(occurrence))
        return self.merchant_load.get((merchant, self.day_of(occurrence)), 0) < capacity

    def add(self, occurrence: int, start: int, merchant: int | None,
            options: tuple[int, ...]) -> None:
        """Record a covered occurrence with its volunteers' options."""
        end = start + self.duration(occurrence)
        day = self.day_of(occurrence)
        for i in options:
            v = self.cand.options[i].volunteer
            self.tasks.setdefault((v, day), []).append(Task(occurrence, start, end, merchant))
            self.used[v] += end - start
        if merchant is not None:
            key = (merchant, day)
            self.merchant_load[key] = self.merchant_load.get(key, 0) + 1

    def through(self, cand: Candidates) -> Timelines:
        """These timelines under the rules of ``cand``: a changed copy of this one's candidates
        in which every option keeps its index, volunteer and occurrence, every occurrence its
        day and duration, and volunteers are only added after the others
        (:func:`~matcher.circles.changed_candidates`). The tasks, minutes used and merchant
        loads are then the same, so they are shared, not rebuilt; caps, capacities and walks
        are read from ``cand``. Only for checks that add nothing."""
        out = copy.copy(self)
        out.cand = cand
        # Volunteers a change adds (after the others) have no minutes used yet.
        out.used = self.used + [0] * (len(cand.problem.volunteers) - len(self.used))
        return out

    @classmethod
    def of_plan(cls, cand: Candidates, plan: Plan) -> Timelines:
        timelines = cls(cand)
        for occurrence, (start, merchant, options) in plan.covered.items():
            timelines.add(occurrence, start, merchant, options)
        return timelines


def retime(cand: Candidates, plan: Plan) -> tuple[Plan, set[tuple[int, Day]]]:
    """``plan`` with each task at the earliest start that leaves every volunteer the walk from
    her previous task (R5), her tasks kept in the plan's order; and the volunteer-days where
    that was not enough.

    A plan from the travel-free relaxation keeps every rule but R5, and its starts are arbitrary
    within the windows; most tasks that are too close only need moving. In start order each
    occurrence gets the latest of its earliest start and its volunteers' previous ends plus the
    walk; one pushed past its latest start is dropped, and its volunteer-days are returned (where
    the walks decide the plan, see :mod:`matcher.bounds`). The result is valid.
    """
    problem = cand.problem
    last: dict[tuple[int, Day], tuple[int, int]] = {}  # volunteer-day -> (occurrence, end)
    kept = Plan()
    short: set[tuple[int, Day]] = set()
    for o in sorted(plan.covered, key=lambda o: plan.covered[o].start):
        _, merchant, options = plan.covered[o]
        occ = problem.occurrences[o]
        lo, hi = occ.earliest_start, occ.latest_start
        if merchant is not None:
            lo, hi = max(lo, cand.merchant_starts[o, merchant][0]), \
                min(hi, cand.merchant_starts[o, merchant][1])
        keys = [(cand.options[i].volunteer, occ.day) for i in options]
        for i, key in zip(options, keys, strict=True):
            lo, hi = max(lo, cand.options[i].lo), min(hi, cand.options[i].hi)
            if key in last:
                before, end = last[key]
                lo = max(lo, end + walk_ceil(cand.transition(before, o, merchant)))
        if lo > hi:
            short.update(keys)
            continue
        kept.covered[o] = Cover(lo, merchant, options)
        for key in keys:
            last[key] = (o, lo + occ.need.duration_min)
    return kept, short
