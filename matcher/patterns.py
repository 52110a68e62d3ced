"""An upper bound on one priority level from volunteer-day task patterns, and a plan it guides.

The day-by-day relaxation (:mod:`matcher.bounds`) lets every day use the whole weekly hours cap,
so where that cap binds it says little. This bound sees each volunteer's day whole instead, and
keeps the week's hours cap as one row per volunteer.

A volunteer's options on one day fall into *groups*: swept in order of earliest start, a new
group begins where every option so far always ends, walk included, before the next can start,
so what she does in one group hardly constrains another (the hours cap aside). Any split into
groups gives a valid bound (a finer one is a relaxation), so the sweep looks walks up only at a
possible split, from the options of the group so far. A *pattern* is a set of options of
one group that she can do in some order, each in its window, with the walk from one task to
the next (R5, the merchant of each task free), and within her weekly minutes. The master LP
chooses, per volunteer-group, a convex combination of patterns (at most one in an integer
plan), and the options it takes lie below it (``x_i <= sum of the patterns holding i``). Around
that sit the rows of the level: each occurrence covered by its headcount of distinct volunteers
(R7), a volunteer at most once per occurrence, her weekly minutes (R6), merchants' daily
capacity (R8) and the higher levels kept at what they proved. Every valid schedule is a point
of it, so its optimum bounds the level, and since coverage counts occurrences, its value
rounded down does too.

The patterns come two ways. A small group has its feasible sets enumerated by a dynamic
programme over subsets (a set and its last task -> the earliest start of that task); only the
maximal ones become columns, which is enough because the options taken only have to lie below
a pattern. A large group prices columns instead: a labelling over her tasks in time order
(the resource is the clock) finds the path of largest dual value, and the LP is solved again
while one has a positive reduced cost.

Remembering every task done makes the labels of a day of many options explode, so the pricing
is an *ng-route* relaxation: each task has a neighbourhood (itself and its nearest tasks that
could be done twice at all, i.e. whose window is longer than its duration), a label remembers
only the tasks it did that lie in the neighbourhood of every task it has passed through since,
and it may repeat a task it forgot. Labels are dominated on (last task, clock, minutes, value,
what they remember), and one is dropped when its value and what it could still add (a
fractional knapsack of the positive duals it can still reach, in her minutes and the day's
span left) cannot beat the group's convexity dual or a pattern already found. Why the bound
still holds: every pattern is a path that repeats nothing, so it is among the relaxed paths and
the relaxed maximum is at least every pattern's dual value; the Lagrangian bound (below) needs
only an upper bound on each group's best reduced cost, so it stays valid. Only paths that
repeat nothing become columns, each covering each of its tasks once (``x_i <= the patterns
holding i``, a coefficient of one): a pattern is a set of tasks, and a column that counted a
repeated task twice would let half of it cover the task whole, a relaxation looser than the
true master and one the pricing would not price consistently. So the master only ever holds
true patterns, and "no path of positive reduced cost" (relaxed) implies "no pattern of
positive reduced cost": the LP optimum is then the one of all patterns. Where the best path
repeats a task, the tasks between its two visits remember that task from then on and the group
is priced again (decremental state-space relaxation); a group left with only repeating paths
of positive reduced cost adds their value to the Lagrangian bound and no column. With
neighbourhoods as large as the group, the pricing is exact and gives the same LP optimum as
enumeration. Pricing is partial: a round takes the groups in turn and
stops once it has found enough columns, and only groups whose tasks of positive dual could
together beat the group's own dual are priced at all. Every round gives a Lagrangian bound: the
LP value plus each priced group's best reduced cost, and for a group not priced what all its
tasks of positive dual would add together; it stops as soon as that bound meets the plan's
value. A group whose pricing makes too many labels is bounded instead by *energy rows* (the
minutes of its tasks whose windows lie inside one window fit in it, she does one at a time),
a relaxation that needs no pricing; and when steps, rounds or time run out, every group not
priced out is, and the LP solved once more is a bound as it stands.

The LP is OR-Tools' GLOP, warm-started from one pricing round to the next; it is
deterministic, and its simplex iterations are limited in count (GLOP's
``max_number_of_iterations``), so the same inputs give the same bound; a solve cut short
leaves the bound of the rounds before it.

Then the master is solved whole, as an integer programme (:func:`pattern_plan`, SCIP through
OR-Tools, its search limited in nodes): at most one pattern per volunteer-group. Its solution
is a plan but for what the master leaves out (a team starting together, a merchant busy at
that moment), so its options are timed by the exact model. Its best bound proves the level
where the pool holds every pattern that could beat the plan. At the duals of the last priced
round, a schedule's value is at most that round's Lagrangian bound plus the reduced costs of
its patterns (each at most zero once priced out, at most what pricing found its group could
add otherwise), so a schedule covering more than the plan uses only patterns whose reduced
cost is at least the plan's value plus one less that bound: each priced group's patterns of
that worth are listed (its tasks of no dual value left to its energy rows, since a pattern
less them is worth as much), and where there are too many, a better plan from a first round
narrows them for a later one. Where the programme's solution takes options of a group that
are no pattern (its energy rows let it), the programme is tightened and solved again: the
group is listed again with its tasks of no dual value, or gets rows that hold for every
schedule (no pattern holds more of its tasks than the labelling with each worth one finds;
at most |S| - 1 of a set S that is no pattern). Likewise where the solution breaks what the
master leaves out, found by timing each group's options with the merchant the programme chose
for each of their occurrences, and each team's members at every minute: a set of a
volunteer's options that no order fits via those merchants gets "not all of these options and
merchants", and a team whose members' other options leave no minute open to them all gets
"not all of these options" over the members' sets (each set made smallest first).
"""

from __future__ import annotations

import heapq
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from matcher.circles import Candidates, walk_ceil
from matcher.domain import Day, Priority
from matcher.greedy import greedy_plan
from matcher.model import INF_WALK, ComponentModel
from matcher.params import Deadline, SolveParams
from matcher.timeline import Cover, Plan, Timelines, covered_count, keeps_pins

# A reduced cost counts as positive above this.
EPS = 1e-7
# The LP's value is rounded down after adding this (its tolerances are far smaller).
ROUNDING = 1e-4


@dataclass
class PatternBound:
    """The pattern bound on one level, and what it was made of.

    ``bound`` always holds: it is the level's occurrence count when the LP could not be solved
    or priced out in time. ``complete`` says the LP was solved to its optimum (every group
    enumerated or priced out), ``lp_value`` is its value (the relaxation's, before rounding).
    ``hint_plan`` is a valid plan of the level's occurrences guided by the LP's solution; it
    keeps the pins, and the ``kept`` levels where it could (check before using it).
    """

    bound: int
    complete: bool
    lp_value: float
    columns_used: int  # patterns in the master LP at the end
    groups: int  # volunteer-groups
    enumerated: int  # groups whose patterns were all enumerated
    rounds: int  # master LP solves
    work: int = 0  # steps taken (see SolveParams.pattern_max_work)
    energy: int = 0  # groups bounded by energy rows instead of patterns
    lp_iterations: int = 0  # simplex iterations of every LP solve
    hint_plan: Plan = field(default_factory=Plan)
    pool: _Pool | None = None  # the master and its columns, for the integer programme


