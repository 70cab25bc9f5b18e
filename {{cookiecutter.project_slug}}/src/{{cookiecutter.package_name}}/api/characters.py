"""/api/v1/characters: characters fetched from an upstream API, through the resilience policies.

GET /characters/{id} answers one; GET /characters?ids=1,2,3 answers several, fetched
concurrently, in the order asked. The upstream's 404 is a 404; its failures are 503 or 504,
unless the cache holds an answer recent enough to serve instead. `Age` says how old the answer
is (the oldest, for several) when it comes from the cache.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from pydantic import BeforeValidator, Field

from ..domain.characters import Character, CharactersApi
from ..errors import Problem
from ..resilience import UPSTREAM_RESPONSES, UpstreamPolicy, open_upstream
from ..resilience.cache import CacheStore, Cached, MemoryStore, ReadThroughCache
from ..settings import Settings
from ..security.rate_limit import RATE_LIMITED, RateLimitedRoute
from . import API_PREFIX

MAX_IDS = 20


@asynccontextmanager
async def open_cache_store(url: str) -> AsyncIterator[CacheStore]:
    """The store CACHE_URL names, for the lifespan."""
    if url.startswith("memory://"):
        yield MemoryStore()
        return
    # Imported here: redis is a slower start and more memory, for a Redis cache only.
    from ..resilience.cache_redis import open_redis_store

    async with open_redis_store(url) as store:
        yield store


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    settings: Settings = app.state.settings
    policy = UpstreamPolicy.from_settings(settings, "characters", settings.characters_api_url)
    async with (
        open_cache_store(settings.cache_url.get_secret_value()) as store,
        open_upstream(app, policy) as upstream,
    ):
        cache = ReadThroughCache[Character | None](
            "characters",
            Character | None,
            store,
            ttl=settings.characters_cache_ttl_seconds,
            stale_for=settings.characters_cache_stale_seconds,
        )
        yield {"characters_api": CharactersApi(upstream, cache)}


async def get_characters_api(request: Request) -> CharactersApi:
    api: CharactersApi = request.state.characters_api
    return api


def split_commas(value: object) -> object:
    """`?ids=1,2,3` (and `?ids=1&ids=2`) as one list of ids."""
    if isinstance(value, list):
        return [part.strip() for item in value for part in str(item).split(",")]
    return value


CharactersApiDep = Annotated[CharactersApi, Depends(get_characters_api)]
CharacterId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The character's id")]
CharacterIds = Annotated[
    list[Annotated[int, Field(ge=1, le=2**31 - 1)]],
    BeforeValidator(split_commas),
    Field(min_length=1, max_length=MAX_IDS),
    Query(description=f"Comma-separated ids, at most {MAX_IDS}", examples=["1,2,3"]),
]

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No character with that id"}}
router = APIRouter(
    prefix=f"{API_PREFIX}/characters",
    route_class=RateLimitedRoute,
    tags=["characters"],
    lifespan=lifespan,
    responses=RATE_LIMITED,
)


@router.get("/{character_id}", responses={**NOT_FOUND, **UPSTREAM_RESPONSES})
async def get_character(
    character_id: CharacterId, api: CharactersApiDep, response: Response
) -> Character:
    cached = await api.get(character_id)
    if cached.value is None:
        raise HTTPException(404, f"Character {character_id} does not exist")
    set_age(response, [cached])
    return cached.value


@router.get("", responses={**NOT_FOUND, **UPSTREAM_RESPONSES})
async def get_characters(
    ids: CharacterIds, api: CharactersApiDep, response: Response
) -> list[Character]:
    answers = await api.get_many(ids)
    missing = list(dict.fromkeys(i for i, a in zip(ids, answers) if a.value is None))
    if missing:
        raise HTTPException(404, f"No character with id {', '.join(map(str, missing))}")
    set_age(response, answers)
    return [answer.value for answer in answers if answer.value is not None]


def set_age(response: Response, answers: list[Cached[Character | None]]) -> None:
    """`Age` (RFC 9111) when the answer, or its oldest part, came from the cache."""
    age = max(answer.age for answer in answers)
    if age > 0:
        response.headers["Age"] = str(int(age))
