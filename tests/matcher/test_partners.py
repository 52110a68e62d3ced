"""Whom to partner with: the merchants (service and place) that would unblock the most
``no_merchant_in_circle`` occurrences, every suggested gain checked by re-solving the week, in
this test, with a merchant there."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from matcher.domain import Merchant, Priority, Problem
from matcher.params import SolveParams
from matcher.partners import partner_rows, suggest_partners
from matcher.settings import Settings
from matcher.solver import solve
from matcher.travel import TravelTimes, WalkingNetwork
from tests.conftest import WEEK, merchant, need, volunteer
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
    """Meal deliveries near the centre and a medicine run 2 km east, the only canteen 2.5 km
    south: four meal occurrences and one medicine occurrence go unmet for want of a merchant.
    The meal volunteer has one pair of hands on Monday, when two meals fall in the same half
    hour; a visit without a merchant is covered."""
    meals, medicine = ("meal_delivery",), ("escort_medical",)
    needs = [need("A1", 0, 0, "mon;wed", "11:00-11:30", 30, meals, priority=Priority.RED,
                  merchant="meal"),
             need("A2", 150, 100, "fri", "11:30-12:30", 30, meals, merchant="meal"),
             need("A3", -100, 50, "mon", "11:00-11:30", 30, meals, merchant="meal"),
             need("B1", 0, 2000, "tue", "09:00-10:00", 30, medicine, merchant="medicine"),
             need("H1", 0, 0, "thu", "09:00-10:00", 30)]
    helpers = [volunteer("V1", 100, 0, meals, "mon 10:00-13:00;wed 10:00-13:00;"
                                               "fri 10:00-13:00;thu 08:00-12:00", hours=10),
               volunteer("V2", 50, 2000, medicine, "tue 08:00-11:00")]
    return Problem(WEEK, helpers, needs, [merchant("M1", -2500, 0, "meal")])


@pytest.mark.parametrize("use_network", [False, True])
def test_each_suggested_gain_is_what_a_re_solve_finds(futian: WalkingNetwork,
                                                      use_network: bool) -> None:
    network = futian if use_network else None
    problem = _community()
    plan = suggest_partners(problem, 2, Settings(), network, PARAMS)
    assert plan.blocked == 5 and plan.by_service == {"meal": 4, "medicine": 1}
    assert plan.covered_before == 1
    assert plan.exact_cover == plan.greedy_cover == 5
    assert [(s.service, s.adds) for s in plan.suggestions] == [("meal", 4), ("medicine", 1)]
    covered = _covered(problem, network)
    assert covered == plan.covered_before
    added: list[Merchant] = []
    for s in plan.suggestions:
        # The merchant rebuilt here from what the suggestion says, not taken from the plan.
        added.append(Merchant(f"NEW{len(added)}", "新商家", s.place, frozenset({s.service}),
                              s.merchant.capacity_per_day, s.merchant.open))
        after = _covered(replace(problem, merchants=[*problem.merchants, *added]), network)
        assert s.gain == after - covered
        covered = after
    # Monday's two meals in the same half hour: the partner reaches both, one is served.
    assert [s.gain for s in plan.suggestions] == [3, 1]
    assert plan.covered_after == covered == 5
    assert plan.proven
    sentences = plan.sentences()
    assert sentences[0].startswith("在") and "社区食堂" in sentences[0]
    assert sentences[0].endswith("可多覆盖 3 次服务") and "药店" in sentences[1]
    rows = partner_rows(plan)
    assert rows[0]["category"] == "canteen" and rows[0]["gain"] == 3


def test_no_blocked_occurrence_nothing_to_suggest() -> None:
    problem = Problem(WEEK, [volunteer("V1", 0, 0, ("meal_delivery",), "mon 08:00-12:00")],
                      [need("N1", 0, 0, "mon", "10:00-11:00", 30, ("meal_delivery",),
                            merchant="meal")], [merchant("M1", 100, 0, "meal")])
    plan = suggest_partners(problem, 3, Settings(), None, PARAMS)
    assert plan.suggestions == [] and plan.blocked == 0 and plan.covered_after == 1


def test_a_merchant_nobody_could_walk_to_is_not_suggested() -> None:
    """Blocked for want of a merchant, but no volunteer with the skill is free that day: no
    partner would unblock it, so none is suggested."""
    problem = Problem(WEEK, [volunteer("V1", 0, 0, ("meal_delivery",), "tue 08:00-12:00")],
                      [need("N1", 0, 0, "mon", "10:00-11:00", 30, ("meal_delivery",),
                            merchant="meal")])
    plan = suggest_partners(problem, 2, Settings(), None, PARAMS)
    assert plan.blocked == 1 and plan.suggestions == [] and plan.exact_cover == 0


def test_cli_prints_the_suggestions(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from matcher.cli import app
    from matcher.spreadsheets import write_community

    write_community(_community(), tmp_path)
    result = CliRunner().invoke(app, ["partners", "--data", str(tmp_path), "--k", "2",
                                      "--time-limit", "10"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "exact 5" in text and "greedy 5" in text
    assert "covered 1 -> 5" in text and "可多覆盖 3 次服务" in text
