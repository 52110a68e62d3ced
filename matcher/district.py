"""A district (街道 or 区): several communities' weeks solved together, on Ray or in this process.

A district folder holds one sub-folder (or ``.xlsx`` workbook) per community, each in the
community format of the README; the sub-folder's name is the community's. A community folder may
also hold its grid units (网格) as ``grids.geojson`` (:data:`GRID_FILE`, the format of
:mod:`matcher.grids`): the district report then has a row per unit and maps the community as
their union. Ids are the district's:
a ``volunteer_id`` or ``merchant_id`` listed by several communities is one person or one shop (a
volunteer living on a boundary, registered on both sides), so its rows must agree; a
``need_id`` belongs to one community.

Who may serve whom follows the rules of one community: the 15-minute circle ignores
administrative lines, so a volunteer serves any need within her circle, whichever community she
registered with. Two communities are therefore coupled when a place of one (a volunteer's home,
a merchant) lies within a circle of a need of the other, or when they list the same volunteer or
merchant; the coupled groups (:func:`components`) share nothing, so each is solved on its own,
as one problem, and the district's result is the union of theirs. A group's limit is the
per-community limit times its communities, fixed before anything runs, so solving the groups in
one process or as Ray tasks on any number of machines gives the same schedule (deterministic
limit, one CP-SAT worker: :mod:`matcher.params`).

``ray`` is imported only when the Ray engine runs (``pip install 'linli[district]'``).
"""

from __future__ import annotations

import logging
import math
import os
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.spatial import cKDTree

from matcher.busy import flat_metres, straight_reach_m
from matcher.coords import CoordSystem
from matcher.domain import (
    LevelResult,
    Location,
    Merchant,
    Need,
    Priority,
    Problem,
    Schedule,
    SolveStatus,
    UnmetReason,
    Volunteer,
    Week,
)
from matcher.errors import DataIssue, InputError
from matcher.grids import GridUnit, grids_geojson, read_grids
from matcher.i18n import N_, _, current
from matcher.params import SolveParams
from matcher.settings import Settings
from matcher.travel import WalkingNetwork

Engine = Literal["local", "ray"]
COMMUNITY_FILES = ("volunteers", "needs")
# A community folder's grid units (optional): GeoJSON polygons in WGS84, as `linli grids` reads.
GRID_FILE = "grids.geojson"


@dataclass(frozen=True)
class Community:
    """One community of a district: its name, its own lists (who registered here) and its grid
    units (none when its folder has no :data:`GRID_FILE`)."""

    name: str
    problem: Problem
    units: tuple[GridUnit, ...] = ()


@dataclass
class District:
    """The communities of a district for one week, in name order."""

    week: Week
    communities: list[Community]
    notes: list[str] = field(default_factory=list)

    def community(self, name: str) -> Community:
        return next(c for c in self.communities if c.name == name)


def is_district(folder: Path) -> bool:
    """Whether ``folder`` holds communities (sub-folders or workbooks) rather than the files of
    one community."""
    if not folder.is_dir():
        return False
    names = {p.stem.lower() for p in folder.iterdir() if p.is_file()}
    if any(name in names for name in COMMUNITY_FILES):
        return False
    return bool(_community_sources(folder))


def _community_sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if not p.name.startswith((".", "_"))
                  and (p.is_dir() or p.suffix.lower() == ".xlsx"))


def grid_path(source: Path) -> Path:
    """Where a community's grid units are: :data:`GRID_FILE` in its folder, or beside its
    workbook as ``<workbook>.grids.geojson``."""
    if source.suffix.lower() == ".xlsx":
        return source.with_suffix("." + GRID_FILE)
    return source / GRID_FILE