@dataclass
class _Pool:
    """The master as its last LP left it, for :func:`pattern_plan`: its variables of options
    (``x``), occurrences (``y``) and merchants' orders (``use``), and each group's columns as
    (variable, mask over the group's tasks). ``complete`` says every pattern of every group
    is a column's subset or the group is bounded by energy rows (nothing was priced), so the
    integer programme over the columns is a relaxation of the level's schedules."""

    master: _Master
    tasks: dict[int, _Task]
    groups: list[_Group]
    x: dict[int, int]
    y: dict[int, int]
    use: dict[tuple[int, int], int]
    columns: list[list[tuple[int, int]]]
    complete: bool
    # A Lagrangian bound of the master's last priced round (None if none), with that
    # round's duals: its LP value plus what each group's best pattern could add at those
    # duals (no more than 0 once priced out); the rows of each option's link and each group's
    # convexity, and the groups whose columns were priced (the others are enumerated or on
    # energy rows).
    lagrangian: float | None = None
    duals: list[float] = field(default_factory=list)
    link: dict[int, int] = field(default_factory=dict)
    convex: list[int] = field(default_factory=list)
    priced: list[int] = field(default_factory=list)
    # Groups whose patterns worth enough were listed without their tasks of no dual value
    # (:func:`_add_patterns_worth`): those tasks, left to energy rows, and the floor.
    idle: dict[int, tuple[list[int], float]] = field(default_factory=dict)
    counted: set[int] = field(default_factory=set)  # groups given a row on how many they hold

    def add(self, g: int, mask: int) -> None:
        """Group g's pattern ``mask`` (over its tasks) as a column of the master."""
        terms = [(self.link[t.option], -1.0)
                 for k, t in enumerate(self.groups[g].tasks) if mask >> k & 1]
        self.columns[g].append((self.master.column([*terms, (self.convex[g], 1.0)]), mask))

    def cut(self, values: list[float], params: SolveParams) -> int:
        """Tighten the programme where ``values`` (a solution of it) takes options of a group
        that are no pattern, which the group's energy rows let it do, or breaks what the
        master leaves out (:meth:`_cut_timing`). Returns how many groups and teams it
        tightened; each of the two stops past ``pattern_max_work`` steps of ``params``.

        Such a group, if its patterns were listed without its tasks of no dual value, is
        listed again with them (the same floor, so the pool still holds every pattern that
        could beat the plan) and they are linked back to its patterns, while the groups
        listed again have added fewer than ``pattern_cut_columns`` columns. Otherwise it gets
        rows that hold for every schedule, since a schedule's options in a group are a
        pattern and so is each subset of them: once, no more of its options than a pattern
        can hold (:meth:`_Group.most`); and for sets S of the options taken that are no
        pattern either, each made smallest by deletion where the checks could tell, at most
        |S| - 1 of S."""
        tightened, max_states, added, spent = 0, params.pattern_max_states, 0, 0
        broken: set[int] = set()  # groups whose options taken are no pattern
        for g, pooled in enumerate(self.groups):
            if spent >= params.pattern_max_work:
                break
            # Steps of its own (the bound's may be spent); all groups' together stop the cut.
            group = _Group(pooled.cand, pooled.volunteer, pooled.tasks, pooled.cap,
                           _Work(params.pattern_max_work - spent), params.pattern_ng_size)
            taken = [b for b, t in enumerate(group.tasks) if values[self.x[t.option]] > 0.5]
            mask = sum(1 << b for b in taken)
            if len(taken) < 2 or any(values[var] > 0.5 and mask & ~column == 0
                                     for var, column in self.columns[g]):
                continue
            rows = len(self.master.given_rows)
            try:
                if group.is_pattern(taken, max_states) is not False:
                    continue  # a pattern, or too large to tell
                broken.add(g)
                if g in self.idle and added < params.pattern_cut_columns:
                    more = self._list_whole(g, group, max_states)
                    if more is not None:
                        added += more
                        tightened += 1
                        continue
                if g not in self.counted:
                    most = group.most(params)
                    self.counted.add(g)
                    if most is not None and most < len(group.tasks):
                        self.master.row(-self.master.inf, most,
                                        [(self.x[t.option], 1.0) for t in group.tasks])
                self._cut_off(group, taken, max_states)
            except _OutOfWorkError:
                pass
            finally:
                spent += group.work.used
            tightened += len(self.master.given_rows) > rows
        # Steps of their own: listing groups whole may have spent the others'.
        return tightened + self._cut_timing(values, broken, max_states,
                                            _Work(params.pattern_max_work))

    def _cut_timing(self, values: list[float], broken: set[int], max_states: int,
                    work: _Work) -> int:
        """Rows for what the programme leaves out of a volunteer's day, where ``values``
        breaks it (groups ``broken`` aside, whose options taken are no pattern at all): each
        occurrence served via the one merchant the programme chose for it, and a team
        starting together. Each
        holds for every schedule: a volunteer who does a set of her tasks, each via the
        merchant named, does them in some order in their windows (so where no order fits,
        not all of them and those merchants are chosen), and a team's members each start at
        a minute their other tasks leave open (so where no minute is open to them all, not
        all of their tasks are taken). Each set is made smallest by deletion first. Returns
        how many rows it added; it stops where ``work`` runs out (the rows so far hold)."""
        merchant = {o: j for (o, j), var in self.use.items() if values[var] > 0.5}
        rows = 0
        members: dict[int, list[tuple[_GroupTiming, list[int], int]]] = defaultdict(list)
        try:
            for g, group in enumerate(self.groups):
                taken = [b for b, t in enumerate(group.tasks) if values[self.x[t.option]] > 0.5]
                if not taken or g in broken:
                    continue
                timing = _GroupTiming(group, merchant, max_states, work)
                if timing.timeable(taken) is False:
                    self._forbid([(timing, timing.smallest(taken))])
                    rows += 1
                    continue
                for b in taken:
                    need = group.cand.problem.occurrences[group.tasks[b].occurrence].need
                    if need.volunteers_needed > 1:
                        members[group.tasks[b].occurrence].append((timing, taken, b))
            for team in members.values():
                apart = _apart(team)
                if apart is not None:
                    self._forbid(apart)
                    rows += 1
        except _OutOfWorkError:
            pass
        return rows

    def _forbid(self, sets: list[tuple[_GroupTiming, list[int]]]) -> None:
        """The row "not all of these": each set's options in its group, and the merchant chosen
        for each of those whose ways it narrows."""
        terms: dict[int, float] = {}
        for timing, tasks in sets:
            for b in tasks:
                task = timing.group.tasks[b]
                terms[self.x[task.option]] = 1.0
                j = timing.merchant.get(task.occurrence)
                if j is not None and timing.narrows(b) and (task.occurrence, j) in self.use:
                    terms[self.use[task.occurrence, j]] = 1.0
        self.master.row(-self.master.inf, len(terms) - 1, sorted(terms.items()))

    def _cut_off(self, group: _Group, taken: list[int], max_states: int) -> None:
        """The rows "at most |S| - 1 of S" for sets S of ``taken`` (tasks of ``group``, no
        pattern) that are no pattern either, each made smallest by deletion where the
        checks could tell. May raise :class:`_OutOfWorkError` (the rows so far hold)."""
        # Each set found is left out of the search for the next, so one solution may
        # get several rows from one group.
        while True:
            smallest = _smallest(taken, lambda fewer: group.is_pattern(fewer, max_states)
                                 is False)
            self.master.row(-self.master.inf, len(smallest) - 1,
                            [(self.x[group.tasks[b].option], 1.0) for b in smallest])
            taken = [b for b in taken if b not in smallest]
            if len(taken) < 2 or group.is_pattern(taken, max_states) is not False:
                return

    def _list_whole(self, g: int, group: _Group, max_states: int) -> int | None:
        """Group g's patterns worth its floor listed with every task, its idle tasks linked
        back to them: how many columns that added. None (nothing changed, and it is not
        tried again) past ``max_states``; it may raise :class:`_OutOfWorkError` (nothing
        changed). ``group`` is g's, with steps of its own."""
        idle, floor = self.idle[g]
        weight = [max(self.duals[self.link[t.option]], 0.0) for t in group.tasks]
        masks = group.enumerate(max_states, weight, floor)
        del self.idle[g]
        if masks is None:
            return None
        have = [column for _, column in self.columns[g]]
        added = 0
        for mask in masks:
            if not any(mask & ~column == 0 for column in have):
                self.add(g, mask)
                added += 1
        for b in idle:
            self.master.set_upper(self.link[group.tasks[b].option], 0.0)
        return added

    def relax(self, g: int, tasks: list[int]) -> None:
        """Group g's ``tasks`` (indices) held by its energy rows instead of its patterns (a
        relaxation)."""
        group, master = self.groups[g], self.master
        for b in tasks:
            master.set_upper(self.link[group.tasks[b].option], master.inf)
        for minutes, inside in group.energy():
            master.row(-master.inf, minutes,
                       [(self.x[group.tasks[b].option], group.tasks[b].duration)
                        for b in inside])


def _smallest(tasks: list[int], still: Callable[[list[int]], bool]) -> list[int]:
    """``tasks`` made smallest by deletion: each left out in turn where ``still`` holds of
    those left without it (it holds of ``tasks``)."""
    smallest = list(tasks)
    for b in tasks:
        fewer = [k for k in smallest if k != b]
        if still(fewer):
            smallest = fewer
    return smallest


def _apart(team: list[tuple[_GroupTiming, list[int], int]]
           ) -> list[tuple[_GroupTiming, list[int]]] | None:
    """Where a team's members (each her group's timing, the tasks taken in it and her task
    of the team) have no minute open to them all: each member's tasks, each made smallest by
    deletion while that stays so. None where some minute is open, or the first check could
    not tell."""
    if len(team) < 2:
        return None
    # The members of the narrowest windows first, each looked at only on the minutes still
    # open to those before her: most teams are found to have a common minute cheaply.
    team = sorted(team, key=lambda member: member[0].width(member[2]))
    common: set[int] | None = None
    for timing, taken, b in team:
        common = timing.starts(taken, b, among=common)
        if common is None:
            return None
        if not common:
            break
    if common:
        return None
    # No minute is open with every member's options as taken, so those sets are a row
    # already: each is made smaller only where the checks can tell.
    whole = [(timing, list(taken)) for timing, taken, _ in team]
    starts: list[set[int]] = []
    for timing, taken, b in team:
        opened = timing.starts(taken, b)
        if opened is None:
            return whole
        starts.append(opened)
    kept: list[tuple[_GroupTiming, list[int]]] = []
    for m, (timing, taken, b) in enumerate(team):
        smallest = timing.smallest_apart(taken, b, set.intersection(*starts[:m],
                                                                    *starts[m + 1:]))
        opened = timing.starts(smallest, b)
        if opened is None:
            return whole
        starts[m] = opened
        kept.append((timing, smallest))
    return kept


