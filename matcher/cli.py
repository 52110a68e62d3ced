"""The ``linli`` command: demo, solve, generate."""

from __future__ import annotations

import datetime as dt
import importlib.util
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
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from matcher.charity import Allocation
from matcher.coords import CoordSystem
from matcher.domain import Location, Priority, Problem, Schedule, Week
from matcher.errors import InputError, NetworkError
from matcher.i18n import _, normalise, use
from matcher.params import SolveParams
from matcher.settings import Settings
from matcher.spreadsheets import read_charity, read_community, write_community

if TYPE_CHECKING:
    from matcher.resources import Resource
    from matcher.solver import SolveProgress
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


def language(flag: str | None = None) -> str:
    """The language of what the command prints: ``--lang``, else the locale of the shell
    (``LC_ALL``, ``LC_MESSAGES``, ``LANG``, the first set); Chinese when none is set or it is
    ``C``/``POSIX``."""
    if flag:
        return normalise(flag)
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(name):
            return normalise(os.environ[name])
    return normalise(None)


@app.callback()
def _main(ctx: typer.Context, lang: Annotated[str | None, typer.Option(
        "--lang", help="language of the output: zh (Simplified Chinese) or en; default from "
                       "LC_ALL / LANG, Chinese when unset")] = None) -> None:
    """Linli (邻里): weekly matching of volunteers, needs and partner merchants."""
    ctx.with_resource(use(language(lang)))


def priority_word(p: Priority) -> str:
    """红 / 黄 / 蓝 (red / yellow / blue)."""
    return {Priority.RED: _("red"), Priority.YELLOW: _("yellow"),
            Priority.BLUE: _("blue")}[p]


def stage_word(stage: str) -> str:
    """The solve's stage as the progress bar names it."""
    if stage in {p.value for p in Priority}:
        return priority_word(Priority(stage))
    return {"prepare": _("getting ready"), "quality": _("shorter walks"),
            "explain": _("explaining what stays unmet")}.get(stage, stage)


def status_word(status: str) -> str:
    return {"optimal": _("proven best"), "feasible": _("good, not proven best"),
            "empty": _("nothing to plan")}.get(status, status)

# Options shared by solve and allocate.
NetworkOption = Annotated[Path | None, typer.Option(
    help=".osm, .osm.pbf or osmnx .graphml; without it geodesic x 1.3")]
CoordsOption = Annotated[CoordSystem, typer.Option(
    help="coordinate system of lat/lon: wgs84, gcj02 (Amap/Tencent) or bd09 (Baidu)")]
TimeLimitOption = Annotated[float | None, typer.Option(
    help="the solver's limit in seconds; without --wall-clock it is turned into a fixed "
         "amount of CP-SAT work (deterministic time), which takes longer on a slow or busy "
         "machine but gives the same schedule [default: LINLI_TIME_LIMIT_S or 60]")]
WallClockOption = Annotated[bool, typer.Option(
    "--wall-clock",
    help="count the limit in wall-clock seconds; by default it counts CP-SAT's deterministic "
         "time, so the same inputs give the same schedule [default: LINLI_WALL_CLOCK or off]")]


def data_dir() -> Path:
    """The embedded sample data: ``LINLI_DATA_DIR`` or the repository's ``data/``."""
    return Path(os.environ.get("LINLI_DATA_DIR", REPO_DATA))


@contextmanager
def step(label: str) -> Iterator[None]:
    """Show a spinner while a step runs and its time when it is done."""
    began = time.monotonic()
    with console.status(f"{escape(label)} ..."):
        yield
    console.print("[dim]" + escape(_("{label}: {seconds:.1f} s").format(
        label=label, seconds=time.monotonic() - began)) + "[/dim]")


def _problem(exc: Exception) -> str:
    """An error for the person: an input's problems each in their language."""
    return exc.localised() if isinstance(exc, InputError) else str(exc)


def _fail(message: str) -> typer.Exit:
    label = _("error:")
    err.print(f"[bold red]{escape(label)}[/bold red] {escape(message)}")
    return typer.Exit(2)


