"""A volunteer's remaining week given her tasks in other communities (matcher.busy)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.busy import Busy, margins, remaining_week, within_reach
from matcher.circles import ServiceCircle, build_candidates
from matcher.domain import Assignment, Day, Problem, TimeWindow
from matcher.greedy import greedy_plan
from matcher.settings import Settings
from matcher.solver import _assignments, solve
from matcher.travel import TravelTimes
from tests.conftest import WEEK, need, offset, volunteer
from tests.matcher.test_solver import FAST, WALK, communities
from tests.validator import validate


def test_a_busy_task_cuts_her_window_with_the_walk_around_it() -> None:
    her = volunteer("V1", windows="mon 08:00-12:00;tue 08:00-10:00", hours=4)
    left = remaining_week(her, [Busy(Day.MON, 9 * 60 + 30, 10 * 60)], 15, merchant_legs=False)
    # Two radii before and after: she may come from, or go to, anywhere within her circle.
    assert [(a.day, a.window) for a in left.availability] == [
        (Day.MON, TimeWindow(8 * 60, 9 * 60)), (Day.MON, TimeWindow(10 * 60 + 30, 12 * 60)),
        (Day.TUE, TimeWindow(8 * 60, 10 * 60))]
    assert left.max_minutes_week == 4 * 60 - 30
    assert left.id == her.id and left.location == her.location


def test_a_merchant_leg_widens_the_margin() -> None:
    assert margins(Busy(Day.MON, 600, 630), 15, merchant_legs=False) == (30, 30)
    assert margins(Busy(Day.MON, 600, 630, via_merchant=True), 15) == (45, 45)
    assert margins(Busy(Day.MON, 600, 630), 15, merchant_legs=True) == (30, 45)


def test_the_cap_never_goes_below_zero_and_a_covered_window_disappears() -> None:
    her = volunteer("V1", windows="mon 09:00-10:00", hours=0.5)
    left = remaining_week(her, [Busy(Day.MON, 9 * 60, 10 * 60)], 15)
    assert left.availability == ()
    assert left.max_hours_week == 0


def test_without_busy_tasks_she_is_unchanged() -> None:
    her = volunteer("V1")
    assert remaining_week(her, [], 15) is her


def test_a_busy_task_is_a_time_of_day() -> None:
    with pytest.raises(ValueError, match="task's time"):
        Busy(Day.MON, 600, 600)


def test_the_straight_line_prefilter_keeps_every_home_within_a_circle() -> None:
    places = [offset(0, 0), offset(3000, 0)]
    # 1,100 m by a straight line could be a 15-minute walk; 1,200 m never is.
    assert within_reach([offset(0, 1100), offset(0, 1200), offset(3000, -1000)], places) == [
        True, False, True]
    assert within_reach([offset(0, 0)], []) == [False]
    assert within_reach([], places) == []


def test_the_solver_plans_around_her_task_elsewhere() -> None:
    # B's task holds her Monday 09:30-10:00; A's need fits only then or around it.
    her = volunteer("V1", windows="mon 08:00-12:00", hours=1)
    busy = [Busy(Day.MON, 9 * 60 + 30, 10 * 60)]
    problem = Problem(WEEK, [remaining_week(her, busy, 15, merchant_legs=False)],
                      [need("A1", 0, 300, window="09:00-12:00", duration=30)])
    schedule = solve(problem, FAST)
    [task] = schedule.assignments
    assert task.start >= 10 * 60 + 30
    elsewhere = Assignment("B1", Day.MON, WEEK.date_of(Day.MON), 9 * 60 + 30, 10 * 60, "V1",
                           None, 0)
    whole = Problem(WEEK, [her], [need("A1", 0, 300, window="09:00-12:00", duration=30),
                                  need("B1", 300, 0, window="09:30-10:00", duration=30)])
    assert validate(whole, [elsewhere, task], WALK) == []


def _plan(problem: Problem) -> list[Assignment]:
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    return _assignments(cand, greedy_plan(cand))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities(max_needs=10), st.booleans())
def test_any_plan_of_the_remaining_week_with_her_tasks_elsewhere_is_a_valid_week(
        problem: Problem, exact: bool) -> None:
    # B's plan (every other need) is published first; A plans the rest around it with its own
    # merchants (merchants are not shared here).
    b_needs, a_needs = problem.needs[0::2], problem.needs[1::2]
    b_plan = _plan(Problem(WEEK, problem.volunteers, b_needs, problem.merchants))
    busy: dict[str, list[Busy]] = {}
    for a in b_plan:
        busy.setdefault(a.volunteer_id, []).append(
            Busy(a.day, a.start, a.end, a.merchant_id is not None))
    a_merchants = [replace(m, id=f"A{m.id}") for m in problem.merchants]
    legs = any(n.merchant_service is not None for n in a_needs)
    a_problem = Problem(WEEK, [remaining_week(v, busy.get(v.id, []), 15, legs)
                               for v in problem.volunteers], a_needs, a_merchants)
    a_plan = solve(a_problem, FAST).assignments if exact else _plan(a_problem)
    whole = Problem(WEEK, problem.volunteers, problem.needs,
                    [*problem.merchants, *a_merchants])
    assert validate(whole, [*b_plan, *a_plan], WALK) == []
