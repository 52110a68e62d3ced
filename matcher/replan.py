"""Change one occurrence of a published week without disturbing the rest.

"Who could take this?" ranks every volunteer who satisfies all rules with the other assignments
pinned, and says what each choice would displace. A decline uses it: the freed place goes to the
best volunteer who displaces nothing. Everything else stays exactly as published.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matcher.circles import Candidates
from matcher.domain import Assignment, Day
from matcher.timeline import Plan, Timelines


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


class PinnedWeek:
    """A published week in index form, ready for single-occurrence changes."""

    def __init__(self, cand: Candidates, assignments: Sequence[Assignment]) -> None:
        self.cand = cand
        problem = cand.problem
        self.occ_index = {(o.need.id, o.day): k for k, o in enumerate(problem.occurrences)}
        self.vol_index = {v.id: k for k, v in enumerate(problem.volunteers)}
        self.merchant_index = {m.id: k for k, m in enumerate(problem.merchants)}
        self.option_of = {(cand.options[i].volunteer, cand.options[i].occurrence): i
                          for i in range(len(cand.options))}
        self.plan = Plan()
        for a in assignments:
            o = self.occ_index[(a.need_id, a.day)]
            option = self.option_of.get((self.vol_index[a.volunteer_id], o))
            if option is None:
                raise ValueError(f"{a.volunteer_id} on {a.need_id} {a.day} breaks a rule "
                                 "(no longer in the circle, skills or availability changed)")
            merchant = None if a.merchant_id is None else self.merchant_index[a.merchant_id]
            _, _, options = self.plan.covered.get(o, (a.start, merchant, ()))
            self.plan.covered[o] = (a.start, merchant, (*options, option))

    def recommend(self, need_id: str, day: Day, exclude: Iterable[str] = (),
                  limit: int = 20) -> list[Fit]:
        """Volunteers who could join (or take) the occurrence, best first.

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
        timelines = Timelines.of_plan(cand, base)
        if staying and current is not None:
            slots = [(current[0], current[1])]
        else:
            merchants: list[int | None] = [*sorted(cand.occ_merchants[o])] or [None]
            slots = [(s, m) for s in timelines.start_points(o) for m in merchants
                     if m is None or timelines.merchant_free(o, m, s)]
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
                displaced = self._displaced(timelines, base, i, start, merchant)
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

    def _displaced(self, timelines: Timelines, base: Plan, option: int, start: int,
                   merchant: int | None) -> list[int] | None:
        """``[]`` when the volunteer is free; the one task to drop when that frees them; else
        ``None``."""
        opt = self.cand.options[option]
        if timelines.blocker(opt, start, merchant) is None:
            return []
        mine = [o for o, (_, _, opts) in base.covered.items()
                if any(self.cand.options[i].volunteer == opt.volunteer for i in opts)]
        same_day = self.cand.problem.occurrences[opt.occurrence].day
        mine.sort(key=lambda o: self.cand.problem.occurrences[o].day != same_day)
        for drop in mine:
            start_d, merchant_d, opts = base.covered[drop]
            trial = Plan(dict(base.covered))
            rest = tuple(i for i in opts if self.cand.options[i].volunteer != opt.volunteer)
            trial.covered[drop] = (start_d, merchant_d, rest)
            if Timelines.of_plan(self.cand, trial).blocker(opt, start, merchant) is None:
                return [drop]
        return None
