"""The ``linli`` command: demo, solve, generate."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from matcher.charity import Allocation
from matcher.coords import CoordSystem
from matcher.domain import Location, Priority, Problem, Schedule, Week
from matcher.errors import InputError, NetworkError
from matcher.params import SolveParams
from matcher.settings import Settings
from matcher.spreadsheets import read_charity, read_community, write_community

if TYPE_CHECKING:
    from matcher.resources import Resource
    from matcher.travel import WalkingNetwork

app = typer.Typer(help="Linli (邻里): weekly matching of volunteers, needs and partner merchants.",
                  no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)

REPO_DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE_NETWORK = "shenzhen-futian/shenzhen_futian_walk.graphml"
SAMPLE_CENTRE = Location(22.53407, 114.01766)  # 车公庙/香蜜湖, western Futian
DEMO_WEEK = "2026-W48"
COLOUR = {Priority.RED: "red", Priority.YELLOW: "yellow", Priority.BLUE: "blue"}

# Options shared by solve and allocate.
NetworkOption = Annotated[Path | None, typer.Option(
    help=".osm, .osm.pbf or osmnx .graphml; without it geodesic x 1.3")]
CoordsOption = Annotated[CoordSystem, typer.Option(
    help="coordinate system of lat/lon: wgs84, gcj02 (Amap/Tencent) or bd09 (Baidu)")]


def data_dir() -> Path:
    """The embedded sample data: ``LINLI_DATA_DIR`` or the repository's ``data/``."""
    return Path(os.environ.get("LINLI_DATA_DIR", REPO_DATA))


@contextmanager
def step(label: str) -> Iterator[None]:
    """Show a spinner while a step runs and its time when it is done."""
    began = time.monotonic()
    with console.status(f"{escape(label)} ..."):
        yield
    console.print(f"[dim]{escape(label)}: {time.monotonic() - began:.1f} s[/dim]")


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/bold red] {escape(message)}")
    return typer.Exit(2)


def _print_schedule(problem: Problem, schedule: Schedule, out: Path) -> None:
    table = Table(title=f"Linli · week {schedule.week} · status {schedule.status.value}")
    for column in ("priority", "occurrences", "covered", "share", "bound", "proven"):
        table.add_column(column, justify="right" if column != "priority" else "left")
    for p, level in schedule.levels.items():
        share = f"{100 * level.covered / level.occurrences:.0f}%" if level.occurrences else "-"
        table.add_row(f"[{COLOUR[p]}]{p.value}[/]", str(level.occurrences), str(level.covered),
                      share, str(level.bound), "yes" if level.optimal else "no")
    console.print(table)
    volunteers = len({a.volunteer_id for a in schedule.assignments})
    console.print(f"{len(schedule.assignments)} assignments for {volunteers} of "
                  f"{len(problem.volunteers)} volunteers; walking {schedule.total_walk_min:.0f} "
                  f"min in all; solved in {schedule.solve_seconds:.1f} s "
                  f"({escape(str(schedule.stats.get('travel')))})")
    if schedule.unmet:
        reasons = Table(title="Why occurrences stay unmet")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        reasons.add_column("example")
        for code, count in list(schedule.unmet_by_reason().items())[:6]:
            example = next(u for u in schedule.unmet if u.reason.value == code)
            reasons.add_row(code, str(count),
                            escape(f"{example.need_id} {example.day}: {example.detail}"
                                   + (f"\n→ {example.fix}" if example.fix else "")))
        console.print(reasons)
    console.print(f"Files in [bold]{escape(str(out))}[/bold]: assignments.csv, unmet.csv, "
                  "summary.json, "
                  "calendars/*.ics, map.html")


def _load_network(network: Path | None) -> WalkingNetwork | None:
    from matcher.travel import WalkingNetwork

    if network is None:
        return None
    try:
        with step(f"loading street network {network.name}"):
            return WalkingNetwork.from_file(network)
    except NetworkError as exc:
        raise _fail(str(exc)) from exc