def _print_schedule(problem: Problem, schedule: Schedule, out: Path) -> None:
    table = Table(title=_("Linli · week {week} · {status}").format(
        week=schedule.week, status=status_word(schedule.status.value)))
    headers = (_("priority"), _("occurrences"), _("covered"), _("share"), _("at most possible"),
               _("proven best"))
    for k, column in enumerate(headers):
        table.add_column(column, justify="right" if k else "left")
    for p, level in schedule.levels.items():
        share = f"{100 * level.covered / level.occurrences:.0f}%" if level.occurrences else "-"
        table.add_row(f"[{COLOUR[p]}]{escape(priority_word(p))}[/]", str(level.occurrences),
                      str(level.covered), share, str(level.bound),
                      _("yes") if level.optimal else _("no"))
    console.print(table)
    volunteers = len({a.volunteer_id for a in schedule.assignments})
    limit = (_("deterministic limit") if schedule.limit == "deterministic"
             else _("wall-clock limit"))
    console.print(escape(_(
        "{tasks} tasks for {volunteers} of {all} volunteers; {walk:.0f} min of walking in "
        "all; planned in {seconds:.1f} s and {work:.1f} units of deterministic time ({limit}; "
        "{travel})").format(
            tasks=len(schedule.assignments), volunteers=volunteers,
            all=len(problem.volunteers), walk=schedule.total_walk_min,
            seconds=schedule.solve_seconds, work=schedule.deterministic_time, limit=limit,
            travel=schedule.stats.get("travel"))))
    if schedule.unmet:
        reasons = Table(title=_("Why occurrences stay unmet"))
        reasons.add_column(_("reason"))
        reasons.add_column(_("count"), justify="right")
        reasons.add_column(_("example"))
        for code, count in list(schedule.unmet_by_reason().items())[:6]:
            example = next(u for u in schedule.unmet if u.reason.value == code)
            reasons.add_row(code, str(count),
                            escape(f"{example.need_id} {example.day}: {example.detail}"
                                   + (f"\n→ {example.fix}" if example.fix else "")))
        console.print(reasons)
    console.print(escape(_("Files in {out}: ").format(out=out)) + "assignments.csv, unmet.csv, "
                  "summary.json, calendars/*.ics, map.html")


class SolveBar:
    """The solve's progress as a bar: the level being planned (红/黄/蓝), the best coverage so
    far and how many at most, the share of the budget spent, elapsed time."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task(_("planning"), total=1.0, detail="")

    def __call__(self, event: SolveProgress) -> None:
        detail = ""
        if event.covered is not None and event.occurrences is not None:
            detail = _("{covered} of {occurrences} planned").format(
                covered=event.covered, occurrences=event.occurrences)
            if event.bound is not None:
                detail += _(", at most {bound} possible").format(bound=event.bound)
        self.progress.update(self.task, completed=event.spent,
                             description=_("planning: {stage}").format(
                                 stage=stage_word(event.stage)),
                             detail=detail)


    def done(self) -> None:
        """The solve has ended (early when every level is proven best): the bar is full."""
        self.progress.update(self.task, completed=1.0, description=_("planning done"))


def solve_progress() -> Progress:
    """The progress display of a solve (on the terminal; nothing when output is redirected)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console,
                    transient=False)


def _notes(notes: Sequence[str]) -> None:
    label = _("note:")
    for note in notes:
        console.print(f"[yellow]{escape(label)}[/yellow] {escape(note)}")


def _load_network(network: Path | None) -> WalkingNetwork | None:
    from matcher.travel import WalkingNetwork

    if network is None:
        return None
    try:
        with step(_("loading the street map {name}").format(name=network.name)):
            return WalkingNetwork.from_file(network)
    except NetworkError as exc:
        raise _fail(str(exc)) from exc


def _run(source: Path, week: str, out: Path, network: Path | None, time_limit: float | None,
         coords: CoordSystem, workers: int | None, extra_needs: Sequence[Path] = (),
         wall_clock: bool = False) -> None:
    from matcher.outputs import write_schedule
    from matcher.solver import solve
    from matcher.travel import TravelTimes

    settings, iso_week, params = _solve_settings(week, time_limit, wall_clock, workers)
    try:
        with step(_("reading {source}").format(source=source)):
            imported = read_community(source, iso_week, coords, extra_needs=extra_needs)
    except InputError as exc:
        raise _fail(exc.localised()) from exc
    _notes(imported.notes)
    problem = imported.problem
    console.print(escape(_(
        "{volunteers} volunteers, {needs} needs ({occurrences} occurrences), {merchants} "
        "merchants").format(volunteers=len(problem.volunteers), needs=len(problem.needs),
                            occurrences=len(problem.occurrences),
                            merchants=len(problem.merchants))))
    net = _load_network(network)
    with step(_("walking times")):
        travel = TravelTimes.build(problem, settings, net)
    with solve_progress() as display:
        bar = SolveBar(display)
        schedule = solve(problem, params, travel=travel, settings=settings, on_progress=bar)
        bar.done()
    with step(_("writing the files")):
        write_schedule(problem, schedule, out, settings=settings, network=net, coords=coords)
    _print_schedule(problem, schedule, out)


