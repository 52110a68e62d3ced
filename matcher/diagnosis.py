"""Why an occurrence stayed unmet, and what would fix it.

Each uncovered occurrence is examined from the most fundamental cause down: nobody with the skills
lives within the circle; no partner merchant is near; nobody is available at that time; not enough
people for a double task; the merchants are full; and finally the capable volunteers are busy with
other tasks or out of weekly hours. Messages name volunteers and numbers a coordinator can act on.
"""

from __future__ import annotations

import math

from matcher.circles import Candidates, merchant_choices
from matcher.domain import Occurrence, Unmet, UnmetReason
from matcher.timeline import Blocker, Plan, Timelines

_SHOW = 5


def _names(ids: list[str]) -> str:
    shown = ", ".join(ids[:_SHOW])
    return shown + (f" and {len(ids) - _SHOW} more" if len(ids) > _SHOW else "")


def _skills_text(occ: Occurrence) -> str:
    return " + ".join(sorted(occ.need.skills)) if occ.need.skills else "no special skill"


def _hours_text(minutes: int) -> str:
    hours = math.ceil(minutes / 30) / 2  # round up to half hours
    return f"{hours:g} hour" + ("" if hours == 1 else "s")


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
        _diagnose_one(cand, timelines, o, proven_optimal)
        for o in range(len(cand.problem.occurrences)) if o not in plan.covered
    ]


def _diagnose_one(cand: Candidates, tl: Timelines, o: int, proven_optimal: bool) -> Unmet:
    problem = cand.problem
    occ = problem.occurrences[o]
    need = occ.need
    k = need.volunteers_needed
    radius = cand.circle.radius_min

    def unmet(reason: UnmetReason, detail: str, fix: str = "",
              names: tuple[str, ...] = ()) -> Unmet:
        return Unmet(need.id, occ.day, occ.date, reason, detail, fix, names)

    skilled = [v for v, vol in enumerate(problem.volunteers) if need.skills <= vol.skills]
    near = [v for v in skilled if cand.circle.contains(cand.home_to_need(v, o))]
    if len(near) < k:
        walks = sorted((cand.home_to_need(v, o), problem.volunteers[v].id) for v in skilled
                       if v not in near)
        nearest = (f"; the nearest other is {walks[0][1]} at {walks[0][0]:.0f} min"
                   if walks and math.isfinite(walks[0][0]) else "")
        return unmet(UnmetReason.NO_SKILLED_VOLUNTEER_IN_CIRCLE,
                     f"{len(near)} volunteer(s) with {_skills_text(occ)} live within "
                     f"{radius:g} min, {k} needed{nearest}",
                     f"{k - len(near)} more volunteer(s) with {_skills_text(occ)} within "
                     f"{radius:g} minutes' walk")
    if need.merchant_service is not None:
        offering = [j for j, m in enumerate(problem.merchants)
                    if need.merchant_service in m.services]
        in_circle = [j for j in offering if cand.circle.contains(cand.need_to_merchant(o, j))]
        if not in_circle:
            return unmet(UnmetReason.NO_MERCHANT_IN_CIRCLE,
                         f"no partner merchant offering {need.merchant_service!r} within "
                         f"{radius:g} min",
                         f"a partner merchant offering {need.merchant_service!r} within "
                         f"{radius:g} minutes of the beneficiary")
        usable = merchant_choices(problem, cand.travel, cand.circle, occ)
        if not usable:
            hours = ", ".join(f"{problem.merchants[j].id} {problem.merchants[j].open}"
                              for j in in_circle)
            return unmet(UnmetReason.MERCHANT_CLOSED,
                         f"the nearby merchants are closed during {need.window} ({hours})",
                         "a window inside the merchants' opening hours")
    options = [cand.options[i] for i in cand.by_occurrence[o]]
    capable = sorted({opt.volunteer for opt in options})
    if not capable:
        near_ids = [problem.volunteers[v].id for v in near]
        that_day = [problem.volunteers[v] for v in near
                    if problem.volunteers[v].windows_on(occ.day)]
        fix = "a wider window, or a volunteer available then"
        if that_day:
            vol = that_day[0]
            windows = ", ".join(str(w) for w in vol.windows_on(occ.day))
            fix = (f"{vol.id} is available {occ.day} {windows}: a window that fits it "
                   f"({need.duration_min} min) would let them")
        detail = (f"{len(near)} capable volunteer(s) live near ({_names(near_ids)}) but none is "
                  f"free {occ.day} {need.window}")
        if need.merchant_service is not None:
            detail += f" and within {radius:g} min of a merchant offering it"
        return unmet(UnmetReason.NO_AVAILABLE_VOLUNTEER, detail, fix)
    if len(capable) < k:
        ids = [problem.volunteers[v].id for v in capable]
        return unmet(UnmetReason.NOT_ENOUGH_VOLUNTEERS,
                     f"needs {k} volunteers at once; only {len(capable)} can ({_names(ids)})",
                     f"{k - len(capable)} more volunteer(s) with {_skills_text(occ)} free "
                     f"{occ.day} {need.window} within {radius:g} minutes",
                     tuple(ids))
    reason, detail, fix, names = _busy_or_full(cand, tl, o, proven_optimal)
    return unmet(reason, detail, fix, names)


def _busy_or_full(cand: Candidates, tl: Timelines, o: int,
                  proven_optimal: bool) -> tuple[UnmetReason, str, str, tuple[str, ...]]:
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
                "capable volunteers are free but the time limit ended the search",
                "run again with a longer --time-limit", ())
    if need.merchant_service is not None and merchant_open and not any(merchant_open.values()):
        full = [problem.merchants[j] for j in merchant_open if j is not None]
        text = ", ".join(f"{m.id} ({m.capacity_per_day}/day)" for m in full)
        return (UnmetReason.MERCHANT_FULL,
                f"the merchants within reach are full on {occ.day}: {text}",
                f"{full[0].id} could serve it with capacity {full[0].capacity_per_day + 1} "
                f"on {occ.day}", ())
    if out_of_hours:
        ranked = sorted(out_of_hours.items(), key=lambda kv: kv[1])
        ids = [problem.volunteers[v].id for v, _ in ranked]
        v, over = ranked[0]
        return (UnmetReason.OUT_OF_HOURS,
                f"capable volunteers have used their weekly hours: {_names(ids)}",
                f"{problem.volunteers[v].id} could if their cap were {_hours_text(over)} "
                "higher", tuple(ids))
    ids = [problem.volunteers[v].id for v in sorted(busy)]
    tasks = []
    for v in sorted(busy)[:1]:
        for t in tl.tasks.get((v, occ.day), []):
            other = problem.occurrences[t.occurrence].need.id
            tasks.append(f"{other} {t.start // 60:02d}:{t.start % 60:02d}")
    busy_with = f" ({ids[0]} serves {', '.join(tasks)})" if tasks else ""
    return (UnmetReason.VOLUNTEERS_BUSY,
            f"the capable volunteers are busy with other tasks then: {_names(ids)}{busy_with}",
            f"one more volunteer with {_skills_text(occ)} free {occ.day} {need.window} "
            f"within {cand.circle.radius_min:g} minutes, or a wider window",
            tuple(ids))
