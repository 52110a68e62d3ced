"""Change one occurrence of a published week without disturbing the rest.

"Who could take this?" ranks every volunteer who satisfies all rules with the other assignments
pinned, and says what each choice would displace. A decline uses it: the freed place goes to the
best volunteer who displaces nothing. Everything else stays exactly as published.

A published week can break a rule after the fact: a merchant narrows its hours, a volunteer
changes her availability. :func:`broken_assignments` says which pinned assignments break which
rule (the API marks them "at risk"), and :class:`PinnedWeek` works around them instead of
refusing the week: a broken assignment whose occurrence still exists keeps holding its
volunteer's time (and its merchant's capacity), because a person agreed to it and only a
coordinator may take it away; it is never displaced and never validated. One whose occurrence no
longer exists (the need dropped that day) holds nothing.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matcher.circles import Candidates, walk_ceil
from matcher.domain import Assignment, Day, format_hhmm
from matcher.timeline import Cover, Plan, Task, Timelines


@dataclass(frozen=True, slots=True)
class Fit:
    """One volunteer who could serve the occurrence at ``start`` (via ``merchant_id``).

    ``displaces`` lists the ``(need_id, day)`` this volunteer would have to give up first (empty:
    a free fit). Fits are ranked free first, then by what they displace, then by walking.
    """

    volunteer_id: str
    start: int
    merchant_id: str | None
    walk_min: float
    displaces: tuple[tuple[str, Day], ...] = ()


@dataclass(frozen=True, slots=True)
class Broken:
    """A pinned assignment that breaks a rule of the current community, and why.

    ``holds`` is whether it still holds its volunteer's time in re-planning: true unless its
    occurrence (or its volunteer) no longer exists in the week.
    """

    reason: str
    holds: bool = True


class Statics:
    """What pinning assignments on ``cand`` needs that no other assignment changes: the
    indexes of the problem and, kept per assignment once seen, whether it still has an option
    (R1-R4, R8's service and hours, the need's duration). A process keeps one per built week so
    a week pinned again after a decline checks only the week rules again; the results are those
    of checking from scratch."""

    def __init__(self, cand: Candidates) -> None:
        self.cand = cand
        problem = cand.problem
        self.occ_index = {(o.need.id, o.day): k for k, o in enumerate(problem.occurrences)}
        self.vol_index = {v.id: k for k, v in enumerate(problem.volunteers)}
        self.merchant_index = {m.id: k for k, m in enumerate(problem.merchants)}
        self._seen: dict[Assignment, tuple[tuple[int, int, int | None] | None,
                                           Broken | None, int | None]] = {}

    def check(self, a: Assignment) -> tuple[tuple[int, int, int | None] | None, Broken | None,
                                            int | None]:
        """``a``'s (occurrence, volunteer, merchant) indexes (None when either of the first
        two is gone), the static rule it breaks if any, and else the option that serves it."""
        seen = self._seen.get(a)
        if seen is None:
            seen = self._seen[a] = self._check(a)
        return seen

    def _check(self, a: Assignment) -> tuple[tuple[int, int, int | None] | None,
                                             Broken | None, int | None]:
        o = self.occ_index.get((a.need_id, a.day))
        if o is None:
            return None, Broken(f"{a.need_id} no longer happens on {a.day.value}",
                                holds=False), None
        v = self.vol_index.get(a.volunteer_id)
        if v is None:
            return None, Broken(f"{a.volunteer_id} is no longer a volunteer", holds=False), None
        merchant = None if a.merchant_id is None else self.merchant_index.get(a.merchant_id)
        placed = (o, v, merchant)
        if a.merchant_id is not None and merchant is None:
            return placed, Broken(f"{a.merchant_id} is no longer a partner merchant"), None
        option = option_at(self.cand, o, v, a.start, a.end, merchant)
        if option is None:
            return placed, Broken(_why(self.cand, o, v, a, merchant)), None
        return placed, None, option


def broken_assignments(cand: Candidates, assignments: Sequence[Assignment],
                       statics: Statics | None = None) -> dict[int, Broken]:
    """The assignments (by position) that break a rule of ``cand``'s problem, each with the
    first rule it breaks in words; an assignment not listed keeps every rule.

    An assignment is fine when its (volunteer, occurrence) is still an option at its start and
    merchant (R1-R4, the merchant's service and hours of R8, the need's duration) and the week's
    rules hold among the assignments: no more volunteers than needed (R7), weekly hours (R6),
    the walk between consecutive tasks (R5) and the merchant's daily capacity (R8). Where a week
    rule breaks, the later assignments are the ones listed (the earlier ones still fit). Fewer
    volunteers than needed is not a break: it is a seat to fill, as after a decline.
    """
    return _assess(statics or Statics(cand), assignments)[0]


def _assess(statics: Statics, assignments: Sequence[Assignment]
            ) -> tuple[dict[int, Broken], dict[int, tuple[int, int, int | None]], dict[int, int]]:
    """The broken assignments (as :func:`broken_assignments`), the indexes of those whose
    occurrence and volunteer exist, and the option of each that has one."""
    out: dict[int, Broken] = {}
    placed: dict[int, tuple[int, int, int | None]] = {}  # position -> (occ, vol, merchant)
    options: dict[int, int] = {}
    for k, a in enumerate(assignments):
        where, broken, option = statics.check(a)
        if where is not None:
            placed[k] = where
        if broken is not None:
            out[k] = broken
        elif option is not None:
            options[k] = option
    _week_rules(statics.cand, assignments, placed, out)
    return out, placed, options


def option_at(cand: Candidates, occurrence: int, volunteer: int, start: int, end: int,
              merchant: int | None) -> int | None:
    """The option that lets ``volunteer`` serve ``occurrence`` at ``start``-``end`` via
    ``merchant``, if one does."""
    occ = cand.problem.occurrences[occurrence]
    if end - start != occ.need.duration_min:
        return None
    if (merchant is None) != (occ.need.merchant_service is None):
        return None
    if merchant is not None:
        bounds = cand.merchant_starts.get((occurrence, merchant))
        if bounds is None or not bounds[0] <= start <= bounds[1]:
            return None
    for i in cand.by_occurrence[occurrence]:
        option = cand.options[i]
        if option.volunteer == volunteer and option.lo <= start <= option.hi and (
                merchant is None or merchant in option.merchants):
            return i
    return None


def _why(cand: Candidates, o: int, v: int, a: Assignment, merchant: int | None) -> str:
    """The first static rule an assignment without an option breaks, in words."""
    problem = cand.problem
    need, vol = problem.occurrences[o].need, problem.volunteers[v]
    when = f"{a.day.value} {format_hhmm(a.start)}-{format_hhmm(a.end)}"
    if a.end - a.start != need.duration_min:
        return f"{need.id} now lasts {need.duration_min} minutes"
    if not need.skills <= vol.skills:
        return f"{vol.id} lacks the skill(s) {', '.join(sorted(need.skills - vol.skills))} (R1)"
    if need.duration_min > vol.max_minutes_week:
        return f"{vol.id}'s weekly hours are shorter than the task (R6)"
    if not cand.circle.contains(cand.home_to_need(v, o)):
        return f"{need.id} is outside {vol.id}'s walking circle (R4)"
    if not need.window.contains(a.start, a.end):
        return f"{when} is outside {need.id}'s window {need.window} (R3)"
    if not any(w.contains(a.start, a.end) for w in vol.windows_on(a.day)):
        return f"{vol.id} is no longer available {when} (R2)"
    if need.merchant_service is None and merchant is not None:
        return f"{need.id} no longer needs a merchant"
    if need.merchant_service is not None and merchant is None:
        return f"{need.id} now needs a merchant for {need.merchant_service} (R8)"
    if merchant is not None:
        shop = problem.merchants[merchant]
        if need.merchant_service not in shop.services:
            return f"{shop.id} no longer offers {need.merchant_service} (R8)"
        if not shop.open.start <= a.start < shop.open.end:
            return f"{shop.id} is not open at {format_hhmm(a.start)} (open {shop.open}) (R8)"
        if shop.capacity_per_day <= 0:
            return f"{shop.id} takes no orders (R8)"
        if (o, merchant) not in cand.merchant_starts:
            return f"{shop.id} is outside {need.id}'s walking circle (R4)"
        return f"{shop.id} is outside {vol.id}'s walking circle (R4)"
    return f"{vol.id} on {need.id} {a.day.value} breaks a rule"


def _week_rules(cand: Candidates, assignments: Sequence[Assignment],
                placed: dict[int, tuple[int, int, int | None]], out: dict[int, Broken]) -> None:
    """Add the assignments that break R7, R6, R5 or R8's capacity to ``out``."""
    problem = cand.problem
    by_occ: dict[int, list[int]] = defaultdict(list)
    by_vol: dict[int, list[int]] = defaultdict(list)
    for k, (o, v, _) in placed.items():
        by_occ[o].append(k)
        by_vol[v].append(k)
    for o, ks in by_occ.items():  # R7: no more volunteers than the need asks for now
        need = problem.occurrences[o].need
        staff: list[int] = []
        for k in ks:
            if placed[k][1] not in staff:
                staff.append(placed[k][1])
            if len(staff) > need.volunteers_needed:
                out.setdefault(k, Broken(
                    f"{need.id} now needs {need.volunteers_needed} volunteer(s) (R7)"))
    for v, ks in by_vol.items():
        vol = problem.volunteers[v]
        ks.sort(key=lambda k: (assignments[k].date, assignments[k].start))
        used = 0
        for k in ks:  # R6: the later tasks beyond the weekly cap
            used += assignments[k].end - assignments[k].start
            if used > vol.max_minutes_week:
                out.setdefault(k, Broken(
                    f"{vol.id}'s weekly hours ({vol.max_hours_week:g}) are exceeded (R6)"))
        for first, second in itertools.pairwise(ks):  # R5: time to walk between tasks
            a, b = assignments[first], assignments[second]
            if a.date != b.date:
                continue
            walk = cand.transition(placed[first][0], placed[second][0], placed[second][2])
            if a.end + walk_ceil(walk) > b.start:
                out.setdefault(second, Broken(
                    f"{vol.id} has no time to walk from {a.need_id} to {b.need_id} (R5)"))
    load: dict[tuple[int, Day], list[int]] = defaultdict(list)
    for o, ks in by_occ.items():
        merchant = placed[ks[0]][2]
        if merchant is not None:
            load[(merchant, problem.occurrences[o].day)].append(o)
    for (merchant, day), occs in load.items():  # R8: the merchant's daily capacity
        shop = problem.merchants[merchant]
        occs.sort(key=lambda o: min(assignments[k].start for k in by_occ[o]))
        for o in occs[shop.capacity_per_day:]:
            for k in by_occ[o]:
                out.setdefault(k, Broken(
                    f"{shop.id} serves at most {shop.capacity_per_day} a day on "
                    f"{day.value} (R8)"))