def _solve_settings(week: str, time_limit: float | None, wall_clock: bool,
                    workers: int | None) -> tuple[Settings, Week, SolveParams]:
    """The settings, week and solve parameters of a solve, checked before anything is read (a
    map that cannot be drawn stops us before solving)."""
    from matcher.mapview import tile_layers

    try:
        settings = Settings()
        tile_layers(settings)
        params = SolveParams(
            time_limit_s=settings.time_limit_s if time_limit is None else time_limit,
            wall_clock=wall_clock or settings.wall_clock,
            workers=settings.workers if workers is None else workers)
        return settings, Week.parse(week), params
    except ValueError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def solve(
    data: Annotated[Path, typer.Option(help="folder of CSVs or an .xlsx workbook")],
    week: Annotated[str, typer.Option(help="ISO week, e.g. 2026-W48")],
    out: Annotated[Path, typer.Option(help="folder for the schedule files")],
    network: NetworkOption = None,
    time_limit: TimeLimitOption = None,
    wall_clock: WallClockOption = False,
    coords: CoordsOption = CoordSystem.WGS84,
    workers: Annotated[int | None, typer.Option(
        help="solver threads, 0 = all cores with --wall-clock, else 1 "
             "[default: LINLI_WORKERS or 0]")] = None,
    add_needs: Annotated[list[Path] | None, typer.Option(
        help="more needs.csv-format files, e.g. delivery_needs.csv from linli allocate")] = None,
    engine: Annotated[str, typer.Option(
        help="for a district (a folder of community folders): local (one part after the "
             "other in this process) or ray (each part a Ray task)")] = "local",
    address: Annotated[str | None, typer.Option(
        help="with --engine ray: the Ray cluster, e.g. auto or ray://head:10001; without it "
             "Ray starts on this machine")] = None,
    max_retries: Annotated[int, typer.Option(
        help="district: how many more tries a failed part gets")] = 2,
) -> None:
    """Plan one week: who goes where and when, and why the rest stays unmet.

    Given a district (one folder per community), every community is planned and written to
    OUT/<community>/, with OUT/district_summary.csv, the district report
    OUT/district_report.csv (by community and grid unit) and its map OUT/district_map.html;
    --time-limit is then per community."""
    from matcher.district import is_district

    if engine not in ("local", "ray"):
        raise _fail(_("--engine is local or ray, not {engine}").format(engine=engine))
    if is_district(data):
        if add_needs:
            raise _fail(_("--add-needs works for one community: add the file to its folder"))
        _run_district(data, week, out, network, time_limit, coords, workers, wall_clock,
                      engine, address, max_retries)
        return
    if engine == "ray" or address is not None:
        raise _fail(_("--engine ray plans a district: a folder with one folder per community "
                      "({path} is one community)").format(path=data))
    _run(data, week, out, network, time_limit, coords, workers, add_needs or (), wall_clock)


