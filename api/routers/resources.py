"""Volunteers, needs (with beneficiaries), merchants, donations and requests: create, read,
update, delete, list with filters and pagination, and bulk import of the SCHEMA.md files
(all-or-nothing).

A JSON body is validated by the same parser as a spreadsheet row, so the API and the command line
accept and refuse exactly the same things.
"""


import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.community import (
    ROWS,
    audit,
    coarse,
    column_issues,
    import_notes,
    masked,
    row_record,
    save_tables,
    stored,
)
from api.errors import Problem, label
from api.lifecycle import Now
from api.models import MerchantRow, NeedRow, TaskRow, VolunteerRow, has_item
from api.paging import Page
from api.params import Key, Limit, Offset
from api.permissions import import_roles
from api.replanning import review_at_risk
from api.security import Caller, CurrentUser, Role, SessionDep, Staff, require
from api.tenancy import check_new_id
from matcher.domain import ADDRESS_MAX, PHONE_MAX, Week, format_hhmm
from matcher.errors import InputError
from matcher.i18n import N_, _
from matcher.spreadsheets import COLUMNS, MAX_FILE_BYTES, parse_records, read_tables

router = APIRouter(prefix="/v1", tags=["community"])


class VolunteerIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "volunteer_id": "V0007", "name": "王芳", "lat": 22.5341, "lon": 114.0177,
        "skills": "meal_delivery;escort_medical",
        "availability": "mon 08:00-12:00;wed 14:00-18:00", "max_hours_week": 6}]})
    volunteer_id: str
    name: str
    lat: float
    lon: float
    skills: str = ""
    availability: str
    max_hours_week: float = 4.0


class NeedIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "need_id": "N0031", "kind": "elderly", "service": "meal_delivery",
        "beneficiary": "张奶奶", "phone": "13800000000", "address": "香蜜湖街道 3 栋 502",
        "lat": 22.5352, "lon": 114.0183, "days": "mon;tue;wed;thu;fri",
        "window": "11:00-12:30", "duration_min": 30, "skills": "", "volunteers_needed": 1,
        "priority": "yellow", "merchant_service": "meal"}]})
    need_id: str
    kind: Literal["elderly", "childcare", "charity"]
    service: str
    beneficiary: str
    phone: str = Field("", max_length=PHONE_MAX)
    address: str = Field("", max_length=ADDRESS_MAX)
    lat: float
    lon: float
    days: str
    window: str
    duration_min: int
    skills: str = ""
    volunteers_needed: int = 1
    priority: Literal["red", "yellow", "blue"] = "blue"
    merchant_service: str = ""


class MerchantIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "merchant_id": "M003", "name": "幸福食堂", "lat": 22.5338, "lon": 114.0169,
        "services": "meal", "capacity_per_day": 30, "open": "10:00-20:00"}]})
    merchant_id: str
    name: str
    lat: float
    lon: float
    services: str
    capacity_per_day: int
    open: str


class DonationIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "donation_id": "D017", "donor": "华润万家福田店", "category": "rice_5kg", "quantity": 40,
        "lat": 22.5336, "lon": 114.0191, "expires": "2027-03-31"}]})
    donation_id: str
    donor: str
    category: str
    quantity: int
    lat: float
    lon: float
    expires: str = Field("", description="YYYY-MM-DD; empty for goods that keep")


class RequestIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "request_id": "R0102", "beneficiary": "李伯伯家", "category": "rice_5kg", "quantity": 2,
        "lat": 22.5349, "lon": 114.0172, "priority": "yellow"}]})
    request_id: str
    beneficiary: str
    category: str
    quantity: int
    lat: float
    lon: float
    priority: Literal["red", "yellow", "blue"] = "blue"


