"""Model tests: what the CP-SAT model of a component promises beyond the solver's results."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from ortools.sat.python import cp_model

from matcher.circles import ServiceCircle, build_candidates
from matcher.domain import Priority, Problem
from matcher.greedy import greedy_plan
from matcher.model import ComponentModel
from matcher.settings import Settings
from matcher.travel import TravelTimes
from tests.conftest import WEEK, merchant, need, volunteer
from tests.matcher.test_solver import FAST, communities


def _hint_is_complete_and_feasible(problem: Problem) -> ComponentModel:
    """A complete, feasible hint is what lets CP-SAT start from the plan at once: order
    literals, merchant detours, continuity, load and the capped coverage goal included."""
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    occurrences = [o for o in range(len(problem.occurrences)) if cand.coverable(o)]
    options = [i for i, opt in enumerate(cand.options) if opt.occurrence in set(occurrences)]
    model = ComponentModel(cand, occurrences, options, FAST)
    model.quality()
    priority = problem.occurrences[occurrences[0]].need.priority if occurrences else None
    if priority is not None:
        count = sum(1 for o in occurrences if problem.occurrences[o].need.priority is priority)
        model.maximize_coverage(priority, count)
    model.hint(greedy_plan(cand))
    proto = model.model.proto
    assert sorted(proto.solution_hint.vars) == list(range(len(proto.variables)))
    for var, value in zip(proto.solution_hint.vars, proto.solution_hint.values, strict=True):
        model.model.add(model.model.get_int_var_from_proto_index(var) == value)
    assert FAST.cp_solver(10).solve(model.model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    return model


def test_a_plan_hints_every_variable_feasibly() -> None:
    # Either visit may go first (an order literal), one need has two canteens (a detour
    # variable), the meal comes on two days (continuity), the load passes an hour (balance).
    problem = Problem(WEEK, [volunteer("V1", windows="mon 09:00-13:00;tue 09:00-13:00")], [
        need("A", 0, 0, window="10:00-12:00", duration=40, priority=Priority.RED),
        need("B", 300, 0, window="10:00-12:00", duration=40),
        need("M", 0, 300, days="mon;tue", window="11:00-12:30", duration=20,
             merchant="meal"),
    ], [merchant("C1", 100, 100), merchant("C2", -200, 200)])
    model = _hint_is_complete_and_feasible(problem)
    assert model.orders and model.vias and model.serves and model.excess


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities())
def test_random_plans_hint_every_variable_feasibly(problem: Problem) -> None:
    _hint_is_complete_and_feasible(problem)


def test_lowering_the_cap_narrows_the_goal_in_the_model_itself() -> None:
    # The lazy rounds lower the goal's cap between solves of one model (a public OR-Tools
    # call, IntVar.with_domain); if that ever stopped changing the model in place, the next
    # round would search past a proven bound instead of stopping at the first plan meeting it.
    problem = Problem(WEEK, [volunteer("V1", windows="mon 08:00-12:00", hours=4)],
                      [need(f"N{k}", 100 * k, 0, window="08:00-12:00", duration=30)
                       for k in range(4)])
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    occurrences = list(range(len(problem.occurrences)))
    model = ComponentModel(cand, occurrences, list(range(len(cand.options))), FAST)
    model.maximize_coverage(Priority.BLUE, 4)
    solver = FAST.cp_solver(10)
    assert solver.solve(model.model) == cp_model.OPTIMAL and solver.objective_value == 4
    model.lower_cap(2)
    assert model.cap == 2
    goal = model.goal[0] if model.goal else None
    assert goal is not None and list(model.model.proto.variables[goal.index].domain) == [0, 2]
    solver = FAST.cp_solver(10)
    assert solver.solve(model.model) == cp_model.OPTIMAL and solver.objective_value == 2
    model.lower_cap(3)  # never raised
    assert model.cap == 2 and list(model.model.proto.variables[goal.index].domain) == [0, 2]