def load_district(folder: Path | str, week: Week,
                  coords: CoordSystem = CoordSystem.WGS84) -> District:
    """Read every community of a district folder and check that they agree with each other.

    Raises
    ------
    InputError
        With every problem of every community (its grid units included), each file named
        ``<community>/<file>``; and
        where two communities list the same volunteer or merchant differently, or the same
        need id.
    """
    from matcher.spreadsheets import read_community

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError([DataIssue.of(str(folder), None, None, None,
                                       N_("is not a folder of communities"))])
    sources = _community_sources(folder)
    if not sources:
        raise InputError([DataIssue.of(
            str(folder), None, None, None,
            N_("holds no community: put one folder (or .xlsx workbook) per community in it"))])
    issues: list[DataIssue] = []
    notes: list[str] = []
    communities: list[Community] = []
    for source in sources:
        name = source.stem if source.is_file() else source.name
        units: list[GridUnit] = []
        grid_file = grid_path(source)
        if grid_file.exists():
            try:
                units = read_grids(grid_file)
            except InputError as exc:
                label = (grid_file.name if source.suffix.lower() == ".xlsx"
                         else f"{name}/{GRID_FILE}")
                issues.extend(replace(i, file=label) for i in exc.issues)
        try:
            imported = read_community(source, week, coords)
        except InputError as exc:
            issues.extend(replace(i, file=f"{name}/{i.file}") for i in exc.issues)
            continue
        notes.extend(f"{name}: {note}" for note in imported.notes)
        communities.append(Community(name, imported.problem, tuple(units)))
    issues.extend(_disagreements(communities))
    if issues:
        raise InputError(issues)
    return District(week, communities, notes)


def _disagreements(communities: Sequence[Community]) -> list[DataIssue]:
    """The same volunteer or merchant listed differently, or one need id in two communities."""
    issues: list[DataIssue] = []
    seen: dict[tuple[str, str], tuple[str, object]] = {}
    for c in communities:
        p = c.problem
        for kind, file, items in (("volunteer", "volunteers.csv", p.volunteers),
                                  ("merchant", "merchants.csv", p.merchants),
                                  ("need", "needs.csv", p.needs)):
            for item in items:
                first = seen.setdefault((kind, item.id), (c.name, item))
                if first[0] == c.name:
                    continue
                if kind == "need":
                    issues.append(DataIssue.of(
                        f"{c.name}/{file}", None, "need_id", item.id,
                        N_("is already a need of {community}: need ids must differ across "
                           "the district"), community=first[0]))
                elif first[1] != item:
                    issues.append(DataIssue.of(
                        f"{c.name}/{file}", None, f"{kind}_id", item.id,
                        N_("is listed by {community} too, with other details: one id is one "
                           "person or shop across the district, so the rows must agree"),
                        community=first[0]))
    return issues


def components(district: District, settings: Settings | None = None) -> list[list[int]]:
    """Groups of communities (indices) that share nothing: no volunteer, merchant or circle.

    Communities are coupled when they list the same volunteer or merchant, or when a volunteer's
    home or a merchant of one lies within one circle (walking metres, by a straight line, which
    never exceeds the walk) of a need of the other. Groups are in order of their first
    community.
    """
    settings = settings or Settings()
    n = len(district.communities)
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first_listed: dict[str, int] = {}
    places: list[Location] = []
    place_of: list[int] = []
    needs: list[Location] = []
    need_of: list[int] = []
    for k, c in enumerate(district.communities):
        listed = [("V", v.id, v.location) for v in c.problem.volunteers] + [
            ("M", m.id, m.location) for m in c.problem.merchants]
        for kind, ident, location in listed:
            union(k, first_listed.setdefault(f"{kind}:{ident}", k))
            places.append(location)
            place_of.append(k)
        for need in c.problem.needs:
            needs.append(need.location)
            need_of.append(k)
    if places and needs:
        xy = flat_metres(places + needs)
        near = cKDTree(xy[:len(places)]).query_ball_tree(cKDTree(xy[len(places):]),
                                                         straight_reach_m(settings))
        for i, found in enumerate(near):
            for j in found:
                union(place_of[i], need_of[j])
    groups: dict[int, list[int]] = {}
    for k in range(n):
        groups.setdefault(find(k), []).append(k)
    return sorted(groups.values(), key=lambda g: g[0])


def merged_problem(district: District, group: Sequence[int]) -> Problem:
    """The week of a group of communities as one problem: each volunteer and merchant once."""
    volunteers: dict[str, Volunteer] = {}
    merchants: dict[str, Merchant] = {}
    needs: list[Need] = []
    for k in group:
        p = district.communities[k].problem
        for v in p.volunteers:
            volunteers.setdefault(v.id, v)
        for m in p.merchants:
            merchants.setdefault(m.id, m)
        needs.extend(p.needs)
    return Problem(district.week, list(volunteers.values()), needs, list(merchants.values()))


