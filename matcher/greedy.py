"""Greedy nearest-volunteer baseline: what a careful coordinator does by hand.

Occurrences are taken red first, the scarcest (fewest capable volunteers) first within a
priority; each gets the earliest start at which enough volunteers are free, and among those the
nearest. The result is a valid schedule, the benchmark's yardstick and the solver's first hint.
"""

from __future__ import annotations

from matcher.circles import Candidates
from matcher.timeline import Cover, Plan, Timelines


def greedy_plan(cand: Candidates, occurrences: list[int] | None = None,
                base: Plan | None = None) -> Plan:
    """Build a valid plan greedily over ``occurrences`` (all by default).

    With ``base``, its covered occurrences stay as they are and the rest is filled around them.
    """
    problem = cand.problem
    todo = list(range(len(problem.occurrences))) if occurrences is None else list(occurrences)
    base = base or Plan()
    todo = [o for o in todo if cand.coverable(o) and o not in base.covered]
    todo.sort(key=lambda o: (problem.occurrences[o].need.priority.rank,
                             cand.distinct_volunteers(o),
                             problem.occurrences[o].earliest_start))
    timelines = Timelines.of_plan(cand, base)
    plan = Plan(dict(base.covered))
    for o in todo:
        need = problem.occurrences[o].need
        # Offers already made (a re-solve) are tried first, as made.
        options = sorted(cand.by_occurrence[o], key=lambda i: (i not in cand.kept_offers,
                                                               cand.options[i].best_walk))
        offers = [cand.kept_offers[i] for i in options if i in cand.kept_offers]
        merchants: list[int | None] = (
            [None] if need.merchant_service is None
            else [*sorted({m for i in options for m in cand.options[i].merchants},
                          key=lambda m: (m not in {j for _, j in offers}, m))]
        )
        points = timelines.start_points(o)
        first = [s for s, _ in offers[:1] if s in points]
        placed = False
        for start in first + [s for s in points if s not in first]:
            for merchant in merchants:
                if merchant is not None and not timelines.merchant_free(o, merchant, start):
                    continue
                chosen: list[int] = []
                volunteers: set[int] = set()
                for i in options:
                    option = cand.options[i]
                    if option.volunteer in volunteers:
                        continue
                    if merchant is not None and merchant not in option.merchants:
                        continue
                    if timelines.blocker(option, start, merchant) is None:
                        chosen.append(i)
                        volunteers.add(option.volunteer)
                        if len(chosen) == need.volunteers_needed:
                            break
                if len(chosen) == need.volunteers_needed:
                    timelines.add(o, start, merchant, tuple(chosen))
                    plan.covered[o] = Cover(start, merchant, tuple(chosen))
                    placed = True
                    break
            if placed:
                break
    return plan