def _run_district(source: Path, week: str, out: Path, network: Path | None,
                  time_limit: float | None, coords: CoordSystem, workers: int | None,
                  wall_clock: bool, engine: str, address: str | None, max_retries: int) -> None:
    from matcher.district import (
        SUMMARY_FILE,
        DistrictEvent,
        load_district,
        parts,
        solve_district,
        write_district,
    )
    from matcher.district_report import MAP_FILE, REPORT_FILE

    if engine == "ray" and importlib.util.find_spec("ray") is None:
        raise _fail(_("--engine ray needs Ray: pip install 'linli[district]'"))
    settings, iso_week, params = _solve_settings(week, time_limit, wall_clock, workers)
    try:
        with step(_("reading {source}").format(source=source)):
            district = load_district(source, iso_week, coords)
    except InputError as exc:
        raise _fail(exc.localised()) from exc
    _notes(district.notes)
    net = _load_network(network)
    todo = parts(district, params, settings)
    console.print(escape(_(
        "{communities} communities in {parts} parts that share no volunteer, merchant or "
        "walking circle; each community gets {limit:g} s of planning").format(
            communities=len(district.communities), parts=len(todo),
            limit=params.time_limit_s)))
    where = (_("on Ray ({address})").format(address=address or _("this machine"))
             if engine == "ray" else _("in this process, one part after the other"))
    console.print(escape(_("planning {where} ...").format(where=where)))

    def report(event: DistrictEvent) -> None:
        result = event.result
        for name in result.communities:
            head = f"[{event.done}/{event.total}] {name}"
            if result.schedule is None:
                console.print("[red]" + escape(_("{head}: not planned: {error}").format(
                    head=head, error=result.error)) + "[/red]")
                continue
            mine = district.community(name)
            keys = {n.id for n in mine.problem.needs}
            covered = {(a.need_id, a.day) for a in result.schedule.assignments
                       if a.need_id in keys}
            by = {p: sum(1 for o in mine.problem.occurrences if o.need.priority is p
                         and (o.need.id, o.day) in covered) for p in Priority}
            console.print(escape(_(
                "{head}: {covered} of {occurrences} planned ({red} {r}, {yellow} {y}, "
                "{blue} {b}); {seconds:.1f} s").format(
                    head=head, covered=len(covered), occurrences=len(mine.problem.occurrences),
                    red=priority_word(Priority.RED), r=by[Priority.RED],
                    yellow=priority_word(Priority.YELLOW), y=by[Priority.YELLOW],
                    blue=priority_word(Priority.BLUE), b=by[Priority.BLUE],
                    seconds=result.seconds)))

    try:
        result = solve_district(district, params, settings, network=net,
                                engine="ray" if engine == "ray" else "local",
                                address=address, max_retries=max_retries, on_part=report)
    except ConnectionError as exc:
        raise _fail(_("cannot reach the Ray cluster {address}: {error}").format(
            address=address, error=exc)) from exc
    with step(_("writing the files")):
        write_district(result, district, out, settings=settings, network=net, coords=coords)
    covered = sum(c.schedule.covered for c in result.communities)
    occurrences = sum(c.schedule.occurrences for c in result.communities)
    console.print(escape(_(
        "district: {covered} of {occurrences} occurrences planned in {seconds:.1f} s; each "
        "community's files in {out}/<community>/, the district table in {summary}").format(
            covered=covered, occurrences=occurrences, seconds=result.seconds, out=out,
            summary=out / SUMMARY_FILE)))
    console.print(escape(_(
        "district report by community and grid unit: {table}; its map: {map}").format(
            table=out / REPORT_FILE, map=out / MAP_FILE)))
    if result.failed:
        raise _fail(_("{n} communities not planned (their part failed every try): "
                      "{names}").format(n=len(result.failed),
                                        names=", ".join(sorted(result.failed))))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="folder for the schedule files")] = Path("linli-out"),
    time_limit: TimeLimitOption = None,
    wall_clock: WallClockOption = False,
) -> None:
    """Solve the embedded sample community (real streets of western Futian, Shenzhen)."""
    base = data_dir()
    sample = base / "sample"
    if not sample.exists():
        raise _fail(_("no sample community at {path} (set LINLI_DATA_DIR)").format(path=sample))
    console.print(escape(_("Linli demo: a sample community on OpenStreetMap streets of western "
                           "Futian, Shenzhen (© OpenStreetMap contributors, ODbL)")))
    _run(sample, DEMO_WEEK, out, base / SAMPLE_NETWORK, time_limit, CoordSystem.WGS84, None,
         wall_clock=wall_clock)


