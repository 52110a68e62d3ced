"""The stages of one component's solve: each coverage level bounded, then solved; then quality.

A component (:mod:`matcher.partition`) is solved level by level, red, yellow, blue, each level
keeping what the levels above reached (the lexicographic order), then the quality objective
(walking, continuity, balance) with every level kept. A level goes through two steps:

1. :func:`bound_level`: its upper bound from the day-by-day relaxation (:mod:`matcher.bounds`),
   which is what proves street-scale levels optimal. Every further bound belongs here.
2. One of three ways to a plan, by size: :func:`exact_level`, one CP-SAT model of the level
   that can prove its own bound (community scale); :func:`lazy_week`, the week without walks,
   walks added where its plans break them (:mod:`matcher.lazy`; a street-scale level); and
   :func:`polish_days`, the week improved a day at a time (the street-scale last level, whose
   bound is out of reach there).

The plan starts as the greedy one and only improves: a stage that finds less keeps the plan it
started from, and lower levels are refilled greedily after each stage, so every stage starts
from (and can fall back on) a complete valid plan. Time is a :class:`~matcher.params.Deadline`
on the solve's clock, split over stages by :class:`~matcher.params.SolveParams`' weights.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from matcher.bounds import LevelBound, RelaxedWeek
from matcher.circles import Candidates
from matcher.domain import Day, Priority, Problem
from matcher.greedy import greedy_plan
from matcher.lazy import maximize_lazily
from matcher.model import ComponentModel
from matcher.params import Clock, Deadline, SolveParams
from matcher.partition import option_pairs
from matcher.patterns import tighten_level
from matcher.progress import Coverage, Reporter, Sizes
from matcher.timeline import Plan, covered_count, keeps_pins

LAST = list(Priority)[-1]  # the last coverage level: its bound carries into no later stage

# The per-level counts the stages pass on, each named for what it means (see also
# matcher.progress): a model keeps each level at its floor at least; proven values are the
# lexicographic optimum's, top down.
Floors = dict[Priority, int]
Proven = dict[Priority, int]


def sizes(problem: Problem, occurrences: list[int]) -> Sizes:
    """How many of ``occurrences`` each level has."""
    return {p: sum(1 for o in occurrences if problem.occurrences[o].need.priority is p)
            for p in Priority}


@dataclass
class Level:
    """What one level of a component reached and proved."""

    value: int = 0  # occurrences of the level the plan covers
    bound: int = 0  # no schedule that keeps the levels above covers more
    proven: bool = True  # the value reached the bound: it is the lexicographic optimum's


@dataclass
class Component:
    """One independent part of the week (indices into the candidates) and its levels so far."""

    occurrences: list[int]
    options: list[int]
    levels: dict[Priority, Level] = field(default_factory=dict)
    stats: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def floors(self) -> Floors:
        """The levels solved so far, each kept at what it reached."""
        return {q: level.value for q, level in self.levels.items()}

    def proven(self) -> Proven:
        """The values of the levels proven so far, each with every level above it: they bound
        the days of the next levels' relaxations (see matcher.bounds): what is known, less the
        first level left unproven."""
        return {q: value for q, value in self.known().items() if self.levels[q].proven}

    def known(self) -> Floors:
        """What every lexicographic optimum covers at least of the levels solved so far: the
        proven levels their values, and the first level left unproven what it reached (the
        plan that reached it keeps the levels above at their optimum, so the optimum's value
        of that level is no less). Levels below an unproven one are not known: the optimum
        may trade them for it."""
        known: Floors = {}
        for priority in Priority:
            level = self.levels.get(priority)
            if level is None:
                break
            known[priority] = level.value
            if not level.proven:
                break
        return known


@dataclass(frozen=True)
class Context:
    """What every stage of one solve shares."""

    cand: Candidates
    params: SolveParams
    clock: Clock
    report: Reporter


@dataclass(frozen=True)
class Scope:
    """What one level's model holds: the occurrences of that level and the levels above (and
    pinned ones of lower levels, whose volunteers' time, hours and merchant orders are taken
    whatever the level), and their options."""

    priority: Priority
    occurrences: list[int]
    options: list[int]

    @classmethod
    def of(cls, cand: Candidates, comp: Component, priority: Priority) -> Scope:
        problem = cand.problem
        occurrences = [o for o in comp.occurrences
                       if problem.occurrences[o].need.priority.rank <= priority.rank
                       or o in cand.pin_plan]
        upto = set(occurrences)
        options = [i for i in comp.options if cand.options[i].occurrence in upto]
        return cls(priority, occurrences, options)


def solve_component(ctx: Context, comp: Component, hint: Plan, deadline: Deadline) -> Plan:
    """Lexicographic stages on one component: each coverage level (:func:`solve_level`), then
    quality. ``hint`` is a valid plan of the week (the greedy one); the result keeps at least
    its coverage in the lexicographic order."""
    cand = ctx.cand
    plan = Plan({o: hint.covered[o] for o in comp.occurrences if o in hint.covered})
    # A component that fits one exact model gets its proof from it (community scale).
    street_scale = option_pairs(cand, comp.options) > ctx.params.pair_budget
    relaxed = RelaxedWeek(cand, comp.occurrences, comp.options, ctx.clock,
                          street_scale=street_scale)
    weights = ctx.params.street_stage_weights if street_scale else ctx.params.stage_weights
    size = sizes(cand.problem, comp.occurrences)
    for number, priority in enumerate(Priority):
        if not size[priority]:
            comp.levels[priority] = Level()
            continue
        stage_end = deadline.share(weights[number], sum(weights[number:]))
        plan = solve_level(ctx, comp, relaxed, priority, plan, stage_end)
    began = time.monotonic()
    if not street_scale:
        ctx.report.step("quality", "quality: walking, continuity, balance")
        plan = improve_quality(ctx, comp, plan, deadline)
    else:
        ctx.report.step("quality", "quality: shorter walks, day by day")
        plan = shorter_walks(ctx, comp.occurrences, comp.options, plan, deadline)
    comp.stats["quality_seconds"] += time.monotonic() - began
    return plan


def solve_level(ctx: Context, comp: Component, relaxed: RelaxedWeek, priority: Priority,
                plan: Plan, deadline: Deadline) -> Plan:
    """One coverage level of ``comp``: bounded, then solved by the way its size allows; records
    the level in ``comp.levels`` and returns the plan, lower levels refilled greedily."""
    cand, report = ctx.cand, ctx.report
    reached = comp.proven()
    began = time.monotonic()
    bound = bound_level(ctx, comp, relaxed, priority, reached, plan, deadline)
    scope = Scope.of(cand, comp, priority)
    upto = set(scope.occurrences)
    before = Plan({o: v for o, v in plan.covered.items() if o in upto})
    must = options_of(plan) | options_of(bound.plan)
    best = bound.bound
    # A model's own bound holds for the lexicographic optimum where each level it keeps is
    # kept at no more than that optimum covers: the proven levels, and the first left
    # unproven at what it reached (see Component.known), not a level below that one, which
    # the optimum may trade for it. The relaxation's bound keeps proven levels alone.
    exact_above = comp.floors() == comp.known()
    # Part of the time of a level is kept for the pattern master's integer programme, should
    # the level be left unproven (a proof rolls it on to the next level). The lazy week's
    # rounds stop where one proves; where none has by then, the programme (its choices timed
    # a day at a time) does more with the rest.
    keep = ctx.params.pattern_plan_share if ctx.params.pattern_bound else 0.0
    street_scale = option_pairs(cand, scope.options) > ctx.params.pair_budget
    if not street_scale:
        report(f"{priority.value}: exact model, {len(scope.options)} options")
        stage_plan, proven = exact_level(ctx, scope, plan, comp.floors(), bound.bound,
                                         deadline.share(1.0 - keep))
        best = min(best, proven) if exact_above else best
    elif priority is not LAST:
        report(f"{priority.value}: the week, walks added where plans need them")
        stage_plan, week_bound = lazy_week(ctx, scope, before, comp.floors(), relaxed,
                                           reached, bound.bound, deadline.share(1.0 - keep))
        best = min(best, week_bound) if exact_above else best
    else:
        # The last level's bound is out of reach at street scale, so its time goes to the
        # plan: improved a day at a time, which also shortens walks.
        report(f"{priority.value}: exact, day by day")
        stage_plan = polish_days(ctx, scope, before, must, deadline.share(1.0 - keep))
    if covered_count(cand, stage_plan, priority) < covered_count(cand, before, priority) \
            or not keeps_pins(cand, stage_plan, scope.occurrences):
        stage_plan = before  # a time-limited solve never loses what the plan had
    plan = refill(cand, comp, stage_plan, priority)
    comp.stats[f"{priority.value}_seconds"] += time.monotonic() - began
    value = covered_count(cand, plan, priority)
    if ctx.params.pattern_bound and value < best:
        # Left unproven: bound it again from volunteer-day patterns (matcher.patterns).
        report.level(priority, value, max(best, value),
                     f"{priority.value}: volunteer-day patterns, bound and plan")
        best, plan = tighten_level(
            cand, comp.occurrences, scope.occurrences, scope.options, priority, reached,
            plan, best, deadline,
            # At street scale the programme's choice is timed a day at a time: the week's
            # exact model on it does not finish in the time left.
            (lambda week, chosen, _cap, until: time_by_day(ctx, scope, week, chosen, until))
            if street_scale else None, comp.known())
        comp.stats[f"{priority.value}_pattern_bound"] += best
        value = covered_count(cand, plan, priority)
    comp.levels[priority] = Level(value, max(best, value), value >= best)
    report.level(priority, value, max(best, value),
                 f"{priority.value}: {value} covered, bound {best} (relaxation "
                 f"{bound.bound}{'' if bound.proven else ', not proven'})")
    return plan


def bound_level(ctx: Context, comp: Component, relaxed: RelaxedWeek, priority: Priority,
                reached: Proven, plan: Plan, deadline: Deadline) -> LevelBound:
    """The level's upper bound before it is solved, in every schedule that covers ``reached``
    (the proven levels above), from the day-by-day relaxation; ``plan`` (valid, covering
    ``reached``) starts each day. It may use a share of the stage's time up to ``deadline``;
    a bound the plan meets later ends the exact solve early."""
    cand, report = ctx.cand, ctx.report
    began = time.monotonic()
    share = ctx.params.last_relax_share if priority is LAST else ctx.params.relax_share
    relax_end = deadline.share(share)
    report.level(priority, covered_count(cand, plan, priority), None,
                 f"{priority.value}: bound from the relaxation")
    bound = relaxed.level(priority, reached, relax_end, plan)
    report.level(priority, covered_count(cand, plan, priority),
                 max(bound.bound, covered_count(cand, plan, priority)),
                 f"{priority.value}: bound {bound.bound} from the relaxation")
    comp.stats[f"{priority.value}_relax_seconds"] += time.monotonic() - began
    comp.stats[f"{priority.value}_relaxed_bound"] += bound.bound
    comp.stats[f"{priority.value}_relaxed_unproven"] += not bound.proven
    return bound


def exact_level(ctx: Context, scope: Scope, hint: Plan, floors: Floors, cap: int,
                deadline: Deadline, *, minutes_left: dict[int, int] | None = None,
                shorter_walks: bool = False, prefer: set[int] | None = None
                ) -> tuple[Plan, int]:
    """Maximise the scope's level exactly over its options, each level of ``floors`` kept;
    returns the plan found (empty if none) and the solver's bound on coverage (``cap``, a
    valid bound, without one). ``minutes_left`` replaces the weekly hours caps (a day solved
    inside a week).

    With ``shorter_walks``, among plans covering as many the one with less walking wins (the
    day-by-day path, where no proof is expected and nothing else would prefer near volunteers);
    with ``prefer``, the one that keeps closer to those options (see
    :meth:`~matcher.model.ComponentModel.maximize_coverage`).
    """
    model = ComponentModel(ctx.cand, scope.occurrences, scope.options, ctx.params,
                           minutes_left=minutes_left)
    for q, least in floors.items():
        model.keep_at_least(q, least)
    model.maximize_coverage(scope.priority, cap, shorter_walks=shorter_walks, prefer=prefer)
    model.hint(hint)
    solver, status = ctx.clock.solve(model.model, deadline)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Plan(), cap
    return model.read(solver), model.coverage_bound(solver)


def lazy_week(ctx: Context, scope: Scope, plan: Plan, floors: Floors, relaxed: RelaxedWeek,
              reached: Proven, cap: int, deadline: Deadline) -> tuple[Plan, int]:
    """A street-scale level over the whole week: the model without walks (the days' floors
    and bounds posted, see :meth:`RelaxedWeek.restrict`), walks added lazily. Returns the
    best valid plan and the rounds' bound.

    The walks the days' best plans needed go in up front, and each round runs until it is
    optimal: the first proves the week's travel-free optimum (below the sum of the days'
    optima where the weekly hours cap binds), later ones stop at the first plan that meets it.
    (Rounds cut short to a fixed share of the time never proved it.)
    """
    priority = scope.priority
    model = ComponentModel(ctx.cand, scope.occurrences, scope.options, ctx.params,
                           travel=False)
    for q, value in floors.items():
        model.keep_at_least(q, value)
    relaxed.restrict(model, priority, reached)
    model.maximize_coverage(priority, cap)
    model.add_walks(relaxed.walked)
    lazy = maximize_lazily(model, plan, deadline, floors,
                           progress=lambda msg: ctx.report(f"{priority.value}: {msg}"))
    return lazy.plan, lazy.bound


def polish_days(ctx: Context, scope: Scope, plan: Plan, must: set[int],
                deadline: Deadline) -> Plan:
    """Improve the scope's level one day at a time, the rest of the week fixed (LNS over days).

    Days couple only through the weekly hours cap (R6), so a day re-solved with the minutes the
    other days leave each volunteer, and its higher levels kept, stays valid in the week. Each
    day's model is a seventh of the week's, small enough to hold far more of its options.
    Days with the most uncovered occurrences of the level go first; passes repeat while they
    improve and time remains. ``must`` are options every day's shortlist keeps.
    """
    cand, priority = ctx.cand, scope.priority
    problem = cand.problem
    by_day = _by_day(cand, scope.occurrences)

    def missing(day: Day) -> int:
        return sum(1 for o in by_day[day] if o not in plan.covered
                   and problem.occurrences[o].need.priority is priority)

    improved = True
    while improved and not deadline.passed():
        improved = False
        days = sorted((d for d in by_day if missing(d)), key=missing, reverse=True)
        for n, day in enumerate(days):
            if deadline.passed():
                break
            today, floors, better = _solve_day(ctx, scope, plan, by_day[day], scope.options,
                                               must, deadline.share(1, len(days) - n),
                                               shorter_walks=True)
            gained = covered_count(cand, better, priority) - floors[priority]
            if gained > 0 or (gained == 0 and better.covered
                              and _walk(cand, better) < _walk(cand, today.plan) - 1e-6):
                plan = today.into(plan, better)
                improved = True
    return plan


def time_by_day(ctx: Context, scope: Scope, plan: Plan, chosen: set[int],
                deadline: Deadline) -> Plan:
    """The options ``chosen`` for the scope's level (the pattern programme's choice, which
    keeps every volunteer within her week's minutes) timed a day at a time, with ``plan``'s
    own, into a plan that covers no less than ``plan`` at any level of the scope.

    Each day's exact model holds that day's options of both, with the minutes the rest of the
    plan leaves each volunteer (as :func:`polish_days`), its levels above kept at the day's
    plan, and covers as many of the level as it can the way closest to the choice (fewest
    minutes of tasks outside it): a volunteer the choice moves to another day is freed for
    it. Every day once, those with most of the level uncovered first; then again the days
    still short, once and then while a pass gains and time is left.
    """
    cand, priority = ctx.cand, scope.priority
    problem = cand.problem
    options = sorted(chosen | options_of(plan))
    by_day = _by_day(cand, scope.occurrences)

    def missing(day: Day) -> int:
        return sum(1 for o in by_day[day] if o not in plan.covered
                   and problem.occurrences[o].need.priority is priority)

    def count(day: Day) -> int:
        return sum(1 for o in by_day[day] if problem.occurrences[o].need.priority is priority)

    days = sorted((d for d in by_day if count(d)), key=missing, reverse=True)
    first = True
    while days and not deadline.passed():
        gained = False
        for n, day in enumerate(days):
            if deadline.passed():
                break
            # A share of what is left, one more than the days of this pass: a pass that gains
            # leaves time for the next.
            today, floors, timed = _solve_day(ctx, scope, plan, by_day[day], options, chosen,
                                              deadline.share(1, len(days) - n + 1),
                                              prefer=chosen)
            if timed.covered or not today.plan.covered:
                gained = gained or covered_count(cand, timed, priority) > floors[priority]
                plan = today.into(plan, timed)
        # The first pass may only have moved volunteers the choice's way (freeing their
        # minutes for days before it in the pass): the days still short get a second.
        if not (gained or first):
            break
        first = False
        days = sorted((d for d in by_day if missing(d)), key=missing, reverse=True)
    return plan


def _solve_day(ctx: Context, scope: Scope, plan: Plan, occurrences: list[int],
               options: list[int], must: set[int], deadline: Deadline, *,
               shorter_walks: bool = False, prefer: set[int] | None = None
               ) -> tuple[DaySlice, Floors, Plan]:
    """One day of ``plan`` (its ``occurrences``) solved exactly for the scope's level, the rest
    of the week fixed: the day's slice (``options`` shortlisted, ``must`` kept), the floors it
    keeps (each level down to the scope's at what the day covers) and the plan found (empty if
    none). See :func:`exact_level` for ``shorter_walks`` and ``prefer``."""
    problem = ctx.cand.problem
    today = day_slice(ctx, plan, occurrences, options, must)
    floors: Floors = {q: covered_count(ctx.cand, today.plan, q) for q in Priority
                      if q.rank <= scope.priority.rank}
    count = sum(1 for o in today.occurrences
                if problem.occurrences[o].need.priority is scope.priority)
    found, _ = exact_level(ctx, Scope(scope.priority, occurrences, today.options), today.plan,
                           floors, count, deadline, minutes_left=today.minutes_left,
                           shorter_walks=shorter_walks, prefer=prefer)
    return today, floors, found


def improve_quality(ctx: Context, comp: Component, plan: Plan, deadline: Deadline) -> Plan:
    """The quality stage of a component that fits one model: walking, continuity, balance and
    offers kept, every level kept at what it reached."""
    model = ComponentModel(ctx.cand, comp.occurrences, comp.options, ctx.params)
    for q, level in comp.levels.items():
        model.keep_at_least(q, level.value)
    model.model.minimize(model.quality())
    model.hint(plan)
    solver, status = ctx.clock.solve(model.model, deadline)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return model.read(solver)
    return plan


def shorter_walks(ctx: Context, occurrences: list[int], options: list[int], plan: Plan,
                  deadline: Deadline) -> Plan:
    """The quality stage for a week too large for one model: each day in turn, the other days
    fixed, walking minimised with the day's coverage of every level kept. (Continuity and load
    balance are weekly and stay as the coverage stages left them.)"""
    cand = ctx.cand
    by_day = _by_day(cand, occurrences)
    days = sorted(by_day, key=lambda d: -len(by_day[d]))
    for n, day in enumerate(days):
        if deadline.passed():
            break
        today = day_slice(ctx, plan, by_day[day], options)
        model = ComponentModel(cand, by_day[day], today.options, ctx.params,
                               minutes_left=today.minutes_left)
        for q in Priority:
            model.keep_at_least(q, covered_count(cand, today.plan, q))
        model.model.minimize(model.walking())
        model.hint(today.plan)
        solver, status = ctx.clock.solve(model.model, deadline.share(1, len(days) - n))
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            plan = today.into(plan, model.read(solver))
    return plan


@dataclass
class DaySlice:
    """One day cut out of the week to be re-solved, the other days fixed."""

    occurrences: set[int]
    plan: Plan  # the day's part of the week's plan
    minutes_left: dict[int, int]  # R6: what the other days leave each volunteer
    options: list[int]  # the day's options, shortlisted to the day pair budget

    def into(self, week: Plan, day: Plan) -> Plan:
        """``week`` with this day's part replaced by ``day``."""
        return Plan({o: v for o, v in week.covered.items() if o not in self.occurrences}
                    | day.covered)