class RiskOut(BaseModel):
    """A published upcoming task an edit put at risk; who serves it only for coordinators."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "task_id": 41, "need_id": "N0031", "day": "mon", "date": "2026-11-23",
        "start": "11:05", "reason": "V0007 is no longer free on mon at 11:05",
        "volunteer_id": "V0007"}]})
    task_id: int
    need_id: str
    day: str
    date: dt.date
    start: str
    reason: str | None
    volunteer_id: str | None = Field(None, description="coordinators only")


MODELS: dict[str, type[BaseModel]] = {"volunteers": VolunteerIn, "needs": NeedIn,
                                      "merchants": MerchantIn, "donations": DonationIn,
                                      "requests": RequestIn}
ID = {kind: f"{kind[:-1]}_id" for kind in MODELS}
# One record of each kind, as a sentence names it.
ONE = {"volunteers": N_("volunteer"), "needs": N_("need"), "merchants": N_("merchant"),
       "donations": N_("donation"), "requests": N_("request")}
# What a read answers: the same fields as the body that wrote it (names masked and places
# rounded for those who may not see more); a replace also lists the tasks it put at risk.
OUT: dict[str, type[BaseModel]] = {
    kind: create_model(f"{kind[:-1].capitalize()}Out", __base__=model,
                       __doc__=f"A stored {kind[:-1]}, as the caller may see it.")
    for kind, model in MODELS.items()}
UPDATED: dict[str, type[BaseModel]] = {
    kind: create_model(f"{kind[:-1].capitalize()}Updated", __base__=out,
                       __doc__=f"The {kind[:-1]} as replaced, and the published upcoming "
                       "tasks the change put at risk (coordinators and volunteers are told).",
                       at_risk=(list[RiskOut], Field(default_factory=list)))
    for kind, out in OUT.items()}
CHARITY = ("donations", "requests")  # organisers keep these as well as coordinators


def _validate(kind: str, body: BaseModel) -> dict[str, Any]:
    """The body's values as stored: validated like a spreadsheet row (InputError -> 422 with
    JSON paths), then in normal form (times, days, lists), like an import stores them."""
    record = body.model_dump()
    parsed = parse_records(kind, [record], "body")[0]  # raises InputError -> 422 with paths
    unfit = column_issues(kind, [record], "body")  # a backstop behind the parser
    if unfit:
        raise InputError(unfit)
    return stored(kind, record, parsed)


def need_view(row: NeedRow, user: Caller) -> dict[str, Any]:
    """A need as ``user`` may see it: coordinators see all (the access is audited), others a
    masked name and a place rounded to ~100 m."""
    record = row_record(row, "needs") | {"phone": row.phone, "address": row.address}
    if user.role != Role.COORDINATOR.value:
        record.update(beneficiary=masked(row.beneficiary), phone="", address="",
                      lat=coarse(row.lat), lon=coarse(row.lon))
    return record


def _get(session: Session, kind: str, ident: str) -> Any:
    row = session.get(ROWS[kind], ident)
    if row is None:
        raise Problem(404, _("no {what} {id}").format(what=_(ONE[kind]), id=repr(ident)))
    return row


def volunteer_view(row: VolunteerRow, user: Caller) -> dict[str, Any]:
    """A volunteer as ``user`` may see them: coordinators see all, organisers the family name
    and a place rounded to ~100 m (where someone lives is as private as a beneficiary's)."""
    record = row_record(row, "volunteers")
    if user.role != Role.COORDINATOR.value:
        record.update(name=masked(row.name), lat=coarse(row.lat), lon=coarse(row.lon))
    return record


def _view(kind: str, row: Any, user: Caller) -> dict[str, Any]:
    if kind == "needs":
        return need_view(row, user)
    if kind == "volunteers":
        return volunteer_view(row, user)
    return row_record(row, kind)


def _add_routes(kind: str) -> None:
    model = MODELS[kind]
    out, updated = OUT[kind], UPDATED[kind]
    cls = ROWS[kind]
    singular = kind[:-1]
    # Who may read: staff read everything; merchants are public to every logged-in user.
    reader = Depends(require(*Role)) if kind == "merchants" else Depends(
        require(Role.COORDINATOR, Role.ORGANISER))
    Reader = Annotated[Caller, reader]  # noqa: N806 - a type alias

    @router.post(f"/{kind}", status_code=201, summary=f"Create a {singular}",
                 response_model=out, name=f"create_{singular}")
    def create(body: model, session: SessionDep, user: Staff) -> dict[str, Any]:  # type: ignore[valid-type]
        record = _validate(kind, body)
        check_new_id(session, cls, kind, str(record[ID[kind]]))
        session.add(cls(**record))
        try:
            session.flush()
        except IntegrityError as exc:
            raise Problem(409, _("{what} {id} already exists").format(
                what=_(ONE[kind]), id=repr(record[ID[kind]])), code="already_exists") from exc
        audit(session, user, "create", f"{singular}:{record[ID[kind]]}")
        session.commit()
        return _view(kind, _get(session, kind, record[ID[kind]]), user)

    @router.get(f"/{kind}/{{ident}}", summary=f"Read a {singular}",
                response_model=out, name=f"read_{singular}")
    def read(ident: Key, session: SessionDep, user: Reader) -> dict[str, Any]:
        row = _get(session, kind, ident)
        if kind != "merchants":
            audit(session, user, "read", f"{singular}:{ident}")
            session.commit()
        return _view(kind, row, user)

    @router.put(f"/{kind}/{{ident}}", summary=f"Replace a {singular}",
                response_model=out if kind in CHARITY else updated,
                name=f"update_{singular}")
    def update(ident: Key, body: model, session: SessionDep,  # type: ignore[valid-type]
               user: CurrentUser, request: Request, now: Now) -> dict[str, Any]:
        """Replace it. Published upcoming tasks the change breaks are marked at risk (the
        coordinators and each volunteer are told) and listed in ``at_risk``; tasks it makes
        valid again lose the mark."""
        own_shop = kind == "merchants" and user.merchant_id == ident
        organiser = kind in CHARITY and user.role == Role.ORGANISER.value
        if user.role != Role.COORDINATOR.value and not (own_shop or organiser):
            raise Problem(403, _("only a coordinator (or the merchant itself) may change a "
                                 "{what}").format(what=_(ONE[kind])))
        record = _validate(kind, body)
        if record[ID[kind]] != ident:
            raise Problem(422, _("the id in the body differs from the one in the path"),
                          errors=[{"path": ["body", ID[kind]],
                                   "message": _("must equal the path")}])
        row = _get(session, kind, ident)
        for key, value in record.items():
            setattr(row, key, value)
        audit(session, user, "update", f"{singular}:{ident}")
        at_risk = [] if kind in CHARITY else review_at_risk(session, request.app.state, now)
        session.commit()
        view = _view(kind, row, user)
        if kind not in CHARITY:
            view["at_risk"] = [risk_view(t, user) for t in at_risk]
        return view

    @router.delete(f"/{kind}/{{ident}}", status_code=204, summary=f"Delete a {singular}",
                   name=f"delete_{singular}")
    def delete(ident: Key, session: SessionDep, user: Staff) -> None:
        row = _get(session, kind, ident)
        session.delete(row)
        try:
            session.flush()
        except IntegrityError as exc:
            raise Problem(409, _("{what} {id} is used by a schedule or an account; remove "
                                 "those first").format(what=_(ONE[kind]), id=repr(ident)),
                          code="in_use") from exc
        audit(session, user, "delete", f"{singular}:{ident}")
        session.commit()

    @router.get(f"/{kind}", summary=f"List {kind}", response_model=Page[out],  # type: ignore[valid-type]
                name=f"list_{kind}")
    def listing(session: SessionDep, user: Reader,
                limit: Limit = 50,
                offset: Offset = 0,
                priority: Annotated[Literal["red", "yellow", "blue"] | None, Query(
                    description="needs or requests: red/yellow/blue")] = None,
                category: Annotated[str | None, Query(description="donations or requests")]
                = None,
                service: Annotated[str | None, Query(description="needs or merchants")] = None,
                skill: Annotated[str | None, Query(description="volunteers with this skill")]
                = None) -> Page[dict[str, Any]]:  # FastAPI checks the items against ``out``
        query = select(cls)
        if priority and kind in ("needs", "requests"):
            query = query.where(cls.priority == priority)  # type: ignore[union-attr]
        if category and kind in CHARITY:
            query = query.where(cls.category == category)  # type: ignore[union-attr]
        if service and kind == "needs":
            query = query.where(NeedRow.service == service)
        if service and kind == "merchants":
            query = query.where(has_item(MerchantRow.services, service))
        if skill and kind == "volunteers":
            query = query.where(has_item(VolunteerRow.skills, skill))
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(getattr(cls, ID[kind]))
                               .limit(limit).offset(offset)).all()
        if kind != "merchants":
            audit(session, user, "list", kind, f"offset {offset} limit {limit}")
            session.commit()
        return Page(items=[_view(kind, r, user) for r in rows], total=total, limit=limit,
                    offset=offset)