class _GroupTiming:
    """One volunteer-group's tasks timed with what the master leaves out: each occurrence
    served via the merchant the programme chose for it (``merchant``, by occurrence), and a
    task at a minute given."""

    def __init__(self, group: _Group, merchant: Mapping[int, int], max_states: int,
                 work: _Work) -> None:
        self.group, self.merchant, self.max_states, self.work = group, merchant, max_states, work

    def via(self, b: int, start: int | None = None) -> _Task | None:
        """Task b served only via its occurrence's merchant (if chosen) and, given ``start``,
        only at that minute; None where no way is left."""
        task = self.group.tasks[b]
        j = self.merchant.get(task.occurrence)
        ways = tuple((m, lo, hi) if start is None else (m, start, start)
                     for m, lo, hi in task.ways
                     if (j is None or m == j) and (start is None or lo <= start <= hi))
        return _Task(task.option, task.occurrence, task.duration, ways) if ways else None

    def width(self, b: int) -> int:
        """Minutes task b could start at, via its occurrence's merchant."""
        task = self.via(b)
        return 0 if task is None else task.hi - task.lo + 1

    def narrows(self, b: int) -> bool:
        """Whether the merchant chosen leaves task b fewer ways."""
        narrowed = self.via(b)
        return narrowed is None or len(narrowed.ways) < len(self.group.tasks[b].ways)

    def timeable(self, tasks: list[int], fixed: tuple[int, int] | None = None) -> bool | None:
        """Whether she can do all of ``tasks`` via their merchants, task ``fixed[0]`` started
        at minute ``fixed[1]``; None past the states allowed."""
        narrowed: list[_Task] = []
        for b in tasks:
            task = self.via(b, fixed[1] if fixed is not None and fixed[0] == b else None)
            if task is None:
                return False
            narrowed.append(task)
        group = _Group(self.group.cand, self.group.volunteer, narrowed, self.group.cap,
                       self.work)
        return group.is_pattern(list(range(len(narrowed))), self.max_states)

    def smallest(self, tasks: list[int]) -> list[int]:
        """``tasks`` (not timeable) made smallest by deletion while they stay so."""
        return _smallest(tasks, lambda fewer: self.timeable(fewer) is False)

    def smallest_apart(self, tasks: list[int], b: int, others: set[int]) -> list[int]:
        """``tasks`` (task b of them starting at no minute of ``others``) made smallest by
        deletion while that stays so, task b kept."""
        rest = [k for k in tasks if k != b]
        return [*_smallest(rest, lambda fewer: self.starts([*fewer, b], b, among=others)
                           == set()), b]

    def starts(self, tasks: list[int], b: int, among: set[int] | None = None) -> set[int] | None:
        """The minutes task b (of ``tasks``) can start at with all of them done (of ``among``
        where given); None where a check could not tell."""
        task = self.via(b)
        if task is None:
            return set()
        minutes = range(task.lo, task.hi + 1) if among is None else \
            sorted(s for s in among if task.lo <= s <= task.hi)
        out = set()
        for s in minutes:
            ok = self.timeable(tasks, (b, s))
            if ok is None:
                return None
            if ok:
                out.add(s)
        return out


@dataclass(frozen=True, slots=True)
class _Task:
    option: int
    occurrence: int
    duration: int
    # (merchant or None, earliest start, latest start) per way of serving it
    ways: tuple[tuple[int | None, int, int], ...]
    # The earliest and latest start over the ways: read in the inner loops, so kept.
    lo: int = field(init=False)
    hi: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lo", min(lo for _, lo, _ in self.ways))
        object.__setattr__(self, "hi", max(hi for _, _, hi in self.ways))


class _OutOfWorkError(Exception):
    """The bound used up its steps."""


class _TooManyLabelsError(Exception):
    """One group's pricing made more labels than it may."""


class _Work:
    """Steps taken against a limit: the same inputs stop at the same step on every run."""

    def __init__(self, limit: float) -> None:
        self.limit, self.used = limit, 0

    def spend(self, steps: int) -> None:
        self.used += steps
        if self.used > self.limit:
            raise _OutOfWorkError


@dataclass(frozen=True, slots=True)
class Priced:
    """What one pricing of a group found: ``upper`` bounds the value of every pattern of the
    group from above (the floor it was given when none beats it); ``value`` and ``mask`` are
    the best pattern it found (a path doing no task twice), 0 and no task when none beat the
    floor; ``elementary`` says the best path of all is such a pattern (``upper`` is then
    its value); ``cycles`` are the (task, slot) pairs that would have kept it from repeating
    a task."""

    upper: float
    value: float
    mask: int
    elementary: bool
    cycles: list[tuple[int, int]]
    more: list[int] = field(default_factory=list)  # other patterns that beat the floor


