"""Communities (社区) of street offices (街道) and districts (区): each account lists those it may
act in; a street-office or district admin adds them and sets where each one's webhook events go
(:mod:`api.tenancy`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.community import audit
from api.errors import Problem
from api.models import Community, District, StreetOffice, scope_session
from api.paging import Page, page_of
from api.params import Limit, Offset
from api.permissions import ADMINS, STREET_ADMIN
from api.security import Caller, CurrentUser, SessionDep
from api.tenancy import add_community, communities_of, community_in_scope, set_webhook_url
from matcher.i18n import _

router = APIRouter(prefix="/v1", tags=["communities"])

Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", examples=["jingtian"],
                            description="a stable code (lower-case letters, digits, - and _)")]


class CommunityOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "jingtian", "name": "景田社区", "street_office": "lianhua",
        "street_office_name": "莲花街道", "district": "futian", "district_name": "福田区",
        "webhook_url": "https://mp.jingtian.example.cn/linli/events"}]})
    code: str
    name: str
    street_office: str
    street_office_name: str
    district: str
    district_name: str
    webhook_url: str | None = Field(
        None, description="where this community's webhook events go (its own receiver); null: "
        "the deployment's webhook. Shown to street and district admins only")


class CommunityIn(BaseModel):
    code: Code
    name: str = Field(min_length=1, max_length=128, examples=["景田社区"])
    street_office: Code | None = Field(
        None, description="the street office's code: a district admin names one of hers; a "
        "street admin's own is the default (and the only one she may name)")


class CommunityPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"webhook_url": "https://mp.jingtian.example.cn/linli/events"}, {"webhook_url": None}]})
    webhook_url: str | None = Field(
        description="an http(s) address that takes this community's webhook events (POSTed "
        "as to the deployment's webhook); null sends them to the deployment's webhook again",
        max_length=500)


def _view(session: SessionDep, community: Community, user: Caller) -> CommunityOut:
    office = session.get(StreetOffice, community.street_office_id)
    assert office is not None  # a foreign key
    district = session.get(District, office.district_id)
    assert district is not None
    # A receiver's address may carry its secret: only those who set it see it.
    return CommunityOut(code=community.code, name=community.name, street_office=office.code,
                        street_office_name=office.name, district=district.code,
                        district_name=district.name,
                        webhook_url=community.webhook_url if user.role in ADMINS else None)


def _views(session: SessionDep, user: CurrentUser) -> list[CommunityOut]:
    return [_view(session, community, user) for community in communities_of(session, user)]


@router.get("/communities", response_model=Page[CommunityOut],
            summary="The communities I may act in")
def list_communities(session: SessionDep, user: CurrentUser, limit: Limit = 50,
                     offset: Offset = 0) -> Page[CommunityOut]:
    """A community account's own community; a street admin's communities of her street office,
    a district admin's of her district. An admin sends one's code as ``X-Linli-Community`` to
    read it."""
    return page_of(_views(session, user), limit, offset)


@router.post("/communities", response_model=CommunityOut, status_code=201,
             summary="Add a community to my street office or district")
def create_community(body: CommunityIn, session: SessionDep, user: CurrentUser) -> CommunityOut:
    """409 ``community_code_taken`` when the code is used (codes are the deployment's); 404 for
    a street office outside the caller's scope."""
    query = select(StreetOffice)
    if user.role == STREET_ADMIN:
        query = query.where(StreetOffice.id == user.street_office_id)
        if body.street_office is not None:
            query = query.where(StreetOffice.code == body.street_office)
    else:
        if body.street_office is None:
            raise Problem(422, _("name the street office the community belongs to"),
                          errors=[{"path": ["body", "street_office"],
                                   "message": _("required for a district admin")}])
        query = query.where(StreetOffice.district_id == user.district_id,
                            StreetOffice.code == body.street_office)
    office = session.scalars(query).first()
    if office is None:
        raise Problem(404, _("no street office {code} here").format(
            code=body.street_office), code="street_office_not_found")
    community = add_community(session, body.code, body.name, office)
    scope_session(session, community.id)  # the record belongs to the new community
    audit(session, user, "create", f"community:{community.code}", community.name)
    session.commit()
    return _view(session, community, user)


@router.patch("/communities/{code}", response_model=CommunityOut,
              summary="Set where a community's webhook events go")
def update_community(code: Annotated[str, PathParam(max_length=40)], body: CommunityPatch,
                     session: SessionDep, user: CurrentUser) -> CommunityOut:
    """A street or district admin gives a community of hers its own webhook receiver (its mini
    program's backend): the outbox sends that community's events there, the others' to theirs
    or to the deployment's webhook. 404 for a community outside her scope; 422
    ``webhook_url_invalid`` for an address that is not http(s)."""
    community = community_in_scope(session, user, code)
    set_webhook_url(community, body.webhook_url, ["body", "webhook_url"])
    scope_session(session, community.id)  # the record belongs to the community
    audit(session, user, "update", f"community:{community.code}",
          "webhook_url" if community.webhook_url else "webhook_url cleared")
    session.commit()
    return _view(session, community, user)
