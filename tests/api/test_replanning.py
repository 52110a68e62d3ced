"""The re-planning cache: reused while the community is unchanged, rebuilt when it changes."""

from __future__ import annotations

from dataclasses import replace

from api.replanning import CandidateCache
from matcher.domain import Problem
from tests.conftest import WEEK, need, volunteer


def test_candidates_are_reused_until_the_community_changes() -> None:
    builds = []

    def network() -> None:
        builds.append(1)  # called once per build

    cache = CandidateCache(network, size=2)
    problem = Problem(WEEK, [volunteer("V1")], [need("N1")])
    first = cache.get(problem)
    assert cache.get(Problem(WEEK, [volunteer("V1")], [need("N1")])) is first
    assert len(builds) == 1
    moved = Problem(WEEK, [replace(problem.volunteers[0], max_hours_week=2)], [need("N1")])
    assert cache.get(moved) is not first and len(builds) == 2
    cache.get(Problem(WEEK, [volunteer("V2")], [need("N1")]))
    assert cache.get(problem) is not first  # the oldest of three was evicted (size 2)
