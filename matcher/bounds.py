"""Upper bounds on each priority level's coverage, from a relaxation solved day by day.

The exact model of a street-scale week is too large to prove anything about, so the proof comes
from a relaxation that is small enough to solve to optimality: travel between consecutive tasks
is ignored (R5 becomes a plain no-overlap, see :class:`~matcher.model.ComponentModel`) and the
days are solved apart, each holding the whole weekly hours cap (R6 is the only rule that couples
days for coverage). Every valid schedule restricted to one day is feasible for that day's
relaxation, so the sum of the days' optima bounds the week. (Keeping travel in the day models
was tried: at street scale they no longer solve to optimality in time, and the bound got worse.)

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
    """

    def __init__(self, cand: Candidates, occurrences: list[int], options: list[int],
                 params: SolveParams) -> None:
        self.cand, self.params = cand, params
        self.days: list[Part] = partition(cand, occurrences, options, by_day=True)
        # (day part, priority) -> that day's proven optimum of the level
        self.optimum: dict[tuple[int, Priority], int] = {}

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
            model = ComponentModel(self.cand, occurrences, options, self.params, travel=False)
            for q in kept:
                model.keep_at_least(q, self.optimum[d, q])
            expr = model.coverage(priority)
            assert expr is not None
            model.model.maximize(expr)
            # Time in proportion to size: five full days and a few lone occurrences differ.
            rest = sum(len(p.options) for _, p in todo[n:])
            solver = self.params.cp_solver((deadline - time.monotonic()) * len(part.options)
                                           / max(rest, 1))
            status = solver.solve(model.model)
            if status == cp_model.OPTIMAL:
                value = round(solver.objective_value)
                self.optimum[d, priority] = value
                result.bound += value
            else:
                result.proven = False
                count = sum(1 for o in occurrences
                            if problem.occurrences[o].need.priority is priority)
                # Without a proof the day contributes its solver bound, never above its count.
                found = status == cp_model.FEASIBLE
                result.bound += min(math.floor(solver.best_objective_bound + 1e-6), count) \
                    if found else count
            if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                result.plan.covered.update(model.read(solver).covered)
        return result
