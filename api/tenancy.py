"""Which community a request works in: the one place that decides it.

A deployment serves the communities (社区) of street offices (街道) and districts (区). Every row
a community owns carries its ``community_id`` (:class:`api.models.Owned`). Each authenticated
request gets one community, its :class:`CommunityScope`:

* a coordinator, organiser, grid worker, merchant or volunteer works in the community of her
  account (a volunteer's routes follow her, whichever community she serves in);
* a street-office or district admin names one community of hers with the header
  ``X-Linli-Community: <code>``. A code outside her scope answers 404, as an unknown one does,
  so codes of other offices cannot be probed. Routes about her whole scope (the communities,
  accounts, who am I) need no header.

:func:`enter_community` (called by :func:`api.security.current_user`) puts the community on the
request; the request's database session is scoped to it (:func:`api.models.scope_session`), so
every query of every service reads only that community's rows and new rows get its id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

from api import permissions
from api.errors import Problem
from api.models import (
    Community,
    CommunityVersion,
    District,
    StreetOffice,
    scope_session,
    session_community,
)
from api.security import Caller, CurrentUser
from matcher.i18n import _

HEADER = "X-Linli-Community"
# An admin's request about her whole scope: it reads no community's rows.
NO_COMMUNITY = -1
WHOLE_SCOPE = frozenset({"/v1/communities", "/v1/communities/{code}", "/v1/users", "/v1/me",
                         "/v1/me/wechat",
                         # The district report: every community of hers, or the one she names.
                         "/v1/district/report", "/v1/district/report.csv", "/v1/district/map",
                         "/v1/district/map.html",
                         # The time bank's settlement between communities.
                         "/v1/timebank/settlement", "/v1/timebank/settlement.csv",
                         # A street office's (or district's) week solved as one job.
                         "/v1/district/schedules", "/v1/district/schedules/{run_id}",
                         "/v1/district/schedules/{run_id}/cancel"})
CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True, slots=True)
class CommunityScope:
    """The community a request works in (``id`` is :data:`NO_COMMUNITY` for an admin's request
    about her whole scope)."""

    id: int
    role: str
    street_office_id: int | None = None
    district_id: int | None = None


_BY_CODE = select(Community.id).where(Community.code == bindparam("code"))
_IN_SCOPE = (select(Community.id).join(StreetOffice,
                                       StreetOffice.id == Community.street_office_id)
             .where(Community.code == bindparam("code"),
                    or_(StreetOffice.id == bindparam("office"),
                        StreetOffice.district_id == bindparam("district"))))


def not_found(code: str) -> Problem:
    return Problem(404, _("no community {code} here").format(code=code),
                   code="community_not_found")


async def enter_community(request: Request, connection: AsyncConnection, caller: Caller,
                          template: str) -> None:
    """Put the caller's community for this request on ``request.state`` (404 for a community
    the caller may not enter, 400 when an admin names none where one is needed)."""
    code = request.headers.get(HEADER)
    if caller.role in permissions.ADMINS:
        if code is None:
            # The console's pages call the API as the person, which asks again.
            if template not in WHOLE_SCOPE and not template.startswith("/console"):
                raise Problem(400, _("say which community: send its code in the {header} "
                                     "header").format(header=HEADER), code="community_required")
            request.state.community_id = NO_COMMUNITY
            return
        found = (await connection.execute(_IN_SCOPE, {
            "code": code, "office": caller.street_office_id,
            "district": caller.district_id})).scalar()
        if found is None:
            raise not_found(code)
        request.state.community_id = found
        return
    if code is not None:
        found = (await connection.execute(_BY_CODE, {"code": code})).scalar()
        if found is None or found != caller.community_id:
            raise not_found(code)
    request.state.community_id = caller.community_id


async def community_scope(request: Request, user: CurrentUser) -> CommunityScope:
    """The request's community (a dependency: :data:`Scope`)."""
    return CommunityScope(getattr(request.state, "community_id", NO_COMMUNITY), user.role,
                          user.street_office_id, user.district_id)


Scope = Annotated[CommunityScope, Depends(community_scope)]


def communities_of(session: Session, caller: Caller) -> list[Community]:
    """The communities ``caller`` may act in, in code order."""
    query = select(Community).order_by(Community.code)
    if caller.role == permissions.STREET_ADMIN:
        query = query.where(Community.street_office_id == caller.street_office_id)
    elif caller.role == permissions.DISTRICT_ADMIN:
        query = query.join(StreetOffice, StreetOffice.id == Community.street_office_id).where(
            StreetOffice.district_id == caller.district_id)
    else:
        query = query.where(Community.id == caller.community_id)
    return list(session.scalars(query))


