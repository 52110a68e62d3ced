"""The import template (导入模板): an .xlsx with Chinese headers, an example row and drop-downs
offering the community's own skills, services and goods (:mod:`matcher.template`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from api.errors import Problem, label
from api.models import DonationRow, MerchantRow, NeedRow, RequestRow, VolunteerRow
from api.permissions import import_roles
from api.security import SessionDep, Staff
from matcher.i18n import _
from matcher.template import CHARITY, COMMUNITY, Vocabulary, template_workbook

router = APIRouter(prefix="/v1", tags=["community"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The most words read per list: a drop-down holds few, and the first ones are enough to learn
# the spelling from.
VOCABULARY_ROWS = 5000


def _words(session: SessionDep, column: InstrumentedAttribute[Any]) -> list[str]:
    """The distinct words of a column of words (a JSON list) or of single words."""
    values = session.scalars(select(column).distinct().limit(VOCABULARY_ROWS))
    words = (w for v in values if v for w in (v if isinstance(v, list) else [v]))
    return sorted({str(w).strip() for w in words if str(w).strip()})


def vocabulary(session: SessionDep) -> Vocabulary:
    """The words the community on file uses."""
    return Vocabulary(
        skills=sorted(set(_words(session, VolunteerRow.skills))
                      | set(_words(session, NeedRow.skills))),
        services=_words(session, NeedRow.service),
        merchant_services=sorted(set(_words(session, MerchantRow.services))
                                 | set(_words(session, NeedRow.merchant_service))),
        categories=sorted(set(_words(session, DonationRow.category))
                          | set(_words(session, RequestRow.category))))


@router.get("/imports/template", summary="The import template (.xlsx, Chinese headers)",
            response_class=Response,
            responses={200: {"content": {XLSX: {}}, "description": "the workbook"}})
def import_template(session: SessionDep, user: Staff,
                    tables: Annotated[Literal["community", "charity"] | None, Query(
                        description="community (volunteers, needs, merchants) or charity "
                        "(donations, requests); default: the caller's own")] = None
                    ) -> Response:
    """A workbook to fill in and import: one sheet per table the caller may import, Chinese
    headers the importer reads, an example row, and drop-downs (红/黄/蓝, 周一...周日, the
    community's skills and services)."""
    chosen = tables or ("charity" if user.role == "organiser" else "community")
    kinds = COMMUNITY if chosen == "community" else CHARITY
    refused = [k for k in kinds if user.role not in import_roles(k)]
    if refused:
        raise Problem(403, _("a {role} may not import {kinds}").format(
            role=label(user.role), kinds=_(", ").join(_(k) for k in refused)))
    name = "linli-template.xlsx" if chosen == "community" else "linli-charity-template.xlsx"
    return Response(template_workbook(kinds, vocabulary(session)), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