def _run(source: Path, week: str, out: Path, network: Path | None, time_limit: float | None,
         coords: CoordSystem, workers: int | None, extra_needs: Sequence[Path] = ()) -> None:
    from matcher.outputs import write_schedule
    from matcher.solver import solve
    from matcher.travel import TravelTimes

    settings = Settings()
    try:
        iso_week = Week.parse(week)
        params = SolveParams(
            time_limit_s=settings.time_limit_s if time_limit is None else time_limit,
            workers=settings.workers if workers is None else workers)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    try:
        with step(f"reading {source}"):
            imported = read_community(source, iso_week, coords, extra_needs=extra_needs)
    except InputError as exc:
        raise _fail(str(exc)) from exc
    for note in imported.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    problem = imported.problem
    console.print(f"{len(problem.volunteers)} volunteers, {len(problem.needs)} needs "
                  f"({len(problem.occurrences)} occurrences), {len(problem.merchants)} merchants")
    net = _load_network(network)
    with step("walking times"):
        travel = TravelTimes.build(problem, settings, net)
    began = time.monotonic()
    with console.status("solving ...") as status:
        schedule = solve(problem, params, travel=travel, settings=settings,
                         progress=lambda msg: status.update(
                             f"{msg} ({time.monotonic() - began:.0f} s)"))
    with step("writing outputs"):
        write_schedule(problem, schedule, out, settings=settings, network=net, coords=coords)
    _print_schedule(problem, schedule, out)


@app.command()
def solve(
    data: Annotated[Path, typer.Option(help="folder of CSVs or an .xlsx workbook")],
    week: Annotated[str, typer.Option(help="ISO week, e.g. 2026-W48")],
    out: Annotated[Path, typer.Option(help="folder for the schedule files")],
    network: NetworkOption = None,
    time_limit: Annotated[float | None, typer.Option(
        help="solver time limit, seconds [default: LINLI_TIME_LIMIT_S or 60]")] = None,
    coords: CoordsOption = CoordSystem.WGS84,
    workers: Annotated[int | None, typer.Option(
        help="solver threads, 0 = all cores [default: LINLI_WORKERS or 0]")] = None,
    add_needs: Annotated[list[Path] | None, typer.Option(
        help="more needs.csv-format files, e.g. delivery_needs.csv from linli allocate")] = None,
) -> None:
    """Plan one week: who goes where and when, and why the rest stays unmet."""
    _run(data, week, out, network, time_limit, coords, workers, add_needs or ())


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="folder for the schedule files")] = Path("linli-out"),
    time_limit: Annotated[float | None, typer.Option(
        help="solver time limit, seconds [default: LINLI_TIME_LIMIT_S or 60]")] = None,
) -> None:
    """Solve the embedded sample community (real streets of western Futian, Shenzhen)."""
    base = data_dir()
    sample = base / "sample"
    if not sample.exists():
        raise _fail(f"no sample community at {sample} (set LINLI_DATA_DIR)")
    console.print("[bold]Linli demo[/bold]: a sample community on OpenStreetMap streets of "
                  "western Futian, Shenzhen (© OpenStreetMap contributors, ODbL)")
    _run(sample, DEMO_WEEK, out, base / SAMPLE_NETWORK, time_limit, CoordSystem.WGS84, None)


