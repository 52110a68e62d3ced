"""A published week re-planned after the community changed under it: the assignments an edit
broke are named with the rule, hold their volunteers' time and are never displaced."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from matcher.circles import ServiceCircle, build_candidates
from matcher.domain import Assignment, Day, Problem, TimeWindow
from matcher.greedy import greedy_plan
from matcher.replan import Fit, PinnedWeek, Statics, broken_assignments
from matcher.settings import Settings
from matcher.solver import _assignments
from matcher.timeline import Plan, Task, Timelines
from matcher.travel import TravelTimes
from tests.conftest import WEEK, merchant, need, offset, volunteer
from tests.matcher.test_solver import SKILLS, communities
from tests.validator import geodesic_walk, validate

MON = WEEK.date_of(Day.MON)


def _week(problem: Problem, assignments: list[Assignment]) -> PinnedWeek:
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    return PinnedWeek(cand, assignments)


def _task(need_id: str, volunteer_id: str, start: str, minutes: int = 30,
          merchant_id: str | None = None) -> Assignment:
    hh, mm = map(int, start.split(":"))
    return Assignment(need_id, Day.MON, MON, hh * 60 + mm, hh * 60 + mm + minutes, volunteer_id,
                      merchant_id, 1.0)


def _meals() -> Problem:
    """V1 and V2 live by a meal need N1 (via canteen M1) and a visit N2 at the same time."""
    return Problem(WEEK, [volunteer("V1"), volunteer("V2", 100, 0)],
                   [need("N1", window="10:00-12:00", merchant="meal"),
                    need("N2", 50, 0, window="10:00-10:30")],
                   [merchant("M1", 0, 100, hours="10:00-20:00")])


def test_a_merchant_narrowing_its_hours_marks_the_task_and_replanning_goes_on() -> None:
    problem = _meals()
    assignments = [_task("N1", "V1", "10:00", merchant_id="M1")]
    assert _week(problem, assignments).broken == {}
    narrowed = replace(problem, merchants=[replace(problem.merchants[0],
                                                   open=TimeWindow.parse("14:00-20:00"))])
    week = _week(narrowed, assignments)  # raised ValueError before: no option any more
    assert list(week.broken) == [0]
    assert "M1" in week.broken[0].reason and "open" in week.broken[0].reason
    assert week.broken[0].holds
    # V1 still holds 10:00-10:30 (she agreed to it): N2 goes to V2, and V1 is never offered
    # as "displace N1", since only a coordinator takes a broken task away.
    fits = week.recommend("N2", Day.MON)
    assert [f.volunteer_id for f in fits] == ["V2"] and not fits[0].displaces


def test_a_valid_pinned_task_may_be_displaced_a_broken_one_may_not() -> None:
    problem = _meals()
    valid = _week(problem, [_task("N1", "V1", "10:00", merchant_id="M1")])
    by_volunteer = {f.volunteer_id: f for f in valid.recommend("N2", Day.MON)}
    assert by_volunteer["V1"].displaces == (("N1", Day.MON),)


def test_each_rule_an_edit_breaks_is_named() -> None:
    problem = Problem(WEEK, [volunteer("V1", skills=("first_aid",)), volunteer("V2", 100, 0)],
                      [need("N1", window="09:00-11:00"), need("N2", 50, 0, window="09:00-11:00"),
                       need("N3", 0, 50, window="09:00-11:00", k=2)])
    tasks = [_task("N1", "V1", "09:00"), _task("N2", "V1", "09:40"),
             _task("N3", "V2", "10:30"), _task("N3", "V1", "10:30")]
    assert broken_assignments(_week(problem, tasks).cand, tasks) == {}

    def reasons(**changes: object) -> dict[int, str]:
        edited = replace(problem, **changes)  # type: ignore[arg-type]
        return {k: b.reason for k, b in _week(edited, tasks).broken.items()}

    v1, v2 = problem.volunteers
    n1, n2, n3 = problem.needs
    late = reasons(volunteers=[replace(v1, availability=(
        replace(v1.availability[0], window=TimeWindow.parse("09:30-12:00")),)), v2])
    assert list(late) == [0] and "no longer available mon 09:00-09:30 (R2)" in late[0]
    skills = reasons(needs=[replace(n1, skills=frozenset({"nursing"})), n2, n3])
    assert skills == {0: "V1 lacks the skill(s) nursing (R1)"}
    hours = reasons(volunteers=[replace(v1, max_hours_week=1.0), v2])
    assert list(hours) == [3] and "(R6)" in hours[3]  # the latest task beyond the hour
    longer = reasons(needs=[replace(n1, duration_min=45), n2, n3])
    assert longer == {0: "N1 now lasts 45 minutes"}
    fewer = reasons(needs=[n1, n2, replace(n3, volunteers_needed=1)])
    assert list(fewer) == [3] and "(R7)" in fewer[3]
    far = reasons(needs=[n1, replace(n2, location=replace(n2.location,
                                                          lat=n2.location.lat + 0.009)), n3])
    assert "outside V1's walking circle (R4)" in far[1]
    moved = reasons(needs=[n1, replace(n2, location=replace(n2.location,
                                                            lat=n2.location.lat + 0.006)), n3])
    assert moved == {1: "V1 has no time to walk from N1 to N2 (R5)"}


def test_a_merchant_full_after_an_edit_breaks_the_later_occurrence() -> None:
    problem = Problem(WEEK, [volunteer("V1"), volunteer("V2", 100, 0)],
                      [need("N1", window="10:00-12:00", merchant="meal"),
                       need("N2", 50, 0, window="10:00-12:00", merchant="meal")],
                      [merchant("M1", 0, 100, capacity=2)])
    tasks = [_task("N2", "V2", "11:00", merchant_id="M1"),
             _task("N1", "V1", "10:00", merchant_id="M1")]
    assert _week(problem, tasks).broken == {}
    full = replace(problem, merchants=[replace(problem.merchants[0], capacity_per_day=1)])
    broken = _week(full, tasks).broken
    assert list(broken) == [0] and "at most 1 a day" in broken[0].reason


def test_a_task_whose_occurrence_is_gone_holds_nothing() -> None:
    problem = _meals()
    tasks = [_task("N1", "V1", "10:00", merchant_id="M1")]
    moved = replace(problem, needs=[replace(problem.needs[0], days=(Day.TUE,)),
                                    problem.needs[1]])
    week = _week(moved, tasks)
    assert week.broken[0].reason == "N1 no longer happens on mon"
    assert not week.broken[0].holds
    fits = {f.volunteer_id: f for f in week.recommend("N2", Day.MON)}
    assert fits["V1"].displaces == ()  # her morning is free again


def _edit(data: st.DataObject, problem: Problem, used: set[str]) -> Problem:
    """The community after a coordinator's edit of one volunteer, need or merchant, mostly
    one that serves in the week (``used`` ids)."""
    spot = st.tuples(st.integers(-700, 700), st.integers(-700, 700))
    kinds = ["volunteers", "needs"] + (["merchants"] if problem.merchants else [])
    kind = data.draw(st.sampled_from(kinds))
    items = list(getattr(problem, kind))
    serving = [k for k, item in enumerate(items) if item.id in used]
    k = data.draw(st.sampled_from(serving) if serving and data.draw(st.integers(0, 4))
                  else st.integers(0, len(items) - 1))
    item = items[k]
    field = data.draw(st.sampled_from({
        "volunteers": ["availability", "max_hours_week", "skills", "location"],
        "needs": ["window", "duration_min", "location", "days", "volunteers_needed",
                  "skills"],
        "merchants": ["open", "capacity_per_day", "services", "location"]}[kind]))
    value: object
    if field == "location":
        value = offset(*data.draw(spot))
    elif field == "availability":
        start = data.draw(st.sampled_from([8, 9, 10, 14]))
        value = volunteer("x", windows=f"{data.draw(st.sampled_from(['mon', 'tue']))} "
                          f"{start:02d}:00-{start + data.draw(st.integers(1, 3)):02d}:00"
                          ).availability
    elif field == "max_hours_week":
        value = data.draw(st.sampled_from([0.5, 1, 1.5, 2]))
    elif field == "skills":
        value = frozenset(data.draw(st.sets(st.sampled_from(SKILLS), max_size=2)))
    elif field == "window":
        shift = data.draw(st.sampled_from([-60, -30, 30, 60]))
        value = TimeWindow(item.window.start + shift, item.window.end + shift)
    elif field == "duration_min":
        value = data.draw(st.integers(5, item.window.minutes))
    elif field == "days":
        value = (data.draw(st.sampled_from([Day.MON, Day.TUE])),)
    elif field == "volunteers_needed":
        value = 1
    elif field == "open":
        value = TimeWindow.parse(data.draw(st.sampled_from(
            ["08:00-20:00", "10:00-12:00", "14:00-20:00"])))
    elif field == "capacity_per_day":
        value = data.draw(st.integers(1, 2))
    else:
        value = frozenset({data.draw(st.sampled_from(["meal", "drinks"]))})
    items[k] = replace(item, **{field: value})
    return replace(problem, **{kind: items})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities(), st.data())
def test_what_is_broken_is_what_the_independent_validator_refuses(
        problem: Problem, data: st.DataObject) -> None:
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    assignments = _assignments(cand, greedy_plan(cand))
    assume(assignments)
    edited = _edit(data, problem, {i for a in assignments
                                   for i in (a.volunteer_id, a.need_id, a.merchant_id) if i})
    week = _week(edited, assignments)

    def violations(kept: list[Assignment]) -> list[str]:
        # Fewer volunteers than needed is a seat to fill, not a broken assignment.
        return [e for e in validate(edited, kept, geodesic_walk())
                if not ("needed (R7)" in e and int(e.split()[2]) < int(e.split()[4]))]

    assert (week.broken == {}) == (violations(assignments) == []), (
        week.broken, violations(assignments))
    kept = [a for k, a in enumerate(assignments) if k not in week.broken]
    assert violations(kept) == []
    event("an edit broke an assignment" if week.broken else "the edit broke nothing")
    # Re-planning goes on around them: every occurrence can be asked about, and no fit
    # displaces a broken assignment (only a coordinator takes one away).
    for occ in edited.occurrences:
        for fit in week.recommend(occ.need.id, occ.day):
            theirs = {(a.need_id, a.day) for k, a in enumerate(assignments)
                      if k in week.broken and a.volunteer_id == fit.volunteer_id}
            assert not theirs & set(fit.displaces)


def _displaced_by_rebuilding(week: PinnedWeek, option: int, start: int,
                             merchant: int | None) -> list[int] | None:
    """What a fit displaces, found as it was before :meth:`PinnedWeek._displaced` took tasks
    out in place: the whole week rebuilt for each task tried."""
    from matcher.timeline import Plan

    cand = week.cand
    opt = cand.options[option]
    o = opt.occurrence
    base = Plan({k: v for k, v in week.plan.covered.items() if k != o})
    if week.timelines(base, skip=o).blocker(opt, start, merchant) is None:
        return []
    mine = [c for c, (_, _, opts) in base.covered.items()
            if any(cand.options[i].volunteer == opt.volunteer for i in opts)]
    same_day = cand.problem.occurrences[o].day
    mine.sort(key=lambda c: cand.problem.occurrences[c].day != same_day)
    for drop in mine:
        start_d, merchant_d, opts = base.covered[drop]
        trial = Plan(dict(base.covered))
        trial.covered[drop] = (start_d, merchant_d, tuple(
            i for i in opts if cand.options[i].volunteer != opt.volunteer))
        if week.timelines(trial, skip=o).blocker(opt, start, merchant) is None:
            return [drop]
    return None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=communities(), seed=st.integers(0, 3))
def test_recommendations_match_rebuilding_the_week_for_each_trial(problem: Problem,
                                                                  seed: int) -> None:
    """Taking a task out of the timelines and putting it back finds what rebuilding the whole
    week for every trial found; ``free_only`` gives the free fits of the full list."""
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    week = PinnedWeek(cand, _assignments(cand, greedy_plan(cand)))
    reference = PinnedWeek(cand, _assignments(cand, greedy_plan(cand)))
    reference._displaced = (  # type: ignore[method-assign]
        lambda _timelines, _base, _mine, option, start, merchant:
        _displaced_by_rebuilding(reference, option, start, merchant))
    for occurrence in cand.problem.occurrences[seed::4]:
        fits = week.recommend(occurrence.need.id, occurrence.day)
        event("some fit displaces a task" if any(f.displaces for f in fits) else "none does")
        assert fits == reference.recommend(occurrence.need.id, occurrence.day)
        assert week.recommend(occurrence.need.id, occurrence.day, free_only=True) == [
            f for f in fits if not f.displaces]


def _same_timelines(got: Timelines, want: Timelines) -> None:
    """Equal as :meth:`Timelines.blocker` and the start points read them: each volunteer-day's
    tasks as a multiset, the minutes used, the merchants' loads (an empty entry is none)."""
    def tasks(t: Timelines) -> dict[tuple[int, Day], list[Task]]:
        return {key: sorted(day_tasks, key=repr) for key, day_tasks in t.tasks.items()
                if day_tasks}

    assert tasks(got) == tasks(want)
    assert got.used == want.used
    assert {k: n for k, n in got.merchant_load.items() if n} == \
        {k: n for k, n in want.merchant_load.items() if n}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities(), st.data())
