"""Where to recruit and whom to partner with, as jobs: a job worker solves the week, finds the
places (maximum coverage) and checks each suggestion by re-solving; coordinators poll."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from api.models import SuggestionRow
from api.paging import Page, page_rows
from api.params import Id, IsoWeek, Limit, Offset
from api.schemas import JobOut
from api.security import Coordinator, SessionDep
from api.weekly import cancel_job, get_job, queue_job
from matcher.domain import Week

router = APIRouter(prefix="/v1", tags=["suggestions"])

MAX_K = 20


class SuggestionsIn(BaseModel):
    week: IsoWeek = Field(examples=["2026-W48"], description="ISO week to look at")
    kind: Literal["recruits", "partners"] = Field(
        description="recruits: where one more volunteer with `skill` would cover the most "
        "unmet occurrences; partners: which partner merchants, where, would unblock the most "
        "occurrences unmet for want of a merchant (no_merchant_in_circle)")
    skill: str | None = Field(None, min_length=1, max_length=40, pattern=r"^[^\s/]+$",
                              description="the recruits' skill (recruits only)")
    k: int = Field(3, ge=1, le=MAX_K, description="how many volunteers or merchants")

    @model_validator(mode="after")
    def _skill_for_recruits(self) -> SuggestionsIn:
        if self.kind == "recruits" and self.skill is None:
            raise ValueError("recruits need a skill")
        if self.kind == "partners" and self.skill is not None:
            raise ValueError("partners take no skill")
        return self


class SuggestionsOut(JobOut):
    kind: str
    skill: str | None
    k: int


def _view(row: SuggestionRow) -> SuggestionsOut:
    return SuggestionsOut(**JobOut.of(row).model_dump(), kind=row.kind, skill=row.skill, k=row.k)


@router.post("/suggestions", status_code=202, response_model=SuggestionsOut,
             summary="Find where to recruit or whom to partner with (returns a job to poll)")
def create_suggestions(body: SuggestionsIn, session: SessionDep, user: Coordinator,
                       request: Request) -> SuggestionsOut:
    return _view(queue_job(session, request.app.state, SuggestionRow, body.week, user,
                           f"suggest_{body.kind}", kind=body.kind, skill=body.skill, k=body.k))


@router.get("/suggestions", response_model=Page[SuggestionsOut],
            summary="Suggestion jobs, newest first, of one week if given")
def list_suggestions(session: SessionDep, user: Coordinator,
                     week: Annotated[IsoWeek | None, Query()] = None,
                     kind: Annotated[Literal["recruits", "partners"] | None, Query()] = None,
                     limit: Limit = 50, offset: Offset = 0) -> Page[SuggestionsOut]:
    query = select(SuggestionRow).order_by(SuggestionRow.id.desc())
    if week:
        query = query.where(SuggestionRow.week == str(Week.parse(week)))
    if kind:
        query = query.where(SuggestionRow.kind == kind)
    rows, total = page_rows(session, query, limit, offset)
    return Page(items=[_view(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/suggestions/{suggestion_id}", response_model=SuggestionsOut,
            summary="A suggestion job: progress, then the ranked suggestions with the gain "
            "each re-solve found")
def read_suggestions(suggestion_id: Id, session: SessionDep,
                     user: Coordinator) -> SuggestionsOut:
    return _view(get_job(session, SuggestionRow, suggestion_id))


@router.post("/suggestions/{suggestion_id}/cancel", response_model=SuggestionsOut,
             summary="Cancel a queued or running suggestion job")
def cancel_suggestions(suggestion_id: Id, session: SessionDep,
                       user: Coordinator) -> SuggestionsOut:
    cancel_job(session, SuggestionRow, suggestion_id, user)
    return _view(get_job(session, SuggestionRow, suggestion_id))