@dataclass(frozen=True)
class Part:
    """One independent group of communities, ready to be solved anywhere."""

    index: int
    communities: tuple[str, ...]
    problem: Problem
    params: SolveParams

    @property
    def size(self) -> int:
        """Occurrences: what the benchmark orders parts by."""
        return len(self.problem.occurrences)


def parts(district: District, params: SolveParams,
          settings: Settings | None = None) -> list[Part]:
    """The district's independent parts, each with its limit: ``params.time_limit_s`` per
    community in it (fixed here, so it never depends on where or in which order parts run)."""
    out = []
    for index, group in enumerate(components(district, settings)):
        limit = replace(params, time_limit_s=params.time_limit_s * len(group))
        out.append(Part(index, tuple(district.communities[k].name for k in group),
                        merged_problem(district, group), limit))
    return out


@dataclass(frozen=True)
class Crashes:
    """Failure injection, for tests and drills: the part holding community ``name`` fails its
    first ``times[name]`` tries (the worker process is killed on Ray, an exception is raised in
    this process). Tries are counted in files under ``ledger``, which every worker on the
    machine sees."""

    times: Mapping[str, int]
    ledger: Path

    def strike(self, part: Part, kill: bool) -> None:
        budget = max((self.times.get(name, 0) for name in part.communities), default=0)
        if not budget:
            return
        self.ledger.mkdir(parents=True, exist_ok=True)
        tries = len(list(self.ledger.glob(f"part{part.index}-*")))
        if tries >= budget:
            return
        (self.ledger / f"part{part.index}-{tries}").touch()
        if kill:
            os._exit(1)  # as if the machine lost the worker: Ray sees a dead worker
        raise RuntimeError(f"injected failure of part {part.index} (try {tries + 1})")


@dataclass
class PartResult:
    """What solving a part gave: its schedule, or the error that stopped it."""

    index: int
    communities: tuple[str, ...]
    schedule: Schedule | None
    error: str | None = None
    seconds: float = 0.0  # wall time of the solve in its worker, walking times included
    peak_rss_mb: float = 0.0  # the worker process's peak resident memory so far
    worker: str = ""  # host:pid of the process that solved it


def solve_part(part: Part, settings: Settings, network: WalkingNetwork | None,
               crashes: Crashes | None = None, kill: bool = False,
               lang: str | None = None) -> PartResult:
    """Solve one part (walking times, then the week), where it runs; the reasons and fixes of
    unmet occurrences in ``lang`` (the caller's language, which a Ray worker does not know)."""
    from matcher.i18n import use
    from matcher.solver import solve
    from matcher.travel import TravelTimes

    if crashes is not None:
        crashes.strike(part, kill)
    began = time.monotonic()
    travel = TravelTimes.build(part.problem, settings, network)
    with use(lang or current()):
        schedule = solve(part.problem, part.params, travel=travel, settings=settings)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return PartResult(part.index, part.communities, schedule, None,
                      time.monotonic() - began, peak, f"{os.uname().nodename}:{os.getpid()}")


def _solve_part_on_ray(part: Part, settings: Settings, network: WalkingNetwork | None,
                       crashes: Crashes | None, lang: str) -> PartResult:
    return solve_part(part, settings, network, crashes, kill=True, lang=lang)


@dataclass
class CommunityResult:
    """One community's share of its part's schedule, as a community's solve writes it."""

    name: str
    component: tuple[str, ...]
    problem: Problem  # its needs; its volunteers and merchants and those serving it
    schedule: Schedule


@dataclass
class DistrictResult:
    """The district's week: each community's schedule, and the communities whose part failed."""

    week: Week
    parts: list[PartResult]
    communities: list[CommunityResult]
    failed: dict[str, str]  # community -> error
    engine: str
    seconds: float  # wall time of the whole solve, from the first part sent to the last back

    def community(self, name: str) -> CommunityResult:
        return next(c for c in self.communities if c.name == name)