class PinnedWeek:
    """A published week in index form, ready for single-occurrence changes.

    ``broken`` lists the assignments (by position) that break a rule of the current community;
    they hold their volunteers' time without being part of the plan (see the module).
    """

    def __init__(self, cand: Candidates, assignments: Sequence[Assignment],
                 statics: Statics | None = None) -> None:
        """``statics`` (of ``cand``) may be kept from an earlier week pinned on ``cand``."""
        statics = statics or Statics(cand)
        assert statics.cand is cand
        self.cand = cand
        self.occ_index = statics.occ_index
        self.vol_index = statics.vol_index
        self.merchant_index = statics.merchant_index
        self.broken, placed, options = _assess(statics, assignments)
        self.plan = Plan()
        # Broken assignments that still hold time: (volunteer, task), and merchants' loads.
        self.held: list[tuple[int, Task]] = []
        for k, a in enumerate(assignments):
            if k in self.broken:
                if self.broken[k].holds and k in placed:
                    o, v, merchant = placed[k]
                    self.held.append((v, Task(o, a.start, a.end, merchant)))
                continue
            o, _, merchant = placed[k]  # not broken: both exist, and an option serves it
            option = options[k]
            covered = self.plan.covered.get(o)
            self.plan.covered[o] = Cover(a.start, merchant,
                                         (*(covered.options if covered else ()), option))
        self._whole: Timelines | None = None  # the plan's and the held tasks', built once
        self._asked = False

    def timelines(self, plan: Plan, skip: int | None = None) -> Timelines:
        """Timelines of ``plan`` plus the held assignments (except those on ``skip``)."""
        timelines = Timelines.of_plan(self.cand, plan)
        loaded = set(plan.covered)
        for v, task in self.held:
            if task.occurrence == skip:
                continue
            day = timelines.day_of(task.occurrence)
            timelines.tasks.setdefault((v, day), []).append(task)
            timelines.used[v] += task.end - task.start
            if task.merchant is not None and task.occurrence not in loaded:
                loaded.add(task.occurrence)
                key = (task.merchant, day)
                timelines.merchant_load[key] = timelines.merchant_load.get(key, 0) + 1
        return timelines

    def timelines_without(self, occurrence: int) -> Timelines:
        """``timelines(plan without occurrence, skip=occurrence)``, copied from the whole
        week's timelines (built once, never changed) less the occurrence's tasks, instead of
        built again: a week is asked about one occurrence at a time."""
        whole = self._whole
        if whole is None:
            if not self._asked:  # the first question (a decline asks one): build just these
                self._asked = True
                return self.timelines(Plan({k: cover for k, cover in self.plan.covered.items()
                                            if k != occurrence}), skip=occurrence)
            whole = self._whole = self.timelines(self.plan)
        timelines = Timelines(self.cand)
        timelines.used = list(whole.used)
        timelines.merchant_load = dict(whole.merchant_load)
        day = timelines.day_of(occurrence)
        tasks = timelines.tasks = {key: list(day_tasks) for key, day_tasks in whole.tasks.items()}
        covered = self.plan.covered.get(occurrence)
        # The volunteers with a task on it: those of the plan, then those held.
        on_it = [] if covered is None else [self.cand.options[i].volunteer
                                            for i in covered.options]
        on_it += [v for v, task in self.held if task.occurrence == occurrence]
        for v in dict.fromkeys(on_it):
            kept = [task for task in tasks[(v, day)] if task.occurrence != occurrence]
            timelines.used[v] -= sum(task.end - task.start for task in tasks[(v, day)]
                                     if task.occurrence == occurrence)
            tasks[(v, day)] = kept
        # The one load the occurrence added: its cover's merchant, else its first held one's.
        if covered is not None:
            merchant = covered.merchant
        else:
            merchant = next((task.merchant for _, task in self.held
                             if task.occurrence == occurrence and task.merchant is not None),
                            None)
        if merchant is not None:
            key = (merchant, day)
            timelines.merchant_load[key] -= 1
            if not timelines.merchant_load[key]:
                del timelines.merchant_load[key]
        return timelines

    def recommend(self, need_id: str, day: Day, exclude: Iterable[str] = (),
                  limit: int = 20, free_only: bool = False) -> list[Fit]:
        """Volunteers who could join (or take) the occurrence, best first; with ``free_only``
        only those who displace nothing (what a decline offers), without looking for what the
        others would have to give up.

        When other volunteers stay on the occurrence, start and merchant are theirs (R7: all at
        the same start); otherwise any start and merchant the rules allow.
        """
        cand = self.cand
        o = self.occ_index[(need_id, day)]
        excluded = {self.vol_index[v] for v in exclude if v in self.vol_index}
        current = self.plan.covered.get(o)
        staying = [] if current is None else [
            i for i in current[2] if cand.options[i].volunteer not in excluded]
        excluded |= {cand.options[i].volunteer for i in staying}
        base = Plan({k: v for k, v in self.plan.covered.items() if k != o})
        timelines = self.timelines_without(o)
        if staying and current is not None:
            slots = [(current[0], current[1])]
        else:
            merchants: list[int | None] = [*sorted(cand.occ_merchants[o])] or [None]
            slots = [(s, m) for s in timelines.start_points(o) for m in merchants
                     if m is None or timelines.merchant_free(o, m, s)]
        # Each volunteer's covered occurrences in the base plan, for what a fit displaces.
        mine: dict[int, list[int]] = {}
        if not free_only:
            for covered, (_, _, opts) in base.covered.items():
                for i in opts:
                    mine.setdefault(cand.options[i].volunteer, []).append(covered)
        fits: dict[int, tuple[tuple[int, int, float], Fit]] = {}
        for i in cand.by_occurrence[o]:
            option = cand.options[i]
            v = option.volunteer
            if v in excluded:
                continue
            for start, merchant in slots:
                if merchant is not None and merchant not in option.merchants:
                    continue
                walk = option.walks[0] if merchant is None else \
                    option.walks[option.merchants.index(merchant)]
                if v in fits and fits[v][0] <= (0, -1, walk):
                    continue  # even free, this start could not rank better than the fit kept
                displaced: list[int] | None
                if free_only:
                    displaced = [] if timelines.blocker(option, start, merchant) is None \
                        else None
                else:
                    displaced = self._displaced(timelines, base, mine.get(v, []), i, start,
                                                merchant)
                if displaced is None:
                    continue
                rank = (len(displaced), max((self._priority(d) for d in displaced), default=-1),
                        walk)
                if v not in fits or rank < fits[v][0]:
                    fits[v] = (rank, Fit(
                        cand.problem.volunteers[v].id, start,
                        None if merchant is None else cand.problem.merchants[merchant].id,
                        round(walk, 1),
                        tuple((cand.problem.occurrences[d].need.id,
                               cand.problem.occurrences[d].day) for d in displaced)))
        return [fit for _, fit in sorted(fits.values(), key=lambda x: x[0])][:limit]

    def _priority(self, occurrence: int) -> int:
        # Displacing blue is better than yellow, yellow better than red: negate the rank.
        return -self.cand.problem.occurrences[occurrence].need.priority.rank

    def _displaced(self, timelines: Timelines, base: Plan, mine: list[int], option: int,
                   start: int, merchant: int | None) -> list[int] | None:
        """``[]`` when the volunteer is free; the one task to drop (of ``mine``, the
        volunteer's covered occurrences in ``base``) when that frees them; else ``None``.

        Dropping a task changes only its volunteer's day and hours (what
        :meth:`Timelines.blocker` reads), so each trial takes the task out of ``timelines``
        and puts it back, instead of building the week again."""
        opt = self.cand.options[option]
        if timelines.blocker(opt, start, merchant) is None:
            return []
        occurrences = self.cand.problem.occurrences
        same_day = occurrences[opt.occurrence].day
        v = opt.volunteer
        for drop in sorted(mine, key=lambda o: occurrences[o].day != same_day):
            start_d, merchant_d, _ = base.covered[drop]
            key = (v, occurrences[drop].day)
            day_tasks = timelines.tasks[key]
            task = Task(drop, start_d, start_d + timelines.duration(drop), merchant_d)
            day_tasks.remove(task)
            timelines.used[v] -= task.end - task.start
            try:
                free = timelines.blocker(opt, start, merchant) is None
            finally:
                day_tasks.append(task)
                timelines.used[v] += task.end - task.start
            if free:
                return [drop]
        return None