class _Group:
    """One volunteer's options of one group of overlapping windows on one day."""

    def __init__(self, cand: Candidates, volunteer: int, tasks: list[_Task], cap: int,
                 work: _Work, ng_size: int = 0) -> None:
        self.cand, self.volunteer, self.cap, self.work = cand, volunteer, cap, work
        self.ng_size = ng_size
        self.slot: list[int] = []  # per task (see _slots), once needed
        self.repeatable = 0
        self.near: list[int] = []  # per task (see _neighbourhoods), once priced
        self.tasks = sorted(tasks, key=lambda t: (t.lo, t.hi, t.option))
        self._walks: dict[tuple[int, int], tuple[int, ...]] = {}

    def walks(self, a: int, b: int) -> tuple[int, ...]:
        """Whole minutes from task a's place to task b's start of service, per way of b."""
        key = (a, b)
        if key not in self._walks:
            self.work.spend(1)
            ta, tb = self.tasks[a], self.tasks[b]
            out = []
            for j, _, _ in tb.ways:
                t = self.cand.transition(ta.occurrence, tb.occurrence, j)
                out.append(walk_ceil(t) if t < INF_WALK else INF_WALK)
            self._walks[key] = tuple(out)
        return self._walks[key]

    def first(self, b: int) -> int:
        return self.tasks[b].lo

    def after(self, a: int, start: int, b: int) -> int | None:
        """The earliest start of task b right after task a started at ``start`` (or None)."""
        ta, tb = self.tasks[a], self.tasks[b]
        best: int | None = None
        for (_, lo, hi), walk in zip(tb.ways, self.walks(a, b), strict=True):
            s = max(lo, start + ta.duration + walk)
            if s <= hi and (best is None or s < best):
                best = s
        return best

    def energy(self) -> list[tuple[int, list[int]]]:
        """Rows every plan keeps however she orders her tasks, as (minutes, tasks): the tasks
        whose windows lie inside one task's window (its earliest start to its latest end)
        take at most that window's minutes, since she does one at a time; and all of them at
        most the group's span and her weekly minutes."""
        ends = [t.hi + t.duration for t in self.tasks]
        los = [t.lo for t in self.tasks]
        durations = [t.duration for t in self.tasks]
        rows = []
        for k, lo in enumerate(los):
            end = ends[k]
            inside = [b for b, (lo_b, end_b) in enumerate(zip(los, ends, strict=True))
                      if lo_b >= lo and end_b <= end]
            if sum(durations[b] for b in inside) > end - lo:
                rows.append((end - lo, inside))
        span = min(max(ends) - min(los), self.cap)
        if sum(t.duration for t in self.tasks) > span:
            rows.append((span, list(range(len(self.tasks)))))
        return rows

    def most(self, params: SolveParams) -> int | None:
        """No pattern holds more of her tasks than this: the labelling with every task worth
        one, priced again from the best pattern found until none beats it. None past
        ``pattern_max_labels`` labels in a first labelling, or where the best pattern found
        still grew after ``pattern_dssr_rounds`` + 2 labellings; it may raise
        :class:`_OutOfWorkError`."""
        weight = [1.0] * len(self.tasks)
        floor = 0.0
        try:
            for _ in range(params.pattern_dssr_rounds + 2):
                priced = self.price(weight, floor, params.pattern_max_labels,
                                    params.pattern_dssr_rounds)
                if priced.value <= floor + EPS:
                    return math.floor(priced.upper + EPS)
                floor = priced.value
        except _TooManyLabelsError:
            return None
        return None

    def is_pattern(self, tasks: list[int], max_states: int) -> bool | None:
        """Whether she can do all of ``tasks`` (indices), each in its window with her walks and
        within her minutes; None past ``max_states`` (it may raise :class:`_OutOfWorkError`).
        The same dynamic programme as :meth:`enumerate` but grown only towards the whole set:
        an order that leaves a task past its latest start is dropped at once."""
        if len({self.tasks[b].occurrence for b in tasks}) < len(tasks) or \
                sum(self.tasks[b].duration for b in tasks) > self.cap:
            return False
        if not tasks:
            return True
        whole = sum(1 << b for b in tasks)
        frontier = {(1 << b, b): self.first(b) for b in tasks}
        states = len(frontier)
        for _ in range(len(tasks) - 1):
            grown: dict[tuple[int, int], int] = {}
            self.work.spend(len(frontier) * len(tasks) ** 2)
            for (mask, last), start in frontier.items():
                for b in tasks:
                    if mask >> b & 1:
                        continue
                    s = self.after(last, start, b)
                    if s is None:
                        continue
                    end = s + self.tasks[b].duration
                    if any(self.tasks[k].hi < end for k in tasks
                           if not (mask | 1 << b) >> k & 1):
                        continue  # a task left undone could no longer start
                    key = (mask | 1 << b, b)
                    if s < grown.get(key, s + 1):
                        grown[key] = s
            states += len(grown)
            if states > max_states:
                return None
            frontier = grown
        return any(mask == whole for mask, _ in frontier)

    def enumerate(self, max_states: int, weight: list[float] | None = None,
                  floor: float = -math.inf) -> list[int] | None:
        """The maximal patterns as bit masks over ``tasks``, or None past ``max_states``.

        With ``weight`` (per task, none negative), only the patterns worth ``floor`` or more:
        the maximal ones among them, so every pattern worth that much lies inside one. A set
        that cannot reach ``floor`` with every task it could still add is not grown."""
        n = len(self.tasks)
        occ = [t.occurrence for t in self.tasks]
        dur = [t.duration for t in self.tasks]
        his = [t.hi for t in self.tasks]
        w = weight or [0.0] * n

        def worth(mask: int) -> float:
            return sum(w[k] for k in range(n) if mask >> k & 1)

        def reaches(mask: int, last: int, start: int, used: int) -> bool:
            if weight is None:
                return True
            taken = {occ[k] for k in range(n) if mask >> k & 1}
            after = start + dur[last]
            more = sum(w[b] for b in range(n) if not mask >> b & 1 and occ[b] not in taken
                       and his[b] >= after and used + dur[b] <= self.cap)
            return worth(mask) + more >= floor - EPS

        frontier: dict[tuple[int, int], int] = {
            (1 << b, b): self.first(b) for b in range(n)
            if dur[b] <= self.cap and reaches(1 << b, b, self.first(b), dur[b])}
        feasible: set[int] = {0}
        states = len(frontier)
        minutes: dict[int, int] = {}
        while frontier:
            feasible.update(mask for mask, _ in frontier)
            grown: dict[tuple[int, int], int] = {}
            self.work.spend(len(frontier) * n)
            for (mask, last), start in frontier.items():
                used = minutes.get(mask)
                if used is None:
                    used = minutes[mask] = sum(dur[k] for k in range(n) if mask >> k & 1)
                taken = {occ[k] for k in range(n) if mask >> k & 1}
                for b in range(n):
                    if mask >> b & 1 or occ[b] in taken or used + dur[b] > self.cap:
                        continue
                    s = self.after(last, start, b)
                    if s is None or not reaches(mask | 1 << b, b, s, used + dur[b]):
                        continue
                    key = (mask | 1 << b, b)
                    if s < grown.get(key, s + 1):
                        grown[key] = s
            states += len(grown)
            if states > max_states:
                return None
            frontier = grown
        return [mask for mask in feasible if mask and worth(mask) >= floor - EPS and
                not any(mask | 1 << b in feasible for b in range(n) if not mask >> b & 1)]

    def _slots(self) -> None:
        """Each task's occurrence as a slot (a bit), and which slots a path may do twice."""
        index: dict[int, int] = {}
        for t in self.tasks:
            index.setdefault(t.occurrence, len(index))
        self.slot = [index[t.occurrence] for t in self.tasks]
        lo: dict[int, int] = {}
        hi: dict[int, int] = {}
        for k, t in zip(self.slot, self.tasks, strict=True):
            lo[k], hi[k] = min(lo.get(k, t.lo), t.lo), max(hi.get(k, t.hi), t.hi)
        # A path starts its tasks at least the duration of each apart, so a slot whose
        # latest start comes before its earliest one plus its duration is done at most once.
        self.repeatable = 0
        for b, t in enumerate(self.tasks):
            if hi[self.slot[b]] - lo[self.slot[b]] >= t.duration:
                self.repeatable |= 1 << self.slot[b]

    def _neighbourhoods(self) -> None:
        """Each task's first neighbourhood: its own slot and its ``ng_size`` nearest
        repeatable ones (by the walk between the two places)."""
        for b, tb in enumerate(self.tasks):
            mine = 1 << self.slot[b] & self.repeatable
            others = [(self.cand.need_to_need(tb.occurrence, tc.occurrence), self.slot[c])
                      for c, tc in enumerate(self.tasks) if self.repeatable >> self.slot[c] & 1
                      and self.slot[c] != self.slot[b]]
            self.work.spend(len(self.tasks))
            for _, k in sorted(others)[:self.ng_size]:
                mine |= 1 << k
            self.near.append(mine)

    def price(self, weight: list[float], floor: float, max_labels: int,
              dssr_rounds: int, columns: int = 1) -> Priced:
        """The best path over her tasks by total ``weight`` (per task) when it beats
        ``floor``, by an ng-route relaxation: a label remembers only the repeatable slots of
        the neighbourhoods it passed through (:meth:`_slots`), so a path may do a task twice
        where it forgot it. Its value then bounds every pattern's from above; where the best
        path repeats a task, the tasks of that cycle remember it from then on (decremental
        state-space relaxation) and the group is priced again, ``dssr_rounds`` times at most.
        Tasks of no weight are left out (a pattern less a task of no value is worth as much,
        and a subset of a pattern is one too). Past ``max_labels`` labels in the first
        labelling it gives up (:class:`_TooManyLabelsError`); later ones keep the last. Up to
        ``columns`` patterns that beat the floor come back (``value``, ``mask`` and
        ``more``)."""
        if not self.slot:
            self._slots()
        if not self.near:
            self._neighbourhoods()
        useful = [b for b in range(len(self.tasks))
                  if weight[b] > EPS and self.tasks[b].duration <= self.cap]
        best = self._label(useful, weight, floor, max_labels, columns)
        for _ in range(dssr_rounds):
            if best.elementary or best.upper <= floor + EPS or best.value > floor + EPS:
                break  # exact, or nothing gains, or a column to add: enough for this round
            for b, k in best.cycles:
                self.near[b] |= 1 << k
            try:
                best = self._label(useful, weight, floor, max_labels, columns)
            except _TooManyLabelsError:
                break
        return best

    def _label(self, useful: list[int], weight: list[float], floor: float,
               max_labels: int, columns: int) -> Priced:
        """One ng-route labelling (see :meth:`price`)."""
        dur = [t.duration for t in self.tasks]
        his = [t.hi for t in self.tasks]
        los = [t.lo for t in self.tasks]
        slot, near, repeatable = self.slot, self.near, self.repeatable
        by_ratio = sorted(useful, key=lambda b: -weight[b] / dur[b])
        # Labels by number: start of the last task, minutes, value, the slots remembered,
        # the last task, the label it extends, the slots done, the tasks done, no slot twice.
        starts: list[int] = []
        used_: list[int] = []
        values: list[float] = []
        mems: list[int] = []
        lasts: list[int] = []
        parents: list[int] = []
        done: list[int] = []
        masks: list[int] = []
        simple: list[bool] = []
        heap: list[tuple[int, int, float, int]] = []
        kept: dict[int, list[int]] = defaultdict(list)
        top, top_value = -1, floor  # the best label of all
        elem, elem_value = -1, floor  # the best label doing no slot twice

        def completion(start: int, last: int, used: int) -> float:
            """At most what the tasks she can still start after this label add: a fractional
            knapsack over her minutes left and the span left, a task as many times as its
            window lets her start it again (once unless repeatable)."""
            t0 = start + dur[last]
            room = self.cap - used
            reach = [b for b in by_ratio if his[b] >= t0 and dur[b] <= room]
            if not reach:
                return 0.0
            room = min(room, max(his[b] + dur[b] for b in reach) - t0)
            gain = 0.0
            for b in reach:
                if room <= 0:
                    break
                times = 1
                if repeatable >> slot[b] & 1:
                    times = (his[b] - max(los[b], t0)) // dur[b] + 1
                take = min(room, times * dur[b])
                gain += take * weight[b] / dur[b]
                room -= take
            return gain

        def push(start: int, used: int, value: float, mem: int, last: int, parent: int,
                 slots: int, mask: int, alone: bool) -> None:
            nonlocal top, top_value, elem, elem_value
            if value + completion(start, last, used) <= max(floor, elem_value) + EPS:
                return  # can beat neither the floor nor a pattern already found
            for n in kept[last]:
                if starts[n] <= start and used_[n] <= used and values[n] >= value - EPS \
                        and mems[n] & mem == mems[n]:
                    return  # dominated: whatever extends this label extends that one
            if len(starts) >= max_labels:
                raise _TooManyLabelsError
            n = len(starts)
            starts.append(start)
            used_.append(used)
            values.append(value)
            mems.append(mem)
            lasts.append(last)
            parents.append(parent)
            done.append(slots)
            masks.append(mask)
            simple.append(alone)
            kept[last].append(n)
            heapq.heappush(heap, (start, used, -value, n))
            if value > top_value + EPS:
                top, top_value = n, value
            if alone and value > elem_value + EPS:
                elem, elem_value = n, value

        elem_mask = 0
        greedy = self._greedy(useful, weight)
        if greedy[0] > floor + EPS:
            elem_value, elem_mask = greedy  # a pattern to beat from the start: prunes more
        for b in useful:
            push(self.first(b), dur[b], weight[b], 1 << slot[b] & repeatable, b, -1,
                 1 << slot[b], 1 << b, True)
        late = sorted(useful, key=lambda b: -his[b])  # only those not yet too late are tried
        while heap:
            start, used, neg, n = heapq.heappop(heap)
            mem, last = mems[n], lasts[n]
            t0 = start + dur[last]
            tried = 0
            for b in late:
                if his[b] < t0:
                    break
                tried += 1
                if mem >> slot[b] & 1 or used + dur[b] > self.cap or b == last:
                    continue
                s = self.after(last, start, b)
                if s is not None:
                    push(s, used + dur[b], -neg + weight[b],
                         (mem & near[b]) | (1 << slot[b] & repeatable), b, n,
                         done[n] | 1 << slot[b], masks[n] | 1 << b,
                         simple[n] and not done[n] >> slot[b] & 1)
            self.work.spend(tried + 1)
        cycles: list[tuple[int, int]] = []
        if top >= 0 and not simple[top]:
            # Walk the best path back: each slot met twice is remembered by the tasks
            # between its two visits.
            path = []
            n = top
            while n >= 0:
                path.append(lasts[n])
                n = parents[n]
            path.reverse()
            for i, b in enumerate(path):
                for j in range(i + 1, len(path)):
                    if slot[path[j]] == slot[b]:
                        cycles += [(c, slot[b]) for c in path[i + 1:j + 1]]
                        break
        if elem >= 0:
            elem_mask = masks[elem]
        if not elem_mask:
            elem_value = 0.0
        # A few more patterns that beat the floor, none inside another: fewer rounds.
        more: list[int] = []
        chosen = [elem_mask] if elem_mask else []
        for _, n in sorted(((values[n], n) for n in range(len(values))
                            if simple[n] and values[n] > floor + EPS), reverse=True):
            if len(more) + 1 >= columns:
                break
            if all(masks[n] & m != masks[n] for m in chosen):
                chosen.append(masks[n])
                more.append(masks[n])
        # The greedy pattern is a path the labelling could have made: the best of all is at
        # least it.
        upper = max(top_value if top >= 0 else floor, elem_value)
        return Priced(upper, elem_value, elem_mask, top < 0 or simple[top], cycles, more)

    def _greedy(self, useful: list[int], weight: list[float],
                starts: int = 3) -> tuple[float, int]:
        """A good pattern, quickly: from each of her first ``starts`` tasks, the task worth
        most per minute it takes (waiting included) added next while one fits.
        (value, mask)."""
        if not self.slot:
            self._slots()
        dur = [t.duration for t in self.tasks]
        best_value, best_mask = 0.0, 0
        late = sorted(useful, key=lambda b: -self.tasks[b].hi)
        for first in sorted(useful, key=lambda b: (self.first(b), b))[:starts]:
            start, used, last = self.first(first), dur[first], first
            value, mask, slots = weight[first], 1 << first, 1 << self.slot[first]
            while True:
                pick, pick_start, pick_rate = -1, 0, 0.0
                tried = 0
                for b in late:
                    if self.tasks[b].hi < start + dur[last]:
                        break
                    tried += 1
                    if slots >> self.slot[b] & 1 or used + dur[b] > self.cap:
                        continue
                    s = self.after(last, start, b)
                    if s is None:
                        continue
                    rate = weight[b] / (s + dur[b] - start - dur[last])
                    if rate > pick_rate:
                        pick, pick_start, pick_rate = b, s, rate
                self.work.spend(tried + 1)
                if pick < 0:
                    break
                start, used, last = pick_start, used + dur[pick], pick
                value += weight[pick]
                mask |= 1 << pick
                slots |= 1 << self.slot[pick]
            if value > best_value + EPS:
                best_value, best_mask = value, mask
        return best_value, best_mask


