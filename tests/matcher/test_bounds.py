"""Relaxation tests: the day-by-day bound never cuts off the optimum, keeps the walks that
decide a day, and keeps the floors a proven level leaves each day."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from ortools.sat.python import cp_model

from matcher.bounds import RelaxedWeek
from matcher.circles import Candidates, ServiceCircle, build_candidates
from matcher.domain import Priority, Problem
from matcher.model import ComponentModel
from matcher.params import Clock
from matcher.partition import Part, partition
from matcher.settings import Settings
from matcher.travel import TravelTimes
from tests.brute_force import lexicographic_optimum
from tests.conftest import WEEK, need, visits_a_walk_apart, volunteer
from tests.matcher.test_solver import FAST, WALK, check, communities


def relaxed_week(problem: Problem) -> tuple[Candidates, Part, RelaxedWeek]:
    """The options of a problem that is one component, the component and its relaxation."""
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    (comp,) = partition(cand)
    return cand, comp, RelaxedWeek(cand, comp.occurrences, comp.options, Clock(FAST))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities(max_volunteers=3, max_needs=4, tiny=True))
def test_relaxation_bounds_the_brute_force_optimum(problem: Problem) -> None:
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    total = 0
    for comp in partition(cand):
        clock = Clock(FAST)
        bound = RelaxedWeek(cand, comp.occurrences, comp.options, clock).level(
            Priority.RED, {}, clock.after(10))
        reds = [o for o in comp.occurrences
                if problem.occurrences[o].need.priority is Priority.RED]
        assert bound.proven and bound.bound <= len(reds)
        total += bound.bound
    # Dropping travel and the weekly coupling only ever loosens: never below the optimum.
    assert total >= lexicographic_optimum(problem, WALK)[0]


def test_relaxation_keeps_the_walks_where_they_decide_the_day() -> None:
    # Without walks both red visits fit back to back; with the 18-minute walk C cannot start
    # before 09:48, past its latest start (09:35): the bound is the optimum, 1, not 2.
    problem = visits_a_walk_apart()
    *_, relaxed = relaxed_week(problem)
    bound = relaxed.level(Priority.RED, {}, relaxed.clock.after(10))
    assert (bound.bound, bound.proven) == (1, True)
    assert check(problem).levels[Priority.RED].covered == 1


def test_relaxation_hands_the_walks_its_days_needed_to_the_week() -> None:
    # The day's plan broke the A-C walk, so the day model got it; the week model takes it
    # up front and is exact at once.
    cand, comp, relaxed = relaxed_week(visits_a_walk_apart())
    relaxed.level(Priority.RED, {}, relaxed.clock.after(10))
    assert relaxed.walked == {(0, 1)}
    week = ComponentModel(cand, comp.occurrences, comp.options, FAST, travel=False)
    assert week.add_walks(relaxed.walked) == 1
    week.maximize_coverage(Priority.RED, 2)
    solver = FAST.cp_solver(10)
    assert solver.solve(week.model) == cp_model.OPTIMAL
    assert round(solver.objective_value) == 1


def test_a_proven_level_leaves_each_day_its_bound_less_the_slack() -> None:
    # Yellow: two hour-long visits on Monday (V2, V3 free then), one on Tuesday (V1, V2) and
    # one on Wednesday (V1), and each volunteer's week holds one hour. The days' bounds are 2,
    # 1 and 1; the week's optimum is 3, a slack of 1, so every schedule at that optimum covers
    # at least 2 - 1 = 1 yellow on Monday. Four half-hour blue visits on Monday compete for
    # V2 and V3: with yellow free the Monday day covers all four, with its floor two.
    problem = Problem(WEEK, [
        volunteer("V1", windows="tue 09:00-10:00;wed 09:00-10:00", hours=1),
        volunteer("V2", windows="mon 09:00-10:00;tue 09:00-10:00", hours=1),
        volunteer("V3", windows="mon 09:00-10:00", hours=1),
    ], [
        need("Y1", window="09:00-10:00", duration=60, priority=Priority.YELLOW),
        need("Y2", window="09:00-10:00", duration=60, priority=Priority.YELLOW),
        need("Y3", days="tue", window="09:00-10:00", duration=60, priority=Priority.YELLOW),
        need("Y4", days="wed", window="09:00-10:00", duration=60, priority=Priority.YELLOW),
        *(need(f"B{n}", window="09:00-10:00", duration=30) for n in range(4)),
    ])
    *_, relaxed = relaxed_week(problem)
    assert relaxed.level(Priority.YELLOW, {}, relaxed.clock.after(10)).bound == 4
    monday = next(d for d, part in enumerate(relaxed.days) if len(part.occurrences) == 6)
    assert relaxed.floors({Priority.YELLOW: 3}) == {(monday, Priority.YELLOW): 1}
    assert relaxed.level(Priority.BLUE, {}, relaxed.clock.after(10)).bound == 4
    assert relaxed.level(Priority.BLUE, {Priority.YELLOW: 3}, relaxed.clock.after(10)).bound == 2
    schedule = check(problem)
    assert (schedule.levels[Priority.YELLOW].covered, schedule.levels[Priority.BLUE].covered) \
        == (3, 0)
    assert schedule.levels[Priority.BLUE].bound <= 2
