"""Charity allocation: rules A1-A4, lexicographic optimum against brute force, leximin fairness,
expiry, deliveries flowing into the weekly schedule."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.allocation import allocate, delivery_needs, leximin_split
from matcher.charity import (
    Allocation,
    AllocationLine,
    CharityProblem,
    Donation,
    Request,
    ShortReason,
)
from matcher.domain import Day, Priority, Problem
from matcher.generate import generate_charity
from matcher.outputs import write_allocation
from matcher.params import SolveParams
from matcher.solver import solve
from matcher.spreadsheets import read_community
from tests.allocation_check import (
    brute_force,
    check_allocation,
    check_delivery_needs,
    objective,
)
from tests.conftest import CENTRE, WEEK, offset
from tests.validator import geodesic_walk, network_walk, validate

WALK = geodesic_walk()
MONDAY = WEEK.monday


def donation(did: str, category: str = "rice", quantity: int = 5, north: float = 0,
             east: float = 0, expires: dt.date | None = None) -> Donation:
    return Donation(did, "爱心企业", category, quantity, offset(north, east), expires)


def request(rid: str, category: str = "rice", quantity: int = 2, north: float = 0,
            east: float = 0, priority: Priority = Priority.BLUE) -> Request:
    return Request(rid, f"{rid}家", category, quantity, offset(north, east), priority)


def checked(problem: CharityProblem) -> Allocation:
    """Allocate, and hold the result to the independent A1-A4 checker."""
    result = allocate(problem)
    assert check_allocation(problem, result.lines, WALK) == []
    assert check_delivery_needs(problem, result.lines, delivery_needs(problem, result)) == []
    return result


def fills(problem: CharityProblem) -> dict[str, int]:
    return defaultdict(int, checked(problem).allocated_to())


# --- leximin split -----------------------------------------------------------------------------

def _leximin_brute(budget: int, quantities: list[int]) -> tuple[float, ...]:
    best: tuple[float, ...] | None = None
    for split in itertools.product(*(range(q + 1) for q in quantities)):
        if sum(split) == budget:
            key = tuple(sorted(a / q for a, q in zip(split, quantities, strict=True)))
            best = key if best is None or key > best else best
    assert best is not None
    return best


@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.data())
@settings(max_examples=150, deadline=None)
def test_leximin_split_equals_brute_force(quantities: list[int], data: st.DataObject) -> None:
    budget = data.draw(st.integers(0, sum(quantities)))
    split = leximin_split(budget, quantities).first()
    assert sum(split) == budget and all(0 <= a <= q for a, q in zip(split, quantities,
                                                                     strict=True))
    ratios = tuple(sorted(a / q for a, q in zip(split, quantities, strict=True)))
    assert ratios == _leximin_brute(budget, quantities)


def test_leximin_split_large_quantities_stay_fast_and_fair() -> None:
    quantities = [1_000_000, 3, 250_000, 7]
    split = leximin_split(600_000, quantities).first()
    assert sum(split) == 600_000
    # No unit can move to a lower ratio without pushing the giver below the receiver.
    for (ah, qh), (ag, qg) in itertools.permutations(zip(split, quantities, strict=True), 2):
        assert not (ag >= 1 and ah < qh and (ag - 1) * qh >= (ah + 1) * qg)


def test_leximin_split_refuses_an_impossible_budget() -> None:
    with pytest.raises(ValueError, match="outside"):
        leximin_split(10, [3, 4])


# --- hand-made cases ---------------------------------------------------------------------------

def test_red_is_filled_before_any_blue() -> None:
    problem = CharityProblem(WEEK, [donation("D1", quantity=3)], [
        request("R1", quantity=2, priority=Priority.BLUE),
        request("R2", quantity=2, priority=Priority.RED),
        request("R3", quantity=2, priority=Priority.BLUE),
    ])
    got = fills(problem)
    assert got["R2"] == 2 and got["R1"] + got["R3"] == 1


def test_fairness_raises_the_lowest_fill_ratio() -> None:
    # 6 units for 4 + 4 + 2 requested: leximin gives ratios 1/2, 1/2, 1 -> (2, 2, 2).
    problem = CharityProblem(WEEK, [donation("D1", quantity=6)], [
        request("R1", quantity=4), request("R2", quantity=4), request("R3", quantity=2)])
    got = fills(problem)
    assert (got["R1"], got["R2"], got["R3"]) == (2, 2, 2)


def test_expired_goods_are_never_allocated_and_are_reported() -> None:
    problem = CharityProblem(WEEK, [
        donation("D1", "milk", 10, expires=MONDAY - dt.timedelta(days=1)),
        donation("D2", "milk", 1, expires=MONDAY),  # expires on Monday: still usable
    ], [request("R1", "milk", 3)])
    result = checked(problem)
    assert [(x.donation_id, x.quantity) for x in result.lines] == [("D2", 1)]
    assert {left.donation_id: left.expired for left in result.leftovers} == {"D1": True}
    assert result.short[0].reason is ShortReason.STOCK_SHORT


def test_sooner_expiring_goods_go_first() -> None:
    problem = CharityProblem(WEEK, [
        donation("D1", "milk", 5, expires=MONDAY + dt.timedelta(days=20)),
        donation("D2", "milk", 5, expires=MONDAY + dt.timedelta(days=2)),
        donation("D3", "milk", 5),  # no expiry: last
    ], [request("R1", "milk", 7)])
    used = {x.donation_id: x.quantity for x in checked(problem).lines}
    assert used == {"D2": 5, "D1": 2}


def test_goods_expiring_in_the_week_are_handed_over_by_their_expiry() -> None:
    # Milk expiring Wednesday: the far household's delivery goes out on Wednesday, not on the
    # Saturday round, and the near household may collect it until Wednesday.
    wednesday = MONDAY + dt.timedelta(days=2)
    problem = CharityProblem(WEEK, [
        donation("D1", "milk", 2, expires=wednesday),
        donation("D2", "rice", 2)],  # keeps: the Saturday round, collected by Sunday
        [request("R1", "milk", 1, north=3000), request("R2", "milk", 1, north=100),
         request("R3", "rice", 1, north=3000), request("R4", "rice", 1, north=100)])
    result = checked(problem)
    dates = {(x.request_id, x.delivery): x.date for x in result.lines}
    assert dates == {("R1", True): wednesday, ("R2", False): wednesday,
                     ("R3", True): MONDAY + dt.timedelta(days=5),
                     ("R4", False): MONDAY + dt.timedelta(days=6)}
    days = {n.id: n.days for n in delivery_needs(problem, result)}
    assert days == {"GD-D1-R1": (Day.WED,), "GD-D2-R3": (Day.SAT,)}
    assert result.summary()["deliveries_by_date"] == {
        wednesday.isoformat(): 1, (MONDAY + dt.timedelta(days=5)).isoformat(): 1}


def test_goods_expiring_on_monday_are_still_delivered_on_monday() -> None:
    problem = CharityProblem(WEEK, [donation("D1", "milk", 1, expires=MONDAY)],
                             [request("R1", "milk", 1, north=3000, priority=Priority.RED)])
    result = checked(problem)
    assert [(x.delivery, x.date) for x in result.lines] == [(True, MONDAY)]
    assert result.levels[Priority.RED].allocated == 1 == result.levels[Priority.RED].bound


def test_the_checker_refuses_a_hand_over_after_expiry() -> None:
    wednesday = MONDAY + dt.timedelta(days=2)
    problem = CharityProblem(WEEK, [donation("D1", "milk", 2, expires=wednesday)],
                             [request("R1", "milk", 1, north=3000)])
    late = AllocationLine("D1", "R1", 1, 40.0, True, MONDAY + dt.timedelta(days=5))
    assert any("after the goods expire" in e for e in check_allocation(problem, [late], WALK))
    result = allocate(problem)
    assert check_delivery_needs(problem, [late], delivery_needs(problem, result)) != []


def test_far_household_gets_a_delivery_and_a_goods_delivery_need() -> None:
    problem = CharityProblem(WEEK, [donation("D1", quantity=2)], [
        request("R1", quantity=1, north=300, priority=Priority.RED),
        request("R2", quantity=1, north=3000)])  # 3 km: beyond any 15-minute walk
    result = checked(problem)
    by_request = {x.request_id: x for x in result.lines}
    assert not by_request["R1"].delivery and by_request["R2"].delivery
    needs = delivery_needs(problem, result)
    assert [n.id for n in needs] == ["GD-D1-R2"]
    assert needs[0].service == "goods_delivery" and needs[0].location == offset(3000, 0)
    assert needs[0].duration_min >= 30


def test_pickups_in_reach_are_preferred_to_deliveries() -> None:
    # D1 is near R1, D2 near R2; crossing them would need two deliveries.
    problem = CharityProblem(WEEK, [donation("D1", quantity=1, north=0),
                                    donation("D2", quantity=1, north=3000)],
                             [request("R1", quantity=1, north=100),
                              request("R2", quantity=1, north=3100)])
    result = checked(problem)
    assert {(x.donation_id, x.request_id) for x in result.lines} == {("D1", "R1"), ("D2", "R2")}
    assert not result.deliveries


def test_reasons_for_short_requests() -> None:
    problem = CharityProblem(WEEK, [
        donation("D1", "milk", 2, expires=MONDAY - dt.timedelta(days=3)),
        donation("D2", "rice", 1)],
        [request("R1", "milk"), request("R2", "coats"), request("R3", "rice", 3)])
    reasons = {s.request_id: s.reason for s in checked(problem).short}
    assert reasons == {"R1": ShortReason.EXPIRED, "R2": ShortReason.NO_DONATION,
                       "R3": ShortReason.STOCK_SHORT}


def test_nothing_to_allocate() -> None:
    result = checked(CharityProblem(WEEK, [], []))
    assert result.lines == [] and all(lv.requested == 0 for lv in result.levels.values())


# --- properties --------------------------------------------------------------------------------

@st.composite
def tiny_charity(draw: st.DrawFn) -> CharityProblem:
    cats = ["rice", "milk"]
    donations = [
        donation(f"D{i}", draw(st.sampled_from(cats)), draw(st.integers(1, 3)),
                 draw(st.integers(-1200, 1200)), draw(st.integers(-1200, 1200)),
                 draw(st.sampled_from([None, MONDAY - dt.timedelta(days=1), MONDAY,
                                       MONDAY + dt.timedelta(days=2),
                                       MONDAY + dt.timedelta(days=5),
                                       MONDAY + dt.timedelta(days=6)])))
        for i in range(draw(st.integers(0, 3)))]
    requests = [
        request(f"R{i}", draw(st.sampled_from(cats)), draw(st.integers(1, 3)),
                draw(st.integers(-1200, 1200)), draw(st.integers(-1200, 1200)),
                draw(st.sampled_from(list(Priority))))
        for i in range(draw(st.integers(1, 4)))]
    return CharityProblem(WEEK, donations, requests)


@given(tiny_charity())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_tiny_allocations_are_valid_and_equal_brute_force(problem: CharityProblem) -> None:
    result = allocate(problem)
    assert check_allocation(problem, result.lines, WALK) == []
    assert check_delivery_needs(problem, result.lines, delivery_needs(problem, result)) == []
    x = {(a.donation_id, a.request_id): a.quantity for a in result.lines}
    mine = objective(problem, x, WALK)
    best = brute_force(problem, WALK)
    assert mine[:4] == best[:4]  # fulfilment, fairness, expiry, deliveries: exact
    units = sum(x.values())
    assert -mine[4] <= -best[4] + units  # walking: equal up to one rounding step per unit


def _pigou_dalton_transfers(problem: CharityProblem, got: dict[str, int]) -> list[str]:
    """Single-unit transfers inside a category and priority that raise a household without
    pushing the giver below it: a leximin allocation has none."""
    found = []
    for h, g in itertools.permutations(problem.requests, 2):
        if h.category != g.category or h.priority is not g.priority:
            continue
        if got[g.id] >= 1 and got[h.id] < h.quantity and \
                (got[g.id] - 1) * h.quantity >= (got[h.id] + 1) * g.quantity:
            found.append(f"{g.id} -> {h.id}")
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_month_is_valid_fair_and_at_its_bound(seed: int) -> None:
    problem = generate_charity(400, 80, 12, network=None, centre=CENTRE, radius_m=1500,
                               week=WEEK, seed=seed)
    result = allocate(problem)
    assert check_allocation(problem, result.lines, WALK) == []
    assert check_delivery_needs(problem, result.lines, delivery_needs(problem, result)) == []
    got = defaultdict(int, result.allocated_to())
    assert _pigou_dalton_transfers(problem, got) == []
    # Bound, computed here: per category, priorities in order take min(stock left, requested).
    monday = problem.week.monday
    for p in Priority:
        bound = 0
        for cat in problem.categories:
            stock = sum(d.quantity for d in problem.donations
                        if d.category == cat and (d.expires is None or d.expires >= monday))
            for q in Priority:
                wanted = sum(r.quantity for r in problem.requests
                             if r.category == cat and r.priority is q)
                take = min(stock, wanted)
                stock -= take
                if q is p:
                    bound += take
        assert result.levels[p].allocated == bound == result.levels[p].bound


def test_allocation_on_the_street_network(futian: object) -> None:
    from matcher.travel import WalkingNetwork

    assert isinstance(futian, WalkingNetwork)
    problem = generate_charity(60, 15, 4, network=futian, centre=CENTRE, radius_m=1500,
                               week=WEEK, seed=5)
    result = allocate(problem, network=futian)
    assert check_allocation(problem, result.lines, network_walk(futian)) == []
    assert result.method.startswith("street network")


def test_deliveries_flow_into_the_weekly_schedule(tmp_path: Path) -> None:
    problem = CharityProblem(WEEK, [donation("D1", quantity=3, north=2500)], [
        request("R1", quantity=2, priority=Priority.RED), request("R2", quantity=1, east=200)])
    result = checked(problem)
    write_allocation(problem, result, tmp_path / "alloc")
    community = tmp_path / "week"
    community.mkdir()
    (community / "volunteers.csv").write_text(
        "volunteer_id,name,lat,lon,skills,availability,max_hours_week\n"
        f"V1,王芳,{CENTRE.lat},{CENTRE.lon},,sat 08:00-18:00,6\n", encoding="utf-8")
    (community / "needs.csv").write_text(
        "need_id,kind,service,beneficiary,lat,lon,days,window,duration_min\n"
        f"N1,elderly,home_visit,李奶奶,{CENTRE.lat},{CENTRE.lon},sat,09:00-10:00,30\n",
        encoding="utf-8")
    imported = read_community(community, WEEK,
                              extra_needs=[tmp_path / "alloc" / "delivery_needs.csv"])
    ids = {n.id for n in imported.problem.needs}
    assert ids == {"N1", "GD-D1-R1", "GD-D1-R2"}
    week: Problem = imported.problem
    schedule = solve(week, SolveParams(time_limit_s=10))
    assert validate(week, schedule.assignments, WALK) == []
    assert {a.need_id for a in schedule.assignments} >= {"GD-D1-R1"}  # red delivery covered


def test_a_delivery_of_expiring_goods_is_scheduled_before_they_expire(tmp_path: Path) -> None:
    thursday = MONDAY + dt.timedelta(days=3)
    problem = CharityProblem(WEEK, [donation("D1", "牛奶", 2, north=2500, expires=thursday)],
                             [request("R1", "牛奶", 2, priority=Priority.RED)])
    result = checked(problem)
    write_allocation(problem, result, tmp_path / "alloc")
    community = tmp_path / "week"
    community.mkdir()
    (community / "volunteers.csv").write_text(
        "volunteer_id,name,lat,lon,skills,availability,max_hours_week\n"
        f"V1,王芳,{CENTRE.lat},{CENTRE.lon},,"
        + ";".join(f"{d.value} 08:00-18:00" for d in Day) + ",6\n", encoding="utf-8")
    (community / "needs.csv").write_text(
        "need_id,kind,service,beneficiary,lat,lon,days,window,duration_min\n"
        f"N1,elderly,home_visit,李奶奶,{CENTRE.lat},{CENTRE.lon},sat,09:00-10:00,30\n",
        encoding="utf-8")
    imported = read_community(community, WEEK,
                              extra_needs=[tmp_path / "alloc" / "delivery_needs.csv"])
    week: Problem = imported.problem
    assert check_delivery_needs(problem, result.lines,
                                [n for n in week.needs if n.id.startswith("GD-")]) == []
    schedule = solve(week, SolveParams(time_limit_s=10))
    assert validate(week, schedule.assignments, WALK) == []
    [delivered] = [a for a in schedule.assignments if a.need_id == "GD-D1-R1"]
    assert delivered.date == thursday


def test_a_problem_with_too_many_pairs_is_refused_before_any_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matcher.charity as charity
    from matcher.errors import InputError
    from matcher.spreadsheets import read_charity

    rows = "".join(f"D{k},超市,rice,4,22.53,114.01,\n" for k in range(4))
    (tmp_path / "donations.csv").write_text(
        "donation_id,donor,category,quantity,lat,lon,expires\n" + rows, encoding="utf-8")
    rows = "".join(f"R{k},李家,rice,1,22.53,114.01\n" for k in range(5))
    rows += "R9,王家,oil,1,22.53,114.01\n"  # no oil donated: no pair
    (tmp_path / "requests.csv").write_text(
        "request_id,beneficiary,category,quantity,lat,lon\n" + rows, encoding="utf-8")
    assert read_charity(tmp_path, WEEK).problem.pairs == 20
    monkeypatch.setattr(charity, "MAX_PAIRS", 19)
    with pytest.raises(InputError, match=r"make 20 donation-request pairs .* at most 19"):
        read_charity(tmp_path, WEEK)
    monkeypatch.setattr(charity, "MAX_PAIRS", 20)
    problem = read_charity(tmp_path, WEEK).problem
    monkeypatch.setattr(charity, "MAX_PAIRS", 19)
    with pytest.raises(ValueError, match="allocate a smaller area at a time"):
        allocate(problem)
