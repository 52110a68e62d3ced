"""One page of a list, the same on every list route: ``items`` from ``offset`` on, at most
``limit`` of them, and the ``total`` that match (so a client knows when to stop)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
R = TypeVar("R")


class Page(BaseModel, Generic[T]):
    """One page of a list: a client asks for the next one with ``offset + limit`` while that is
    below ``total``."""

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
