"""The generator's regimes: each changes only its own knob, makes valid communities, and the
solver's proofs on small communities of each regime hold against brute force."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.domain import Location, Priority, Problem, SolveStatus, Week
from matcher.generate import DEFAULT, REGIMES, Regime, generate_community
from matcher.solver import solve
from tests.brute_force import lexicographic_optimum
from tests.matcher.test_solver import FAST, STREET_PATH, WALK
from tests.validator import validate

CENTRE = Location(22.53407, 114.01766)
WEEK = Week(2026, 48)
SEEDS = st.integers(0, 2**31 - 1)


def community(regime: Regime, seed: int, volunteers: int = 30, needs: int = 40,
              merchants: int = 3, radius_m: float = 900) -> Problem:
    return generate_community(volunteers, needs, merchants, network=None, centre=CENTRE,
                              radius_m=radius_m, week=WEEK, seed=seed, regime=regime)


def test_the_family_names_every_regime_the_issue_asks_for() -> None:
    assert {"tight_hours", "loose_hours", "rare_skills", "wide_windows", "narrow_windows",
            "double_staffing", "scarce_merchants", "dense", "sparse"} < set(REGIMES)
    assert REGIMES["default"] == DEFAULT == Regime()
    for name, regime in REGIMES.items():
        assert regime.name == name and regime.description
        if name != "default":
            assert regime != DEFAULT


@pytest.mark.parametrize("name", sorted(REGIMES))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_each_regime_changes_only_its_knob(name: str, seed: int) -> None:
    regime, usual = REGIMES[name], community(DEFAULT, seed)
    problem = community(regime, seed)  # the domain types validate themselves
    assert [v.id for v in problem.volunteers] == [v.id for v in usual.volunteers]
    assert [n.id for n in problem.needs] == [n.id for n in usual.needs]
    for v, u in zip(problem.volunteers, usual.volunteers, strict=True):
        assert v.availability == u.availability and v.name == u.name
        assert v.max_hours_week >= 1
        if regime.hours == 1:
            assert v.max_hours_week == u.max_hours_week
        else:
            assert (v.max_hours_week < u.max_hours_week) == (regime.hours < 1) or \
                v.max_hours_week == u.max_hours_week == 1
        if regime.skills == 1:
            assert v.skills == u.skills
        elif regime.skills < 1:
            assert v.skills <= u.skills
    for n, was in zip(problem.needs, usual.needs, strict=True):
        assert (n.days, n.duration_min, n.priority, n.service, n.skills) == \
            (was.days, was.duration_min, was.priority, was.service, was.skills)
        # A window always holds its task, within the day.
        assert n.window.end - n.window.start >= n.duration_min
        assert n.window.start >= 6 * 60 or n.window == was.window
        if regime.windows == 1:
            assert n.window == was.window
        else:
            wider = n.window.end - n.window.start >= was.window.end - was.window.start
            assert wider == (regime.windows > 1) or n.window.end - n.window.start in (
                n.duration_min, was.window.end - was.window.start, 16 * 60)
        if regime.double_staffing == 0:
            assert n.volunteers_needed == was.volunteers_needed
        else:
            assert n.volunteers_needed >= was.volunteers_needed
    for m, before in zip(problem.merchants, usual.merchants, strict=True):
        assert m.capacity_per_day >= 1
        if regime.capacity == 1:
            assert m.capacity_per_day == before.capacity_per_day
        else:
            assert m.capacity_per_day <= before.capacity_per_day
    if regime.spread == 1:
        assert [v.location for v in problem.volunteers] == \
            [v.location for v in usual.volunteers]


def test_regimes_move_the_family_where_they_say() -> None:
    # Summed over a community, each knob moves what it names the way it says.
    usual = community(DEFAULT, 11, 200, 300, 10)

    def hours(p: Problem) -> float:
        return sum(v.max_hours_week for v in p.volunteers)

    def pairs(p: Problem) -> int:
        return sum(n.volunteers_needed == 2 for n in p.needs)

    def skilled(p: Problem) -> int:
        return sum(len(v.skills) for v in p.volunteers)

    def capacity(p: Problem) -> int:
        return sum(m.capacity_per_day for m in p.merchants)

    def regime(name: str) -> Problem:
        return community(REGIMES[name], 11, 200, 300, 10)

    assert hours(regime("tight_hours")) < 0.6 * hours(usual) < hours(usual)
    assert hours(regime("loose_hours")) > 1.8 * hours(usual)
    assert skilled(regime("rare_skills")) < 0.5 * skilled(usual)
    assert pairs(regime("double_staffing")) > pairs(usual) + 50
    assert capacity(regime("scarce_merchants")) < 0.3 * capacity(usual)


@pytest.mark.parametrize("name", sorted(REGIMES))
def test_a_community_of_each_regime_solves_to_a_valid_plan(name: str) -> None:
    problem = community(REGIMES[name], 5, 25, 30, 3, 700)
    schedule = solve(problem, FAST)
    assert validate(problem, schedule.assignments, WALK) == []
    for level in schedule.levels.values():
        assert level.covered <= level.bound <= level.occurrences


def tiny(regime: Regime, seed: int) -> Problem:
    """A community of the regime small enough for brute force: 3 volunteers, 4 needs each on
    one day (a day some volunteer is free, where there is one), 1 merchant."""
    problem = community(regime, seed, 3, 4, 1, 400)
    free = {a.day for v in problem.volunteers for a in v.availability}
    needs = [dataclasses.replace(n, days=(next((d for d in n.days if d in free), n.days[0]),))
             for n in problem.needs]
    return Problem(problem.week, problem.volunteers, needs, problem.merchants)


@pytest.mark.parametrize("path", ["exact", "street"])
@pytest.mark.parametrize("name", sorted(REGIMES))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_claimed_proofs_match_brute_force_in_each_regime(name: str, path: str,
                                                         seed: int) -> None:
    problem = tiny(REGIMES[name], seed)
    schedule = solve(problem, FAST if path == "exact" else STREET_PATH)
    assert validate(problem, schedule.assignments, WALK) == []
    optimum = lexicographic_optimum(problem, WALK)
    if path == "exact":
        assert schedule.status is SolveStatus.OPTIMAL
    for p, best in zip(Priority, optimum, strict=True):
        level = schedule.levels[p]
        assert level.bound >= best
        if level.optimal:
            assert level.covered == best
        else:
            break  # lower levels are judged against a different optimum
