"""The validator must catch broken schedules, or the solver tests prove nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from matcher.domain import Priority, Problem
from matcher.solver import solve
from tests.conftest import WEEK, merchant, need, volunteer
from tests.validator import geodesic_walk, validate

WALK = geodesic_walk()


@pytest.fixture
def solved():
    problem = Problem(WEEK, [volunteer("V1", skills=("escort_medical",)), volunteer("V2", 0, 200)],
                      [need("A", 0, 0, priority=Priority.RED, skills=("escort_medical",)),
                       need("B", 100, 0, window="09:00-12:00", duration=45, merchant="meal")],
                      [merchant("M1", 0, 100, hours="08:00-20:00")])
    schedule = solve(problem)
    assert validate(problem, schedule.assignments, WALK) == []
    assert schedule.covered == 2
    return problem, schedule.assignments


@pytest.mark.parametrize(("mutate", "rule"), [
    (lambda a: replace(a, volunteer_id="V2") if a.need_id == "A" else a, "R1"),
    (lambda a: replace(a, start=a.start - 120, end=a.end - 120), "R2"),
    (lambda a: replace(a, end=a.end + 5), "R3"),
    (lambda a: replace(a, merchant_id=None) if a.merchant_id else a, "R8"),
])
def test_mutations_are_caught(solved, mutate, rule) -> None:
    problem, assignments = solved
    errors = validate(problem, [mutate(a) for a in assignments], WALK)
    assert any(rule in e for e in errors), errors


def test_far_volunteer_breaks_circle(solved) -> None:
    problem, assignments = solved
    far = replace(problem.volunteers[1], location=replace(problem.volunteers[1].location,
                                                          lat=problem.volunteers[1].location.lat
                                                          + 0.02))
    moved = Problem(problem.week, [problem.volunteers[0], far], problem.needs, problem.merchants)
    fake = [replace(a, volunteer_id="V2") for a in assignments if a.need_id == "B"]
    assert any("R4" in e for e in validate(moved, fake, WALK))


def test_overlap_and_double_cover_are_caught(solved) -> None:
    problem, assignments = solved
    a = assignments[0]
    twin = replace(a, need_id="B" if a.need_id == "A" else "A")
    errors = validate(problem, [a, twin, *assignments], WALK)
    assert any("R5" in e for e in errors) or any("R7" in e for e in errors)
    assert any("R7" in e for e in validate(problem, [*assignments, assignments[0]], WALK))
