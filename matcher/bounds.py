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

The bound is lexicographic. Once a level is *tight* (the schedule reached the sum of its days'
optima), every valid schedule at that level reaches each day's optimum too, so the next level's
day models may keep it; a level that is not tight is simply left free, which stays valid.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from matcher.circles import Candidates
from matcher.domain import Priority
from matcher.lazy import maximize_lazily
from matcher.model import ComponentModel
from matcher.params import SolveParams
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
    params
        Workers and seed for CP-SAT.
    street_scale
        Whether the component is too large for one exact model: then days that need them get
        their walks back. A component that fits one exact model gets its proof from that model.
    """

    def __init__(self, cand: Candidates, occurrences: list[int], options: list[int],
                 params: SolveParams, *, street_scale: bool = True) -> None:
        self.cand, self.params, self.street_scale = cand, params, street_scale
        self.days: list[Part] = partition(cand, occurrences, options, by_day=True)
        # (day part, priority) -> that day's proven optimum of the level
        self.optimum: dict[tuple[int, Priority], int] = {}
        # Option pairs whose walks the days' best plans needed: a model of the whole week
        # needs them too, and starts nearer its optimum with them (see matcher.lazy).
        self.walked: set[tuple[int, int]] = set()

    def level(self, priority: Priority, tight: Iterable[Priority], deadline: float) -> LevelBound:
        """Bound ``priority``'s coverage, keeping each ``tight`` level at its day optimum."""
        kept = [q for q in tight if all((d, q) in self.optimum for d in range(len(self.days)))]
        problem = self.cand.problem
        result = LevelBound(0, True)
        todo = []
        for d, part in enumerate(self.days):
            if any(problem.occurrences[o].need.priority is priority for o in part.occurrences):
                todo.append((d, part))
            else:
                self.optimum[d, priority] = 0
        for n, (d, part) in enumerate(todo):
            occurrences = [o for o in part.occurrences
                           if problem.occurrences[o].need.priority.rank <= priority.rank]
            keep = set(occurrences)
            options = [i for i in part.options if self.cand.options[i].occurrence in keep]
            # Time in proportion to size: five full days and a few lone occurrences differ.
            rest = sum(len(p.options) for _, p in todo[n:])
            day_end = time.monotonic() + (deadline - time.monotonic()) * len(part.options) \
                / max(rest, 1)
            count = sum(1 for o in occurrences
                        if problem.occurrences[o].need.priority is priority)
            value, proven, plan = self._day(d, occurrences, options, priority, kept, count,
                                            day_end)
            if proven:
                self.optimum[d, priority] = value
            result.bound += value
            result.proven &= proven
            result.plan.covered.update(plan.covered)
        return result

    def restrict(self, model: ComponentModel, priority: Priority,
                 tight: Iterable[Priority]) -> None:
        """Post on a weekly ``model`` what the days proved: each ``tight`` level at its day
        optimum and ``priority`` at most its own. Every valid schedule that keeps the tight
        levels at their optimum satisfies both, and a model of the whole week finds its plans
        sooner with them."""
        problem = self.cand.problem
        for d, part in enumerate(self.days):
            for q in [*tight, priority]:
                if (d, q) not in self.optimum:
                    continue
                terms = [model.covered[o] for o in part.occurrences
                         if o in model.covered and problem.occurrences[o].need.priority is q]
                if not terms:
                    continue
                if q is priority:
                    model.model.add(sum(terms) <= self.optimum[d, q])
                else:
                    model.model.add(sum(terms) >= self.optimum[d, q])

    def _day(self, d: int, occurrences: list[int], options: list[int], priority: Priority,
             kept: list[Priority], cap: int, deadline: float) -> tuple[int, bool, Plan]:
        """One day's best coverage of ``priority`` (at most ``cap``): the value or the solver's
        bound, whether it is proven, and the plan found."""
        model = ComponentModel(self.cand, occurrences, options, self.params, travel=False)
        floors = {q: self.optimum[d, q] for q in kept}
        for q, value in floors.items():
            model.keep_at_least(q, value)
        model.maximize_coverage(priority, cap)
        if self.street_scale:
            # The walks the day's best plans need, added where they break it.
            lazy = maximize_lazily(model, None, deadline, self.params, floors)
            self.walked |= model.walked
            return lazy.bound, lazy.proven, lazy.plan
        solver = self.params.cp_solver(deadline - time.monotonic())
        status = solver.solve(model.model)
        if status == cp_model.OPTIMAL:
            return round(solver.objective_value), True, model.read(solver)
        if status == cp_model.FEASIBLE:
            # Without a proof the day contributes its solver bound, never above the cap.
            return min(math.floor(solver.best_objective_bound + 1e-6), cap), False, \
                model.read(solver)
        return cap, False, Plan()
