"""Upper bounds on each priority level's coverage, from a relaxation solved day by day.

The exact model of a street-scale week is too large to prove anything about, so the proof comes
from a relaxation that is small enough to solve to optimality: travel between consecutive tasks
is ignored (R5 becomes a plain no-overlap, see :class:`~matcher.model.ComponentModel`) and the
days are solved apart, each holding the whole weekly hours cap (R6 is the only rule that couples
days for coverage). Every valid schedule restricted to one day is feasible for that day's
relaxation, so the sum of the days' optima bounds the week.

At street scale the walks are put back where they matter (:mod:`matcher.lazy`): where a day's
best plan does not survive retiming with the walks, they are added for its volunteer-days and
the day solved again, until its best plan needs none it lacks. The day's optimum is then exact.
The red days need this: there the walks are what separate the travel-free bound from the
optimum. (The full walks in every day model were tried: the large days then no longer solve to
optimality in time.)

The bound is lexicographic. Once a level's week value W is proven (it is the lexicographic
optimum's), every schedule at that optimum covers W of it in the week and at most U on each
other day (U: that day's bound), so on each day at least its own U minus the *slack*, the sum
of the days' U less W. The next level's day models keep these floors. A level whose week
reaches the sum of its days' bounds (slack 0) is kept at each day's bound; where the weekly
hours cap binds the slack is a few occurrences, and a level left free instead could trade all
its occurrences for the next level's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from matcher.circles import Candidates
from matcher.domain import Priority
from matcher.lazy import maximize_lazily
from matcher.model import ComponentModel
from matcher.params import Clock, Deadline
from matcher.partition import Part, partition
from matcher.timeline import Plan


@dataclass
class LevelBound:
    """The bound on one level of a component, and the relaxed plan that reached it."""

    bound: int
    proven: bool  # every day's relaxation was solved to optimality
    plan: Plan = field(default_factory=Plan)  # the relaxed solution: a guide, not a schedule


class RelaxedWeek:
    """The day-by-day travel-free relaxation of one component of the week.

    Parameters
    ----------
    cand
        All options of the problem.
    occurrences, options
        The component (indices into ``cand``).
    clock
        The solve's clock (its parameters: workers, seed and limit for CP-SAT), which the
        deadlines given to :meth:`level` are on.
    street_scale
        Whether the component is too large for one exact model: then days that need them get
        their walks back. A component that fits one exact model gets its proof from that model.
    """

    def __init__(self, cand: Candidates, occurrences: list[int], options: list[int],
                 clock: Clock, *, street_scale: bool = True) -> None:
        self.cand, self.clock, self.street_scale = cand, clock, street_scale
        self.days: list[Part] = partition(cand, occurrences, options, by_day=True)
        # (day part, priority) -> an upper bound on that day part's coverage of the level, in
        # every schedule that keeps the floors of the levels above (its optimum when proven)
        self.upper: dict[tuple[int, Priority], int] = {}
        # Option pairs whose walks the days' best plans needed: a model of the whole week
        # needs them too, and starts nearer its optimum with them (see matcher.lazy).
        self.walked: set[tuple[int, int]] = set()

    def floors(self, reached: Mapping[Priority, int]) -> dict[tuple[int, Priority], int]:
        """(day part, level) -> the least coverage of that level on that day part in every
        schedule that covers ``reached`` (the proven week values of the levels above)."""
        out: dict[tuple[int, Priority], int] = {}
        for q, week in reached.items():
            if any((d, q) not in self.upper for d in range(len(self.days))):
                continue  # no relaxation of this level: it stays free
            upper = [self.upper[d, q] for d in range(len(self.days))]
            slack = sum(upper) - week
            if slack < 0:
                continue  # not with a valid bound; a level left free stays valid
            for d, u in enumerate(upper):
                if u > slack:
                    out[d, q] = u - slack
        return out

    def level(self, priority: Priority, reached: Mapping[Priority, int], deadline: Deadline,
              plan: Plan | None = None) -> LevelBound:
        """Bound ``priority``'s coverage in the schedules that cover ``reached`` (the week
        values of the levels above, each proven to be the lexicographic optimum's).

        ``plan``, a valid schedule that covers ``reached``, is each day's first solution: its
        day meets the floors (see :meth:`floors`), which a day model left to find one alone
        may not do in its time, and then it has no bound to give.
        """
        floors = self.floors(reached)
        problem = self.cand.problem
        result = LevelBound(0, True)
        todo = []
        for d, part in enumerate(self.days):
            if any(problem.occurrences[o].need.priority is priority for o in part.occurrences):
                todo.append((d, part))
            else:
                self.upper[d, priority] = 0
        for n, (d, part) in enumerate(todo):
            occurrences = [o for o in part.occurrences
                           if problem.occurrences[o].need.priority.rank <= priority.rank]
            keep = set(occurrences)
            options = [i for i in part.options if self.cand.options[i].occurrence in keep]
            # Time in proportion to size: five full days and a few lone occurrences differ.
            rest = sum(len(p.options) for _, p in todo[n:])
            day_end = deadline.share(len(part.options), max(rest, 1))
            count = sum(1 for o in occurrences
                        if problem.occurrences[o].need.priority is priority)
            kept = {q: least for (day, q), least in floors.items() if day == d}
            start = None if plan is None else \
                Plan({o: v for o, v in plan.covered.items() if o in keep})
            value, proven, best = self._day(occurrences, options, priority, kept, count,
                                            start, day_end)
            self.upper[d, priority] = value
            result.bound += value
            result.proven &= proven
            result.plan.covered.update(best.covered)
        return result

    def restrict(self, model: ComponentModel, priority: Priority,
                 reached: Mapping[Priority, int]) -> None:
        """Post on a weekly ``model`` what the days proved: the floors of the levels above
        (see :meth:`floors`) and each day's bound on ``priority``. Every schedule that covers
        ``reached`` satisfies both, and a model of the whole week finds its plans sooner with
        them."""
        for (d, q), least in self.floors(reached).items():
            if (covered := model.coverage(q, self.days[d].occurrences)) is not None:
                model.model.add(covered >= least)
        for d, part in enumerate(self.days):
            if (d, priority) in self.upper and \
                    (covered := model.coverage(priority, part.occurrences)) is not None:
                model.model.add(covered <= self.upper[d, priority])

    def _day(self, occurrences: list[int], options: list[int], priority: Priority,
             floors: dict[Priority, int], cap: int, start: Plan | None,
             deadline: Deadline) -> tuple[int, bool, Plan]:
        """One day's best coverage of ``priority`` (at most ``cap``) with the levels above at
        least ``floors``, from the valid plan ``start``: the value or the solver's bound,
        whether it is proven, and the plan found."""
        model = ComponentModel(self.cand, occurrences, options, self.clock.params,
                               travel=False)
        for q, value in floors.items():
            model.keep_at_least(q, value)
        model.maximize_coverage(priority, cap)
        if self.street_scale:
            # The walks the day's best plans need, added where they break it.
            lazy = maximize_lazily(model, start, deadline, floors)
            self.walked |= model.walked
            return lazy.bound, lazy.proven, lazy.plan
        if start is not None:
            model.hint(start)
        solver, status = self.clock.solve(model.model, deadline)
        if status == cp_model.OPTIMAL:
            return round(solver.objective_value), True, model.read(solver)
        if status == cp_model.FEASIBLE:
            # Without a proof the day contributes its solver bound, never above the cap.
            return min(math.floor(solver.best_objective_bound + 1e-6), cap), False, \
                model.read(solver)
        return cap, False, Plan()