def _print_allocation(allocation: Allocation, out: Path) -> None:
    table = Table(title=f"Linli allocation · week {allocation.week} · status "
                        f"{allocation.status.value}")
    for column in ("priority", "requests", "requested", "allocated", "bound", "lowest fill"):
        table.add_column(column, justify="right" if column != "priority" else "left")
    for p, level in allocation.levels.items():
        table.add_row(f"[{COLOUR[p]}]{p.value}[/]", str(level.requests), str(level.requested),
                      str(level.allocated), str(level.bound), f"{level.min_fill_ratio:.0%}")
    console.print(table)
    summary = allocation.summary()
    by_date = summary["deliveries_by_date"]
    days = ", ".join(f"{dt.date.fromisoformat(day):%a %m-%d} {count}"
                     for day, count in by_date.items()) if isinstance(by_date, dict) else ""
    console.print(f"{summary['lines']} allocation lines, {summary['deliveries']} deliveries "
                  f"({summary['units_delivered']} units{'; ' + days if days else ''}) for the "
                  "weekly schedule; "
                  f"{summary['leftover_units']} units left in stock; "
                  f"{allocation.solve_seconds:.1f} s ({escape(allocation.method)})")
    console.print(f"Files in [bold]{escape(str(out))}[/bold]: allocations.csv, "
                  "unmet_requests.csv, "
                  "leftover.csv, delivery_needs.csv (add to a week with "
                  "[bold]linli solve --add-needs[/bold]), summary.json")


@app.command()
def allocate(
    data: Annotated[Path, typer.Option(help="folder or .xlsx with donations and requests")],
    week: Annotated[str, typer.Option(help="ISO week; donations expired by its Monday stay")],
    out: Annotated[Path, typer.Option(help="folder for the allocation files")],
    network: NetworkOption = None,
    coords: CoordsOption = CoordSystem.WGS84,
) -> None:
    """Allocate donated goods to households: red first, fair inside a priority."""
    from matcher.allocation import allocate as run_allocation
    from matcher.outputs import write_allocation

    try:
        iso_week = Week.parse(week)
        with step(f"reading {data}"):
            imported = read_charity(data, iso_week, coords)
    except (ValueError, InputError) as exc:
        raise _fail(str(exc)) from exc
    for note in imported.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    problem = imported.problem
    console.print(f"{len(problem.donations)} donations, {len(problem.requests)} requests, "
                  f"{len(problem.categories)} categories")
    net = _load_network(network)
    with step("allocating"):
        allocation = run_allocation(problem, Settings(), net)
    with step("writing outputs"):
        write_allocation(problem, allocation, out, coords)
    _print_allocation(allocation, out)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="folder for the generated CSV files")],
    volunteers: int = 300,
    needs: int = 400,
    merchants: int = 20,
    radius_m: Annotated[float, typer.Option(help="spread around the centre, metres")] = 1500.0,
    network: Annotated[Path | None, typer.Option(help="street network to place people on")]
        = None,
    week: str = DEMO_WEEK,
    seed: int = 7,
    requests: Annotated[int, typer.Option(help="charity requests (0: none)")] = 0,
    donations: Annotated[int, typer.Option(help="charity donations")] = 0,
    categories: Annotated[int, typer.Option(help="goods categories, at most 30")] = 10,
) -> None:
    """Generate a believable community (the sample data and the benchmarks use this)."""
    from matcher.generate import generate_charity, generate_community
    from matcher.spreadsheets import charity_frames

    net = _load_network(network)
    iso_week = Week.parse(week)
    problem = generate_community(volunteers, needs, merchants, network=net,
                                 centre=SAMPLE_CENTRE, radius_m=radius_m, week=iso_week,
                                 seed=seed)
    write_community(problem, out)
    console.print(f"wrote {escape(str(out))}: {len(problem.volunteers)} volunteers, "
                  f"{len(problem.needs)} needs "
                  f"({len(problem.occurrences)} occurrences), {len(problem.merchants)} merchants")
    if requests:
        charity = generate_charity(requests, donations, categories, network=net,
                                   centre=SAMPLE_CENTRE, radius_m=radius_m, week=iso_week,
                                   seed=seed)
        for name, frame in charity_frames(charity).items():
            frame.to_csv(out / f"{name}.csv", index=False)
        console.print(f"wrote {len(charity.donations)} donations and {len(charity.requests)} "
                      f"requests in {len(charity.categories)} categories")


