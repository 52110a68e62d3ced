"""Solver tests: hand-built cases with obvious answers, random ones checked by the validator,
tiny ones checked against brute force."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher import i18n
from matcher.circles import ServiceCircle, build_candidates
from matcher.domain import Priority, Problem, SolveStatus
from matcher.greedy import greedy_plan
from matcher.params import SolveParams
from matcher.settings import Settings
from matcher.solver import solve
from matcher.travel import TravelTimes
from tests.brute_force import lexicographic_optimum
from tests.conftest import WEEK, merchant, need, volunteer
from tests.validator import geodesic_walk, validate

WALK = geodesic_walk()
FAST = SolveParams(time_limit_s=10, workers=2)
# Every level of a small community down the street-scale path: the lazy week, shortlists and
# exact re-solves of one day at a time.
STREET_PATH = replace(FAST, pair_budget=2)


def check(problem: Problem, params: SolveParams = FAST):
    schedule = solve(problem, params)
    errors = validate(problem, schedule.assignments, WALK)
    assert errors == []
    assert len(schedule.covered_keys()) + len(schedule.unmet) == len(problem.occurrences)
    return schedule


def test_two_visits_one_volunteer_both_covered(two_elders: Problem) -> None:
    schedule = check(two_elders)
    assert schedule.covered == 2
    assert schedule.status is SolveStatus.OPTIMAL


def test_red_beats_any_number_of_blue() -> None:
    # One volunteer, one hour: either the red visit (60 min) or two blue ones (30 min each).
    problem = Problem(WEEK, [volunteer("V1", windows="mon 09:00-10:00", hours=1)], [
        need("R", 100, 0, window="09:00-10:00", duration=60, priority=Priority.RED),
        need("B1", 0, 100, window="09:00-10:00", duration=20),
        need("B2", 0, -100, window="09:00-10:00", duration=20),
    ])
    schedule = check(problem)
    assert schedule.levels[Priority.RED].covered == 1
    assert schedule.levels[Priority.BLUE].covered == 0


def test_travel_between_tasks_is_respected() -> None:
    # 1000 m apart = 17.3 min walk: the second visit cannot start before 09:47.
    problem = Problem(WEEK, [volunteer("V1", 0, 500, windows="mon 09:00-10:30")], [
        need("A", 0, 0, window="09:00-09:30", duration=30),
        need("B", 0, 1000, window="09:30-10:30", duration=30),
    ])
    schedule = check(problem)
    assert schedule.covered == 2
    starts = {a.need_id: a.start for a in schedule.assignments}
    assert starts["B"] >= 9 * 60 + 30 + 18


def test_double_staffing_is_all_or_nothing() -> None:
    problem = Problem(WEEK, [volunteer("V1"), volunteer("V2", skills=("escort_medical",))], [
        need("E", 50, 50, k=2, skills=("escort_medical",), priority=Priority.RED),
    ])
    schedule = check(problem)
    assert schedule.covered == 0
    assert schedule.unmet[0].reason.value == "no_skilled_volunteer_in_circle"


def test_merchant_capacity_and_hours() -> None:
    problem = Problem(WEEK, [volunteer(f"V{i}", windows="mon 10:00-13:00") for i in range(3)], [
        need(f"N{i}", 100 * i, 0, window="11:00-12:30", merchant="meal") for i in range(3)
    ], [merchant("M1", 0, 200, capacity=2)])
    schedule = check(problem)
    assert schedule.covered == 2
    assert [u.reason.value for u in schedule.unmet] == ["merchant_full"]


def test_weekly_hours_cap_names_the_volunteer() -> None:
    problem = Problem(WEEK, [volunteer("V1", windows="mon 08:00-12:00;tue 08:00-12:00", hours=1)],
                      [need("A", duration=60, priority=Priority.RED),
                       need("B", 100, 0, days="tue", duration=60)])
    with i18n.use("en"):
        schedule = check(problem)
    assert schedule.covered == 1
    unmet = schedule.unmet[0]
    assert unmet.reason.value == "volunteers_out_of_hours"
    assert "V1" in unmet.fix and "1 hour" in unmet.fix
    # The solve speaks the language it is run in (unmet.csv and the CLI's table).
    fix = solve(problem, FAST).unmet[0].fix
    assert fix == "如果 V1 每周多服务 1 小时（每周共 2 小时），就能安排"


def test_continuity_prefers_the_same_volunteer() -> None:
    # Two equally near volunteers; the need recurs daily: one of them should do every day.
    problem = Problem(WEEK, [volunteer("V1", 0, 100, windows="mon 08:00-12:00;tue 08:00-12:00"),
                             volunteer("V2", 0, -100, windows="mon 08:00-12:00;tue 08:00-12:00")],
                      [need("N", days="mon;tue")])
    schedule = check(problem)
    assert len({a.volunteer_id for a in schedule.assignments}) == 1


# ---------------------------------------------------------------- random communities

SKILLS = ("escort_medical", "childcare")


@st.composite
def communities(draw: st.DrawFn, max_volunteers: int = 6, max_needs: int = 8,
                tiny: bool = False) -> Problem:
    """Random communities within about 1.5 km; tiny ones give one window a day per volunteer."""
    days = ["mon", "tue"]
    spots = st.tuples(st.integers(-700, 700), st.integers(-700, 700))
    n_vol = draw(st.integers(1, max_volunteers))
    vols = []
    for i in range(n_vol):
        north, east = draw(spots)
        windows = []
        for d in days:
            if draw(st.booleans()):
                start = draw(st.sampled_from([8, 9, 10, 14]))
                windows.append(f"{d} {start:02d}:00-{start + draw(st.integers(1, 3)):02d}:00")
        windows = windows or ["mon 08:00-10:00"]
        vols.append(volunteer(f"V{i}", north, east,
                              tuple(draw(st.sets(st.sampled_from(SKILLS), max_size=2))),
                              ";".join(windows), draw(st.sampled_from([1, 1.5, 2, 4]))))
    n_merch = draw(st.integers(0, 2))
    merchants = [merchant(f"M{j}", *draw(spots), capacity=draw(st.integers(1, 3)),
                          hours=draw(st.sampled_from(["08:00-20:00", "10:00-12:00"])))
                 for j in range(n_merch)]
    needs = []
    for i in range(draw(st.integers(1, max_needs))):
        north, east = draw(spots)
        start = draw(st.sampled_from([8, 9, 10, 11, 14]))
        length = draw(st.sampled_from([30, 60, 90, 120]))
        duration = draw(st.sampled_from([15, 30, 45, 60]).filter(lambda d, n=length: d <= n))
        needs.append(need(
            f"N{i}", north, east,
            days=";".join(draw(st.lists(st.sampled_from(days), min_size=1, max_size=1 if tiny
                                        else 2, unique=True))),
            window=f"{start:02d}:00-{start + length // 60:02d}:{length % 60:02d}",
            duration=duration,
            skills=tuple(draw(st.sets(st.sampled_from(SKILLS), max_size=1))),
            k=draw(st.sampled_from([1, 1, 1, 2])),
            priority=draw(st.sampled_from(list(Priority))),
            merchant="meal" if draw(st.integers(0, 4)) == 0 else None,
        ))
    return Problem(WEEK, vols, needs, merchants)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities())
def test_random_schedules_are_valid(problem: Problem) -> None:
    schedule = check(problem)
    for level in schedule.levels.values():
        assert level.covered <= level.bound <= level.occurrences


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities(max_volunteers=3, max_needs=4, tiny=True))
def test_tiny_optimum_equals_brute_force(problem: Problem) -> None:
    schedule = check(problem)
    assert schedule.status is SolveStatus.OPTIMAL
    got = tuple(schedule.levels[p].covered for p in Priority)
    assert got == lexicographic_optimum(problem, WALK)


def _lexicographic(schedule_levels: dict[Priority, int]) -> tuple[int, ...]:
    return tuple(schedule_levels[p] for p in Priority)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities())
def test_day_by_day_path_is_valid_and_never_below_greedy(problem: Problem) -> None:
    # A pair budget of 2 sends every level through the street-scale path: shortlists and
    # exact re-solves of one day at a time.
    schedule = check(problem, STREET_PATH)
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    greedy = greedy_plan(cand)
    greedy_levels = {p: sum(1 for o in greedy.covered
                            if problem.occurrences[o].need.priority is p) for p in Priority}
    assert _lexicographic({p: lv.covered for p, lv in schedule.levels.items()}) >= \
        _lexicographic(greedy_levels)
    for level in schedule.levels.values():
        assert level.covered <= level.bound <= level.occurrences


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities(max_volunteers=3, max_needs=4, tiny=True))
def test_day_by_day_path_proves_only_the_optimum(problem: Problem) -> None:
    # The street-scale path's bounds (lazy walks, the days' floors and bounds posted in the
    # week) never cut off the lexicographic optimum, and what it calls proven is it.
    schedule = check(problem, STREET_PATH)
    optimum = lexicographic_optimum(problem, WALK)
    for p, best in zip(Priority, optimum, strict=True):
        level = schedule.levels[p]
        assert level.bound >= best
        if level.optimal:
            assert level.covered == best
        else:
            break  # lower levels are judged against a different optimum


def test_progress_records_carry_the_level_the_best_so_far_and_the_budget_spent() -> None:
    """``on_progress`` gets typed records: each level in order, its week coverage never above
    its bound and never falling, the budget share in 0..1 and never falling, the last record of
    a level equal to the schedule's; ``progress`` still gets the same text (the API stores it)."""
    from matcher.solver import SolveProgress

    problem = Problem(WEEK, [volunteer("V1", windows="mon 08:00-12:00;tue 08:00-12:00", hours=2),
                             volunteer("V2", 900, 0, windows="mon 08:00-12:00")],
                      [need("A", duration=60, priority=Priority.RED),
                       need("B", 100, 0, days="mon;tue", duration=60,
                            priority=Priority.YELLOW),
                       need("C", 900, 0, duration=30), need("D", 5000, 0, duration=30)])
    records: list[SolveProgress] = []
    texts: list[str] = []
    schedule = solve(problem, SolveParams(time_limit_s=5, workers=1),
                     progress=texts.append, on_progress=records.append)
    assert texts and all(isinstance(t, str) for t in texts)
    assert [str(r) for r in records if r.text in texts] == [r.text for r in records
                                                            if r.text in texts]
    stages = [r.stage for r in records]
    order = ["prepare", "red", "yellow", "blue", "quality", "explain"]
    seen = [s for k, s in enumerate(stages) if k == 0 or stages[k - 1] != s]
    assert seen == order
    spent = [r.spent for r in records]
    assert all(0.0 <= s <= 1.0 for s in spent) and spent == sorted(spent)
    for p in Priority:
        mine = [r for r in records if r.stage == p.value]
        assert all(r.occurrences == schedule.levels[p].occurrences for r in mine)
        assert all(r.bound is None or (r.covered is not None and r.covered <= r.bound)
                   for r in mine)
        covered = [r.covered for r in mine if r.covered is not None]
        assert covered == sorted(covered)
        assert (mine[-1].covered, mine[-1].bound) == (schedule.levels[p].covered,
                                                       schedule.levels[p].bound)
    assert all(r.covered is None for r in records if r.stage in {"prepare", "quality"})