for _kind in MODELS:
    _add_routes(_kind)


def risk_view(task: TaskRow, user: Caller) -> RiskOut:
    """A task an edit put at risk, as a warning; who serves it only for coordinators."""
    return RiskOut(task_id=task.id, need_id=task.need_id, day=task.day, date=task.date,
                   start=format_hhmm(task.start), reason=task.at_risk,
                   volunteer_id=task.volunteer_id if user.role == Role.COORDINATOR.value
                   else None)


class ImportResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "created": {"volunteers": 300, "needs": 400}, "updated": {}, "notes": [],
        "at_risk": []}]})
    created: dict[str, int] = Field(examples=[{"volunteers": 300, "needs": 400}])
    updated: dict[str, int]
    notes: list[str]
    at_risk: list[RiskOut] = Field(
        default_factory=list, description="published upcoming tasks the import broke (now "
        "marked at risk; coordinators and volunteers are told)")


def _may_import(user: Caller, kind: str, name: str) -> None:
    """403 naming the file (or sheet) when ``user`` may not create and replace ``kind``: one
    refused file refuses the whole upload, before anything is read into the database."""
    roles = import_roles(kind)
    if user.role not in roles:
        raise Problem(403, _("{name}: a {role} may not import {kind} (only {roles}); nothing "
                             "was saved").format(
            name=name, role=label(user.role), kind=_(kind),
            roles=_(" or ").join(label(r) for r in sorted(roles))))


