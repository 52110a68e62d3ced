"""Lazy walks: travel-free models with walks added where plans break them."""

from __future__ import annotations

from itertools import combinations

from hypothesis import HealthCheck, given, settings
from ortools.sat.python import cp_model

from matcher.circles import Candidates, ServiceCircle, build_candidates
from matcher.domain import Priority, Problem
from matcher.lazy import maximize_lazily, repair, tasks_by_volunteer_day
from matcher.model import ComponentModel
from matcher.params import Clock
from matcher.settings import Settings
from matcher.solver import _assignments
from matcher.timeline import Cover, Plan, covered_count, retime
from matcher.travel import TravelTimes
from tests.brute_force import lexicographic_optimum
from tests.conftest import WEEK, need, visits_a_walk_apart, volunteer
from tests.matcher.test_solver import FAST, WALK, communities
from tests.validator import validate


def _week(problem: Problem, travel: bool) -> tuple[Candidates, ComponentModel]:
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    occurrences = [o for o in range(len(problem.occurrences)) if cand.coverable(o)]
    options = [i for i, opt in enumerate(cand.options) if cand.coverable(opt.occurrence)]
    return cand, ComponentModel(cand, occurrences, options, FAST, travel=travel)


def _reds(problem: Problem) -> int:
    return sum(1 for occ in problem.occurrences if occ.need.priority is Priority.RED)


def test_repair_drops_the_lower_priority_task_not_the_later_one() -> None:
    # Without walks both fit back to back; with the 18-minute walk they do not. Retiming alone
    # would drop the red visit, which starts later; the repair drops the blue one instead.
    problem = Problem(WEEK, [volunteer("V1", 0, 500, windows="mon 09:00-11:00")], [
        need("B", 0, 0, window="09:00-09:30", duration=30, priority=Priority.BLUE),
        need("A", 0, 1000, window="09:30-10:05", duration=30, priority=Priority.RED),
    ])
    cand, model = _week(problem, travel=False)
    model.model.maximize(sum(model.covered.values()))
    solver = FAST.cp_solver(10)
    assert solver.solve(model.model) == cp_model.OPTIMAL
    plan = model.read(solver)
    assert len(plan.covered) == 2 and retime(cand, plan)[1]
    repaired = repair(cand, plan)
    assert [problem.occurrences[o].need.id for o in repaired.covered] == ["A"]
    assert validate(problem, _assignments(cand, repaired), WALK) == []


def test_walks_added_for_every_pair_make_the_model_exact() -> None:
    problem = visits_a_walk_apart()
    _, model = _week(problem, travel=False)
    pairs = list(combinations(model.options, 2))
    assert model.add_walks(pairs) == 1  # one pair of distinct occurrences
    assert model.add_walks(pairs) == 0  # and only once
    model.maximize_coverage(Priority.RED, 2)
    solver = FAST.cp_solver(10)
    assert solver.solve(model.model) == cp_model.OPTIMAL
    assert round(solver.objective_value) == 1


def test_the_walks_a_plan_breaks_are_added_until_the_optimum_needs_none() -> None:
    # Travel-free, both red visits fit; the first round's plan breaks the walk, the second
    # round has it and proves the optimum, 1.
    problem = visits_a_walk_apart()
    cand, model = _week(problem, travel=False)
    model.maximize_coverage(Priority.RED, 2)
    result = maximize_lazily(model, None, Clock(FAST).after(10))
    assert (result.bound, result.proven, result.rounds, result.walked) == (1, True, 2, 1)
    assert covered_count(cand, result.plan, Priority.RED) == 1
    assert validate(problem, _assignments(cand, result.plan), WALK) == []
    assert model.cap == 1  # each round's bound became the next round's cap


def test_a_lowered_cap_bounds_the_next_solve_and_never_rises() -> None:
    problem = Problem(WEEK, [volunteer("V1", 0, 500, windows="mon 09:00-12:00")], [
        need(name, 0, 0, window=window, duration=30, priority=Priority.RED)
        for name, window in [("A", "09:00-09:30"), ("B", "10:00-10:30"), ("C", "11:00-11:30")]
    ])
    _, model = _week(problem, travel=False)
    model.maximize_coverage(Priority.RED, 3)
    model.lower_cap(2)
    model.lower_cap(3)  # a looser bound changes nothing
    solver = FAST.cp_solver(10)
    assert solver.solve(model.model) == cp_model.OPTIMAL
    assert (model.cap, round(solver.objective_value), model.coverage_bound(solver)) == (2, 2, 2)


