"""Timeline tests: retiming a travel-free plan into a valid one."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from ortools.sat.python import cp_model

from matcher.circles import Candidates, ServiceCircle, build_candidates
from matcher.domain import Day, Problem
from matcher.model import ComponentModel
from matcher.settings import Settings
from matcher.solver import _assignments
from matcher.timeline import Plan, retime
from matcher.travel import TravelTimes
from tests.conftest import WEEK, need, volunteer
from tests.matcher.test_solver import FAST, WALK, communities
from tests.validator import validate


def _travel_free_plan(problem: Problem) -> tuple[Candidates, Plan]:
    """The travel-free relaxation's best plan (R5 without walks) over the whole week."""
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    occurrences = [o for o in range(len(problem.occurrences)) if cand.coverable(o)]
    options = [i for i, opt in enumerate(cand.options) if cand.coverable(opt.occurrence)]
    model = ComponentModel(cand, occurrences, options, FAST, travel=False)
    model.model.maximize(sum(model.covered.values()))
    solver = FAST.cp_solver(10)
    assert solver.solve(model.model) == cp_model.OPTIMAL
    return cand, model.read(solver)


def test_back_to_back_tasks_move_apart_by_the_walk() -> None:
    # 1000 m apart = 17.3 min: B, wide window, moves to 09:48; C cannot (window ends 09:35).
    problem = Problem(WEEK, [volunteer("V1", 0, 500, windows="mon 09:00-11:00")], [
        need("A", 0, 0, window="09:00-09:30", duration=30),
        need("B", 0, 1000, window="09:30-11:00", duration=30),
    ])
    cand, plan = _travel_free_plan(problem)
    b = next(o for o, occ in enumerate(problem.occurrences) if occ.need.id == "B")
    plan.covered[b] = plan.covered[b]._replace(start=9 * 60 + 30)  # as a relaxation may
    retimed, short = retime(cand, plan)
    assert short == set()
    assert retimed.covered[b].start == 9 * 60 + 48
    assert validate(problem, _assignments(cand, retimed), WALK) == []


def test_a_task_the_walk_pushes_out_of_its_window_is_dropped() -> None:
    problem = Problem(WEEK, [volunteer("V1", 0, 500, windows="mon 09:00-11:00")], [
        need("A", 0, 0, window="09:00-09:30", duration=30),
        need("C", 0, 1000, window="09:30-10:05", duration=30),
    ])
    cand, plan = _travel_free_plan(problem)
    assert len(plan.covered) == 2  # without walks both fit
    retimed, short = retime(cand, plan)
    assert len(retimed.covered) == 1
    assert short == {(0, Day.MON)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities())
def test_retimed_plans_are_valid(problem: Problem) -> None:
    cand, plan = _travel_free_plan(problem)
    retimed, short = retime(cand, plan)
    assert validate(problem, _assignments(cand, retimed), WALK) == []
    assert set(retimed.covered) <= set(plan.covered)
    assert bool(short) == (len(retimed.covered) < len(plan.covered))