def _print_allocation(allocation: Allocation, out: Path) -> None:
    table = Table(title=_("Linli allocation · week {week} · {status}").format(
        week=allocation.week, status=status_word(allocation.status.value)))
    headers = (_("priority"), _("requests"), _("requested"), _("allocated"),
               _("at most possible"), _("lowest fill"))
    for k, column in enumerate(headers):
        table.add_column(column, justify="right" if k else "left")
    for p, level in allocation.levels.items():
        table.add_row(f"[{COLOUR[p]}]{escape(priority_word(p))}[/]", str(level.requests),
                      str(level.requested), str(level.allocated), str(level.bound),
                      f"{level.min_fill_ratio:.0%}")
    console.print(table)
    summary = allocation.summary()
    by_date = summary["deliveries_by_date"]
    days = ", ".join(f"{dt.date.fromisoformat(day):%m-%d} {count}"
                     for day, count in by_date.items()) if isinstance(by_date, dict) else ""
    console.print(escape(_(
        "{lines} allocation lines, {deliveries} deliveries ({units} units) for the weekly "
        "schedule; {leftover} units left in stock; {seconds:.1f} s ({method})").format(
            lines=summary["lines"], deliveries=summary["deliveries"],
            units=summary["units_delivered"], leftover=summary["leftover_units"],
            seconds=allocation.solve_seconds, method=allocation.method)
        + (_("; deliveries by day: {days}").format(days=days) if days else "")))
    console.print(escape(_("Files in {out}: ").format(out=out))
                  + "allocations.csv, unmet_requests.csv, leftover.csv, delivery_needs.csv, "
                  "summary.json" + escape(_(" (add delivery_needs.csv to a week with "
                                             "linli solve --add-needs)")))


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
        with step(_("reading {source}").format(source=data)):
            imported = read_charity(data, iso_week, coords)
    except InputError as exc:
        raise _fail(exc.localised()) from exc
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    _notes(imported.notes)
    problem = imported.problem
    console.print(escape(_("{donations} donations, {requests} requests, {categories} "
                           "categories").format(donations=len(problem.donations),
                                                requests=len(problem.requests),
                                                categories=len(problem.categories))))
    net = _load_network(network)
    with step(_("allocating")):
        allocation = run_allocation(problem, Settings(), net)
    with step(_("writing the files")):
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
    console.print(escape(_("wrote {out}: ").format(out=out) + _(
        "{volunteers} volunteers, {needs} needs ({occurrences} occurrences), {merchants} "
        "merchants").format(volunteers=len(problem.volunteers), needs=len(problem.needs),
                            occurrences=len(problem.occurrences),
                            merchants=len(problem.merchants))))
    if requests:
        charity = generate_charity(requests, donations, categories, network=net,
                                   centre=SAMPLE_CENTRE, radius_m=radius_m, week=iso_week,
                                   seed=seed)
        for name, frame in charity_frames(charity).items():
            frame.to_csv(out / f"{name}.csv", index=False)
        console.print(escape(_("wrote {donations} donations and {requests} requests in "
                               "{categories} categories").format(
            donations=len(charity.donations), requests=len(charity.requests),
            categories=len(charity.categories))))