def community_share(part_problem: Problem, schedule: Schedule, community: Community,
                    component: tuple[str, ...]) -> CommunityResult:
    """The part of ``schedule`` about ``community``'s needs.

    Coverage counts the community's occurrences. A level's bound is the component's: the
    community's coverage plus what the component as a whole might still gain (so it equals the
    coverage when the component's level is proven best).
    """
    mine = {n.id for n in community.problem.needs}
    assignments = [a for a in schedule.assignments if a.need_id in mine]
    unmet = [u for u in schedule.unmet if u.need_id in mine]
    levels: dict[Priority, LevelResult] = {}
    for p in Priority:
        occurrences = sum(1 for o in community.problem.occurrences if o.need.priority is p)
        covered = len({(a.need_id, a.day) for a in assignments
                       if community.problem.need_by_id[a.need_id].priority is p})
        whole = schedule.levels[p]
        gap = max(whole.bound - whole.covered, 0)
        levels[p] = LevelResult(covered, occurrences, min(occurrences, covered + gap),
                                whole.optimal)
    serving = {a.volunteer_id for a in assignments}
    shops = {a.merchant_id for a in assignments if a.merchant_id}
    listed_v = {v.id for v in community.problem.volunteers}
    listed_m = {m.id for m in community.problem.merchants}
    problem = Problem(
        schedule.week,
        [v for v in part_problem.volunteers if v.id in listed_v or v.id in serving],
        list(community.problem.needs),
        [m for m in part_problem.merchants if m.id in listed_m or m.id in shops])
    status = schedule.status if community.problem.needs else SolveStatus.EMPTY
    share = replace(schedule, assignments=assignments, unmet=unmet, levels=levels,
                    status=status, total_walk_min=sum(a.walk_min for a in assignments),
                    held=[h for h in schedule.held if h.assignment.need_id in mine],
                    stats={**schedule.stats, "component": ";".join(component)})
    return CommunityResult(community.name, component, problem, share)


@dataclass(frozen=True)
class DistrictEvent:
    """A part has finished (``result.error`` is None) or failed for good."""

    result: PartResult
    done: int
    total: int


def solve_district(district: District, params: SolveParams | None = None,
                   settings: Settings | None = None, *,
                   network: WalkingNetwork | None = None, engine: Engine = "local",
                   address: str | None = None, max_retries: int = 2,
                   on_part: Callable[[DistrictEvent], None] | None = None,
                   crashes: Crashes | None = None,
                   ray_init: Mapping[str, Any] | None = None) -> DistrictResult:
    """Solve every community of the district, each independent part once.

    Parameters
    ----------
    params
        The limit is per community (deterministic unless ``wall_clock``): a part of k
        communities gets k times ``time_limit_s``.
    engine
        ``local``: the parts one after the other in this process. ``ray``: each part a Ray task
        (``address``: ``auto`` or ``ray://host:10001`` for a running cluster; None starts Ray
        on this machine unless it is running here already). With a deterministic limit both
        give the same schedules.
    max_retries
        How many more times a part that fails (its worker killed, or an error) is tried before
        its communities are reported failed; the other parts go on.
    on_part
        Called as each part ends, in the order they end.
    ray_init
        More arguments for ``ray.init`` when this call starts Ray (e.g. ``num_cpus``).
    """
    params = params or SolveParams()
    settings = settings or Settings()
    todo = parts(district, params, settings)
    began = time.monotonic()
    results: dict[int, PartResult] = {}

    def record(result: PartResult) -> None:
        results[result.index] = result
        if on_part is not None:
            on_part(DistrictEvent(result, len(results), len(todo)))

    if engine == "local":
        for part in todo:
            record(_local(part, settings, network, crashes, max_retries))
    elif engine == "ray":
        _on_ray(todo, settings, network, crashes, max_retries, address, ray_init or {}, record)
    else:
        raise ValueError(f"unknown engine {engine!r}: local or ray")
    seconds = time.monotonic() - began
    return merge(district, todo, [results[p.index] for p in todo], engine, seconds)


def _local(part: Part, settings: Settings, network: WalkingNetwork | None,
           crashes: Crashes | None, max_retries: int) -> PartResult:
    error = ""
    for _try in range(max_retries + 1):
        try:
            return solve_part(part, settings, network, crashes)
        except Exception as exc:  # a part's failure must not lose the others
            error = f"{type(exc).__name__}: {exc}"
    return PartResult(part.index, part.communities, None, error)