def test_walks_with_an_option_outside_the_model_are_skipped() -> None:
    problem = visits_a_walk_apart()
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    model = ComponentModel(cand, [0], [0], FAST, travel=False)
    assert model.add_walks([(0, 1)]) == 0 and model.walked == set()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities())
def test_repaired_plans_are_valid(problem: Problem) -> None:
    cand, model = _week(problem, travel=False)
    model.model.maximize(sum(model.covered.values()))
    solver = FAST.cp_solver(10)
    assert solver.solve(model.model) == cp_model.OPTIMAL
    plan = model.read(solver)
    repaired = repair(cand, plan)
    assert repaired.covered.keys() <= plan.covered.keys()
    assert validate(problem, _assignments(cand, repaired), WALK) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities(max_volunteers=3, max_needs=4, tiny=True))
def test_lazy_red_optimum_equals_brute_force(problem: Problem) -> None:
    cand, model = _week(problem, travel=False)
    if model.coverage(Priority.RED) is None:
        return  # no red occurrence anyone can serve
    model.maximize_coverage(Priority.RED, _reds(problem))
    result = maximize_lazily(model, None, Clock(FAST).after(20))
    optimum = lexicographic_optimum(problem, WALK)[0]
    assert result.proven
    assert covered_count(cand, result.plan, Priority.RED) == result.bound == optimum
    assert validate(problem, _assignments(cand, result.plan), WALK) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities())
def test_lazy_plans_are_valid_and_keep_the_hint(problem: Problem) -> None:
    # Started from a valid plan (the exact model's), the result is valid and never worse.
    cand, exact = _week(problem, travel=True)
    if exact.coverage(Priority.RED) is None:
        return
    exact.maximize_coverage(Priority.RED, _reds(problem))
    solver = FAST.cp_solver(10)
    assert solver.solve(exact.model) == cp_model.OPTIMAL
    hint = exact.read(solver)
    _, model = _week(problem, travel=False)
    model.maximize_coverage(Priority.RED, _reds(problem))
    result = maximize_lazily(model, hint, Clock(FAST).after(20))
    assert covered_count(cand, result.plan, Priority.RED) >= covered_count(cand, hint, Priority.RED)
    assert result.bound >= round(solver.objective_value)
    assert validate(problem, _assignments(cand, result.plan), WALK) == []
    # The hint's own pairs were walked up front.
    walked = {(min(a, b), max(a, b)) for group in tasks_by_volunteer_day(cand, hint).values()
              for a, b in combinations(group, 2)
              if cand.options[a].occurrence != cand.options[b].occurrence}
    assert walked <= model.walked


def test_an_empty_plan_repairs_to_itself() -> None:
    cand, _ = _week(Problem(WEEK, [volunteer("V1")], [need("A")]), travel=False)
    assert repair(cand, Plan()).covered == {}


def test_the_goal_is_proven_by_a_plan_that_keeps_the_floors_not_only_the_best_one() -> None:
    # One hour on Monday: the yellow visit or the blue one. The hint covers yellow, whose
    # floor is 0; the first round covers blue, which meets the bound (1) and keeps the floor.
    # The hint stays the plan (more yellow), but the bound is proven and the rounds stop.
    problem = Problem(WEEK, [volunteer("V1", windows="mon 09:00-10:00", hours=1)], [
        need("Y", window="09:00-10:00", duration=60, priority=Priority.YELLOW),
        need("B", window="09:00-10:00", duration=60),
    ])
    cand, model = _week(problem, travel=False)
    model.maximize_coverage(Priority.BLUE, 1)
    (yellow,) = (o for o, occ in enumerate(problem.occurrences) if occ.need.id == "Y")
    hint = Plan({yellow: Cover(540, None, tuple(cand.by_occurrence[yellow]))})
    result = maximize_lazily(model, hint, Clock(FAST).after(10), {Priority.YELLOW: 0})
    assert (result.bound, result.proven, result.rounds) == (1, True, 1)
    assert result.plan is hint
    assert validate(problem, _assignments(cand, result.plan), WALK) == []
