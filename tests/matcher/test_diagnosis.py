"""Unmet reasons and their fixes: every proposed fix, applied to a copy of the problem with the
rest of the week as planned, lets the occurrence be covered (checked by the validator)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from itertools import combinations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher import diagnosis, i18n
from matcher.circles import (
    Candidates,
    ServiceCircle,
    _occurrence_options,
    build_candidates,
    changed_candidates,
    merchant_choices,
)
from matcher.diagnosis import NO_SINGLE_FIX, coverable, diagnose
from matcher.domain import (
    Assignment,
    ExtraWindow,
    Fix,
    NewMerchant,
    Priority,
    Problem,
    Unmet,
    UnmetReason,
)
from matcher.generate import generate_community
from matcher.greedy import greedy_plan
from matcher.params import SolveParams
from matcher.replan import PinnedWeek
from matcher.settings import Settings
from matcher.solver import _assignments, solve
from matcher.timeline import Plan, Timelines
from matcher.travel import TravelTimes
from tests.conftest import CENTRE, WEEK, merchant, need, volunteer
from tests.validator import geodesic_walk, validate


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """These checks read the English sentences; the Chinese ones are checked below."""
    with i18n.use("en"):
        yield

WALK = geodesic_walk()
SKILLS = ("escort_medical", "childcare")


def candidates(problem: Problem) -> Candidates:
    return build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())


def covered_after(problem: Problem, assignments: list[Assignment], unmet: Unmet) -> bool:
    """Whether ``unmet.change``, applied to ``problem``, lets the occurrence be added to
    ``assignments`` (kept as they are) in a week the validator accepts."""
    assert unmet.change is not None
    changed = unmet.change.apply(problem)
    assert validate(changed, assignments, WALK) == []
    pinned = PinnedWeek(candidates(changed), assignments)
    occ = next(o for o in changed.occurrences
               if (o.need.id, o.day) == (unmet.need_id, unmet.day))
    fits = [f for f in pinned.recommend(unmet.need_id, unmet.day, limit=10_000)
            if not f.displaces]
    walks = {f.volunteer_id: f.walk_min for f in fits}
    for start, merchant_id in {(f.start, f.merchant_id) for f in fits}:
        # R7 holds only for a whole team: try every team of the volunteers who fit somewhere.
        for team in combinations(sorted(walks), occ.need.volunteers_needed):
            added = [Assignment(occ.need.id, occ.day, occ.date, start,
                                start + occ.need.duration_min, v, merchant_id, walks[v])
                     for v in team]
            if not validate(changed, assignments + added, WALK):
                return True
    return False


@st.composite
def spread_communities(draw: st.DrawFn) -> Problem:
    """Small random communities spread wider than one circle, with merchants that are often
    outside a volunteer's or a beneficiary's circle, two-person tasks and tight hours."""
    days = ["mon", "tue"]
    spots = st.tuples(st.integers(-1200, 1200), st.integers(-1200, 1200))
    vols = []
    for i in range(draw(st.integers(1, 6))):
        windows = []
        for d in days:
            if draw(st.booleans()):
                start = draw(st.sampled_from([8, 9, 10, 14]))
                windows.append(f"{d} {start:02d}:00-{start + draw(st.integers(1, 3)):02d}:00")
        vols.append(volunteer(f"V{i}", *draw(spots),
                              tuple(draw(st.sets(st.sampled_from(SKILLS), max_size=2))),
                              ";".join(windows or ["mon 08:00-10:00"]),
                              draw(st.sampled_from([0.5, 1, 2, 4]))))
    merchants = [merchant(f"M{j}", *draw(spots), capacity=draw(st.integers(1, 2)),
                          hours=draw(st.sampled_from(["08:00-20:00", "10:00-12:00",
                                                      "14:00-16:00"])))
                 for j in range(draw(st.integers(0, 3)))]
    needs = []
    for i in range(draw(st.integers(1, 8))):
        start = draw(st.sampled_from([8, 9, 10, 11, 14]))
        length = draw(st.sampled_from([30, 60, 90, 120]))
        needs.append(need(
            f"N{i}", *draw(spots),
            days=";".join(draw(st.lists(st.sampled_from(days), min_size=1, max_size=2,
                                        unique=True))),
            window=f"{start:02d}:00-{start + length // 60:02d}:{length % 60:02d}",
            duration=draw(st.sampled_from([15, 30, 45, 60]).filter(lambda d, n=length: d <= n)),
            skills=tuple(draw(st.sets(st.sampled_from(SKILLS), max_size=1))),
            k=draw(st.sampled_from([1, 1, 1, 2])),
            priority=draw(st.sampled_from(list(Priority))),
            merchant="meal" if draw(st.booleans()) else None,
        ))
    return Problem(WEEK, vols, needs, merchants)


def check_fixes(problem: Problem, assignments: list[Assignment], unmet: list[Unmet]) -> None:
    for u in unmet:
        if u.change is not None:
            assert u.fix == u.change.describe(problem)
            assert covered_after(problem, assignments, u), (u, u.change)
        elif u.reason is not UnmetReason.SOLVER_LIMIT:
            assert u.fix == NO_SINGLE_FIX


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spread_communities())
def test_every_fix_lets_the_occurrence_be_covered(problem: Problem) -> None:
    # The greedy plan leaves many occurrences unmet, for every reason; the rest stays pinned.
    cand = candidates(problem)
    plan = greedy_plan(cand)
    check_fixes(problem, _assignments(cand, plan), diagnose(cand, plan, True))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spread_communities())
def test_every_fix_of_a_solved_week_lets_the_occurrence_be_covered(problem: Problem) -> None:
    schedule = solve(problem, SolveParams(time_limit_s=2))
    check_fixes(problem, schedule.assignments, schedule.unmet)


def test_a_volunteer_free_then_is_not_the_fix_when_the_merchant_is_beyond_her_circle() -> None:
    # V1 is free all Monday morning, but the only meal merchant is 1.2 km west of her (beyond
    # her circle) while near the beneficiary; V2 lives near both, but is free only on Tuesday.
    problem = Problem(WEEK, [volunteer("V1", 0, 600, windows="mon 08:00-12:00"),
                             volunteer("V2", 0, -300, windows="tue 08:00-12:00")],
                      [need("N", 0, 0, window="09:00-11:00", merchant="meal")],
                      [merchant("M", 0, -600)])
    cand = candidates(problem)
    [unmet] = diagnose(cand, greedy_plan(cand), True)
    assert unmet.reason is UnmetReason.NO_AVAILABLE_VOLUNTEER
    assert unmet.change == ExtraWindow("V2", unmet.day, problem.needs[0].window)
    assert unmet.fix.startswith("V2 could if also available mon 09:00-11:00")
    assert covered_after(problem, [], unmet)


def test_no_single_fix_is_said_honestly() -> None:
    # No merchant near the beneficiary, and nobody free then: a new merchant alone is not
    # enough, and a fix of one kind is all the diagnosis proposes.
    problem = Problem(WEEK, [volunteer("V1", 0, 100, windows="tue 08:00-12:00")],
                      [need("N", 0, 0, window="09:00-11:00", merchant="meal")])
    cand = candidates(problem)
    [unmet] = diagnose(cand, greedy_plan(cand), True)
    assert unmet.reason is UnmetReason.NO_MERCHANT_IN_CIRCLE
    assert unmet.change is None and unmet.fix == NO_SINGLE_FIX
    # With V1 free on Monday, the new merchant is the fix.
    free = replace(problem, volunteers=[volunteer("V1", 0, 100, windows="mon 08:00-12:00")])
    cand = candidates(free)
    [unmet] = diagnose(cand, greedy_plan(cand), True)
    assert unmet.change == NewMerchant("N")
    assert covered_after(free, [], unmet)


def test_reasons_and_fixes_are_told_in_chinese() -> None:
    """The same diagnosis in a coordinator's Chinese: days as 周一, the fix as a sentence; the
    reason code stays English."""
    problem = Problem(WEEK, [volunteer("V1", 0, 600, windows="mon 08:00-12:00"),
                             volunteer("V2", 0, -300, windows="tue 08:00-12:00")],
                      [need("N", 0, 0, window="09:00-11:00", merchant="meal")],
                      [merchant("M", 0, -600)])
    cand = candidates(problem)
    with i18n.use("zh"):
        [unmet] = diagnose(cand, greedy_plan(cand), True)
    assert unmet.reason.value == "no_available_volunteer"
    assert unmet.detail == ("附近有 2 位能做的志愿者（V1, V2），但周一 09:00-11:00 没有人有空"
                            "（有空的人离提供这项服务的商家都超过步行 15 分钟）")
    assert unmet.fix == "如果 V2 周一 09:00-11:00 也有空，就能安排（目前周一没有空）"


def _works_as_first_written(cand: Candidates, plan: Plan, o: int, fix: Fix) -> bool:
    """The check of a fix as first written: a fresh problem with its occurrences expanded
    again, every volunteer's walk looked up by name and the plan's timelines rebuilt, per fix
    (the reference the shared timelines must match)."""
    problem = fix.apply(cand.problem)
    travel = cand.travel
    need_key = ("N", cand.problem.occurrences[o].need.id)
    new = [("V", v.id) for v in problem.volunteers] + [("M", m.id) for m in problem.merchants]
    if any(key not in travel.index for key in new):
        travel = copy.copy(travel)
        travel.index = {**cand.travel.index,
                        **{key: cand.travel.index[need_key] for key in new
                           if key not in cand.travel.index}}
    occ = problem.occurrences[o]
    mchoices = merchant_choices(problem, travel, cand.circle, occ)
    walks = ((v, travel.between(("V", volunteer.id), ("N", occ.need.id)))
             for v, volunteer in enumerate(problem.volunteers))
    near = [(v, walk) for v, walk in walks if cand.circle.contains(walk)]
    fresh = _occurrence_options(problem, travel, cand.circle, o, near, mchoices)
    changed = changed_candidates(cand, problem, travel, o)
    assert changed.options == [*cand.options, *fresh]
    return coverable(changed, Timelines.of_plan(changed, plan), o)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_fixes_checked_on_the_plans_timelines_are_those_of_the_reference(
        seed: int) -> None:
    # Few volunteers with few hours for many needs, some with a merchant: every reason and
    # every kind of fix turns up across the seeds.
    problem = generate_community(8, 30, 3, network=None, centre=CENTRE, radius_m=600,
                                 week=WEEK, seed=seed)
    cand = candidates(problem)
    plan = greedy_plan(cand)
    fast = diagnose(cand, plan, True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(diagnosis, "_first", lambda cand, plan, _tl, o, fixes: next(
            (fix for fix in fixes if _works_as_first_written(cand, plan, o, fix)), None))
        slow = diagnose(cand, plan, True)
    assert fast == slow
    assert fast and any(u.change is not None for u in fast)