def _tasks(cand: Candidates, options: list[int]) -> dict[int, _Task]:
    out = {}
    for i in options:
        opt = cand.options[i]
        o = opt.occurrence
        ways: list[tuple[int | None, int, int]] = []
        if not opt.merchants:
            ways.append((None, opt.lo, opt.hi))
        for j in opt.merchants:
            lo, hi = cand.merchant_starts[o, j]
            if max(lo, opt.lo) <= min(hi, opt.hi):
                ways.append((j, max(lo, opt.lo), min(hi, opt.hi)))
        if ways:
            out[i] = _Task(i, o, cand.problem.occurrences[o].need.duration_min, tuple(ways))
    return out


def _groups(cand: Candidates, tasks: dict[int, _Task], minutes_cap: Mapping[int, int],
            work: _Work, ng_size: int = 0) -> list[_Group]:
    """Each volunteer-day's tasks, swept in order of earliest start, split where every task so
    far in the group always ends, walk included, before the next can start (then nothing
    before the split constrains what comes after it, up to walks to later tasks, which only
    loosen the bound: any split of the options into groups is a relaxation). Walks are looked
    up only at a possible split, from the tasks that end late enough to matter."""
    by_day: dict[tuple[int, Day], list[_Task]] = defaultdict(list)
    for i, task in tasks.items():
        by_day[cand.options[i].volunteer, cand.problem.occurrences[task.occurrence].day] \
            .append(task)
    groups: list[_Group] = []
    for (v, _day), day_tasks in sorted(by_day.items(), key=lambda kv: (kv[0][0],
                                                                        kv[0][1].number)):
        probe = _Group(cand, v, day_tasks, minutes_cap[v], work)
        work.spend(len(probe.tasks))
        part: list[int] = []
        reach = -math.inf  # the latest end of a task of ``part``, walks left out
        for b, tb in enumerate(probe.tasks):
            joined = reach > tb.lo
            if not joined and part:
                # A possible split: does a task of the part, with its walk, still run into b?
                for a in part:
                    ta = probe.tasks[a]
                    if ta.hi + ta.duration + max(probe.walks(a, b)) > tb.lo:
                        joined = True
                        break
            if part and not joined:
                groups.append(_Group(cand, v, [probe.tasks[a] for a in part], minutes_cap[v],
                                     work, ng_size))
                part, reach = [], -math.inf
            part.append(b)
            reach = max(reach, tb.hi + tb.duration)
        if part:
            groups.append(_Group(cand, v, [probe.tasks[a] for a in part], minutes_cap[v], work,
                                 ng_size))
    return groups


class _Master:
    """The master LP (GLOP), built row by row, with pattern columns added as they come; each
    solve starts from the last one's basis. It also keeps what it was given (bounds, costs,
    rows), so the same master can be solved as an integer programme (:meth:`integer`)."""

    def __init__(self, iterations: int) -> None:
        self.lp = pywraplp.Solver.CreateSolver("GLOP")
        self.limit = iterations  # simplex iterations of every solve together
        self.inf = self.lp.infinity()
        self.vars: list[pywraplp.Variable] = []
        self.rows: list[pywraplp.Constraint] = []
        self.objective = self.lp.Objective()
        self.objective.SetMaximization()
        self.iterations = 0  # simplex iterations over every solve
        # What it was given, for the integer programme: per variable [cost, lo, hi], per row
        # [lo, hi, {variable: coefficient}].
        self.given_vars: list[list[float]] = []
        self.given_rows: list[tuple[list[float], dict[int, float]]] = []

    def var(self, cost: float, lo: float, hi: float) -> int:
        var = self.lp.NumVar(lo, hi, "")
        if cost:
            self.objective.SetCoefficient(var, cost)
        self.vars.append(var)
        self.given_vars.append([cost, lo, hi])
        return len(self.vars) - 1

    def set_lower(self, var: int, lo: float) -> None:
        self.vars[var].SetLb(lo)
        self.given_vars[var][1] = lo

    def row(self, lo: float, hi: float, terms: list[tuple[int, float]]) -> int:
        row = self.lp.Constraint(lo, hi)
        for c, a in terms:
            row.SetCoefficient(self.vars[c], a)
        self.rows.append(row)
        self.given_rows.append(([lo, hi], dict(terms)))
        return len(self.rows) - 1

    def set_upper(self, row: int, hi: float) -> None:
        self.rows[row].SetUb(hi)
        self.given_rows[row][0][1] = hi

    def column(self, terms: list[tuple[int, float]]) -> int:
        """A pattern: no cost, at least zero (its group's row keeps it at most one)."""
        var = self.lp.NumVar(0.0, self.inf, "")
        for r, a in terms:
            self.rows[r].SetCoefficient(var, a)
        self.vars.append(var)
        self.given_vars.append([0.0, 0.0, 1.0])
        for r, a in terms:
            self.given_rows[r][1][len(self.vars) - 1] = a
        return len(self.vars) - 1

    def solve(self, deadline: float = math.inf) -> tuple[float, list[float], list[float]] | None:
        """(value, column values, row duals) at the optimum, None when there is none, or
        ``deadline`` (a ``time.monotonic()`` reading) passed first, or the iterations ran
        out (GLOP's ``max_number_of_iterations``: a count, the same on every run)."""
        left = self.limit - self.iterations
        if left <= 0:
            return None
        self.lp.SetSolverSpecificParametersAsString(f"max_number_of_iterations: {left}")
        if deadline < math.inf:
            self.lp.SetTimeLimit(max(int((deadline - time.monotonic()) * 1000), 1))
        status = self.lp.Solve()
        self.iterations += self.lp.iterations()
        if status != pywraplp.Solver.OPTIMAL:
            return None
        return (self.objective.Value(), [v.solution_value() for v in self.vars],
                [r.dual_value() for r in self.rows])

    def integer(self, hint: Mapping[int, int], nodes: int,
                seconds: float) -> tuple[list[float] | None, float]:
        """The master as an integer programme, solved by SCIP (through OR-Tools), every
        variable whole: patterns chosen (at most one per group), options and occurrences
        taken or not. A variable of negative cost (a level kept short of what it proved,
        allowed in the LP at a price) is fixed at zero. ``hint`` gives variables their values
        in a known solution (the rest hinted zero). SCIP stops after ``nodes`` nodes of its
        search (a count, so every run stops at the same point) or, as a safety net only,
        ``seconds``. Returns the values of its best solution (None if it found none) and its
        bound on the objective (minus infinity where it has no solution at all, infinity
        where SCIP stopped before finding one)."""
        mip = pywraplp.Solver.CreateSolver("SCIP")
        made = []
        for cost, lo, hi in self.given_vars:
            top = 0 if cost < 0 else (1 if hi >= self.inf else math.floor(hi + EPS))
            made.append(mip.IntVar(math.ceil(lo - EPS), top, ""))
        for (lo, hi), terms in self.given_rows:
            if terms:
                row = mip.Constraint(lo, hi)
                for c, a in terms.items():
                    row.SetCoefficient(made[c], a)
        objective = mip.Objective()
        for var, (cost, _, _) in zip(made, self.given_vars, strict=True):
            if cost > 0:
                objective.SetCoefficient(var, cost)
        objective.SetMaximization()
        mip.SetHint(made, [float(hint.get(k, 0)) for k in range(len(made))])
        mip.SetSolverSpecificParametersAsString(f"limits/nodes = {nodes}\n")
        mip.SetTimeLimit(max(int(seconds * 1000), 1))
        status = mip.Solve()
        if status == pywraplp.Solver.INFEASIBLE:
            return None, -math.inf
        if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return None, math.inf
        return [var.solution_value() for var in made], objective.BestBound()


