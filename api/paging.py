"""One page of a list, the same on every list route: ``items`` from ``offset`` on, at most
``limit`` of them, and the ``total`` that match (so a client knows when to stop)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
R = TypeVar("R")


def _example(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """A page's example: one item, the example of its items' model."""
    args = cls.__pydantic_generic_metadata__["args"]
    extra = getattr(args[0], "model_config", {}).get("json_schema_extra") if args else None
    if isinstance(extra, dict) and extra.get("examples"):
        schema["examples"] = [{"items": extra["examples"][:1], "total": 1, "limit": 50,
                               "offset": 0}]


class Page(BaseModel, Generic[T]):
    """One page of a list: a client asks for the next one with ``offset + limit`` while that is
    below ``total``."""

    model_config = ConfigDict(json_schema_extra=_example)
    items: list[T]
    total: int = Field(ge=0, description="how many items match, on every page", examples=[120])
    limit: int = Field(ge=1, description="at most this many items were asked for",
                       examples=[50])
    offset: int = Field(ge=0, description="this many matching items come before these",
                        examples=[0])


def page_rows(session: Session, query: Select[R], limit: int,
              offset: int) -> tuple[list[R], int]:
    """The rows of one page of ``query`` (already ordered) and how many rows match in all."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(query.limit(limit).offset(offset)).all()
    return list(rows), int(total or 0)


def page_of(items: Sequence[T], limit: int, offset: int) -> Page[T]:
    """A page of a list computed in full (a schedule's candidates, a merchant's orders)."""
    return Page(items=list(items[offset:offset + limit]), total=len(items), limit=limit,
                offset=offset)
