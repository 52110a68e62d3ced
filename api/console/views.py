"""邻里工作台: the web console's pages, server-rendered with Jinja2 and a little htmx.

No second code path: every page reads and writes through the JSON API the mini programs use,
called in-process (httpx over the ASGI transport, with the person's own token and the address
they called from), so the API's permission table, object rules, validation, idempotency and
audit apply to the console unchanged. The console's own routes are in the permission table too
(:data:`api.permissions.CONSOLE`), checked by :func:`api.security.current_user` with the token
the login cookie carries.

The session is the API's bearer token in an HttpOnly, SameSite=Strict cookie; every form post
also carries a per-session CSRF token (an HMAC of the session token), so a page of another site
can neither read nor forge one. Every asset is served from the package: no request leaves the
server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import segno
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import UploadFile

from api.errors import Problem
from api.permissions import ADMINS
from api.security import Caller, ConnectionDep, SettingsDep, current_user
from api.settings import ApiSettings
from matcher import i18n
from matcher.domain import UnmetReason, Week
from matcher.mapview import STATIC_DIR as MAP_STATIC
from matcher.mapview import reason_label
from matcher.template import HEADERS

ROOT = Path(__file__).parent
SESSION_COOKIE = "linli_session"
LANG_COOKIE = "linli_lang"
PRIORITIES = ("red", "yellow", "blue")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PAGE_LIMIT = 500  # the most one page of the API holds

env = Environment(loader=FileSystemLoader(ROOT / "templates"),
                  autoescape=select_autoescape(["html"]), extensions=["jinja2.ext.i18n"])
# The catalogs of matcher.i18n; the language is the context variable each request sets.
env.install_gettext_callables(  # type: ignore[attr-defined]
    gettext=lambda message: i18n._(message),
    ngettext=lambda singular, plural, n: i18n.ngettext(singular, plural, n), newstyle=True)

router = APIRouter(prefix="/console", include_in_schema=False)


def progress_words(text: str | None) -> str:
    """A job's progress line (the solver's English, stored by the API for programs) in the
    coordinator's words: which step it is at, without the solver's vocabulary."""
    text = (text or "").strip().lower()
    level, _sep, _rest = text.partition(":")
    if level in PRIORITIES:
        return i18n._("Planning the {priority} needs").format(priority=i18n._(level))
    steps = (("quality", i18n._("Making walks shorter and keeping the same helpers")),
             ("walking times", i18n._("Working out walking times on the streets")),
             ("service circles", i18n._("Finding who lives near whom")),
             ("work under way", i18n._("Keeping the tasks already agreed")),
             ("greedy", i18n._("Making a first plan")),
             ("solving", i18n._("Planning the week")),
             ("allocating", i18n._("Sharing out the donations")),
             ("reading", i18n._("Reading the data")))
    for start, words in steps:
        if text.startswith(start):
            return words
    return "" if text in ("queued", "done", "cancelled", "") else i18n._("Working on it")


env.filters["progress_words"] = progress_words


class LoginRequired(Exception):  # noqa: N818 - a control-flow signal, handled by a redirect
    """No valid session: the page sends the person to the login page."""

    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


class Refused(Exception):  # noqa: N818 - answered with a page, not a traceback
    """The person may not open this page (their role) or the form was forged (CSRF)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Ctx:
    """One console request: who, in which language, with which token."""

    request: Request
    caller: Caller | None
    token: str | None
    lang: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token or "", self.request.app.state.settings)

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the JSON API in-process as this person (their token, their address)."""
        headers = {"Accept-Language": self.lang.replace("_", "-")} | kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        client = self.request.client
        transport = httpx.ASGITransport(
            app=self.request.app,
            client=(client.host, client.port) if client else ("127.0.0.1", 0))
        async with httpx.AsyncClient(transport=transport,
                                     base_url=str(self.request.base_url)) as http:
            return await http.request(method, path, headers=headers, **kwargs)

    async def json(self, path: str, **kwargs: Any) -> Any:
        """A GET that must succeed; a refusal becomes the console's error page."""
        response = await self.api("GET", path, **kwargs)
        if response.status_code >= 400:
            raise Refused(response.status_code, problem_text(response))
        return response.json()

    async def items(self, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Every item of a list route, page by page (the API's pages hold at most 500)."""
        found: list[Any] = []
        while True:
            rows, total = listed(await self.json(path, params=(params or {}) | {
                "limit": PAGE_LIMIT, "offset": len(found)}))
            found += rows
            if not rows or len(found) >= total:
                return found

    async def page(self, path: str, **kwargs: Any) -> tuple[list[dict[str, Any]], int]:
        """The rows of one page of a list route and how many there are in all."""
        return listed(await self.json(path, **kwargs))

    def render(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        with i18n.use(self.lang):
            body = env.get_template(name).render(
                ctx=self, user=self.caller, lang=self.lang, csrf=self.csrf,
                path=self.request.url.path, **values)
        return HTMLResponse(body, status_code=status)


def listed(body: Any) -> tuple[list[dict[str, Any]], int]:
    """A list answer of the API as rows and their total: a plain list, or a page
    ``{items, total, limit, offset}`` (the total counts every row, not only this page's)."""
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        rows = body["items"]
        total = body.get("total")
        return rows, int(total) if isinstance(total, int) else len(rows)
    if isinstance(body, list):
        return body, len(body)
    raise Refused(502, i18n._("The service answered in a way this page cannot read."))


def script_json(value: object) -> Markup:
    """JSON to put inside a ``<script type="application/json">``: no ``<``, ``>`` or ``&``
    can close the element or open another, whatever the names in the data say."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e")
                  .replace("&", "\\u0026"))


def csrf_token(session_token: str, settings: ApiSettings) -> str:
    """The session's CSRF token: bound to the session, unguessable without the server's key."""
    return hmac.new(settings.secret_key.encode(), f"csrf:{session_token}".encode(),
                    hashlib.sha256).hexdigest()


def language(request: Request) -> str:
    """The person's choice (cookie), else their browser's (Accept-Language); Chinese first."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in i18n.SUPPORTED:
        return chosen
    return i18n.negotiate(request.headers.get("Accept-Language"))


def problem_text(response: httpx.Response) -> str:
    """What the API said went wrong, for the person."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("detail") or body.get("title") or response.status_code)


async def _session(request: Request, connection: ConnectionDep,
                   settings: SettingsDep) -> Ctx:
    token = request.cookies.get(SESSION_COOKIE)
    lang = language(request)
    if not token:
        raise LoginRequired(request.url.path)
    try:
        caller = await current_user(request, connection, settings, token, None)
    except Problem as exc:
        if exc.status == 401:
            raise LoginRequired(request.url.path) from exc
        with i18n.use(lang):
            raise Refused(403, i18n._("This page is not for your account.")) from exc
    if request.method == "POST":
        form = await request.form()
        sent = str(form.get("csrf") or request.headers.get("X-CSRF-Token") or "")
        if not hmac.compare_digest(sent, csrf_token(token, settings)):
            with i18n.use(lang):
                raise Refused(403, i18n._("This form has expired. Open the page again."))
    return Ctx(request, caller, token, lang)


async def _public(request: Request) -> Ctx:
    return Ctx(request, None, None, language(request))


Session = Annotated[Ctx, Depends(_session)]
Public = Annotated[Ctx, Depends(_public)]


def back_to(path: str, **query: str) -> RedirectResponse:
    """After a form post: see the page again (303, so reloading does not post twice)."""
    if query:
        path += "?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())
    return RedirectResponse(path, status_code=303)


def default_week(today: dt.date) -> Week:
    """The week a coordinator works on: this one until Thursday, then the next one (plans are
    made and published before the weekend)."""
    return Week.containing(today + dt.timedelta(days=7) if today.weekday() >= 4 else today)


def chosen_week(ctx: Ctx, week: str | None) -> Week:
    if week:
        try:
            return Week.parse(week)
        except ValueError:
            pass
    today: dt.date = ctx.request.app.state.clock().date()
    return default_week(today)


# --- Public pages and the session ---------------------------------------------------------

@router.get("/login")
async def login_page(ctx: Public, next: str = "/console/") -> HTMLResponse:
    return ctx.render("login.html", next=_local(next), error=None)


@router.post("/login")
async def login(ctx: Public) -> Response:
    form = await ctx.request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = _local(str(form.get("next") or "/console/"))
    response = await ctx.api("POST", "/v1/auth/token",
                             data={"username": username, "password": password})
    if response.status_code != 200:
        with i18n.use(ctx.lang):
            error = (i18n._("Too many failed logins. Please wait a few minutes.")
                     if response.status_code == 429
                     else i18n._("The username or password is not right."))
        return ctx.render("login.html", status=response.status_code, next=target, error=error,
                          username=username)
    redirect = RedirectResponse(target, status_code=303)
    redirect.set_cookie(SESSION_COOKIE, response.json()["access_token"], httponly=True,
                        samesite="strict", path="/",
                        max_age=ctx.request.app.state.settings.token_minutes * 60)
    return redirect


def _local(target: str) -> str:
    """Only pages of the console are places to return to after logging in."""
    return target if target.startswith("/console/") and "//" not in target else "/console/"


@router.post("/logout")
async def logout(ctx: Session) -> Response:
    redirect = RedirectResponse("/console/login", status_code=303)
    redirect.delete_cookie(SESSION_COOKIE, path="/")
    return redirect


@router.get("/lang/{lang}")
async def switch_language(lang: str, request: Request) -> Response:
    referer = request.headers.get("Referer", "")
    path = "/" + referer.split("/", 3)[3] if referer.count("/") >= 3 else "/console/"
    redirect = RedirectResponse(_local(path.split("#")[0]), status_code=303)
    redirect.set_cookie(LANG_COOKIE, i18n.normalise(lang), samesite="strict", path="/",
                        max_age=365 * 24 * 3600)
    return redirect


@router.get("/report")
async def public_report(ctx: Public, month: str | None = None) -> HTMLResponse:
    today: dt.date = ctx.request.app.state.clock().date()
    month = month if month and len(month) == 7 else today.strftime("%Y-%m")
    return ctx.render("report.html", month=month)


HOME = {"coordinator": "/console/overview", "organiser": "/console/charity",
        "merchant": "/console/shop", "volunteer": "/console/me", "grid_worker": "/console/grids",
        "street_admin": "/console/communities", "district_admin": "/console/communities"}


@router.get("/")
async def home(ctx: Session) -> Response:
    assert ctx.caller is not None
    # A role without pages of its own lands on the public report.
    return RedirectResponse(HOME.get(ctx.caller.role, "/console/report"), status_code=303)


@router.get("/communities")
async def communities_page(ctx: Session) -> HTMLResponse:
    """A street or district admin's communities (she reads one through the API, naming it)."""
    return ctx.render("communities.html", communities=await ctx.items("/v1/communities"))


# --- The district report (admins and coordinators) --------------------------------------

def district_status(status: str) -> str:
    """A community's plan as a person says it."""
    words = {"unpublished": i18n._("no plan published for this week"),
             "failed": i18n._("its data has errors")}
    return words.get(status, i18n._("plan published"))


def district_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows: each community, then its grid units, with the reasons' words."""
    rows = []
    for c in report["communities"]:
        for k, area in enumerate([c["figures"], *c["units"]]):
            reasons = []
            for code, n in sorted(area["unmet_by_reason"].items(), key=lambda kv: -kv[1]):
                try:
                    reasons.append((reason_label(UnmetReason(code)), n))
                except ValueError:  # a code of a newer service: shown as it is
                    reasons.append((code, n))
            rows.append({"community": c, "area": area, "unit": k > 0, "reasons": reasons,
                         "status": district_status(c["status"]) if k == 0 else ""})
    return rows


@router.get("/district")
async def district_page(ctx: Session, week: str | None = None) -> HTMLResponse:
    """The district report of a week: a row per community and grid unit, and the choropleth
    (a street or district admin: every community of hers; a coordinator: her own)."""
    chosen = chosen_week(ctx, week)
    report = await ctx.json("/v1/district/report", params={"week": str(chosen)})
    drawn = await ctx.api("GET", "/v1/district/map", params={"week": str(chosen)})
    with i18n.use(ctx.lang):
        rows = district_rows(report)
    run = None
    assert ctx.caller is not None
    if ctx.caller.role in ADMINS:  # the newest district run of the week, if any
        runs, _total = await ctx.page("/v1/district/schedules",
                                      params={"week": str(chosen), "limit": 1})
        run = runs[0] if runs else None
    return ctx.render("district.html", week=str(chosen), report=report, rows=rows,
                      priorities=PRIORITIES, run=run,
                      cancel_error=ctx.request.query_params.get("error"),
                      map_data=script_json(drawn.json()) if drawn.status_code == 200 else None,
                      map_error=None if drawn.status_code == 200 else problem_text(drawn))


@router.post("/district/schedules")
async def solve_district_week(ctx: Session) -> Response:
    """Solve the week of every community of the admin's street office or district."""
    form = await ctx.request.form()
    week = str(chosen_week(ctx, str(form.get("week") or "")))
    response = await ctx.api("POST", "/v1/district/schedules", json={"week": week})
    if response.status_code != 202:
        raise Refused(response.status_code, problem_text(response))
    return back_to(f"/console/district?week={week}")


@router.get("/district/schedules/{run_id}/progress")
async def district_run_progress(ctx: Session, run_id: int) -> Response:
    """The run's live progress, community by community; once it is done, the browser loads
    the whole page."""
    run = await ctx.json(f"/v1/district/schedules/{run_id}")
    response = ctx.render("_district_run.html", run=run, cancel_error=None)
    if run["status"] not in ("queued", "running"):
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/district/schedules/{run_id}/cancel")
async def cancel_district_run(ctx: Session, run_id: int) -> Response:
    response = await ctx.api("POST", f"/v1/district/schedules/{run_id}/cancel")
    run = await ctx.json(f"/v1/district/schedules/{run_id}")
    if response.status_code != 200:
        return back_to(f"/console/district?week={run['week']}", error=problem_text(response))
    return back_to(f"/console/district?week={run['week']}")


@router.get("/district.csv")
async def district_csv(ctx: Session, week: str | None = None) -> Response:
    """district_report.csv of the week, as the API gives it (UTF-8 with a byte-order mark)."""
    chosen = chosen_week(ctx, week)
    response = await ctx.api("GET", "/v1/district/report.csv", params={"week": str(chosen)})
    if response.status_code >= 400:
        raise Refused(response.status_code, problem_text(response))
    return Response(response.content, media_type="text/csv", headers={
        "Content-Disposition": response.headers.get(
            "content-disposition", 'attachment; filename="district_report.csv"')})


# --- Coordinator ------------------------------------------------------------------------

async def _week_schedule(ctx: Ctx, week: Week) -> dict[str, Any] | None:
    """The week's published schedule, else its newest one."""
    jobs: list[dict[str, Any]] = await ctx.items("/v1/schedules", params={"week": str(week)})
    for wanted in ("published", "solved", None):
        for job in jobs:
            if wanted is None or job["status"] == wanted:
                detail: dict[str, Any] = await ctx.json(f"/v1/schedules/{job['id']}")
                return detail
    return None


def coverage(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per priority: covered, of how many, and how many more any plan could cover at most."""
    rows = []
    for p in PRIORITIES:
        covered = int(summary.get("covered_by_priority", {}).get(p, 0))
        total = int(summary.get("occurrences_by_priority", {}).get(p, 0))
        bound = summary.get("bound", {}).get(p)
        more = max(0, int(bound) - covered) if bound is not None else None
        rows.append({"priority": p, "covered": covered, "total": total, "more": more})
    return rows


@router.get("/overview")
async def overview(ctx: Session, week: str | None = None) -> HTMLResponse:
    chosen = chosen_week(ctx, week)
    schedule = await _week_schedule(ctx, chosen)
    declined: list[dict[str, Any]] = []
    if schedule is not None and schedule.get("summary"):
        tasks = await ctx.items(f"/v1/schedules/{schedule['id']}/tasks")
        declined = [t for t in tasks if t["state"] == "declined"]
    summary = (schedule or {}).get("summary") or {}
    return ctx.render("overview.html", week=str(chosen), schedule=schedule,
                      rows=coverage(summary) if summary else [],
                      unmet=int(summary.get("occurrences", 0)) - int(summary.get("covered", 0)),
                      at_risk=summary.get("at_risk", 0), declined=declined)


@router.get("/import")
async def import_page(ctx: Session) -> HTMLResponse:
    return ctx.render("import.html", result=None, problems=[], error=None)


@router.post("/import")
async def import_upload(ctx: Session) -> HTMLResponse:
    form = await ctx.request.form()
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    if not uploads:
        with i18n.use(ctx.lang):
            return ctx.render("import.html", status=422, result=None, problems=[],
                              error=i18n._("Choose a workbook (.xlsx) or CSV files first."))
    files = [("files", (f.filename, await f.read(), f.content_type or "application/octet-stream"))
             for f in uploads]
    await form.close()  # the spooled copies, now read
    response = await ctx.api("POST", "/v1/imports", files=files)
    if response.status_code == 200:
        return ctx.render("import.html", result=response.json(), problems=[], error=None)
    body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    problems = [issue | {"message": i18n.translation(ctx.lang).gettext(issue["message"])}
                for issue in body.get("errors", []) if "message" in issue]
    return ctx.render("import.html", status=response.status_code, result=None,
                      problems=problems, error=problem_text(response))


@router.get("/import/template.xlsx")
async def import_template(ctx: Session) -> Response:
    """The import template of the API, with the community's own words in its drop-downs."""
    response = await ctx.api("GET", "/v1/imports/template")
    if response.status_code != 200:
        raise Refused(response.status_code, problem_text(response))
    return Response(response.content, media_type=response.headers["content-type"],
                    headers={"Content-Disposition": response.headers.get(
                        "content-disposition", 'attachment; filename="linli-template.xlsx"')})


@router.get("/schedules")
async def schedules(ctx: Session, week: str | None = None) -> HTMLResponse:
    chosen = chosen_week(ctx, week)
    jobs = await ctx.items("/v1/schedules", params={"week": str(chosen)})
    return ctx.render("schedules.html", week=str(chosen), jobs=jobs, error=None)


@router.post("/schedules")
async def start_schedule(ctx: Session) -> Response:
    form = await ctx.request.form()
    response = await ctx.api("POST", "/v1/schedules", json={"week": str(form.get("week", ""))})
    if response.status_code != 202:
        chosen = chosen_week(ctx, None)
        jobs = await ctx.items("/v1/schedules", params={"week": str(chosen)})
        return ctx.render("schedules.html", status=response.status_code, week=str(chosen),
                          jobs=jobs, error=problem_text(response))
    return back_to(f"/console/schedules/{response.json()['id']}")


@router.get("/schedules/{schedule_id}")
async def schedule_page(ctx: Session, schedule_id: int) -> HTMLResponse:
    job = await ctx.json(f"/v1/schedules/{schedule_id}")
    values: dict[str, Any] = {"job": job, "groups": {}, "changes": None, "change_error": None,
                              "rows": [], "published": None, "map_data": None, "map_error": None,
                              "cancel_error": ctx.request.query_params.get("error")}
    if job["summary"]:
        drawn = await ctx.api("GET", f"/v1/schedules/{schedule_id}/map")
        if drawn.status_code == 200:
            values["map_data"] = script_json(drawn.json())
        else:
            values["map_error"] = problem_text(drawn)
        unmet = await ctx.items(f"/v1/schedules/{schedule_id}/unmet")
        groups: dict[str, dict[str, Any]] = {}
        for u in unmet:
            group = groups.setdefault(u["reason_code"], {"reason": u["reason"], "fix": u["fix"],
                                                         "items": []})
            group["items"].append(u)
        values.update(groups=groups, rows=coverage(job["summary"]))
    if job["status"] == "solved":
        response = await ctx.api("GET", f"/v1/schedules/{schedule_id}/changes")
        if response.status_code == 200:
            values["changes"] = response.json()
        else:
            values["change_error"] = problem_text(response)
        others = await ctx.items("/v1/schedules", params={"week": job["week"]})
        values["published"] = next((j for j in others if j["status"] == "published"), None)
    return ctx.render("schedule.html", **values)


async def _job_progress(ctx: Session, kind: str, job_id: int) -> Response:
    """A job's live progress line (``kind``: schedules or allocations); once the job is done,
    the browser loads the whole page."""
    job = await ctx.json(f"/v1/{kind}/{job_id}")
    response = ctx.render("_progress.html", job=job, kind=kind)
    if job["status"] not in ("queued", "running"):
        response.headers["HX-Refresh"] = "true"
    return response


async def _publish_job(ctx: Session, kind: str, job_id: int) -> Response:
    """Publish a solved schedule or allocation, replacing the week's if the form says so."""
    form = await ctx.request.form()
    response = await ctx.api("POST", f"/v1/{kind}/{job_id}/publish",
                             json={"supersede": form.get("supersede") == "yes"})
    if response.status_code != 200:
        raise Refused(response.status_code, problem_text(response))
    return back_to(f"/console/{kind}/{job_id}")


async def _cancel_job(ctx: Session, kind: str, job_id: int) -> Response:
    """Ask a queued or running job to stop; the page then shows what became of it (a job
    that finished meanwhile says so, in the API's words)."""
    response = await ctx.api("POST", f"/v1/{kind}/{job_id}/cancel")
    if response.status_code != 200:
        return back_to(f"/console/{kind}/{job_id}", error=problem_text(response))
    return back_to(f"/console/{kind}/{job_id}")


@router.post("/schedules/{schedule_id}/cancel")
async def cancel_schedule(ctx: Session, schedule_id: int) -> Response:
    return await _cancel_job(ctx, "schedules", schedule_id)


@router.post("/allocations/{allocation_id}/cancel")
async def cancel_allocation(ctx: Session, allocation_id: int) -> Response:
    return await _cancel_job(ctx, "allocations", allocation_id)


@router.get("/schedules/{schedule_id}/progress")
async def schedule_progress(ctx: Session, schedule_id: int) -> Response:
    return await _job_progress(ctx, "schedules", schedule_id)


@router.post("/schedules/{schedule_id}/publish")
async def publish_schedule(ctx: Session, schedule_id: int) -> Response:
    return await _publish_job(ctx, "schedules", schedule_id)


@router.get("/schedules/{schedule_id}/candidates/{need_id}/{day}")
async def candidates(ctx: Session, schedule_id: int, need_id: str, day: str) -> HTMLResponse:
    response = await ctx.api(
        "GET", f"/v1/schedules/{schedule_id}/occurrences/{quote(need_id)}/{quote(day)}"
        "/candidates")
    fits = listed(response.json())[0] if response.status_code == 200 else []
    return ctx.render("_candidates.html", fits=fits,
                      error=None if response.status_code == 200 else problem_text(response))


_PEOPLE = {"volunteers": ("volunteer_id", "name"), "needs": ("need_id", "beneficiary"),
           "merchants": ("merchant_id", "name"), "donations": ("donation_id", "donor"),
           "requests": ("request_id", "beneficiary")}


# Columns the API lists beside the spreadsheet's (matcher.template.HEADERS has those).
_MORE_LABELS = {"phone": "电话", "address": "地址"}


def column_label(kind: str, column: str, lang: str) -> str:
    """A table column as the coordinator's spreadsheet heads it: its Chinese header, or the
    English name in words (``max hours week``)."""
    if lang == "zh_CN":
        label = HEADERS.get(kind, {}).get(column) or _MORE_LABELS.get(column)
        if label:
            return label
    return column.replace("_", " ")


@router.get("/people/{kind}")
async def people(ctx: Session, kind: str, q: str = "") -> HTMLResponse:
    if kind not in _PEOPLE:
        raise Refused(404, "")
    items, total = await ctx.page(f"/v1/{kind}", params={"limit": 500})
    if q:
        items = [i for i in items if any(q.lower() in str(v).lower() for v in i.values())]
    columns = list(items[0]) if items else list(_PEOPLE[kind])
    return ctx.render("people.html", kind=kind, q=q, items=items, columns=columns,
                      labels={c: column_label(kind, c, ctx.lang) for c in columns},
                      total=total)


@router.get("/points")
async def points_page(ctx: Session, week: str | None = None) -> HTMLResponse:
    chosen = chosen_week(ctx, week)
    schedule = await _week_schedule(ctx, chosen)
    done: list[dict[str, Any]] = []
    if schedule is not None and schedule["status"] == "published":
        tasks = await ctx.items(f"/v1/schedules/{schedule['id']}/tasks")
        done = [t for t in tasks if t["state"] == "completed"]
    return ctx.render("points.html", week=str(chosen), tasks=done, key=uuid.uuid4().hex)


@router.post("/tasks/{task_id}/confirm")
async def confirm_task(ctx: Session, task_id: int) -> Response:
    form = await ctx.request.form()
    response = await ctx.api("POST", f"/v1/tasks/{task_id}/confirm",
                             headers={"Idempotency-Key": f"{form.get('key')}-{task_id}"})
    if response.status_code != 200:
        raise Refused(response.status_code, problem_text(response))
    return back_to("/console/points")


@router.get("/audit")
async def audit_page(ctx: Session, offset: int = 0) -> HTMLResponse:
    page = await ctx.json("/v1/audit", params={"limit": 100, "offset": max(0, offset)})
    return ctx.render("audit.html", page=page)


# --- Charity organiser ------------------------------------------------------------------

@router.get("/charity")
async def charity(ctx: Session, week: str | None = None) -> HTMLResponse:
    chosen = chosen_week(ctx, week)
    runs = await ctx.items("/v1/allocations", params={"week": str(chosen)})
    donations, donations_total = await ctx.page("/v1/donations", params={"limit": 500})
    requests, requests_total = await ctx.page("/v1/requests", params={"limit": 500})
    today: dt.date = ctx.request.app.state.clock().date()
    return ctx.render("charity.html", week=str(chosen), runs=runs,
                      donations={"items": donations, "total": donations_total},
                      requests={"items": requests, "total": requests_total},
                      month=chosen.monday.strftime("%Y-%m") if chosen.monday
                      else today.strftime("%Y-%m"))


@router.post("/allocations")
async def start_allocation(ctx: Session) -> Response:
    form = await ctx.request.form()
    response = await ctx.api("POST", "/v1/allocations", json={"week": str(form.get("week"))})
    if response.status_code != 202:
        raise Refused(response.status_code, problem_text(response))
    return back_to(f"/console/allocations/{response.json()['id']}")


@router.get("/allocations/{allocation_id}")
async def allocation_page(ctx: Session, allocation_id: int) -> HTMLResponse:
    job = await ctx.json(f"/v1/allocations/{allocation_id}")
    lines: list[dict[str, Any]] = []
    short: list[dict[str, Any]] = []
    if job["summary"]:
        lines = await ctx.items(f"/v1/allocations/{allocation_id}/lines")
        short = await ctx.items(f"/v1/allocations/{allocation_id}/short")
    others = await ctx.items("/v1/allocations", params={"week": job["week"]})
    published = next((j for j in others if j["status"] == "published"), None)
    return ctx.render("allocation.html", job=job, lines=lines, short=short,
                      published=published, cancel_error=ctx.request.query_params.get("error"),
                      month=Week.parse(job["week"]).monday
                      .strftime("%Y-%m"))


@router.get("/allocations/{allocation_id}/progress")
async def allocation_progress(ctx: Session, allocation_id: int) -> Response:
    return await _job_progress(ctx, "allocations", allocation_id)


@router.post("/allocations/{allocation_id}/publish")
async def publish_allocation(ctx: Session, allocation_id: int) -> Response:
    return await _publish_job(ctx, "allocations", allocation_id)


# --- Merchant ---------------------------------------------------------------------------

@router.get("/shop")
async def shop(ctx: Session) -> HTMLResponse:
    assert ctx.caller is not None
    today: dt.date = ctx.request.app.state.clock().date()
    shop_row = await ctx.json(f"/v1/merchants/{quote(ctx.caller.merchant_id or '')}")
    orders = await ctx.json("/v1/merchant/orders", params={"date": today.isoformat(),
                                                           "limit": PAGE_LIMIT})
    orders["orders"] = listed(orders["orders"])[0]  # a day's orders fit one page
    redemptions = await ctx.items("/v1/redemptions")
    return ctx.render("shop.html", shop=shop_row, orders=orders, today=today.isoformat(),
                      pending=[r for r in redemptions if r["status"] == "pending"],
                      decided=[r for r in redemptions if r["status"] != "pending"][:20],
                      key=uuid.uuid4().hex)


@router.post("/redemptions/{redemption_id}/{decision}")
async def decide_redemption(ctx: Session, redemption_id: int, decision: str) -> Response:
    if decision not in ("confirm", "refuse"):
        raise Refused(404, "")
    form = await ctx.request.form()
    response = await ctx.api("POST", f"/v1/redemptions/{redemption_id}/{decision}",
                             headers={"Idempotency-Key": f"{form.get('key')}-{redemption_id}"})
    if response.status_code != 200:
        raise Refused(response.status_code, problem_text(response))
    return back_to("/console/shop")


# --- Volunteer --------------------------------------------------------------------------

@router.get("/me")
async def my_week(ctx: Session) -> HTMLResponse:
    me = await ctx.json("/v1/me")
    tasks = await ctx.items("/v1/me/tasks")
    statement = await ctx.json("/v1/me/statement")
    qr = (Markup(segno.make(me["calendar_url"], error="m").svg_inline(
        scale=4, title="calendar")) if me.get("calendar_url") else None)
    return ctx.render("me.html", me=me, tasks=tasks, balance=statement["balance"], qr=qr,
                      error=ctx.request.query_params.get("error"))


@router.post("/me/tasks/{task_id}/{action}")
async def task_action(ctx: Session, task_id: int, action: str) -> Response:
    if action not in ("accept", "decline", "check-in", "complete"):
        raise Refused(404, "")
    form = await ctx.request.form()
    body = {"json": {"reason": str(form.get("reason", ""))}} if action == "decline" else {}
    response = await ctx.api("POST", f"/v1/me/tasks/{task_id}/{action}", **body)
    if response.status_code != 200:
        return back_to("/console/me", error=problem_text(response))
    return back_to("/console/me")


# --- Wiring -----------------------------------------------------------------------------

def install(app: FastAPI) -> None:
    """Serve the console under ``/console`` (``/`` leads there) with its assets."""
    app.include_router(router)
    from api.console import residents_views  # its pages import this module's helpers
    residents_views.install(app)
    app.mount("/console/static", StaticFiles(directory=ROOT / "static"), name="console-static")
    # The map's drawing code and the vendored Leaflet, shared with the CLI's map.html.
    app.mount("/console/map", StaticFiles(directory=MAP_STATIC), name="console-map")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("HX-Request"):  # a fragment: have the whole page go there
            return Response(status_code=204, headers={"HX-Redirect": "/console/login"})
        return RedirectResponse(f"/console/login?next={quote(exc.back)}", status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        ctx = Ctx(request, None, request.cookies.get(SESSION_COOKIE), language(request))
        return ctx.render("error.html", status=exc.status, message=exc.message)

