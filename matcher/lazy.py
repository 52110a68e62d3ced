"""Walks added lazily: solve without travel, put walks back only where a plan breaks them.

A street-scale week has millions of pairs of a volunteer's options on one day (R5), and the
model with all their walks is far too large. Almost none of them matter: a volunteer's tasks
are rarely close enough in time for the walk between them to count. So the model starts as the
travel-free relaxation (:class:`~matcher.model.ComponentModel` with ``travel=False``), and after
each solve the walks are added for the pairs of tasks the plan gives one volunteer on a day
where :func:`~matcher.timeline.retime` cannot fit the walks in; then it is solved again, hinted
with the repaired plan. Every round stays a relaxation, so its bound holds for the exact
problem; a round whose optimal plan needs no repair is the exact optimum.

Only the pairs of the plan's own tasks on such a volunteer-day get their walks: all the pairs
of those volunteer-days at once were far too many constraints for the rounds (README,
"Benchmark"). Each round runs until it is optimal (or the deadline): a round cut short
proves nothing and starts its search again the next time. Its bound then caps the next round,
which stops at the first plan that meets it; so the first round, which proves the week's
travel-free optimum, is the long one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import combinations

from ortools.sat.python import cp_model

from matcher.circles import Candidates
from matcher.domain import Day, Priority
from matcher.greedy import greedy_plan
from matcher.model import ComponentModel
from matcher.params import Deadline
from matcher.timeline import Plan, covered_count, keeps_pins, retime


@dataclass
class LazyResult:
    """The best valid plan found and what the rounds proved about the objective."""

    plan: Plan
    bound: int  # no valid plan of the model's occurrences covers more of the level
    proven: bool  # a valid plan that keeps the floors reached the bound
    rounds: int = 0
    walked: int = 0  # option pairs whose walks were added


def tasks_by_volunteer_day(cand: Candidates, plan: Plan) -> dict[tuple[int, Day], list[int]]:
    """The options ``plan`` uses, per volunteer and day."""
    out: dict[tuple[int, Day], list[int]] = defaultdict(list)
    for o, (_, _, options) in plan.covered.items():
        for i in options:
            out[cand.options[i].volunteer, cand.problem.occurrences[o].day].append(i)
    return out


def repair(cand: Candidates, plan: Plan) -> Plan:
    """A valid plan from a travel-free one: retimed, and where the walks still do not fit,
    the volunteer-day's lowest-priority (then latest) task dropped until they do."""
    problem = cand.problem
    covered = dict(plan.covered)
    while True:
        timed, short = retime(cand, Plan(covered))
        if not short:
            return timed
        by_day = tasks_by_volunteer_day(cand, Plan(covered))
        for key in short:
            mine = {cand.options[i].occurrence for i in by_day.get(key, [])} & covered.keys()
            if mine:
                drop = max(mine, key=lambda o: (problem.occurrences[o].need.priority.rank,
                                                covered[o][0]))
                del covered[drop]


def maximize_lazily(model: ComponentModel, hint: Plan | None, deadline: Deadline,
                    floors: dict[Priority, int] | None = None,
                    progress: Callable[[str], None] | None = None) -> LazyResult:
    """Maximise the coverage goal of ``model`` (travel-free, see
    :meth:`ComponentModel.maximize_coverage`) in rounds, adding walks lazily.

    Each round's plan is repaired into a valid one and completed greedily; the best valid plan
    that keeps ``floors`` (the higher levels the model keeps) is kept, plans comparing by the
    coverage of the levels up to the goal's in lexicographic order. ``hint`` is a valid plan to
    start from and to keep if nothing better is found; its volunteer-days' walks are added up
    front, as a plan near it will need them. A repaired plan below a floor still guides the
    next round. Each round may use all the time left; the rounds stop when a valid plan that
    keeps the floors reaches their bound, which is then proven, or when an optimal round needs
    no walk it lacks yet (the next round would be the same). ``progress`` is told each round's
    outcome.
    """
    assert model.goal is not None, "the model's coverage goal is set before it is solved"
    cand, goal = model.cand, model.goal[1]
    levels = [q for q in Priority if q.rank <= goal.rank]
    wanted = floors or {}

    def score(plan: Plan) -> tuple[int, ...]:
        return tuple(covered_count(cand, plan, q) for q in levels)

    def acceptable(plan: Plan) -> bool:
        return all(covered_count(cand, plan, q) >= least for q, least in wanted.items()) \
            and keeps_pins(cand, plan, model.occurrences)

    best = hint or Plan()
    # The most of the goal a valid plan that keeps the floors covered: the bound is proven
    # when it gets there, even where ``best`` is another plan, with more of a level above
    # than its floor asks (a day of the relaxation hinted with the week's plan).
    most = covered_count(cand, best, goal) if acceptable(best) else 0
    if hint is not None:
        model.add_walks(_pairs(tasks_by_volunteer_day(cand, hint).values()))
    start = hint
    result = LazyResult(best, model.cap, False)
    while not deadline.passed():
        if start is not None:
            model.hint(start)  # a repaired plan may miss a floor: CP-SAT then repairs it
        solver, status = deadline.clock.solve(model.model, deadline)
        result.rounds += 1
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        raw = model.read(solver)
        _, short = retime(cand, raw)
        start = greedy_plan(cand, model.occurrences, base=repair(cand, raw))
        if acceptable(start):
            most = max(most, covered_count(cand, start, goal))
            if score(start) > score(best):
                best = start
        result.bound = min(result.bound, model.coverage_bound(solver))
        # Walks only tighten the model, so the bound holds for the next rounds: with it as the
        # cap they stop at the first plan that meets it instead of proving it again.
        model.lower_cap(result.bound)
        if progress is not None:
            progress(f"round {result.rounds}: {covered_count(cand, best, goal)} covered, "
                     f"bound {result.bound}")
        if most >= result.bound:
            result.proven = True  # as when an optimal plan needed no repair
            break
        by_day = tasks_by_volunteer_day(cand, raw)
        added = model.add_walks(_pairs(by_day[day] for day in short if day in by_day))
        result.walked += added
        if not added and status == cp_model.OPTIMAL:
            break
    result.plan = best
    return result


def _pairs(groups: Iterable[list[int]]) -> list[tuple[int, int]]:
    return [pair for group in groups for pair in combinations(group, 2)]
