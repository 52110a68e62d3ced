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
    from matcher.mapview import tile_layers
    from matcher.outputs import write_schedule
    from matcher.solver import solve
    from matcher.travel import TravelTimes

    try:
        settings = Settings()
        tile_layers(settings)  # a map that cannot be drawn should stop us before solving
        iso_week = Week.parse(week)
        params = SolveParams(
            time_limit_s=settings.time_limit_s if time_limit is None else time_limit,
            wall_clock=wall_clock or settings.wall_clock,
            workers=settings.workers if workers is None else workers)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
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
) -> None:
    """Plan one week: who goes where and when, and why the rest stays unmet."""
    _run(data, week, out, network, time_limit, coords, workers, add_needs or (), wall_clock)


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


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    app()
