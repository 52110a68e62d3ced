"""Linli's matcher: domain types, import, travel times, circles, the CP-SAT solver and outputs.

Nothing here knows about HTTP or SQL. The entry point is :func:`matcher.solver.solve`.
"""

from matcher.domain import Need, Occurrence, Problem, Schedule, UnmetReason, Volunteer, Week
from matcher.params import SolveParams

__version__ = "0.1.0"

__all__ = ["Need", "Occurrence", "Problem", "Schedule", "SolveParams", "UnmetReason",
           "Volunteer", "Week", "__version__"]
