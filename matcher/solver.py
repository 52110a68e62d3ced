"""``solve(problem) -> Schedule``: the weekly matcher's single entry point.

The problem is split into independent components (:mod:`matcher.partition`), each its own CP-SAT
model; the lexicographic optimum of the week is the union of theirs. Each component is solved in
stages: red coverage, then yellow with red kept at the level reached, then blue, then the quality
objective (walking, continuity, balance). Each coverage stage gets its upper bound from the
day-by-day relaxation (:mod:`matcher.bounds`), which is what proves street-scale levels optimal.
A level too large for one exact model is solved as one week without walks, walks added where
its plans break them (:mod:`matcher.lazy`); the last level, whose bound is out of reach there,
is improved a day at a time instead.
The greedy plan is the first hint and every stage keeps the best plan so far, so the result never
falls below the greedy baseline in the lexicographic order (a lower level may, when a higher one
gained).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from ortools.sat.python import cp_model

from matcher.bounds import RelaxedWeek
from matcher.circles import Candidates, ServiceCircle, build_candidates
from matcher.diagnosis import diagnose
from matcher.domain import (
    Assignment,
    Day,
    HeldPin,
    LevelResult,
    Priority,
    Problem,
    Schedule,
    SolveStatus,
    Unmet,
    UnmetReason,
)
from matcher.greedy import greedy_plan
from matcher.i18n import _
from matcher.lazy import maximize_lazily
from matcher.model import ComponentModel
from matcher.params import Clock, SolveParams
from matcher.partition import PAIR_BUDGET, option_pairs, partition
from matcher.patterns import tighten_level
from matcher.pinning import Commitment, commit
from matcher.settings import Settings
from matcher.timeline import Plan, covered_count, keeps_pins
from matcher.travel import TravelTimes

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SolveProgress:
    """Where a solve is, for a progress display: what it does (``text``, the English line the
    API's jobs store), the level it works on, the week's best coverage of that level so far and
    the bound on it where one is known, and the share of the budget spent (on the solve's own
    clock: deterministic time unless ``wall_clock``, so it moves with the work done)."""

    text: str
    stage: str  # "prepare", a priority ("red", "yellow", "blue"), "quality" or "explain"
    covered: int | None = None
    bound: int | None = None
    occurrences: int | None = None  # of the level, in the week
    spent: float = 0.0  # fraction of the budget, 0..1

    def __str__(self) -> str:
        return self.text


class _Reporter:
    """Tells the caller where the solve is: the text to ``progress``, a :class:`SolveProgress`
    to ``on_progress``. Coverage is the week's: the components solved and the greedy plan of
    those still to come, with the current component's best so far."""

    def __init__(self, progress: Progress | None,
                 on_progress: Callable[[SolveProgress], None] | None, clock: Clock,
                 budget: float, totals: dict[Priority, int]) -> None:
        self.progress, self.on_progress, self.clock = progress, on_progress, clock
        self.start, self.budget, self.totals = clock.now(), budget, totals
        self.stage = "prepare"
        self.loud = True
        self.best: dict[Priority, int] = dict.fromkeys(Priority, 0)  # week, greedy until solved
        # Per level, the components' bounds: trivial (their size) until solved.
        self.bound_rest: dict[Priority, int] = dict(totals)
        self.comp_greedy: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self.comp_count: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self.comp_value: dict[Priority, int] = {}
        self.comp_bound: dict[Priority, int] = {}

    def __call__(self, text: str, loud: bool = True) -> None:
        if self.progress is not None and loud and self.loud:
            self.progress(text)
        if self.on_progress is None:
            return
        covered = bound = total = None
        if self.stage in {p.value for p in Priority}:
            p = Priority(self.stage)
            covered = (self.best[p] - self.comp_greedy[p]
                       + self.comp_value.get(p, self.comp_greedy[p]))
            if p in self.comp_bound:
                bound = self.bound_rest[p] - self.comp_count[p] + self.comp_bound[p]
            total = self.totals[p]
        spent = (self.clock.now() - self.start) / self.budget if self.budget > 0 else 1.0
        self.on_progress(SolveProgress(text, self.stage, covered, bound, total,
                                       min(max(spent, 0.0), 1.0)))

    def component(self, greedy: dict[Priority, int], count: dict[Priority, int],
                  loud: bool) -> None:
        """A component starts: its greedy coverage and size per level."""
        self.comp_greedy, self.comp_count, self.loud = greedy, count, loud
        self.comp_value, self.comp_bound = {}, {}

    def level(self, priority: Priority, value: int, bound: int | None, text: str) -> None:
        """The component's best ``value`` of ``priority`` so far, bounded by ``bound``."""
        self.stage = priority.value
        self.comp_value[priority] = value
        if bound is not None:
            self.comp_bound[priority] = bound
        self(text)

    def done(self, levels: dict[Priority, _Level]) -> None:
        """The component is solved: its levels count for the week from now on."""
        for p, level in levels.items():
            self.best[p] += level.value - self.comp_greedy[p]
            self.bound_rest[p] += level.bound - self.comp_count[p]
        self.comp_greedy = self.comp_count = dict.fromkeys(Priority, 0)
        self.comp_value, self.comp_bound, self.loud = {}, {}, True

    def step(self, stage: str, text: str) -> None:
        self.stage = stage
        self(text)


# A day re-solved in the day-by-day polish keeps few options beyond those the plan and the
# relaxation use: small models solve in seconds, so passes can repeat. Measured on the street
# benchmark (yellow, blue): 40,000 pairs 1,438 and 1,597; 20,000 1,440 and 1,597; 10,000
# 1,440 and 1,608; 5,000 1,442 and 1,602.
DAY_PAIR_BUDGET = 10_000
# Of a coverage stage's time, what the relaxation may use before the exact model starts. Most
# of it: a bound the plan meets ends the exact solve early, and at street scale the red days
# need their walks (matcher.bounds) to bring the bound down to the optimum.
RELAX_SHARE = 0.65
LAST_RELAX_SHARE = 0.4


@dataclass
class _Level:
    value: int = 0
    bound: int = 0
    optimal: bool = True


@dataclass
class _Component:
    occurrences: list[int]
    options: list[int]
    levels: dict[Priority, _Level] = field(default_factory=dict)


def shortlist(cand: Candidates, options: list[int], must: set[int],
              budget: int | None = None) -> list[int]:
    """The options the exact model gets: all of them when they fit the pair budget; otherwise,
    per occurrence, the nearest volunteers beyond its headcount (as many as fit) and ``must``.

    A shortlist only limits what the exact model can find; the bound (:mod:`matcher.bounds`)
    still comes from every option, so a shortlisted level is proven only when it meets it.
    """
    budget = PAIR_BUDGET if budget is None else budget
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


def _options_of(plan: Plan) -> set[int]:
    return {i for _start, _merchant, options in plan.covered.values() for i in options}


def _solve_component(cand: Candidates, comp: _Component, hint: Plan, params: SolveParams,
                     clock: Clock, deadline: float,
                     report: _Reporter) -> tuple[Plan, dict[str, float]]:
    """Lexicographic stages on one component; returns its plan and model statistics.

    Each coverage level is bounded by the day-by-day relaxation first, then solved exactly on
    all options (or a shortlist at street scale) with that bound as a cap, so the exact solve
    stops as soon as it meets the bound. The plan starts as the greedy one and only improves.
    """
    problem = cand.problem
    plan = Plan({o: hint.covered[o] for o in comp.occurrences if o in hint.covered})
    # A component that fits one exact model gets its proof from it (community scale).
    street_scale = option_pairs(cand, comp.options) > PAIR_BUDGET
    relaxed = RelaxedWeek(cand, comp.occurrences, comp.options, clock,
                          street_scale=street_scale)
    stats: dict[str, float] = defaultdict(float)
    # Coverage stages weigh 1, the quality stage 0.2 (it starts from a good plan and any
    # solution is valid): leftovers roll forward. At street scale yellow weighs 4: its proof
    # takes a relaxation and then full rounds of the lazy week (measured: 60-75 s and 75-130 s
    # on the benchmark), and what it does not use rolls on to blue, whose bound is out of
    # reach; quality weighs 0.5, since the lazy week leaves walks only that stage shortens.
    weights = [1.0, 4.0, 1.0, 0.5] if street_scale else [1.0, 1.0, 1.0, 0.2]
    say = report
    for number, priority in enumerate(Priority):
        count = sum(1 for o in comp.occurrences
                    if problem.occurrences[o].need.priority is priority)
        if not count:
            comp.levels[priority] = _Level()
            continue
        reached = _proven_levels(comp.levels)
        began, now = time.monotonic(), clock.now()
        stage_end = now + (deadline - now) * weights[number] / sum(weights[number:])
        report.level(priority, covered_count(cand, plan, priority), None,
                     f"{priority.value}: bound from the relaxation")
        # The last level's bound carries into no later relaxation, so its plan gets more time.
        share = RELAX_SHARE if number < len(Priority) - 1 else LAST_RELAX_SHARE
        relax_end = now + (stage_end - now) * share
        bound = relaxed.level(priority, reached, relax_end, plan)
        report.level(priority, covered_count(cand, plan, priority),
                     max(bound.bound, covered_count(cand, plan, priority)),
                     f"{priority.value}: bound {bound.bound} from the relaxation")
        stats[f"{priority.value}_relax_seconds"] += time.monotonic() - began
        stats[f"{priority.value}_relaxed_bound"] += bound.bound
        stats[f"{priority.value}_relaxed_unproven"] += not bound.proven
        # Pinned occurrences of lower levels are in every stage: their volunteers' time,
        # hours and merchant orders are taken whatever the level.
        occurrences = [o for o in comp.occurrences
                       if problem.occurrences[o].need.priority.rank <= priority.rank
                       or o in cand.pin_plan]
        upto = set(occurrences)
        options = [i for i in comp.options if cand.options[i].occurrence in upto]
        before = Plan({o: v for o, v in plan.covered.items() if o in upto})
        must = _options_of(plan) | _options_of(bound.plan)
        best = bound.bound
        # A model's own bound holds for the lexicographic optimum only when the levels it keeps
        # are that optimum's (proven); the relaxation's bound keeps proven levels alone.
        exact_above = all(level.optimal for level in comp.levels.values())
        if option_pairs(cand, options) <= PAIR_BUDGET:
            # The whole level fits one exact model, which can prove its own bound.
            say(f"{priority.value}: exact model, {len(options)} options")
            stage_plan, proven = _solve_level(cand, occurrences, options, priority, plan,
                                              comp.levels, bound.bound, params, clock,
                                              stage_end)
            best = min(best, proven) if exact_above else best
        elif number < len(Priority) - 1:
            # Too large for one exact model: the week without walks, walks added where its
            # plans break them (matcher.lazy). Its rounds' bound counts too.
            say(f"{priority.value}: the week, walks added where plans need them")
            stage_plan, week_bound = _lazy_week(cand, occurrences, options, priority, before,
                                                comp.levels, relaxed, reached, bound.bound,
                                                params, clock, stage_end, say)
            best = min(best, week_bound) if exact_above else best
        else:
            # The last level's bound is out of reach at street scale (a gap of 4-6%), so its
            # time goes to the plan: the week improved a day at a time finds more (street
            # benchmark blue: 1,602-1,608 against the lazy week's 1,590-1,602), and shorter walks.
            say(f"{priority.value}: exact, day by day")
            stage_plan = _polish_days(cand, occurrences, options, before, must, priority,
                                      params, clock, stage_end)
        if covered_count(cand, stage_plan, priority) < covered_count(cand, before, priority) \
                or not keeps_pins(cand, stage_plan, occurrences):
            stage_plan = before  # a time-limited solve never loses what the plan had
        # The stage only planned levels up to its own; refill the lower ones greedily so the
        # next stage starts from (and can always fall back on) a complete valid plan.
        plan = _refill(cand, comp, stage_plan, priority)
        stats[f"{priority.value}_seconds"] += time.monotonic() - began
        value = covered_count(cand, plan, priority)
        # --- pattern bound (matcher.patterns): only where the models above left a gap -----
        if params.pattern_bound and value < best:
            best, plan = tighten_level(cand, comp.occurrences, occurrences, options, priority,
                                       reached, plan, best, clock, deadline)
            stats[f"{priority.value}_pattern_bound"] += best
            value = covered_count(cand, plan, priority)
        # --- end of the pattern bound -------------------------------------------------------
        comp.levels[priority] = _Level(value, max(best, value), value >= best)
        report.level(priority, value, max(best, value),
                     f"{priority.value}: {value} covered, bound {best} (relaxation "
                     f"{bound.bound}{'' if bound.proven else ', not proven'})")
    began = time.monotonic()
    if not street_scale:
        report.step("quality", "quality: walking, continuity, balance")
        model = ComponentModel(cand, comp.occurrences, comp.options, params)
        for q, level in comp.levels.items():
            model.keep_at_least(q, level.value)
        model.model.minimize(model.quality())
        model.hint(plan)
        solver, status = clock.solve(model.model, deadline)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            plan = model.read(solver)
    else:
        report.step("quality", "quality: shorter walks, day by day")
        plan = _shorter_walks(cand, comp.occurrences, comp.options, plan, params, clock,
                              deadline)
    stats["quality_seconds"] += time.monotonic() - began
    return plan, dict(stats)


def _proven_levels(levels: dict[Priority, _Level]) -> dict[Priority, int]:
    """The week values of the levels proven so far, each with every level above it: they
    bound the days of the next levels' relaxations (see matcher.bounds)."""
    reached: dict[Priority, int] = {}
    for priority in Priority:
        level = levels.get(priority)
        if level is None or not level.optimal:
            break
        reached[priority] = level.value
    return reached


def _lazy_week(cand: Candidates, occurrences: list[int], options: list[int], priority: Priority,
               plan: Plan, levels: dict[Priority, _Level], relaxed: RelaxedWeek,
               reached: dict[Priority, int], cap: int, params: SolveParams, clock: Clock,
               deadline: float, say: Progress) -> tuple[Plan, int]:
    """A street-scale level over the whole week: the model without walks (the days' floors
    and bounds posted, see :meth:`RelaxedWeek.restrict`), walks added lazily. Returns the
    best valid plan and the rounds' bound.

    The walks the days' best plans needed go in up front, and each round runs until it is
    optimal: the first proves the week's travel-free optimum (below the sum of the days'
    optima where the weekly hours cap binds), later ones stop at the first plan that meets it.
    Measured on the street benchmark's yellow week: rounds cut short (a fixed share of the
    time each) never proved it; full rounds prove seed 7 in two rounds.
    """
    model = ComponentModel(cand, occurrences, options, params, travel=False)
    floors = {q: level.value for q, level in levels.items()}
    for q, value in floors.items():
        model.keep_at_least(q, value)
    relaxed.restrict(model, priority, reached)
    model.maximize_coverage(priority, cap)
    model.add_walks(relaxed.walked)
    lazy = maximize_lazily(model, plan, deadline, clock, floors,
                           progress=lambda msg: say(f"{priority.value}: {msg}"))
    return lazy.plan, lazy.bound


def _option_walk(cand: Candidates, option: int, merchant: int | None) -> float:
    """Home -> (merchant ->) task minutes of one option, via the occurrence's merchant."""
    opt = cand.options[option]
    return opt.walks[0] if merchant is None else opt.walks[opt.merchants.index(merchant)]


def _walk(cand: Candidates, plan: Plan) -> float:
    return sum(_option_walk(cand, i, merchant)
               for _start, merchant, options in plan.covered.values() for i in options)


def _solve_level(cand: Candidates, occurrences: list[int], options: list[int],
                 priority: Priority, hint: Plan, levels: dict[Priority, _Level], cap: int,
                 params: SolveParams, clock: Clock, deadline: float,
                 minutes_left: dict[int, int] | None = None,
                 shorter_walks: bool = False) -> tuple[Plan, int]:
    """Maximise ``priority``'s coverage exactly over ``options``, higher levels kept; returns
    the plan found (empty if none) and the solver's bound on coverage (``cap`` without one).

    With ``shorter_walks``, among plans covering as many the one with less walking wins (the
    day-by-day path, where no proof is expected and nothing else would prefer near volunteers).
    """
    model = ComponentModel(cand, occurrences, options, params, minutes_left=minutes_left)
    for q, level in levels.items():
        model.keep_at_least(q, level.value)
    # The cap is valid: no schedule beats the relaxation.
    model.maximize_coverage(priority, cap, shorter_walks=shorter_walks)
    model.hint(hint)
    solver, status = clock.solve(model.model, deadline)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Plan(), cap
    return model.read(solver), model.coverage_bound(solver)


def _polish_days(cand: Candidates, occurrences: list[int], options: list[int], plan: Plan,
                 must: set[int], priority: Priority, params: SolveParams, clock: Clock,
                 deadline: float) -> Plan:
    """Improve ``priority`` one day at a time, the rest of the week fixed (LNS over days).

    Days couple only through the weekly hours cap (R6), so a day re-solved with the minutes the
    other days leave each volunteer, and its higher levels kept, stays valid in the week. Each
    day's model is a seventh of the week's, small enough to hold far more of its options.
    Days with the most uncovered occurrences of ``priority`` go first; passes repeat while
    they improve and time remains. ``must`` are options every day's shortlist keeps.
    """
    problem = cand.problem
    by_day = _by_day(cand, occurrences)

    def missing(day: Day) -> int:
        return sum(1 for o in by_day[day] if o not in plan.covered
                   and problem.occurrences[o].need.priority is priority)

    improved = True
    while improved and clock.now() < deadline:
        improved = False
        days = sorted((d for d in by_day if missing(d)), key=missing, reverse=True)
        for n, day in enumerate(days):
            if clock.now() >= deadline:
                break
            today = _day_slice(cand, plan, by_day[day], options, must)
            floors = {q: _Level(covered_count(cand, today.plan, q)) for q in Priority
                      if q.rank <= priority.rank}
            count = sum(1 for o in today.occurrences
                        if problem.occurrences[o].need.priority is priority)
            now = clock.now()
            better, _ = _solve_level(cand, by_day[day], today.options, priority, today.plan,
                                     floors, count, params, clock,
                                     now + (deadline - now) / (len(days) - n),
                                     minutes_left=today.minutes_left, shorter_walks=True)
            gained = covered_count(cand, better, priority) - floors[priority].value
            if gained > 0 or (gained == 0 and better.covered
                              and _walk(cand, better) < _walk(cand, today.plan) - 1e-6):
                plan = today.into(plan, better)
                improved = True
    return plan


def _by_day(cand: Candidates, occurrences: list[int]) -> dict[Day, list[int]]:
    by_day: dict[Day, list[int]] = defaultdict(list)
    for o in occurrences:
        by_day[cand.problem.occurrences[o].day].append(o)
    return by_day


@dataclass
class _DaySlice:
    """One day cut out of the week to be re-solved, the other days fixed."""

    occurrences: set[int]
    plan: Plan  # the day's part of the week's plan
    minutes_left: dict[int, int]  # R6: what the other days leave each volunteer
    options: list[int]  # the day's options, shortlisted to DAY_PAIR_BUDGET

    def into(self, week: Plan, day: Plan) -> Plan:
        """``week`` with this day's part replaced by ``day``."""
        return Plan({o: v for o, v in week.covered.items() if o not in self.occurrences}
                    | day.covered)


def _day_slice(cand: Candidates, plan: Plan, occurrences: list[int], options: list[int],
               must: set[int] | None = None) -> _DaySlice:
    """The day of ``occurrences`` in ``plan``; its shortlist keeps the options the day's plan
    uses and ``must``."""
    problem = cand.problem
    today = set(occurrences)
    used = [0] * len(problem.volunteers)
    for o, (_start, _merchant, chosen) in plan.covered.items():
        if o not in today:
            for i in chosen:
                used[cand.options[i].volunteer] += problem.occurrences[o].need.duration_min
    left = {v: cand.minutes_cap(v) - used[v]
            for v in range(len(problem.volunteers)) if used[v]}
    day_plan = Plan({o: v for o, v in plan.covered.items() if o in today})
    day_options = [i for i in options if cand.options[i].occurrence in today]
    kept = shortlist(cand, day_options, _options_of(day_plan) | (must or set()),
                     DAY_PAIR_BUDGET)
    return _DaySlice(today, day_plan, left, kept)


def _shorter_walks(cand: Candidates, occurrences: list[int], options: list[int], plan: Plan,
                   params: SolveParams, clock: Clock, deadline: float) -> Plan:
    """The quality stage for a week too large for one model: each day in turn, the other days
    fixed, walking minimised with the day's coverage of every level kept. (Continuity and load
    balance are weekly and stay as the coverage stages left them.)"""
    by_day = _by_day(cand, occurrences)
    days = sorted(by_day, key=lambda d: -len(by_day[d]))
    for n, day in enumerate(days):
        if clock.now() >= deadline:
            break
        today = _day_slice(cand, plan, by_day[day], options)
        model = ComponentModel(cand, by_day[day], today.options, params,
                               minutes_left=today.minutes_left)
        for q in Priority:
            model.keep_at_least(q, covered_count(cand, today.plan, q))
        model.model.minimize(model.walking())
        model.hint(today.plan)
        now = clock.now()
        solver, status = clock.solve(model.model, now + (deadline - now) / (len(days) - n))
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            plan = today.into(plan, model.read(solver))
    return plan


def _refill(cand: Candidates, comp: _Component, stage: Plan, priority: Priority) -> Plan:
    """The stage's plan for levels up to ``priority``, lower levels filled in greedily."""
    kept = Plan({o: v for o, v in stage.covered.items()
                 if cand.problem.occurrences[o].need.priority.rank <= priority.rank
                 or o in cand.pin_plan})
    return greedy_plan(cand, comp.occurrences, base=kept)


def _assignments(cand: Candidates, plan: Plan) -> list[Assignment]:
    problem = cand.problem
    out: list[Assignment] = []
    for o, (start, merchant, options) in sorted(plan.covered.items()):
        occ = problem.occurrences[o]
        for i in options:
            opt = cand.options[i]
            walk = _option_walk(cand, i, merchant)
            out.append(Assignment(
                need_id=occ.need.id, day=occ.day, date=occ.date, start=start,
                end=start + occ.need.duration_min,
                volunteer_id=problem.volunteers[opt.volunteer].id,
                merchant_id=problem.merchants[merchant].id if merchant is not None else None,
                walk_min=round(walk, 2),
            ))
    out.sort(key=lambda a: (a.date, a.start, a.need_id, a.volunteer_id))
    return out


def solve(problem: Problem, params: SolveParams | None = None, *,
          travel: TravelTimes | None = None, settings: Settings | None = None,
          progress: Progress | None = None,
          on_progress: Callable[[SolveProgress], None] | None = None,
          pinned: Sequence[Assignment] = (),
          forbidden: Collection[tuple[str, str, Day]] = (),
          not_before: dt.datetime | None = None,
          offered: Sequence[Assignment] = ()) -> Schedule:
    """Solve a community's week.

    Parameters
    ----------
    problem
        Volunteers, needs and merchants for one ISO week.
    params
        Limit (deterministic unless ``wall_clock``), workers, objective weights, seed.
    travel
        Walking minutes between places; built from geodesic x detour when omitted.
    settings
        Walking speed, detour factor and circle radius (for ``travel`` and the circle).
    progress
        Called with a short English message as each step starts (the API's jobs store it).
    on_progress
        Called with a :class:`SolveProgress` as each step starts and as a level improves: the
        level, the best coverage so far, its bound, the share of the budget spent (the CLI's
        progress bar).
    pinned
        Assignments already agreed (a re-solve of a week under way): each is in the result as
        it is, and counts for every rule of the others (:mod:`matcher.pinning`). One that no
        longer fits the rules is kept too, and reported in ``Schedule.held``.
    forbidden
        ``(volunteer_id, need_id, day)`` never to assign (declines).
    not_before
        A naive local time: nothing new is offered earlier (earlier days' occurrences are
        closed, today's keep the starts still ahead). None: the whole week is open.
    offered
        Assignments offered and not yet answered: the quality stage keeps them as they are
        where that costs less than ``SolveParams.keep_weight`` each (coverage comes first).

    Returns
    -------
    Schedule
        Assignments, unmet occurrences with reasons, per-priority coverage with bounds.
    """
    params = params or SolveParams()
    settings = settings or Settings()
    began = time.monotonic()
    clock = Clock(params)
    deadline = clock.now() + params.budget
    say = _Reporter(progress, on_progress, clock, params.budget,
                    {p: sum(1 for o in problem.occurrences if o.need.priority is p)
                     for p in Priority})
    if travel is None:
        say("walking times (geodesic)")
        travel = TravelTimes.build(problem, settings)
    say("service circles and options")
    cand = build_candidates(problem, travel, ServiceCircle(settings.circle_min))
    commitment = None
    if pinned or forbidden or not_before is not None or offered:
        say("work under way pinned")
        commitment = commit(cand, pinned, forbidden, not_before, offered)
        cand = commitment.cand
    say("greedy baseline")
    greedy = greedy_plan(cand, base=Plan(dict(cand.pin_plan)))
    comps = [_Component(part.occurrences, part.options) for part in partition(cand)]
    total_options = sum(len(c.options) for c in comps) or 1
    plan = Plan()
    stats: dict[str, float | int | str] = {
        "options": len(cand.options), "components": len(comps),
    }
    for p in Priority:
        stats[f"greedy_{p.value}"] = say.best[p] = covered_count(cand, greedy, p)
        # An occurrence in no component has no option: it counts in no bound.
        say.bound_rest[p] = sum(1 for c in comps for o in c.occurrences
                                if problem.occurrences[o].need.priority is p)
    done_options = 0
    for n, comp in enumerate(comps, start=1):
        if len(comps) > 1:
            say(f"solving component {n}/{len(comps)} ({len(comp.occurrences)} occurrences)")
        else:
            say(f"solving {len(comp.occurrences)} occurrences with CP-SAT")
        # Each component gets time in proportion to its size, leftovers roll forward.
        share = len(comp.options) / max(total_options - done_options, 1)
        now = clock.now()
        comp_deadline = now + max(deadline - now, 0.0) * share
        # Stage by stage progress text only where stages take noticeable time.
        inside = set(comp.occurrences)
        say.component({p: sum(1 for o in greedy.covered if o in inside
                              and problem.occurrences[o].need.priority is p) for p in Priority},
                      {p: sum(1 for o in comp.occurrences
                              if problem.occurrences[o].need.priority is p) for p in Priority},
                      loud=len(comp.options) >= 1000)
        part, model_stats = _solve_component(cand, comp, greedy, params, clock, comp_deadline,
                                             say)
        if not keeps_pins(cand, part, comp.occurrences):
            # Never expected (every model forces the pins); the greedy plan always keeps them.
            part = Plan({o: v for o, v in greedy.covered.items() if o in set(comp.occurrences)})
        plan.covered.update(part.covered)
        say.done({p: _Level(covered_count(cand, part, p), comp.levels[p].bound)
                  for p in comp.levels})
        for key, value in model_stats.items():
            stats[key] = round(float(stats.get(key, 0)) + value, 3)
        done_options += len(comp.options)
    levels: dict[Priority, LevelResult] = {}
    for p in Priority:
        occs = [o for o, occ in enumerate(problem.occurrences) if occ.need.priority is p]
        covered = sum(1 for o in occs if o in plan.covered)
        bound = sum(c.levels[p].bound for c in comps if p in c.levels)
        optimal = all(c.levels[p].optimal for c in comps if p in c.levels)
        levels[p] = LevelResult(covered, len(occs), max(bound, covered), optimal)
    all_optimal = all(lv.optimal for lv in levels.values())
    say.step("explain", "explaining unmet occurrences")
    unmet = diagnose(cand, plan, all_optimal)
    assignments = _assignments(cand, plan)
    held: list[HeldPin] = []
    if commitment is not None:
        unmet = _unmet_under_way(commitment, unmet)
        held = commitment.held
        assignments = sorted([*assignments, *(h.assignment for h in held)],
                             key=lambda a: (a.date, a.start, a.need_id, a.volunteer_id))
        stats["pinned"] = len(pinned)
        stats["pinned_held"] = len(held)
    status = (SolveStatus.EMPTY if not problem.occurrences
              else SolveStatus.OPTIMAL if all_optimal else SolveStatus.FEASIBLE)
    stats["travel"] = travel.method
    return Schedule(
        week=problem.week, assignments=assignments, unmet=unmet, levels=levels, status=status,
        total_walk_min=sum(a.walk_min for a in assignments),
        solve_seconds=time.monotonic() - began, stats=stats, held=held,
        limit=params.limit_kind, deterministic_time=clock.work,
        deterministic_limit=None if params.wall_clock else params.budget,
    )


def _unmet_under_way(commitment: Commitment, unmet: list[Unmet]) -> list[Unmet]:
    """The diagnosis, where an occurrence is closed or held, saying so instead."""
    problem = commitment.cand.problem
    index = {(o.need.id, o.day): k for k, o in enumerate(problem.occurrences)}
    why = {(h.assignment.need_id, h.assignment.day): h.detail for h in commitment.held}
    out = []
    for u in unmet:
        o = index[u.need_id, u.day]
        if o in commitment.held_occurrences:
            out.append(replace(u, reason=UnmetReason.HELD, candidates=(),
                               detail=_("kept as agreed although it breaks a rule: "
                                        "{why}").format(why=why.get((u.need_id, u.day))
                                                        or _("see its tasks")),
                               fix=_("check its tasks with the volunteers")))
        elif o in commitment.closed:
            out.append(replace(u, reason=UnmetReason.PASSED, candidates=(),
                               detail=_("its time has passed: no one new is offered it"),
                               fix=""))
        else:
            out.append(u)
    return out