def day_slice(ctx: Context, plan: Plan, occurrences: list[int], options: list[int],
              must: set[int] | None = None) -> DaySlice:
    """The day of ``occurrences`` in ``plan``; its shortlist keeps the options the day's plan
    uses and ``must``."""
    cand = ctx.cand
    problem = cand.problem
    today = set(occurrences)
    used = [0] * len(problem.volunteers)
    for o, cover in plan.covered.items():
        if o not in today:
            for i in cover.options:
                used[cand.options[i].volunteer] += problem.occurrences[o].need.duration_min
    left = {v: cand.minutes_cap(v) - used[v]
            for v in range(len(problem.volunteers)) if used[v]}
    day_plan = Plan({o: v for o, v in plan.covered.items() if o in today})
    day_options = [i for i in options if cand.options[i].occurrence in today]
    kept = shortlist(cand, day_options, options_of(day_plan) | (must or set()),
                     ctx.params.day_pair_budget)
    return DaySlice(today, day_plan, left, kept)


def shortlist(cand: Candidates, options: list[int], must: set[int], budget: int) -> list[int]:
    """The options an exact model gets: all of them when their pairs fit ``budget``; otherwise,
    per occurrence, the nearest volunteers beyond its headcount (as many as fit) and ``must``.

    A shortlist only limits what the exact model can find; the bound (:mod:`matcher.bounds`)
    still comes from every option, so a shortlisted level is proven only when it meets it.
    """
    if option_pairs(cand, options) <= budget:
        return options
    by_occurrence: dict[int, list[int]] = defaultdict(list)
    for i in options:
        by_occurrence[cand.options[i].occurrence].append(i)
    rank: dict[int, int] = {}  # option -> its volunteer's place among the occurrence's nearest
    for o, group in by_occurrence.items():
        needed = cand.problem.occurrences[o].need.volunteers_needed
        nearest = sorted({cand.options[i].volunteer: cand.options[i].best_walk
                          for i in group}.items(), key=lambda vw: (vw[1], vw[0]))
        place = {v: n for n, (v, _walk) in enumerate(nearest)}
        for i in group:
            rank[i] = place[cand.options[i].volunteer] - needed

    def keep(spare: int) -> list[int]:
        return [i for i in options if rank[i] < spare or i in must or i in cand.pinned]

    lo, hi = 0, max(rank.values()) + 1  # largest spare count that fits, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if option_pairs(cand, keep(mid)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return keep(lo)