class RayUnavailableError(ConnectionError):
    """Ray could not start here or reach the cluster at the address given."""


def _on_ray(todo: Sequence[Part], settings: Settings, network: WalkingNetwork | None,
            crashes: Crashes | None, max_retries: int, address: str | None,
            init: Mapping[str, Any], record: Callable[[PartResult], None]) -> None:
    import ray
    from ray.exceptions import RayError

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                     **init)
        except (ConnectionError, ValueError, SystemExit) as exc:
            # Ray exits the process when a cluster's address never answers, and refuses a
            # ray:// address without ray[client]: either way, say so instead.
            why = _("it does not answer") if isinstance(exc, SystemExit) else str(exc)
            raise RayUnavailableError(why) from exc
    try:
        task = ray.remote(num_cpus=1, max_retries=max_retries,
                          retry_exceptions=True)(_solve_part_on_ray)
        # The network goes to the object store once; every task reads that copy.
        net_ref = ray.put(network)
        # Largest first: the longest part starts at once and the critical path is no longer.
        ordered = sorted(todo, key=lambda p: (-p.size, p.index))
        pending = {task.remote(p, settings, net_ref, crashes, current()): p for p in ordered}
        waiting = list(pending)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                part = pending[ref]
                try:
                    record(ray.get(ref))
                except RayError as exc:
                    first = str(exc).strip().splitlines()
                    record(PartResult(part.index, part.communities, None,
                                      f"{type(exc).__name__}: {first[0] if first else ''}"))
    finally:
        if started:
            ray.shutdown()


def merge(district: District, todo: Sequence[Part], results: Sequence[PartResult], engine: str,
          seconds: float) -> DistrictResult:
    """Each community's share of its part's schedule, in the district's order."""
    shares: dict[str, CommunityResult] = {}
    failed: dict[str, str] = {}
    for part, result in zip(todo, results, strict=True):
        for name in part.communities:
            if result.schedule is None:
                failed[name] = result.error or "failed"
            else:
                shares[name] = community_share(part.problem, result.schedule,
                                               district.community(name), part.communities)
    ordered = [shares[c.name] for c in district.communities if c.name in shares]
    return DistrictResult(district.week, list(results), ordered, failed, engine, seconds)


SUMMARY_FILE = "district_summary.csv"


def summary_rows(result: DistrictResult, district: District) -> list[dict[str, object]]:
    """One row per community: coverage by priority and unmet occurrences by reason."""
    rows: list[dict[str, object]] = []
    component_of = {name: part.communities for part in result.parts for name in part.communities}
    for c in district.communities:
        row: dict[str, object] = {"community": c.name,
                                  "component": ";".join(component_of.get(c.name, ()))}
        share = next((s for s in result.communities if s.name == c.name), None)
        occurrences = len(c.problem.occurrences)
        if share is None:
            row.update(status="failed", occurrences=occurrences, covered="", coverage_pct="")
            row.update({f"{p.value}_{what}": "" for p in Priority
                        for what in ("occurrences", "covered", "pct")})
            row.update({f"unmet_{r.value}": "" for r in UnmetReason})
            row.update(tasks="", walk_min="", error=result.failed.get(c.name, ""))
            rows.append(row)
            continue
        s = share.schedule
        row.update(status=s.status.value, occurrences=s.occurrences, covered=s.covered,
                   coverage_pct=_pct(s.covered, s.occurrences))
        for p in Priority:
            level = s.levels[p]
            row[f"{p.value}_occurrences"] = level.occurrences
            row[f"{p.value}_covered"] = level.covered
            row[f"{p.value}_pct"] = _pct(level.covered, level.occurrences)
        counts = s.unmet_by_reason()
        row.update({f"unmet_{r.value}": counts.get(r.value, 0) for r in UnmetReason})
        row.update(tasks=len(s.assignments), walk_min=round(s.total_walk_min, 1), error="")
        rows.append(row)
    return rows


def _pct(part: int, whole: int) -> object:
    return round(100 * part / whole, 1) if whole else ""