@router.post("/imports", response_model=ImportResult, tags=["community"],
             summary="Bulk import SCHEMA.md CSV files or one .xlsx (all or nothing)")
async def import_files(files: list[UploadFile], session: SessionDep,
                       user: Staff, request: Request, now: Now) -> ImportResult:
    """Upload ``volunteers.csv``, ``needs.csv``, ``merchants.csv``, ``donations.csv``,
    ``requests.csv`` (any of them) or one workbook.
    Each file's kind is checked against the caller's role (organisers: donations and requests
    only); a refused file refuses the whole upload (403 naming it).
    Rows with an existing id replace it. If any cell is bad, nothing is saved and the 422 lists
    every problem with file, row and column."""
    uploads: list[tuple[str, bytes]] = []
    for upload in files:
        name = Path(upload.filename or "").name
        if not name.lower().endswith((".xlsx", ".xlsm")):
            if name.lower().removesuffix(".csv") not in COLUMNS:
                raise Problem(422, _("{name}: expected {files} or one .xlsx workbook").format(
                    name=name, files=", ".join(f"{k}.csv" for k in COLUMNS)))
            _may_import(user, name.lower().removesuffix(".csv"), name)
        data = await upload.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise Problem(413, _("{name}: at most {mb} MB per file is read; split the "
                                 "community into smaller files").format(
                name=name, mb=MAX_FILE_BYTES // 1024 // 1024))
        uploads.append((name, data))
    # Parsing and the database work block: in a thread, so the event loop keeps serving.
    return await run_in_threadpool(_import, uploads, session, user, request, now)


def _import(uploads: list[tuple[str, bytes]], session: Session, user: Caller,
            request: Request, now: dt.datetime) -> ImportResult:
    """Read the uploaded files and save every row, or nothing (runs in a worker thread)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        workbook = None
        for name, data in uploads:
            if name.lower().endswith((".xlsx", ".xlsm")):
                workbook = folder / name
            (folder / name).write_bytes(data)
        tables, notes = read_tables(workbook or folder, tuple(COLUMNS))
        if not tables:
            raise Problem(422, _("no {tables} table in the upload").format(
                tables=", ".join(COLUMNS)))
        for kind, table in tables.items():
            _may_import(user, kind, table.name)
        created, updated = save_tables(session, tables, notes)
        notes.extend(import_notes(session, tables, Week.containing(now.date())))
    audit(session, user, "import", ",".join(sorted(tables)),
          f"created {created} updated {updated}")
    at_risk = review_at_risk(session, request.app.state, now) if set(tables) - set(CHARITY) \
        else []
    session.commit()  # one transaction: all rows or none
    return ImportResult(created=created, updated=updated, notes=notes,
                        at_risk=[risk_view(t, user) for t in at_risk])