@app.command("generate-district")
def generate_district_command(
    out: Annotated[Path, typer.Option(help="folder for the district: one folder per community")],
    communities: int = 20,
    volunteers: int = 6000,
    needs: int = 8000,
    merchants: int = 400,
    radius_m: Annotated[float, typer.Option(help="each community's spread, metres")] = 500.0,
    network: Annotated[Path | None, typer.Option(
        help="street network to place people on [default: the shipped central Shanghai]")]
        = None,
    week: str = DEMO_WEEK,
    seed: int = 7,
    grid_units: Annotated[int, typer.Option(
        help="about this many grid units (网格) per community, written as grids.geojson "
             "in its folder (0: none)")] = 0,
) -> None:
    """Generate a believable district of communities on real streets (central Shanghai)."""
    from matcher.district import (
        GRID_FILE,
        SHANGHAI_NETWORK,
        components,
        generate_district,
        save_district,
    )

    net = _load_network(network or data_dir() / SHANGHAI_NETWORK)
    try:
        district = generate_district(net, communities=communities, volunteers=volunteers,
                                     needs=needs, merchants=merchants, radius_m=radius_m,
                                     week=Week.parse(week), seed=seed, grid_units=grid_units)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    save_district(district, out)
    from collections import Counter

    listings = Counter(v.id for c in district.communities for v in c.problem.volunteers)
    listed, shared = len(listings), sum(1 for n in listings.values() if n > 1)
    console.print(escape(_(
        "wrote {out}: {communities} communities, {volunteers} volunteers ({shared} registered "
        "with two communities or more), {needs} needs, {merchants} merchants; {parts} parts "
        "that share nothing").format(
            out=out, communities=len(district.communities), volunteers=listed,
            shared=shared, needs=sum(len(c.problem.needs) for c in district.communities),
            merchants=sum(len(c.problem.merchants) for c in district.communities),
            parts=len(components(district)))))
    if grid_units > 0:
        console.print(escape(_(
            "each community has {n} grid units in its {file}").format(n=grid_units,
                                                                     file=GRID_FILE)))


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
            raise _fail(_problem(exc)) from exc
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
    table = Table(title=_("Linli · resources · {name}").format(name=escape(network.name)))
    for k, column in enumerate((_("code"), _("category"), _("places"), _("examples"))):
        table.add_column(column, justify="right" if k == 2 else "left")
    for category in CATEGORIES:
        mine = [r for r in found if r.category is category]
        names = "、".join(dict.fromkeys(r.label for r in mine[:4]))
        table.add_row(category.value, category_label(category), str(len(mine)), escape(names))
    console.print(table)
    console.print(escape(_("{n} resources; places from OpenStreetMap: {attribution}").format(
        n=len(found), attribution=ATTRIBUTION)))
    if not any(r.source == "osm" for r in found):
        console.print("[yellow]" + escape(_(
            "No public places found: a GraphML file holds streets only; give an OSM extract "
            "with --osm")) + "[/yellow]")
    if out is not None:
        out.write_text(write_resources_csv(found), encoding="utf-8")
        console.print(escape(_("wrote {path}").format(path=out)))


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
            raise _fail(_("--category: {value} is not one of {allowed}").format(
                value=repr(category), allowed=", ".join(Category))) from exc
    net = _load_network(network)
    assert net is not None
    index = NearbyIndex(net, _community_resources(network, osm, data), Settings())
    here = Location(*to_wgs84(lat, lon, coords))
    found = index.lookup(here, wanted, limit)
    if not found:
        console.print(escape(_("Nothing of that kind within a 15-minute walk.")))
    for f in found:
        minutes = _("{minutes:4.1f} min").format(minutes=f.minutes)
        console.print(f"[bold]{escape(minutes)}[/bold] " + escape(_(
            "{place} ({category}): {directions}").format(
                place=f.resource.label, category=category_label(f.resource.category),
                directions=f.text)))


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
    console.print(escape(_("wrote {path}").format(path=out)))


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
        raise _fail(_problem(exc)) from exc
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
    table = Table(title=_("Linli · accessibility · {n} street nodes").format(n=len(net.nodes)))
    for k, column in enumerate((_("code"), _("category"), _("street nodes within 15 minutes"),
                                _("households beyond 15 minutes"))):
        table.add_column(column, justify="left" if k < 2 else "right")
    for c, category in enumerate(CATEGORIES):
        share = float((layer[:, c] <= settings.circle_min).mean())
        beyond = sum(1 for b in spots if b.category is category)
        table.add_row(category.value, category_label(category), f"{share:.0%}",
                      _("{n} of {total}").format(n=beyond, total=len(problem.needs)))
    console.print(table)
    for skill, minutes in skills.items():
        share = float((minutes <= settings.circle_min).mean())
        console.print(escape(_("{skill}: {k} volunteers within 15 minutes of {share} of the "
                               "street nodes").format(skill=skill, k=k, share=f"{share:.0%}")))
    console.print(escape(_("{categories} categories x {nodes} street nodes in {seconds} s; "
                           "wrote {folder}/access_nodes.csv and blind_spots.csv").format(
        categories=len(CATEGORIES), nodes=len(net.nodes), seconds=f"{took:.3f}", folder=out)))


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
        raise _fail(_problem(exc)) from exc
    net = _load_network(network)
    with step(_("planning the week, then again with each of {k} recruit(s)").format(k=k)):
        plan = suggest_recruits(problem, skill, k, Settings(), net,
                                SolveParams(time_limit_s=time_limit), hours)
    table = Table(title=escape(_("Linli · where to recruit · {skill} · week {week}").format(
        skill=skill, week=week)))
    for position, column in enumerate(("#", _("near"), _("lat"), _("lon"), _("reaches"),
                                       _("adds (estimate)"), _("adds (planned again)"))):
        table.add_column(column, justify="left" if position == 1 else "right")
    for number, s in enumerate(plan.suggestions, start=1):
        table.add_row(str(number), escape(s.street), f"{s.place.lat:.5f}", f"{s.place.lon:.5f}",
                      str(len(s.reaches)), str(s.adds), str(s.gain))
    console.print(table)
    exact = "-" if plan.exact_cover is None else str(plan.exact_cover)
    summary = _("{unmet} visit(s) left unmet that only a new volunteer with {skill} could "
                "take; {k} place(s) reach at most {exact} of them (exact count, up to {max_k} "
                "places) and at least {greedy} (quick count, never below {share} of the "
                "best); visits covered: {before} now, {after} with the recruits").format(
        unmet=plan.unmet, skill=skill, k=k, exact=exact, max_k=EXACT_MAX_K,
        greedy=plan.greedy_cover, share=f"{GREEDY_GUARANTEE:.0%}",
        before=plan.covered_before, after=plan.covered_after)
    if not plan.proven:
        summary += _(" (a plan was not finished in the time given: raise --time-limit)")
    console.print(escape(summary))
    for sentence in plan.sentences():
        console.print(escape(sentence))