def write_district(result: DistrictResult, district: District, out: Path, *,
                   settings: Settings | None = None, network: WalkingNetwork | None = None,
                   coords: CoordSystem = CoordSystem.WGS84,
                   map_html: bool = True) -> list[Path]:
    """Each solved community's files in ``out/<community>/`` (as ``linli solve`` writes one
    community's), ``district_summary.csv`` (UTF-8 with a byte-order mark, for Excel), and the
    district report: ``district_report.csv`` and its map ``district_map.html``
    (:mod:`matcher.district_report`)."""
    import pandas as pd

    from matcher.district_report import district_report, write_district_report
    from matcher.outputs import write_csv, write_schedule

    written: list[Path] = []
    for share in result.communities:
        written += write_schedule(share.problem, share.schedule, out / share.name,
                                  settings=settings, network=network, coords=coords,
                                  map_html=map_html)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(pd.DataFrame(summary_rows(result, district)), out / SUMMARY_FILE)
    written.append(out / SUMMARY_FILE)
    written += write_district_report(district_report(district, result), out, settings=settings,
                                     map_html=map_html)
    return written


def lpt_makespan(times: Sequence[float], cores: int) -> float:
    """Wall time of ``times`` scheduled on ``cores`` by longest processing time first: each
    job, longest first, to the core free earliest (never below the longest job)."""
    if not times:
        return 0.0
    free = [0.0] * max(cores, 1)
    for t in sorted(times, reverse=True):
        k = min(range(len(free)), key=free.__getitem__)
        free[k] += t
    return max(free)


# The shipped street network of central Shanghai (data/shanghai-center/PROVENANCE.md).
SHANGHAI_NETWORK = "shanghai-center/shanghai_center_roads.osm.pbf"


def generate_district(network: WalkingNetwork | None, *, communities: int = 20,
                      volunteers: int = 6000, needs: int = 8000, merchants: int = 400,
                      radius_m: float = 700.0, centre: Location | None = None,
                      week: Week, seed: int = 7, grid_units: int = 0) -> District:
    """A random but believable district on real streets (the benchmark's, on demand).

    Community centres spread over the network (each next one as far as possible from those
    chosen), except that about a third sit beside another one, as neighbouring communities of
    one street office do: their circles overlap, volunteers living near the shared edge are
    registered with both, and such neighbours make one part. Sizes vary by community (0.6-1.4
    times the mean). Ids are prefixed with the community (``C03-V0001``). Without a network,
    places are drawn in discs around ``centre`` spaced on a grid. With ``grid_units``, each
    community gets about that many rectangular grid units over its places (:func:`grid_cells`).
    """
    from matcher.generate import generate_community

    if communities < 1:
        raise ValueError("communities must be at least 1")
    rng = np.random.default_rng(seed)
    centres = _centres(rng, network, communities, radius_m, centre)
    weights = rng.uniform(0.6, 1.4, size=communities)
    weights /= weights.sum()

    def split(total: int) -> list[int]:
        sizes = np.floor(weights * total).astype(int)
        sizes[: total - int(sizes.sum())] += 1
        return [max(int(s), 1) for s in sizes]

    out: list[Community] = []
    for k, (n_v, n_n, n_m) in enumerate(zip(split(volunteers), split(needs), split(merchants),
                                            strict=True)):
        name = f"C{k + 1:02d}"
        p = generate_community(n_v, n_n, n_m, network=network, centre=centres[k],
                               radius_m=radius_m, week=week, seed=seed * 1000 + k)
        out.append(Community(name, Problem(
            week, [replace(v, id=f"{name}-{v.id}") for v in p.volunteers],
            [replace(n, id=f"{name}-{n.id}") for n in p.needs],
            [replace(m, id=f"{name}-{m.id}") for m in p.merchants])))
    shared = _share_boundary_volunteers(out, centres, radius_m)
    return District(week, [replace(c, units=grid_cells(c.problem, grid_units, c.name))
                           for c in shared])


