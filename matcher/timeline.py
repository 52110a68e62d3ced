"""Volunteers' days as timelines: can one more task be added without breaking R2-R8?

Used by the greedy baseline to build a schedule, by the diagnosis to explain why an occurrence
stayed unmet, and by "who could take this" recommendations. (The tests' validator is separate.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from matcher.circles import Candidates, Option, walk_ceil
from matcher.domain import Day


@dataclass(frozen=True, slots=True)
class Task:
    """A planned task: occurrence index, start and end minute, merchant index or None."""

    occurrence: int
    start: int
    end: int
    merchant: int | None


@dataclass
class Plan:
    """A schedule in index form: per covered occurrence its start, merchant and option indices."""

    covered: dict[int, tuple[int, int | None, tuple[int, ...]]] = field(default_factory=dict)


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
        cap = self.cand.problem.volunteers[v].max_minutes_week
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
        capacity = self.cand.problem.merchants[merchant].capacity_per_day
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

    @classmethod
    def of_plan(cls, cand: Candidates, plan: Plan) -> Timelines:
        timelines = cls(cand)
        for occurrence, (start, merchant, options) in plan.covered.items():
            timelines.add(occurrence, start, merchant, options)
        return timelines