def _community_resources(network: Path, osm: Path | None, data: Path | None
                         ) -> list[Resource]:
    """Public places of the OSM file (the network itself when it is one, else ``osm``) and
    the partner merchants of ``data``."""
    from matcher.resources import merchant_resources, read_osm_resources

    found: list[Resource] = []
    try:
        for source in dict.fromkeys(p for p in (network, osm) if p is not None):
            found += read_osm_resources(source)
    except NetworkError as exc:
        raise _fail(str(exc)) from exc
    if data is not None:
        try:
            community = read_community(data, Week.parse(DEMO_WEEK))
        except InputError as exc:
            raise _fail(str(exc)) from exc
        found += merchant_resources(community.problem.merchants)
    return found


OsmOption = Annotated[Path | None, typer.Option(
    help="an OSM extract (.osm, .osm.pbf) to take public places from, when --network is a "
         "GraphML file (streets only)")]
DataOption = Annotated[Path | None, typer.Option(
    help="a community folder or workbook: its partner merchants are resources too")]


@app.command()
def resources(
    network: Annotated[Path, typer.Option(help=".osm, .osm.pbf or osmnx .graphml")],
    osm: OsmOption = None,
    data: DataOption = None,
    out: Annotated[Path | None, typer.Option(help="write the list as CSV here")] = None,
) -> None:
    """List the resources (资源清单): public places from OpenStreetMap by category, and the
    partner merchants with their services."""
    from matcher.resources import ATTRIBUTION, CATEGORIES, category_label, write_resources_csv

    found = _community_resources(network, osm, data)
    table = Table(title=f"Linli · resources · {escape(network.name)}")
    for column in ("category", "", "places", "examples"):
        table.add_column(column, justify="right" if column == "places" else "left")
    for category in CATEGORIES:
        mine = [r for r in found if r.category is category]
        names = "、".join(dict.fromkeys(r.label for r in mine[:4]))
        table.add_row(category.value, category_label(category), str(len(mine)), escape(names))
    console.print(table)
    console.print(f"{len(found)} resources; places from OpenStreetMap: {ATTRIBUTION}")
    if not any(r.source == "osm" for r in found):
        console.print("[yellow]no public places found: an osmnx GraphML file holds streets "
                      "only; give an OSM extract with --osm[/yellow]")
    if out is not None:
        out.write_text(write_resources_csv(found), encoding="utf-8")
        console.print(f"wrote {escape(str(out))}")


@app.command()
def nearby(
    lat: Annotated[float, typer.Option(help="where the resident is (latitude)")],
    lon: Annotated[float, typer.Option(help="longitude")],
    network: Annotated[Path, typer.Option(help=".osm, .osm.pbf or osmnx .graphml")],
    osm: OsmOption = None,
    data: DataOption = None,
    category: Annotated[str | None, typer.Option(help="only this category")] = None,
    coords: CoordsOption = CoordSystem.WGS84,
    limit: int = 10,
) -> None:
    """What is within 15 minutes' walk of a place, nearest first, with directions."""
    from matcher.coords import to_wgs84
    from matcher.nearby import NearbyIndex
    from matcher.resources import Category, category_label

    wanted: Category | None = None
    if category is not None:
        try:
            wanted = Category(category)
        except ValueError as exc:
            raise _fail(f"--category: {category!r} is not one of "
                        f"{', '.join(Category)}") from exc
    net = _load_network(network)
    assert net is not None
    index = NearbyIndex(net, _community_resources(network, osm, data), Settings())
    here = Location(*to_wgs84(lat, lon, coords))
    found = index.lookup(here, wanted, limit)
    if not found:
        console.print("nothing of that kind within the circle")
    for f in found:
        console.print(f"[bold]{f.minutes:4.1f} min[/bold] {escape(f.resource.label)} "
                      f"({category_label(f.resource.category)}): {escape(f.text)}")


