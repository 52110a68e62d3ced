"""Where to recruit: maximum coverage of the unmet occurrences by places (exact and greedy),
and every suggested gain checked by re-solving the week, in this test, with a volunteer there."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.domain import Priority, Problem, Volunteer
from matcher.params import SolveParams
from matcher.recruit import (
    GREEDY_GUARANTEE,
    max_coverage_exact,
    max_coverage_greedy,
    merge_windows,
    suggest_recruits,
)
from matcher.settings import Settings
from matcher.solver import solve
from matcher.travel import TravelTimes, WalkingNetwork
from tests.conftest import WEEK, need, volunteer
from tests.validator import geodesic_walk, network_walk, validate

PARAMS = SolveParams(time_limit_s=10, workers=1)


def _covered(problem: Problem, network: WalkingNetwork | None) -> int:
    """The week solved from scratch, its result checked by the independent validator."""
    travel = TravelTimes.build(problem, Settings(), network)
    schedule = solve(problem, PARAMS, travel=travel, settings=Settings())
    assert all(level.optimal for level in schedule.levels.values())
    walk = network_walk(network) if network is not None else geodesic_walk()
    assert validate(problem, schedule.assignments, walk) == []
    return schedule.covered


def _community() -> Problem:
    """Meals unmet in two clusters 2 km apart (three days near the centre, two days 2 km
    east), an escort need nobody can do, and one meal volunteer already busy elsewhere."""
    meals = ("meal_delivery",)
    needs = [need("A1", 0, 0, "mon;wed", "11:00-12:00", 30, meals, priority=Priority.RED),
             need("A2", 150, 100, "fri", "15:00-16:00", 30, meals),
             need("B1", 0, 2000, "tue", "11:00-12:00", 30, meals),
             need("B2", 120, 2050, "thu", "09:00-10:00", 30, meals),
             need("E1", 0, 0, "mon", "09:00-10:00", 30, ("escort_medical",)),
             need("C1", -1500, 0, "sat", "10:00-11:00", 30, meals)]
    helpers = [volunteer("V1", -1500, 0, meals, "sat 09:00-12:00")]
    return Problem(WEEK, helpers, needs)


def _with(problem: Problem, recruits: list[Volunteer]) -> Problem:
    return replace(problem, volunteers=[*problem.volunteers, *recruits])


@pytest.mark.parametrize("use_network", [False, True])
def test_each_suggested_gain_is_what_a_re_solve_finds(futian: WalkingNetwork,
                                                      use_network: bool) -> None:
    network = futian if use_network else None
    problem = _community()
    plan = suggest_recruits(problem, "meal_delivery", 2, Settings(), network, PARAMS)
    assert plan.unmet == 5 and plan.covered_before == 1  # the escort need does not count
    assert plan.exact_cover == plan.greedy_cover == 5
    assert [s.adds for s in plan.suggestions] == [3, 2]
    covered = _covered(problem, network)
    assert covered == plan.covered_before
    added: list[Volunteer] = []
    for s in plan.suggestions:
        # The volunteer rebuilt here from what the suggestion says, not taken from the plan.
        added.append(Volunteer(f"NEW{len(added)}", "新人", s.place,
                               frozenset({"meal_delivery"}), s.availability, 4.0))
        after = _covered(_with(problem, added), network)
        assert s.gain == after - covered
        covered = after
    assert [s.gain for s in plan.suggestions] == [3, 2]
    assert plan.covered_after == covered == 6
    assert plan.proven
    sentences = plan.sentences()
    assert sentences[0].startswith("在")
    assert "附近招募 1 名会送餐、周一上午、周三上午、周五下午有空的志愿者" in sentences[0]
    assert sentences[0].endswith("能多安排上 3 次服务")


def test_a_busy_recruit_gains_less_than_she_reaches() -> None:
    """Three meals at the same hour on one day: a place reaches all three, one pair of hands
    serves one; the reported gain is the re-solve's, not the estimate."""
    meals = ("meal_delivery",)
    problem = Problem(WEEK, [], [need(f"N{i}", 20 * i, 0, "mon", "11:00-11:30", 30, meals)
                                 for i in range(3)])
    plan = suggest_recruits(problem, "meal_delivery", 1, Settings(), None, PARAMS)
    assert plan.suggestions[0].adds == 3 and plan.suggestions[0].gain == 1
    assert _covered(_with(problem, [plan.suggestions[0].volunteer]), None) == 1


def test_nothing_unmet_nothing_to_suggest() -> None:
    problem = Problem(WEEK, [volunteer("V1", 0, 0, ("meal_delivery",), "mon 08:00-12:00")],
                      [need("N1", 0, 0, "mon", "09:00-10:00", 30, ("meal_delivery",))])
    plan = suggest_recruits(problem, "meal_delivery", 3, Settings(), None, PARAMS)
    assert plan.suggestions == [] and plan.unmet == 0 and plan.covered_after == 1


covers_strategy = st.lists(st.frozensets(st.integers(0, 9), max_size=5), min_size=1,
                           max_size=8)


@settings(max_examples=40, deadline=None)
@given(covers=covers_strategy, k=st.integers(1, 4))
def test_exact_is_the_best_and_greedy_keeps_its_guarantee(covers: list[frozenset[int]],
                                                          k: int) -> None:
    def value(chosen: tuple[int, ...] | list[int]) -> int:
        return len(frozenset().union(*(covers[j] for j in chosen)))

    best = max(value(c) for r in range(min(k, len(covers)) + 1)
               for c in itertools.combinations(range(len(covers)), r))
    exact = max_coverage_exact(covers, 10, k, time_limit_s=5)
    greedy = max_coverage_greedy(covers, k)
    assert len(exact) <= k and len(greedy) <= k
    assert value(exact) == best
    assert value(greedy) >= math.floor(GREEDY_GUARANTEE * best)
    assert value(greedy) <= best


def test_windows_merge() -> None:
    from matcher.domain import Availability, Day, TimeWindow

    merged = merge_windows([Availability(Day.MON, TimeWindow(600, 700)),
                            Availability(Day.MON, TimeWindow(650, 800)),
                            Availability(Day.TUE, TimeWindow(600, 700)),
                            Availability(Day.MON, TimeWindow(800, 900))])
    assert merged == (Availability(Day.MON, TimeWindow(600, 900)),
                      Availability(Day.TUE, TimeWindow(600, 700)))


def test_cli_prints_the_suggestions(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from matcher.cli import app
    from matcher.spreadsheets import write_community

    write_community(_community(), tmp_path)
    result = CliRunner().invoke(app, ["recruit", "--data", str(tmp_path), "--skill",
                                      "meal_delivery", "--k", "2", "--time-limit", "10"])
    assert result.exit_code == 0, result.output
    text = "".join(result.output.split())  # rich wraps long lines
    assert "最多能接上其中5次" in text and "至少5次" in text
    assert "现在1次，招到人后6次" in text and "能多安排上3次服务" in text
