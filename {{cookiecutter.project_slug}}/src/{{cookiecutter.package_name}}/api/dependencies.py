"""Dependencies shared by routes, named once as Annotated types."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from ..settings import Settings


@dataclass(frozen=True)
class Pagination:
    skip: int
    limit: int


async def pagination(
    skip: Annotated[int, Query(ge=0, le=10_000, description="Items to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Items to return")] = 20,
) -> Pagination:
    return Pagination(skip=skip, limit=limit)


async def app_settings(request: Request) -> Settings:
    """The settings the app was created with (main.py)."""
    settings: Settings = request.app.state.settings
    return settings


PaginationDep = Annotated[Pagination, Depends(pagination)]
SettingsDep = Annotated[Settings, Depends(app_settings)]