@app.command()
def poster(
    network: Annotated[Path, typer.Option(help=".osm, .osm.pbf or osmnx .graphml")],
    url: Annotated[str, typer.Option(help="the lookup page the QR code opens")],
    out: Annotated[Path, typer.Option(help="the HTML file to write")] = Path("poster.html"),
    osm: OsmOption = None,
    data: DataOption = None,
    lat: Annotated[float, typer.Option(help="the community centre")] = SAMPLE_CENTRE.lat,
    lon: float = SAMPLE_CENTRE.lon,
    coords: CoordsOption = CoordSystem.WGS84,
    community: Annotated[str, typer.Option(help="the name on the poster")] = "邻里社区",
) -> None:
    """Write the community's printable 15-minute service map (A3) with a legend and the QR code
    of the lookup page."""
    from matcher.coords import to_wgs84
    from matcher.poster import poster_html

    net = _load_network(network)
    assert net is not None
    found = _community_resources(network, osm, data)
    centre = Location(*to_wgs84(lat, lon, coords))
    out.write_text(poster_html(net, found, centre, Settings(), community, url), encoding="utf-8")
    console.print(f"wrote {escape(str(out))}")


@app.command()
def access(
    network: Annotated[Path, typer.Option(help=".osm, .osm.pbf or osmnx .graphml")],
    data: Annotated[Path, typer.Option(help="the community (needs, volunteers, merchants)")],
    out: Annotated[Path, typer.Option(help="folder for the tables")] = Path("linli-access"),
    osm: OsmOption = None,
    k: Annotated[int, typer.Option(min=1, help="how many volunteers of a skill should be "
                                   "near")] = 2,
) -> None:
    """Accessibility and service blind spots (服务盲区): minutes from every street node to the
    nearest resource of each category and to the k nearest volunteers of each skill, and the
    households beyond the circle of each category."""
    import pandas as pd

    from matcher.accessibility import blind_spots, category_layer, skill_layer
    from matcher.resources import CATEGORIES, category_label

    net = _load_network(network)
    assert net is not None
    found = _community_resources(network, osm, data)
    try:
        problem = read_community(data, Week.parse(DEMO_WEEK)).problem
    except InputError as exc:
        raise _fail(str(exc)) from exc
    settings = Settings()
    began = time.perf_counter()
    layer = category_layer(net, found, settings)
    took = time.perf_counter() - began
    skills = skill_layer(net, problem.volunteers, k, settings)
    spots = blind_spots(net, layer, problem.needs, settings)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"node": [str(n) for n in net.nodes], "lat": net.lat, "lon": net.lon})
    for c, category in enumerate(CATEGORIES):
        frame[f"{category.value}_min"] = layer[:, c].round(1)
    for skill, minutes in skills.items():
        frame[f"{k}x_{skill}_min"] = minutes.round(1)
    frame.to_csv(out / "access_nodes.csv", index=False)
    pd.DataFrame([{"need_id": b.need_id, "category": b.category.value,
                   "minutes": round(b.minutes, 1)} for b in spots],
                 columns=["need_id", "category", "minutes"]).to_csv(
        out / "blind_spots.csv", index=False)
    table = Table(title=f"Linli · accessibility · {len(net.nodes)} street nodes")
    for column in ("category", "", "nodes within the circle", "households beyond"):
        table.add_column(column, justify="left" if column in ("category", "") else "right")
    for c, category in enumerate(CATEGORIES):
        share = float((layer[:, c] <= settings.circle_min).mean())
        beyond = sum(1 for b in spots if b.category is category)
        table.add_row(category.value, category_label(category), f"{share:.0%}",
                      f"{beyond} of {len(problem.needs)}")
    console.print(table)
    for skill, minutes in skills.items():
        share = float((minutes <= settings.circle_min).mean())
        console.print(f"{escape(skill)}: {k} volunteers within the circle of {share:.0%} of "
                      "the street nodes")
    console.print(f"{len(CATEGORIES)} categories x {len(net.nodes)} nodes in {took:.3f} s; "
                  f"wrote {escape(str(out))}/access_nodes.csv and blind_spots.csv")