@app.command()
def partners(
    data: Annotated[Path, typer.Option(help="the community (needs, volunteers, merchants)")],
    k: Annotated[int, typer.Option(min=1, help="how many partner merchants")] = 3,
    network: NetworkOption = None,
    week: str = DEMO_WEEK,
    time_limit: Annotated[float, typer.Option(help="seconds per re-solve")] = 30.0,
) -> None:
    """Whom to partner with: the kinds of partner merchant, and the street places, that would
    unblock the most occurrences unmet for want of a merchant within the circle, each checked
    by re-solving the week with the merchant there."""
    from matcher.partners import partner_rows, suggest_partners
    from matcher.recruit import EXACT_MAX_K, GREEDY_GUARANTEE

    try:
        problem = read_community(data, Week.parse(week)).problem
    except (InputError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    net = _load_network(network)
    with step(f"solving the week and {k} re-solve(s)"):
        plan = suggest_partners(problem, k, Settings(), net,
                                SolveParams(time_limit_s=time_limit))
    table = Table(title=f"Linli · partners · week {escape(week)}")
    columns = ("#", "service", "category", "near", "lat", "lon", "open", "reaches",
               "adds (estimate)", "gain (re-solved)")
    for column in columns:
        table.add_column(column, justify="left" if column in ("service", "category", "near",
                                                              "open") else "right")
    for row in partner_rows(plan):
        table.add_row(*(escape(str(row[key])) for key in (
            "rank", "service", "category_name", "near", "lat", "lon", "open", "reaches",
            "adds", "gain")))
    console.print(table)
    exact = "-" if plan.exact_cover is None else str(plan.exact_cover)
    blocked = ", ".join(f"{escape(s)} {n}" for s, n in plan.by_service.items()) or "none"
    console.print(f"{plan.blocked} occurrence(s) unmet as no_merchant_in_circle ({blocked}); "
                  f"{k} partner(s) reach: exact {exact} (CP-SAT, k <= {EXACT_MAX_K}), greedy "
                  f"{plan.greedy_cover} (at least {GREEDY_GUARANTEE:.0%} of the best); covered "
                  f"{plan.covered_before} -> {plan.covered_after}"
                  + ("" if plan.proven else " (a re-solve was not proven optimal: raise "
                     "--time-limit)"))
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
        raise _fail(_problem(exc)) from exc
    table = Table(title=escape(_("Linli · grid units · week {week}").format(week=week)))
    for position, column in enumerate((_("unit"), _("name"), _("volunteers"), _("needs"),
                                       _("visits"), _("red"), _("merchants"),
                                       _("public places"))):
        table.add_column(column, justify="left" if position < 2 else "right")
    for r in unit_reports(grid, problem, found):
        table.add_row(escape(r.unit_id or "-"), escape(r.name or _("outside the units")),
                      str(r.volunteers),
                      str(r.needs), str(r.occurrences), str(r.red_occurrences),
                      str(r.merchants), str(r.resources))
    console.print(table)
    if out is not None:
        rows = [{"kind": kind, "id": ident, "unit_id": unit or ""}
                for kind, places in assign(grid, problem, found).items()
                for ident, unit in places.items()]
        pd.DataFrame(rows, columns=["kind", "id", "unit_id"]).to_csv(out, index=False)
        console.print(escape(_("wrote {path}").format(path=out)))


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    app()