def test_a_week_pinned_again_with_kept_statics_is_the_week_built_from_scratch(
        problem: Problem, data: st.DataObject) -> None:
    """A process keeps one :class:`Statics` per built week and pins the tasks again after each
    decline (a task out), offer (a task in) or cancellation; an edit of the community builds a
    new week. After any such sequence the week is the one built from scratch: the same broken
    tasks (and reasons), plan and held tasks, the same timelines without each occurrence, the
    same fits and the same free fits a decline takes the first of."""
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    tasks = _assignments(cand, greedy_plan(cand))
    assume(tasks)
    statics = Statics(cand)
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        step = data.draw(st.sampled_from(["decline", "offer", "edit"]))
        if step == "decline" and tasks:
            tasks = [a for a in tasks if a != data.draw(st.sampled_from(tasks))]
        elif step == "offer":  # a free fit (or any fit) of an occurrence taken up
            occ = data.draw(st.sampled_from(problem.occurrences))
            week = PinnedWeek(cand, tasks, statics)
            fits = week.recommend(occ.need.id, occ.day)
            if fits:
                fit = data.draw(st.sampled_from(fits))
                tasks = [*tasks, Assignment(occ.need.id, occ.day, occ.date, fit.start,
                                            fit.start + occ.need.duration_min,
                                            fit.volunteer_id, fit.merchant_id, fit.walk_min)]
        elif step == "edit":
            problem = _edit(data, problem, {i for a in tasks for i in (
                a.volunteer_id, a.need_id, a.merchant_id) if i})
            cand = build_candidates(problem, TravelTimes.build(problem, Settings()),
                                    ServiceCircle())
            statics = Statics(cand)
        kept, scratch = PinnedWeek(cand, tasks, statics), PinnedWeek(cand, tasks)
        assert kept.broken == scratch.broken == broken_assignments(cand, tasks)
        assert kept.plan == scratch.plan and kept.held == scratch.held
        event("a task is broken" if kept.broken else "no task is broken")
        for o, occ in enumerate(cand.problem.occurrences):
            base = Plan({k: v for k, v in scratch.plan.covered.items() if k != o})
            _same_timelines(kept.timelines_without(o), scratch.timelines(base, skip=o))
            on_it = {a.volunteer_id for a in tasks if (a.need_id, a.day) == (occ.need.id,
                                                                             occ.day)}
            assert kept.recommend(occ.need.id, occ.day, exclude=on_it) == \
                scratch.recommend(occ.need.id, occ.day, exclude=on_it)
            assert kept.recommend(occ.need.id, occ.day, exclude=on_it, free_only=True) == \
                scratch.recommend(occ.need.id, occ.day, exclude=on_it, free_only=True)