def community_in_scope(session: Session, caller: Caller, code: str) -> Community:
    """The community ``code`` if ``caller`` may act in it; 404 otherwise (also when it exists
    elsewhere)."""
    for community in communities_of(session, caller):
        if community.code == code:
            return community
    raise not_found(code)


def add_community(session: Session, code: str, name: str, street_office: StreetOffice
                  ) -> Community:
    """A new community of ``street_office``, with its version row (the caller commits).

    Raises
    ------
    Problem
        409 when the code is taken (codes are the deployment's).
    """
    if session.scalar(select(Community.id).where(Community.code == code)) is not None:
        raise Problem(409, _("the community code {code} is taken").format(code=code),
                      code="community_code_taken")
    community = Community(code=code, name=name, street_office_id=street_office.id)
    session.add(community)
    session.flush()
    session.add(CommunityVersion(community_id=community.id, version=0))
    return community


def check_webhook_url(url: str, path: list[str | int]) -> str:
    """``url`` without surrounding blanks when it is an http or https URL with a host; 422
    ``webhook_url_invalid`` naming ``path`` (the field or option) otherwise."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        # .port raises for a port that is not a number or out of range.
        ok = (parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
              and (parts.port is None or parts.port > 0))
    except ValueError:
        ok = False
    if not ok or len(text) > 500 or any(c.isspace() or not c.isprintable() for c in text):
        raise Problem(422, _("the webhook address must be an http:// or https:// address of "
                             "a server, such as https://hooks.example.cn/linli"),
                      code="webhook_url_invalid",
                      errors=[{"path": path, "message": _("not an http(s) address")}])
    return text


def set_webhook_url(community: Community, url: str | None, path: list[str | int]) -> None:
    """Send ``community``'s outbox events to ``url`` from now on; None: to the deployment's
    webhook (the caller commits)."""
    community.webhook_url = None if url is None else check_webhook_url(url, path)


def find_street_office(session: Session, code: str, *, name: str | None = None,
                  district: str = "default", create: bool = False) -> StreetOffice | None:
    """The street office ``code``; with ``create``, made (with its district) when missing."""
    office = session.scalars(select(StreetOffice).where(StreetOffice.code == code)).first()
    if office is not None or not create:
        return office
    found = session.scalars(select(District).where(District.code == district)).first()
    if found is None:
        found = District(code=district, name=district)
        session.add(found)
        session.flush()
    office = StreetOffice(code=code, name=name or code, district_id=found.id)
    session.add(office)
    session.flush()
    return office


def id_taken_elsewhere(session: Session, model: Any, ident: str) -> bool:
    """Whether another community already uses ``ident`` (ids are the deployment's). Plain
    statements: the session's scope would hide the row, and no other community's row may enter
    the session."""
    table = model.__table__
    key = table.primary_key.columns.values()[0]
    where = [key == ident]
    community = session_community(session)
    if community is not None:
        where.append(table.c.community_id != community)
    return session.execute(select(key).where(*where)).first() is not None


def check_new_id(session: Session, model: Any, kind: str, ident: str) -> None:
    """409 ``id_taken`` when another community uses ``ident`` already."""
    if id_taken_elsewhere(session, model, ident):
        raise id_taken(kind, ident)


def id_taken(kind: str, ident: str) -> Problem:
    """409 for an id another community uses, naming neither the community nor the row."""
    return Problem(409, _(
        "the id {ident} is already used in this deployment (ids of {kind} are shared by "
        "every community of it): give yours a prefix of your community, for example "
        "JT-{ident}").format(ident=ident, kind=kind), code="id_taken")



def public_community(session: Session, code: str | None) -> Community:
    """The community a page without login is about: the one ``code`` names (404 if none), or
    the deployment's only one (400 when there are several and none is named). ``session`` is
    scoped to it."""
    if code is not None:
        found = session.scalars(select(Community).where(Community.code == code)).first()
        if found is None:
            raise not_found(code)
    else:
        found_all = session.scalars(select(Community).order_by(Community.id).limit(2)).all()
        if len(found_all) != 1:
            raise Problem(400, _("say which community: add ?community=<its code>"),
                          code="community_required")
        found = found_all[0]
    scope_session(session, found.id)
    return found