@app.command()
def recruit(
    data: Annotated[Path, typer.Option(help="the community (needs, volunteers, merchants)")],
    skill: Annotated[str, typer.Option(help="the skill to recruit for, e.g. meal_delivery")],
    k: Annotated[int, typer.Option(min=1, help="how many volunteers to recruit")] = 3,
    network: NetworkOption = None,
    week: str = DEMO_WEEK,
    time_limit: Annotated[float, typer.Option(help="seconds per re-solve")] = 30.0,
    hours: Annotated[float, typer.Option(help="the recruit's weekly hours")] = 4.0,
) -> None:
    """Where to recruit: the places where one more volunteer with SKILL would cover the most
    of the week's unmet occurrences, each checked by re-solving the week with her there."""
    from matcher.recruit import EXACT_MAX_K, GREEDY_GUARANTEE, suggest_recruits

    try:
        problem = read_community(data, Week.parse(week)).problem
    except (InputError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    net = _load_network(network)
    with step(f"solving the week and {k} re-solve(s)"):
        plan = suggest_recruits(problem, skill, k, Settings(), net,
                                SolveParams(time_limit_s=time_limit), hours)
    table = Table(title=f"Linli · recruit · {escape(skill)} · week {escape(week)}")
    for column in ("#", "near", "lat", "lon", "reaches", "adds (estimate)", "gain (re-solved)"):
        table.add_column(column, justify="left" if column == "near" else "right")
    for number, s in enumerate(plan.suggestions, start=1):
        table.add_row(str(number), escape(s.street), f"{s.place.lat:.5f}", f"{s.place.lon:.5f}",
                      str(len(s.reaches)), str(s.adds), str(s.gain))
    console.print(table)
    exact = "-" if plan.exact_cover is None else str(plan.exact_cover)
    console.print(f"{plan.unmet} unmet occurrence(s) a recruit with {escape(skill)} alone "
                  f"could serve; {k} place(s) reach: exact {exact} (CP-SAT, k <= "
                  f"{EXACT_MAX_K}), greedy {plan.greedy_cover} (at least "
                  f"{GREEDY_GUARANTEE:.0%} of the best); covered {plan.covered_before} -> "
                  f"{plan.covered_after}" + ("" if plan.proven else " (a re-solve was not "
                                             "proven optimal: raise --time-limit)"))
    for sentence in plan.sentences():
        console.print(escape(sentence))


@app.command()
def grids(
    units: Annotated[Path, typer.Option(help="GeoJSON polygons of the grid units (网格)")],
    data: Annotated[Path, typer.Option(help="the community (needs, volunteers, merchants)")],
    out: Annotated[Path | None, typer.Option(help="write each place's unit as CSV here")]
        = None,
    osm: Annotated[Path | None, typer.Option(help="an OSM extract: its public places get "
                                             "units too")] = None,
    week: str = DEMO_WEEK,
) -> None:
    """Give every volunteer, need, merchant and resource its grid unit, and report by unit."""
    import pandas as pd

    from matcher.grids import assign, read_grids, unit_reports
    from matcher.resources import merchant_resources, read_osm_resources

    try:
        grid = read_grids(units)
        problem = read_community(data, Week.parse(week)).problem
        found = merchant_resources(problem.merchants)
        if osm is not None:
            found += read_osm_resources(osm)
    except (InputError, NetworkError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    table = Table(title=f"Linli · grid units · week {escape(week)}")
    for column in ("unit", "name", "volunteers", "needs", "occurrences", "red", "merchants",
                   "resources"):
        table.add_column(column, justify="left" if column in ("unit", "name") else "right")
    for r in unit_reports(grid, problem, found):
        table.add_row(escape(r.unit_id or "(none)"), escape(r.name), str(r.volunteers),
                      str(r.needs), str(r.occurrences), str(r.red_occurrences),
                      str(r.merchants), str(r.resources))
    console.print(table)
    if out is not None:
        rows = [{"kind": kind, "id": ident, "unit_id": unit or ""}
                for kind, places in assign(grid, problem, found).items()
                for ident, unit in places.items()]
        pd.DataFrame(rows, columns=["kind", "id", "unit_id"]).to_csv(out, index=False)
        console.print(f"wrote {escape(str(out))}")


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    app()