def refill(cand: Candidates, comp: Component, stage: Plan, priority: Priority) -> Plan:
    """The stage's plan for levels up to ``priority``, lower levels filled in greedily."""
    kept = Plan({o: v for o, v in stage.covered.items()
                 if cand.problem.occurrences[o].need.priority.rank <= priority.rank
                 or o in cand.pin_plan})
    return greedy_plan(cand, comp.occurrences, base=kept)


def options_of(plan: Plan) -> set[int]:
    return {i for cover in plan.covered.values() for i in cover.options}


def option_walk(cand: Candidates, option: int, merchant: int | None) -> float:
    """Home -> (merchant ->) task minutes of one option, via the occurrence's merchant."""
    opt = cand.options[option]
    return opt.walks[0] if merchant is None else opt.walks[opt.merchants.index(merchant)]


def _walk(cand: Candidates, plan: Plan) -> float:
    return sum(option_walk(cand, i, cover.merchant)
               for cover in plan.covered.values() for i in cover.options)


def _by_day(cand: Candidates, occurrences: list[int]) -> dict[Day, list[int]]:
    by_day: dict[Day, list[int]] = defaultdict(list)
    for o in occurrences:
        by_day[cand.problem.occurrences[o].day].append(o)
    return by_day


def greedy_coverage(cand: Candidates, plan: Plan, occurrences: list[int]) -> Coverage:
    """How many of ``occurrences`` ``plan`` covers, per level."""
    inside = set(occurrences)
    return sizes(cand.problem, [o for o in plan.covered if o in inside])
