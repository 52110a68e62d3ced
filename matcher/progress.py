"""Where a solve is: the records a progress display reads, and the reporter that sends them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matcher.domain import Priority
from matcher.params import Clock

Progress = Callable[[str], None]

# The per-level counts a report keeps, each named for what it counts.
Coverage = dict[Priority, int]  # occurrences a plan covers, per level
Sizes = dict[Priority, int]  # occurrences there are, per level
Bounds = dict[Priority, int]  # at most this many can be covered, per level


@dataclass(frozen=True)
class SolveProgress:
    """Where a solve is, for a progress display: what it does (``text``, the English line the
    API's jobs store), the level it works on, the week's best coverage of that level so far and
    the bound on it where one is known, and the share of the budget spent (on the solve's own
    clock: deterministic time unless ``wall_clock``, so it moves with the work done)."""

    text: str
    stage: str  # "prepare", a priority ("red", "yellow", "blue"), "quality" or "explain"
    covered: int | None = None
    bound: int | None = None
    occurrences: int | None = None  # of the level, in the week
    spent: float = 0.0  # fraction of the budget, 0..1

    def __str__(self) -> str:
        return self.text


class Reporter:
    """Tells the caller where the solve is: the text to ``progress``, a :class:`SolveProgress`
    to ``on_progress``. Coverage is the week's: the components solved and the greedy plan of
    those still to come, with the current component's best so far."""

    def __init__(self, progress: Progress | None,
                 on_progress: Callable[[SolveProgress], None] | None, clock: Clock,
                 budget: float, totals: Sizes) -> None:
        self.progress, self.on_progress, self.clock = progress, on_progress, clock
        self.start, self.budget, self.totals = clock.now(), budget, totals
        self.stage = "prepare"
        self.loud = True
        self.best: Coverage = dict.fromkeys(Priority, 0)  # the week's, greedy until solved
        # Per level, the components' bounds: trivial (their size) until solved.
        self.bound_rest: Bounds = dict(totals)
        self.comp_greedy: Coverage = dict.fromkeys(Priority, 0)
        self.comp_size: Sizes = dict.fromkeys(Priority, 0)
        self.comp_value: Coverage = {}
        self.comp_bound: Bounds = {}

    def __call__(self, text: str, loud: bool = True) -> None:
        if self.progress is not None and loud and self.loud:
            self.progress(text)
        if self.on_progress is None:
            return
        covered = bound = total = None
        if self.stage in {p.value for p in Priority}:
            p = Priority(self.stage)
            covered = (self.best[p] - self.comp_greedy[p]
                       + self.comp_value.get(p, self.comp_greedy[p]))
            if p in self.comp_bound:
                bound = self.bound_rest[p] - self.comp_size[p] + self.comp_bound[p]
            total = self.totals[p]
        spent = (self.clock.now() - self.start) / self.budget if self.budget > 0 else 1.0
        self.on_progress(SolveProgress(text, self.stage, covered, bound, total,
                                       min(max(spent, 0.0), 1.0)))

    def component(self, greedy: Coverage, size: Sizes, loud: bool) -> None:
        """A component starts: its greedy coverage and size per level."""
        self.comp_greedy, self.comp_size, self.loud = greedy, size, loud
        self.comp_value, self.comp_bound = {}, {}

    def level(self, priority: Priority, value: int, bound: int | None, text: str) -> None:
        """The component's best ``value`` of ``priority`` so far, bounded by ``bound``."""
        self.stage = priority.value
        self.comp_value[priority] = value
        if bound is not None:
            self.comp_bound[priority] = bound
        self(text)

    def done(self, values: Coverage, bounds: Bounds) -> None:
        """The component is solved with ``values`` under ``bounds``: its levels count for the
        week from now on."""
        for p, value in values.items():
            self.best[p] += value - self.comp_greedy[p]
            self.bound_rest[p] += bounds[p] - self.comp_size[p]
        self.comp_greedy = self.comp_size = dict.fromkeys(Priority, 0)
        self.comp_value, self.comp_bound, self.loud = {}, {}, True

    def step(self, stage: str, text: str) -> None:
        self.stage = stage
        self(text)