def pattern_bound(cand: Candidates, occurrences: list[int], options: list[int],
                  priority: Priority, kept: Mapping[Priority, int], deadline: float = math.inf,
                  *, minutes_left: Mapping[int, int] | None = None,
                  params: SolveParams | None = None, enough: int = -1,
                  plan: Plan | None = None) -> PatternBound:
    """Bound ``priority``'s coverage of ``occurrences`` over ``options``, with each level of
    ``kept`` covered at least as much as it says (proven values of the levels above, as the
    solver's stages keep them). See the module's docstring.

    ``deadline`` is a ``time.monotonic()`` reading (the LP then stops and the bound falls back,
    still valid); the ``pattern_*`` limits of ``params`` (steps, rounds, labels: see
    :class:`~matcher.params.SolveParams`) stop it the same way on every run, for repeatable
    solves. Pricing stops as soon as the bound is down to ``enough`` (a plan's value: the
    level is then proven). ``minutes_left`` replaces the weekly caps (R6) where given.
    ``plan``, a valid plan of these occurrences, gives the priced groups their first columns.
    """
    params = params or SolveParams()
    problem = cand.problem
    level = [o for o in occurrences if problem.occurrences[o].need.priority is priority]
    trivial = PatternBound(len(level), not level, float(len(level)), 0, 0, 0, 0)
    if not level:
        return trivial
    inside = set(occurrences)
    tasks = _tasks(cand, [i for i in options if cand.options[i].occurrence in inside])
    caps = {v: (minutes_left or {}).get(v, cand.minutes_cap(v))
            for v in {cand.options[i].volunteer for i in tasks}}
    work = _Work(params.pattern_max_work)
    try:
        groups = _groups(cand, tasks, caps, work, params.pattern_ng_size)
    except _OutOfWorkError:
        trivial.work = work.used
        return trivial
    if time.monotonic() > deadline:
        return trivial

    lp = _Master(params.pattern_lp_iterations)
    counted = set(level)
    y = {o: lp.var(1.0 if o in counted else 0.0, 0.0, 1.0) for o in occurrences}
    x = {i: lp.var(0.0, 1.0 if i in cand.pinned else 0.0, 1.0) for i in tasks}
    # R7: the headcount of distinct volunteers, or none.
    per_occurrence: dict[int, list[int]] = defaultdict(list)
    per_pair: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, task in tasks.items():
        per_occurrence[task.occurrence].append(i)
        per_pair[cand.options[i].volunteer, task.occurrence].append(i)
    for o in occurrences:
        needed = problem.occurrences[o].need.volunteers_needed
        lp.row(0.0, 0.0, [(x[i], 1.0) for i in per_occurrence[o]] + [(y[o], -needed)])
        if o in cand.pin_plan:
            lp.set_lower(y[o], 1.0)
    for pair in per_pair.values():
        if len(pair) > 1:
            lp.row(-lp.inf, 1.0, [(x[i], 1.0) for i in pair])
    # R6: the week's minutes.
    load: dict[int, list[int]] = defaultdict(list)
    for i in tasks:
        load[cand.options[i].volunteer].append(i)
    for v, mine in load.items():
        if sum(tasks[i].duration for i in mine) > caps[v]:
            lp.row(-lp.inf, caps[v], [(x[i], tasks[i].duration) for i in mine])
    # R8: one merchant per covered merchant occurrence, within each merchant's day.
    use: dict[tuple[int, int], int] = {}
    for (o, j) in cand.merchant_starts:
        if o in inside:
            use[o, j] = lp.var(0.0, 0.0, 1.0)
    by_occurrence: dict[int, list[int]] = defaultdict(list)
    by_day: dict[tuple[int, Day], list[int]] = defaultdict(list)
    for (o, j), col in use.items():
        by_occurrence[o].append(col)
        by_day[j, problem.occurrences[o].day].append(col)
    for o, cols in by_occurrence.items():
        lp.row(0.0, 0.0, [(c, 1.0) for c in cols] + [(y[o], -1.0)])
    for (j, day), cols in by_day.items():
        if len(cols) > cand.merchant_capacity(j, day):
            lp.row(-lp.inf, cand.merchant_capacity(j, day), [(c, 1.0) for c in cols])
    for i, task in tasks.items():
        ways = {j for j, _, _ in task.ways if j is not None}
        if ways and len(ways) < len(by_occurrence[task.occurrence]):
            lp.row(-lp.inf, 0.0,
                   [(x[i], 1.0)] + [(use[task.occurrence, j], -1.0) for j in sorted(ways)])
    # The levels above, kept. Softly, at a price no coverage can pay for: the LP then has a
    # solution before pricing has found the patterns that keep them, and its value still
    # bounds the one with the rows hard (which is a restriction of it).
    penalty = 10.0 * (len(occurrences) + 1)
    for q, least in kept.items():
        mine = [y[o] for o in occurrences if problem.occurrences[o].need.priority is q]
        if least > 0 and mine:
            short = lp.var(-penalty, 0.0, lp.inf)
            lp.row(least, lp.inf, [(c, 1.0) for c in mine] + [(short, 1.0)])
    # Patterns: x_i <= the patterns that hold i; each group's patterns sum to at most one.
    link = {i: lp.row(-lp.inf, 0.0, [(x[i], 1.0)]) for i in tasks}
    convex = [lp.row(-lp.inf, 1.0, []) for _ in groups]
    pool = _Pool(lp, tasks, groups, x, y, use, [[] for _ in groups], False, link=link,
                 convex=convex)

    def by_energy(g: int) -> None:
        pool.relax(g, list(range(len(groups[g].tasks))))

    priced: list[int] = []  # groups whose columns are priced
    energy = 0  # groups bounded by energy rows
    enumerated = 0
    stop = len(groups)  # out of steps from here: the rest by energy rows
    for g, group in enumerate(groups):
        if time.monotonic() > deadline:
            # No LP will be solved: the bound stays the trivial one, and the energy rows of
            # the groups left (seconds of building at street scale) would only spend time.
            trivial.work = work.used
            return trivial
        masks = None
        if len(group.tasks) <= params.pattern_enumerate_up_to:
            try:
                masks = group.enumerate(params.pattern_max_states)
            except _OutOfWorkError:
                stop = g
                break
        if masks is None:
            priced.append(g)
            continue
        enumerated += 1
        for mask in masks:
            pool.add(g, mask)
    for g in range(stop, len(groups)):
        by_energy(g)
        energy += 1
    # A first column for each priced group, a greedy pattern of as many of her tasks as fit:
    # the first LP then already has a plan of every volunteer to price against, instead of
    # none for the groups priced (partial pricing reaches each of them only rounds later).
    # The greedy pattern weighs each task by its level, so the levels kept above find
    # columns too; and ``plan``'s own volunteer-groups are patterns (it is a valid plan), so
    # the LP starts from a point that keeps what the plan keeps.
    rank_weight = {q: 2.0 ** (len(Priority) - q.rank) for q in Priority}
    for g in priced:
        group = groups[g]
        fits = [b for b, t in enumerate(group.tasks) if t.duration <= group.cap]
        weight = [rank_weight[problem.occurrences[t.occurrence].need.priority]
                  for t in group.tasks]
        try:
            _, mask = group._greedy(fits, weight, 1)
        except _OutOfWorkError:
            break
        if mask:
            pool.add(g, mask)
    if plan is not None:
        pricing = set(priced)
        for g, mask in sorted(_held(groups, plan, inside).items()):
            if g in pricing:
                pool.add(g, mask)
    best = math.inf
    rounds = 0
    result = None
    lagrangian: tuple[float, list[float]] | None = None  # (bound, duals) of the last round
    complete = stalled = False
    turn = 0  # where the next round's pricing starts (partial pricing, in turn)
    while rounds < params.pattern_max_rounds and time.monotonic() <= deadline:
        solved = lp.solve(deadline)
        rounds += 1
        if solved is None:
            break  # out of time (or no solution): the last round's bound stands
        result = solved
        value, _, duals = result
        # Lagrangian: the LP plus each priced group's best reduced cost; a group not priced
        # this round adds what all its tasks of positive dual are worth together (more than
        # any of its patterns).
        gain = 0.0
        fresh: list[tuple[int, int]] = []
        dropped: list[int] = []
        out_of_work = unresolved = False
        stopped: int | None = None
        for step in range(len(priced)):
            g = priced[(turn + step) % len(priced)]
            group = groups[g]
            weight = [duals[link[t.option]] for t in group.tasks]
            loose = sum(w for w in weight if w > EPS) - duals[convex[g]]
            if loose <= EPS:
                continue  # no pattern of hers can gain
            out_of_work = out_of_work or time.monotonic() > deadline
            if out_of_work or len(fresh) >= params.pattern_price_groups:
                stopped = step if stopped is None else stopped
                gain += loose
                continue
            try:
                found = group.price(weight, duals[convex[g]], params.pattern_max_labels,
                                    params.pattern_dssr_rounds, params.pattern_columns)
            except _TooManyLabelsError:
                dropped.append(g)
                gain += loose
                continue
            except _OutOfWorkError:
                out_of_work = True
                gain += loose
                continue
            # Both bound every pattern of hers: the best path, which may do a task twice,
            # and all her tasks of positive dual together.
            gain += max(min(found.upper - duals[convex[g]], loose), 0.0)
            if found.value - duals[convex[g]] > EPS:
                fresh += [(g, mask) for mask in [found.mask, *found.more]]
            elif found.upper - duals[convex[g]] > EPS:
                unresolved = True  # only paths doing a task twice gain: no column to add
        if stopped is not None:
            turn = (turn + stopped) % len(priced)
        best = min(best, value + gain)
        lagrangian = (value + gain, duals)
        if not fresh and not dropped:
            complete = not out_of_work and not unresolved and energy == 0
            if not out_of_work and not unresolved:
                best = min(best, value)  # priced out: the LP's optimum itself
            # Only paths doing a task twice gain: more rounds add nothing, and the bound
            # stands as the Lagrangian one.
            stalled = unresolved and not out_of_work
            break
        if out_of_work or math.floor(best + ROUNDING) <= enough:
            break
        for g in dropped:
            priced.remove(g)
            by_energy(g)
            energy += 1
        for g, mask in fresh:
            pool.add(g, mask)
    if result is not None and not complete and not stalled and priced and \
            time.monotonic() <= deadline and \
            (best == math.inf or math.floor(best + ROUNDING) > enough):
        # Out of rounds, steps or time before pricing out: bound the groups still priced by
        # their energy rows, and the LP's optimum is a bound as it is.
        for g in priced:
            by_energy(g)
            energy += 1
        priced = []
        final = lp.solve(deadline)
        rounds += 1
        if final is not None:
            result = final
            best = min(best, final[0])
    if result is None or best == math.inf:
        trivial.work = work.used
        return trivial
    value, values, _ = result
    # Rounded down with room for the LP's tolerances: a value a hair below a whole number
    # may be that number.
    bound = min(len(level), math.floor(best + ROUNDING))
    pool.complete, pool.priced = not priced, priced
    if lagrangian is not None:
        pool.lagrangian, pool.duals = lagrangian
    return PatternBound(bound, complete, best if complete else value,
                        sum(len(mine) for mine in pool.columns), len(groups), enumerated, rounds,
                        work.used, energy, lp.iterations,
                        _guided_plan(cand, occurrences, tasks, x, y, values), pool)