def _every_start_tried(week: PinnedWeek, need_id: str, day: Day, exclude: set[str],
                       free_only: bool) -> list[Fit]:
    """:meth:`PinnedWeek.recommend` as it was before it skipped the starts that could not rank
    better than a volunteer's fit so far: every start and merchant weighed for everyone."""
    cand = week.cand
    o = week.occ_index[(need_id, day)]
    excluded = {week.vol_index[v] for v in exclude if v in week.vol_index}
    current = week.plan.covered.get(o)
    staying = [] if current is None else [
        i for i in current[2] if cand.options[i].volunteer not in excluded]
    excluded |= {cand.options[i].volunteer for i in staying}
    base = Plan({k: v for k, v in week.plan.covered.items() if k != o})
    timelines = week.timelines(base, skip=o)
    if staying and current is not None:
        slots = [(current[0], current[1])]
    else:
        merchants: list[int | None] = [*sorted(cand.occ_merchants[o])] or [None]
        slots = [(s, m) for s in timelines.start_points(o) for m in merchants
                 if m is None or timelines.merchant_free(o, m, s)]
    mine: dict[int, list[int]] = {}
    for covered, (_, _, opts) in base.covered.items():
        for i in opts:
            mine.setdefault(cand.options[i].volunteer, []).append(covered)
    fits: dict[int, tuple[tuple[int, int, float], Fit]] = {}
    for i in cand.by_occurrence[o]:
        option = cand.options[i]
        v = option.volunteer
        if v in excluded:
            continue
        for start, shop in slots:
            if shop is not None and shop not in option.merchants:
                continue
            walk = option.walks[0] if shop is None else option.walks[option.merchants.index(shop)]
            displaced = week._displaced(timelines, base, mine.get(v, []), i, start, shop)
            if free_only and displaced:
                displaced = None
            if displaced is None:
                continue
            rank = (len(displaced), max((week._priority(d) for d in displaced), default=-1),
                    walk)
            if v not in fits or rank < fits[v][0]:
                fits[v] = (rank, Fit(
                    cand.problem.volunteers[v].id, start,
                    None if shop is None else cand.problem.merchants[shop].id,
                    round(walk, 1), tuple((cand.problem.occurrences[d].need.id,
                                           cand.problem.occurrences[d].day)
                                          for d in displaced)))
    return [fit for _, fit in sorted(fits.values(), key=lambda x: x[0])]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities(max_volunteers=3, max_needs=10), st.data())
def test_skipping_starts_that_cannot_rank_better_keeps_every_fit(
        problem: Problem, data: st.DataObject) -> None:
    """Busy volunteers (few of them, many needs), so that fits displace tasks."""
    cand = build_candidates(problem, TravelTimes.build(problem, Settings()), ServiceCircle())
    tasks = _assignments(cand, greedy_plan(cand))
    if tasks and data.draw(st.booleans()):  # an edit: broken tasks hold time
        problem = _edit(data, problem, {i for a in tasks for i in (
            a.volunteer_id, a.need_id, a.merchant_id) if i})
        cand = build_candidates(problem, TravelTimes.build(problem, Settings()),
                                ServiceCircle())
    week = PinnedWeek(cand, tasks)
    for occ in cand.problem.occurrences:
        exclude = set(data.draw(st.sets(st.sampled_from(
            [v.id for v in problem.volunteers]), max_size=1)))
        for free_only in (False, True):
            fits = _every_start_tried(week, occ.need.id, occ.day, exclude, free_only)
            event("some fit displaces a task" if any(f.displaces for f in fits) else "none")
            assert week.recommend(occ.need.id, occ.day, exclude, limit=10**6,
                                  free_only=free_only) == fits
