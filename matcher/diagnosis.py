"""Why an occurrence stayed unmet, and what would fix it.

Each uncovered occurrence is examined from the most fundamental cause down: nobody with the skills
lives within the circle; no partner merchant is near; nobody is available at that time; not enough
people for a double task; the merchants are full; and finally the capable volunteers are busy with
other tasks or out of weekly hours. Messages name volunteers and numbers a coordinator can act on.

Each fix is a change to the inputs (:data:`~matcher.domain.Fix`), proposed only once it is
checked: applied to a copy of the problem, with the rest of the week as planned, the occurrence
can be covered. Where no single change does that, the fix says so.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

from matcher.circles import Candidates, changed_candidates, merchant_choices
from matcher.domain import (
    ExtraWindow,
    Fix,
    HigherCap,
    MerchantCapacity,
    MerchantHours,
    NewMerchant,
    NewVolunteers,
    Occurrence,
    TimeWindow,
    Unmet,
    UnmetReason,
    day_word,
    skills_word,
)
from matcher.i18n import _
from matcher.timeline import Blocker, Plan, Timelines

_SHOW = 5
# Changes of one kind tried per occurrence before the next kind: each try is cheap, but there
# are many unmet occurrences at street scale.
_TRIES = 4
# Marked where it is used (the catalog needs the message as one literal).
NO_SINGLE_FIX = ("no single change found that lets it be covered with the rest of the week "
                 "as planned")


def _no_single_fix() -> str:
    return _("no single change found that lets it be covered with the rest of the week as "
             "planned")


def _names(ids: list[str]) -> str:
    shown = ", ".join(ids[:_SHOW])
    more = _(" and {n} more").format(n=len(ids) - _SHOW) if len(ids) > _SHOW else ""
    return shown + more


def _skills_text(occ: Occurrence) -> str:
    return skills_word(occ.need.skills)


def _half_hours(minutes: int) -> float:
    """``minutes`` in hours, rounded up to half hours."""
    return math.ceil(minutes / 30) / 2


def diagnose(cand: Candidates, plan: Plan, proven_optimal: bool) -> list[Unmet]:
    """Explain every occurrence the plan leaves uncovered.

    Parameters
    ----------
    cand
        The problem's options.
    plan
        The final plan; the volunteers' timelines are rebuilt from it.
    proven_optimal
        Whether the solver proved the coverage optimal; when it did not, an occurrence that could
        still be inserted is reported as ``solver_time_limit``.
    """
    timelines = Timelines.of_plan(cand, plan)
    return [
        _diagnose_one(cand, plan, timelines, o, proven_optimal)
        for o in range(len(cand.problem.occurrences)) if o not in plan.covered
    ]


def coverable(cand: Candidates, tl: Timelines, o: int) -> bool:
    """Whether ``volunteers_needed`` of occurrence ``o``'s volunteers are free at one start and
    merchant, around the tasks of ``tl`` (R2-R8: the occurrence could be added as it stands).

    The starts tried (:meth:`Timelines.start_points`) hold the earliest feasible start of every
    volunteer and merchant together, since that is one of their own earliest starts.
    """
    need = cand.problem.occurrences[o].need
    merchants: list[int | None] = [*sorted(cand.occ_merchants[o])] or [None]
    options = [cand.options[i] for i in cand.by_occurrence[o]]
    for start in tl.start_points(o):
        for j in merchants:
            if j is not None and not tl.merchant_free(o, j, start):
                continue
            free = {opt.volunteer for opt in options
                    if (j is None or j in opt.merchants) and tl.blocker(opt, start, j) is None}
            if len(free) >= need.volunteers_needed:
                return True
    return False


def works(cand: Candidates, plan: Plan, o: int, fix: Fix,
          timelines: Timelines | None = None) -> bool:
    """Whether occurrence ``o`` can be covered once ``fix`` is applied to a copy of the problem,
    the rest of ``plan`` kept as it is (``timelines``: the plan's, when already built)."""
    problem = fix.apply(cand.problem)
    if problem.needs is cand.problem.needs:
        # A fix leaves the needs as they are: their occurrences are not expanded again.
        problem.occurrences = cand.problem.occurrences
    travel = cand.travel
    need = ("N", cand.problem.occurrences[o].need.id)
    new = [("V", v.id) for v in problem.volunteers] + [("M", m.id) for m in problem.merchants]
    if any(key not in travel.index for key in new):
        # Fixes put new volunteers and merchants at the need's place: they walk as it does.
        travel = copy.copy(travel)
        travel.index = {**cand.travel.index,
                        **{key: cand.travel.index[need] for key in new
                           if key not in cand.travel.index}}
    changed = changed_candidates(cand, problem, travel, o)
    # A fix changes no occurrence and keeps every option's index: the plan's timelines hold.
    tl = Timelines.of_plan(cand, plan) if timelines is None else timelines
    return coverable(changed, tl.through(changed), o)


def _first(cand: Candidates, plan: Plan, tl: Timelines, o: int,
           fixes: Iterable[Fix]) -> Fix | None:
    return next((fix for fix in fixes if works(cand, plan, o, fix, tl)), None)


def _diagnose_one(cand: Candidates, plan: Plan, tl: Timelines, o: int,
                  proven_optimal: bool) -> Unmet:
    problem = cand.problem
    occ = problem.occurrences[o]
    need = occ.need
    k = need.volunteers_needed
    radius = cand.circle.radius_min

    def unmet(reason: UnmetReason, detail: str, fixes: Iterable[Fix] = (),
              names: tuple[str, ...] = ()) -> Unmet:
        fix = _first(cand, plan, tl, o, fixes)
        text = _no_single_fix() if fix is None else fix.describe(problem)
        return Unmet(need.id, occ.day, occ.date, reason, detail, text, names, fix)

    def new_volunteers(least: int) -> list[Fix]:
        return [NewVolunteers(need.id, occ.day, n) for n in range(max(least, 1), k + 1)]

    def windows(volunteers: list[int]) -> list[Fix]:
        """The need's window added to the nearest of ``volunteers``, those free that day
        first (the smallest change to ask of them)."""
        ranked = sorted(volunteers, key=lambda v: (not problem.volunteers[v].windows_on(occ.day),
                                                   cand.home_to_need(v, o), v))
        return [ExtraWindow(problem.volunteers[v].id, occ.day, need.window)
                for v in ranked[:_TRIES]]

    skilled = [v for v, vol in enumerate(problem.volunteers) if need.skills <= vol.skills]
    near = [v for v in skilled if cand.circle.contains(cand.home_to_need(v, o))]
    if len(near) < k:
        walks = sorted((cand.home_to_need(v, o), problem.volunteers[v].id) for v in skilled
                       if v not in near)
        nearest = (_("; the nearest other is {volunteer} at {minutes:.0f} min").format(
                       volunteer=walks[0][1], minutes=walks[0][0])
                   if walks and math.isfinite(walks[0][0]) else "")
        return unmet(UnmetReason.NO_SKILLED_VOLUNTEER_IN_CIRCLE,
                     _("{near} volunteer(s) with {skills} live within {radius:g} min, {k} "
                       "needed").format(near=len(near), skills=_skills_text(occ),
                                        radius=radius, k=k) + nearest,
                     new_volunteers(k - len(near)))
    if need.merchant_service is not None:
        offering = [j for j, m in enumerate(problem.merchants)
                    if need.merchant_service in m.services]
        in_circle = [j for j in offering if cand.circle.contains(cand.need_to_merchant(o, j))]
        if not in_circle:
            return unmet(UnmetReason.NO_MERCHANT_IN_CIRCLE,
                         _("no partner merchant offering {service!r} within {radius:g} "
                           "min").format(service=need.merchant_service, radius=radius),
                         [NewMerchant(need.id)])
        usable = merchant_choices(problem, cand.travel, cand.circle, occ)
        if not usable:
            hours = ", ".join(f"{problem.merchants[j].id} {problem.merchants[j].open}"
                              for j in in_circle)
            return unmet(UnmetReason.MERCHANT_CLOSED,
                         _("the nearby merchants are closed during {window} ({hours})").format(
                             window=need.window, hours=hours),
                         [MerchantHours(problem.merchants[j].id,
                                        _spanning(problem.merchants[j].open, need.window))
                          for j in sorted(in_circle,
                                          key=lambda j: (cand.need_to_merchant(o, j), j))
                          [:_TRIES]])
    options = [cand.options[i] for i in cand.by_occurrence[o]]
    capable = sorted({opt.volunteer for opt in options})
    if not capable:
        near_ids = [problem.volunteers[v].id for v in near]
        detail = _("{near} capable volunteer(s) live near ({names}) but none is free {day} "
                   "{window}").format(near=len(near), names=_names(near_ids),
                                      day=day_word(occ.day), window=need.window)
        if need.merchant_service is not None:
            detail += _(" and within {radius:g} min of a merchant offering it").format(
                radius=radius)
        fixes = windows(near) if k == 1 else []
        return unmet(UnmetReason.NO_AVAILABLE_VOLUNTEER, detail, fixes + new_volunteers(k))
    if len(capable) < k:
        ids = [problem.volunteers[v].id for v in capable]
        short = k - len(capable)
        fixes = windows([v for v in near if v not in capable]) if short == 1 else []
        return unmet(UnmetReason.NOT_ENOUGH_VOLUNTEERS,
                     _("needs {k} volunteers at once; only {n} can ({names})").format(
                         k=k, n=len(capable), names=_names(ids)),
                     fixes + new_volunteers(short), tuple(ids))
    reason, detail, fixes, names = _busy_or_full(cand, tl, o, proven_optimal)
    if reason is UnmetReason.SOLVER_LIMIT:
        return Unmet(need.id, occ.day, occ.date, reason, detail,
                     _("run again with a longer --time-limit"), names)
    return unmet(reason, detail, [*fixes, *new_volunteers(1)], names)


def _spanning(a: TimeWindow, b: TimeWindow) -> TimeWindow:
    return TimeWindow(min(a.start, b.start), max(a.end, b.end))


def _busy_or_full(cand: Candidates, tl: Timelines, o: int,
                  proven_optimal: bool) -> tuple[UnmetReason, str, list[Fix], tuple[str, ...]]:
    """The capable volunteers exist: are they busy, out of hours, or are merchants full?"""
    problem = cand.problem
    occ = problem.occurrences[o]
    need = occ.need
    k = need.volunteers_needed
    options = [cand.options[i] for i in cand.by_occurrence[o]]
    merchants: list[int | None] = (
        [None] if need.merchant_service is None
        else [*sorted({j for opt in options for j in opt.merchants})]
    )
    starts = tl.start_points(o)
    free: dict[int | None, set[int]] = {j: set() for j in merchants}
    out_of_hours: dict[int, int] = {}
    busy: set[int] = set()
    merchant_open = {j: any(tl.merchant_free(o, j, s) for s in starts)
                     for j in merchants if j is not None}
    for opt in options:
        v = opt.volunteer
        for start in starts:
            for j in (opt.merchants or (None,)):
                b = tl.blocker(opt, start, j)
                if b is None:
                    if j is None or tl.merchant_free(o, j, start):
                        free[j].add(v)
                elif b is Blocker.HOURS:
                    over = tl.used[v] + need.duration_min - cand.minutes_cap(v)
                    out_of_hours[v] = over
                elif b is Blocker.BUSY:
                    busy.add(v)
    if any(len(vs) >= k for vs in free.values()) and not proven_optimal:
        return (UnmetReason.SOLVER_LIMIT,
                _("capable volunteers are free but the time limit ended the search"), [], ())
    if need.merchant_service is not None and merchant_open and not any(merchant_open.values()):
        full = [problem.merchants[j] for j in merchant_open if j is not None]
        text = ", ".join(_("{merchant} ({capacity}/day)").format(merchant=m.id,
                                                                  capacity=m.capacity_per_day)
                         for m in full)
        return (UnmetReason.MERCHANT_FULL,
                _("the merchants within reach are full on {day}: {merchants}").format(
                    day=day_word(occ.day), merchants=text),
                [MerchantCapacity(m.id, m.capacity_per_day + 1) for m in full[:_TRIES]], ())
    if out_of_hours:
        ranked = sorted(out_of_hours.items(), key=lambda kv: kv[1])
        ids = [problem.volunteers[v].id for v, _ in ranked]
        return (UnmetReason.OUT_OF_HOURS,
                _("capable volunteers have used their weekly hours: {names}").format(
                    names=_names(ids)),
                [HigherCap(problem.volunteers[v].id,
                           problem.volunteers[v].max_hours_week + _half_hours(over))
                 for v, over in ranked[:_TRIES]], tuple(ids))
    ids = [problem.volunteers[v].id for v in sorted(busy)]
    tasks = []
    for v in sorted(busy)[:1]:
        for t in tl.tasks.get((v, occ.day), []):
            other = problem.occurrences[t.occurrence].need.id
            tasks.append(f"{other} {t.start // 60:02d}:{t.start % 60:02d}")
    busy_with = (_(" ({volunteer} serves {tasks})").format(volunteer=ids[0],
                                                            tasks=", ".join(tasks))
                 if tasks else "")
    return (UnmetReason.VOLUNTEERS_BUSY,
            _("the capable volunteers are busy with other tasks then: {names}").format(
                names=_names(ids)) + busy_with,
            [], tuple(ids))