def _guided_plan(cand: Candidates, occurrences: list[int], tasks: dict[int, _Task],
                 x: dict[int, int], y: dict[int, int], values: list[float]) -> Plan:
    """A valid plan the LP's solution guides: the pins first, then the occurrences the LP
    covers, by level and by how much, each given the options the LP takes most at the first
    start that keeps every rule (as :func:`matcher.greedy.greedy_plan` does), then the rest
    greedily."""
    problem = cand.problem
    plan = Plan(dict((o, v) for o, v in cand.pin_plan.items() if o in set(occurrences)))
    timelines = Timelines.of_plan(cand, plan)
    by_occurrence: dict[int, list[int]] = defaultdict(list)
    for i in tasks:
        by_occurrence[tasks[i].occurrence].append(i)
    todo = [o for o in occurrences if o not in plan.covered and values[y[o]] > 1e-6]
    todo.sort(key=lambda o: (problem.occurrences[o].need.priority.rank, -values[y[o]],
                             problem.occurrences[o].earliest_start, o))
    for o in todo:
        need = problem.occurrences[o].need
        ranked = sorted(by_occurrence[o], key=lambda i: (-values[x[i]],
                                                         cand.options[i].best_walk, i))
        merchants: list[int | None] = [None]
        if need.merchant_service is not None:
            merchants = [*sorted({j for i in ranked for j, _, _ in tasks[i].ways
                                  if j is not None})]
        placed = False
        for start in timelines.start_points(o):
            for merchant in merchants:
                if merchant is not None and not timelines.merchant_free(o, merchant, start):
                    continue
                team: list[int] = []
                for i in ranked:
                    option = cand.options[i]
                    if any(cand.options[k].volunteer == option.volunteer for k in team) or \
                            (merchant is not None and merchant not in option.merchants):
                        continue
                    if timelines.blocker(option, start, merchant) is None:
                        team.append(i)
                        if len(team) == need.volunteers_needed:
                            break
                if len(team) == need.volunteers_needed:
                    timelines.add(o, start, merchant, tuple(team))
                    plan.covered[o] = Cover(start, merchant, tuple(team))
                    placed = True
                    break
            if placed:
                break
    return greedy_plan(cand, occurrences, base=plan)


# How a choice of options is timed (plan, options chosen, cap, deadline -> a valid plan, or
# ``plan`` where it finds nothing better): :func:`_timed` by default, one week's exact model.
ChoiceTimer = Callable[[Plan, set[int], int, Deadline], Plan]


def pattern_plan(cand: Candidates, occurrences: list[int], priority: Priority,
                 result: PatternBound, plan: Plan, cap: int,
                 deadline: Deadline, time_choice: ChoiceTimer | None = None,
                 known: Mapping[Priority, int] | None = None) -> tuple[Plan, int | None]:
    """The pattern master solved as an integer programme (SCIP, ``pattern_plan_nodes`` nodes),
    started from ``plan`` (valid, keeping the levels the master keeps): at most one column per
    volunteer-group, whole occurrences with their headcount, her week's minutes, merchants'
    days. The programme leaves out when a team starts together and that a meal is fetched
    from the one merchant chosen for it, so its choice of options is then timed by the exact
    model
    (:class:`~matcher.model.ComponentModel`, until ``deadline``) on those options and the
    plan's, each level above kept at what ``plan`` covers, up to ``cap``; or by
    ``time_choice`` where given (at street scale, a day at a time). Each level of ``known``
    is kept at least at its value in every solve (values every lexicographic optimum
    reaches, ``plan`` among them).

    It is solved up to ``pattern_plan_rounds`` times: again where its solution takes options
    of a group that are no pattern or breaks what the master leaves out (tightened by
    :meth:`_Pool.cut`), or where the patterns that could beat the plan were too many to list
    and a better plan narrows them.

    Returns the plan found (of ``occurrences``; empty if none) and, where the patterns that
    could beat ``plan`` are all in the pool (listed in full, or added: see
    :func:`_add_patterns_worth`), the level's bound the programme proves. None otherwise."""
    pool = result.pool
    if pool is None:
        return Plan(), None
    for q, least in (known or {}).items():
        mine = [(var, 1.0) for o, var in pool.y.items()
                if cand.problem.occurrences[o].need.priority is q]
        if least > 0 and mine:
            pool.master.row(least, pool.master.inf, mine)
    if time_choice is None:
        def time_choice(plan: Plan, chosen: set[int], cap: int, deadline: Deadline) -> Plan:
            return _timed(cand, occurrences, priority, plan, chosen, cap, deadline)
    params = deadline.clock.params
    inside = set(occurrences)
    plan = Plan({o: cover for o, cover in plan.covered.items() if o in inside})
    value = covered_count(cand, plan, priority)
    found, proven = Plan(), None
    listed = pool.complete
    # On the deterministic clock SCIP's node count stops each solve; the seconds of this
    # whole call (its solves, listings, cuts and timings) are a safety net, the solve's
    # limit per round: where it binds, the result depends on the machine's load. (SCIP's
    # first node, its presolve and root LP, takes what it takes on a large programme: only
    # seconds bound it, and a solve asked for in seconds should not wait minutes on it.)
    net = time.monotonic() + params.pattern_plan_rounds * params.time_limit_s
    # Rounds: a better plan from one narrows the patterns to list for the next where they were
    # too many, and where the programme's solution takes options of a group that are no
    # pattern (tasks its energy rows hold) or breaks what the master leaves out, rows cutting
    # it off tighten the next.
    for left in range(params.pattern_plan_rounds - 1, -1, -1):
        listed = listed or (pool.lagrangian is not None and
                            _add_patterns_worth(pool, value + 1 - pool.lagrangian, params))
        seconds = deadline.left() if params.wall_clock else net - time.monotonic()
        if seconds <= 0:
            break
        values, best = pool.master.integer(_master_hint(pool, plan), params.pattern_plan_nodes,
                                           seconds)
        if listed and best < math.inf:
            # Every schedule covering more than the plan is a solution of the programme (so
            # where it has none, SCIP's bound is minus infinity: the plan is the best).
            top = value if best == -math.inf else \
                min(cap, max(value, math.floor(best + ROUNDING)))
            proven = top if proven is None else min(proven, top)
        if values is None or (proven is not None and proven <= value):
            break
        cut = pool.cut(values, params) if left else 0
        better = sum(values[pool.y[o]] for o in inside
                     if pool.master.given_vars[pool.y[o]][0] > 0) > value + ROUNDING
        improved = False
        if better:
            last = not left or (listed and not cut)  # no later round would differ
            chosen = {i for i, var in pool.x.items() if values[var] > 0.5}
            timed = time_choice(plan, chosen, cap if proven is None else proven,
                                deadline if last else deadline.share(0.5))
            improved = covered_count(cand, timed, priority) > value
            if improved:
                plan = found = timed
                value = covered_count(cand, plan, priority)
            if last or (proven is not None and value >= proven):
                break
        # Again only where the programme would differ: cut (for a tighter bound where every
        # pattern that could beat the plan is in it, or for another choice where this one
        # did not time), or where a better plan narrows the patterns still to list.
        if not (cut and (listed or better)) and not (improved and not listed):
            break
        if deadline.passed():
            break
    return found, proven