def _centres(rng: np.random.Generator, network: WalkingNetwork | None, count: int,
             radius_m: float, centre: Location | None) -> list[Location]:
    if network is None:
        middle = centre or Location(31.2287, 121.4787)
        side = math.ceil(math.sqrt(count))
        step = 2 * radius_m + 1500.0  # discs more than a circle apart: independent
        return [Location(middle.lat + (k // side) * step / 110_540,
                         middle.lon + (k % side) * step / (111_320 * math.cos(
                             math.radians(middle.lat))))
                for k in range(count)]
    lat, lon = network.lat, network.lon
    x = (lon - lon.mean()) * math.cos(math.radians(float(lat.mean()))) * 111_320.0
    y = (lat - lat.mean()) * 110_540.0
    # Keep a community's disc inside the map.
    inside = np.flatnonzero((x > x.min() + radius_m) & (x < x.max() - radius_m)
                            & (y > y.min() + radius_m) & (y < y.max() - radius_m))
    pool = inside if len(inside) else np.arange(len(lat))
    chosen = [int(rng.choice(pool))]
    neighbours = count // 3
    for k in range(1, count):
        if k > count - 1 - neighbours:
            # Beside an earlier community: about 2.4 radii apart, so the discs nearly touch.
            anchor = chosen[int(rng.integers(0, count - neighbours))]
            angle = float(rng.uniform(0, 2 * math.pi))
            tx = x[anchor] + 2.4 * radius_m * math.cos(angle)
            ty = y[anchor] + 2.4 * radius_m * math.sin(angle)
            d = (x[pool] - tx) ** 2 + (y[pool] - ty) ** 2
        else:
            d = np.min([(x[pool] - x[c]) ** 2 + (y[pool] - y[c]) ** 2 for c in chosen], axis=0)
            d = -d  # farthest from every chosen centre
        chosen.append(int(pool[int(np.argmin(d))]))
    return [Location(float(lat[c]), float(lon[c])) for c in chosen]


def _share_boundary_volunteers(communities: list[Community], centres: Sequence[Location],
                               radius_m: float) -> list[Community]:
    """Volunteers living within the disc of another community register with it too."""
    from matcher.travel import geodesic_m

    extra: dict[int, list[Volunteer]] = {k: [] for k in range(len(communities))}
    for k, c in enumerate(communities):
        for v in c.problem.volunteers:
            for j, other in enumerate(centres):
                if j != k and float(geodesic_m(np.array([v.location.lat]),
                                               np.array([v.location.lon]),
                                               np.array([other.lat]),
                                               np.array([other.lon]))[0]) <= radius_m:
                    extra[j].append(v)
    return [Community(c.name, replace(c.problem, volunteers=[*c.problem.volunteers,
                                                             *extra[k]]))
            for k, c in enumerate(communities)]


def save_district(district: District, folder: Path) -> None:
    """Write each community as a folder of SCHEMA CSV files under ``folder``, with its grid
    units as :data:`GRID_FILE` when it has any."""
    import json

    from matcher.spreadsheets import write_community

    for c in district.communities:
        write_community(c.problem, folder / c.name)
        if c.units:
            (folder / c.name / GRID_FILE).write_text(
                json.dumps(grids_geojson(c.units), ensure_ascii=False), encoding="utf-8")


def grid_cells(problem: Problem, count: int, name: str) -> tuple[GridUnit, ...]:
    """About ``count`` rectangular grid units over the places of ``problem`` (a generated
    community's 网格: columns by rows over the box around its needs and volunteers, widened a
    little so every place lies inside one). Units are named ``<name>-G1`` and up."""
    from shapely.geometry import box

    places = [n.location for n in problem.needs] + [v.location for v in problem.volunteers]
    if count < 1 or not places:
        return ()
    lat = [p.lat for p in places]
    lon = [p.lon for p in places]
    margin = 0.0005  # about 50 m: no place sits on the outer edge
    lat0, lat1 = min(lat) - margin, max(lat) + margin
    lon0, lon1 = min(lon) - margin, max(lon) + margin
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    units: list[GridUnit] = []
    for r in range(rows):
        # The last row takes the units left, each wider, so the units tile the whole box.
        across = cols if r < rows - 1 else count - cols * (rows - 1)
        for k in range(across):
            ident = f"{name}-G{len(units) + 1}"
            units.append(GridUnit(ident, ident, box(
                lon0 + (lon1 - lon0) * k / across, lat0 + (lat1 - lat0) * r / rows,
                lon0 + (lon1 - lon0) * (k + 1) / across,
                lat0 + (lat1 - lat0) * (r + 1) / rows)))
    return tuple(units)