def _timed(cand: Candidates, occurrences: list[int], priority: Priority, plan: Plan,
           chosen: set[int], cap: int, deadline: Deadline) -> Plan:
    """The options ``chosen`` (and ``plan``'s) timed by the exact model: ``priority`` covered
    as much as it can up to ``cap``, each level above kept at what ``plan`` covers; ``plan``
    as it is if it finds nothing."""
    options = sorted(chosen | {i for cover in plan.covered.values() for i in cover.options})
    timed = ComponentModel(cand, occurrences, options, deadline.clock.params)
    for q in Priority:
        if q.rank < priority.rank:
            timed.keep_at_least(q, covered_count(cand, plan, q))
    timed.maximize_coverage(priority, cap)
    timed.hint(plan)
    solver, status = deadline.clock.solve(timed.model, deadline)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return plan
    return timed.read(solver)


def _add_patterns_worth(pool: _Pool, least: float, params: SolveParams) -> bool:
    """Add to the pool, for every priced group, the patterns whose reduced cost at the duals of
    the master's last round is at least ``least`` (a negative number: the plan's value plus
    one less the round's Lagrangian bound). Why that is enough: a schedule's value is at most
    the round's LP value plus the reduced costs of its patterns (one per volunteer-group it
    uses), and each of those is at most what the round found its group could add, so a
    schedule covering more than the plan uses only patterns of reduced cost ``least`` or more
    (see the module's docstring). Tasks of no dual value are left out of the listing (the
    patterns would repeat once with each subset of them): their links to the patterns are
    lifted and the group's energy rows hold them instead, a relaxation, since a schedule's
    pattern less those tasks is still worth as much. False (some may be missing) past the
    steps or states allowed.
    """
    work = _Work(params.pattern_max_work)
    found: list[tuple[int, list[int], list[int]]] = []
    for g in pool.priced:
        group = pool.groups[g]
        weight = [max(pool.duals[pool.link[t.option]], 0.0) for t in group.tasks]
        worth = [b for b, w in enumerate(weight) if w > EPS]
        part = _Group(group.cand, group.volunteer, [group.tasks[b] for b in worth], group.cap,
                      work)
        # The same order (tasks sort by start, end and option), so bit k of the part's masks
        # is task worth[k] of the group.
        try:
            masks = part.enumerate(params.pattern_max_states, [weight[b] for b in worth],
                                   pool.duals[pool.convex[g]] + least)
        except _OutOfWorkError:
            return False
        if masks is None:
            return False
        found.append((g, worth, masks))
    for g, worth, masks in found:
        have = [column for _, column in pool.columns[g]]
        for part_mask in masks:
            mask = sum(1 << b for k, b in enumerate(worth) if part_mask >> k & 1)
            if not any(mask & ~column == 0 for column in have):
                pool.add(g, mask)
        idle = sorted(set(range(len(pool.groups[g].tasks))) - set(worth))
        if idle:
            pool.relax(g, idle)
            pool.idle[g] = (idle, pool.duals[pool.convex[g]] + least)
    pool.priced = []
    return True


def _held(groups: list[_Group], plan: Plan, inside: set[int]) -> dict[int, int]:
    """Per group (by index), the mask of its tasks ``plan`` uses, of occurrences ``inside``."""
    where = {t.option: (g, b) for g, group in enumerate(groups)
             for b, t in enumerate(group.tasks)}
    held: dict[int, int] = defaultdict(int)
    for o, cover in plan.covered.items():
        for i in cover.options:
            if o in inside and i in where:
                g, b = where[i]
                held[g] |= 1 << b
    return held


def _master_hint(pool: _Pool, plan: Plan) -> dict[int, int]:
    """The master's variables at ``plan`` (a valid plan: each of its volunteer-groups lies
    inside a column of its group)."""
    hint: dict[int, int] = {}
    for o, cover in plan.covered.items():
        if o in pool.y:
            hint[pool.y[o]] = 1
        if cover.merchant is not None and (o, cover.merchant) in pool.use:
            hint[pool.use[o, cover.merchant]] = 1
        for i in cover.options:
            if i in pool.x:
                hint[pool.x[i]] = 1
    for g, mask in _held(pool.groups, plan, set(pool.y)).items():
        for var, column in pool.columns[g]:
            if mask & ~column == 0:
                hint[var] = 1
                break
    return hint


def tighten_level(cand: Candidates, component: list[int], occurrences: list[int],
                  options: list[int], priority: Priority, reached: Mapping[Priority, int],
                  plan: Plan, bound: int, deadline: Deadline,
                  time_choice: ChoiceTimer | None = None,
                  known: Mapping[Priority, int] | None = None) -> tuple[int, Plan]:
    """The solver's use of the pattern bound, on a level of a component its models left
    unproven: ``bound`` lowered to the pattern bound where that is lower, and ``plan``
    replaced by the plan the LP guides (lower levels of ``component`` filled in greedily)
    where that covers more of ``priority``, no less of any level above, and keeps the pins;
    then, while the level is still open and time is left until ``deadline``, the same for
    the master solved as an integer programme (:func:`pattern_plan`), its choices timed by
    ``time_choice`` where given.

    ``occurrences`` and ``options`` are the level's stage (its levels and those above, and
    pinned occurrences), ``reached`` the proven values of the levels above, so the bound
    holds for the lexicographic optimum. ``known`` may add what every lexicographic optimum
    covers at least of the first level above left unproven (what a plan keeping the proven
    ones reached): the integer programme keeps it too (the LP does not, whose pricing it
    slows; the patterns listed for the programme are those of every schedule of the LP's
    rows, so of these too). On the wall clock the LP may use half the time left
    until ``deadline``; on the deterministic clock, which it does not move, only its limits in
    counts stop it (steps, labels, rounds, the LP's simplex iterations), so every run gets the
    same bound.
    """
    params = deadline.clock.params
    wall = math.inf
    if params.wall_clock:
        wall = time.monotonic() + max(deadline.left(), 0.0) / 2
    result = pattern_bound(cand, occurrences, options, priority, reached, wall,
                           params=params, enough=covered_count(cand, plan, priority), plan=plan)
    bound = min(bound, result.bound)
    if result.hint_plan.covered:  # none where the LP was not solved
        plan = _better(cand, component, priority, plan, result.hint_plan)
    if covered_count(cand, plan, priority) < bound and params.pattern_plan_share > 0 and \
            not deadline.passed():
        guided, proven = pattern_plan(cand, occurrences, priority, result, plan, bound,
                                      deadline, time_choice, known)
        plan = _better(cand, component, priority, plan, guided)
        if proven is not None:
            bound = min(bound, proven)
    return bound, plan


def _better(cand: Candidates, component: list[int], priority: Priority, plan: Plan,
            guided: Plan) -> Plan:
    """``guided`` (lower levels of ``component`` filled in greedily) where it covers more of
    ``priority`` than ``plan``, no less of any level above, and keeps the pins; else ``plan``."""
    guided = greedy_plan(cand, component, base=guided)
    above = [q for q in Priority if q.rank < priority.rank]
    if covered_count(cand, guided, priority) > covered_count(cand, plan, priority) and \
            all(covered_count(cand, guided, q) >= covered_count(cand, plan, q) for q in above) \
            and keeps_pins(cand, guided, component):
        return guided
    return plan
