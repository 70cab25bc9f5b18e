"""Characters from a public API (Rick and Morty's), fetched through a resilient
upstream behind a read-through cache: one at a time, or many at once, concurrently, through the
upstream's bulkhead. Each answer comes with its age (0 when fresh from the API)."""

import asyncio
from typing import Any

from pydantic import BaseModel, ValidationError

from ..resilience import Upstream, UpstreamError
from ..resilience.cache import Cached, ReadThroughCache
from ..resilience.errors import UpstreamNotFound


class Character(BaseModel):
    """The fields we pass on; the upstream sends more, which are dropped."""

    id: int
    name: str
    status: str
    species: str
    gender: str
    image: str


class CharactersApi:
    def __init__(self, upstream: Upstream, cache: ReadThroughCache[Character | None]) -> None:
        self.upstream = upstream
        self.cache = cache

    async def get(self, character_id: int) -> Cached[Character | None]:
        """The character (None when the API has none with that id), from the cache when fresh,
        with its age."""
        return await self.cache.get(character_id, lambda: self.fetch(character_id))

    async def fetch(self, character_id: int) -> Character | None:
        try:
            data: Any = await self.upstream.get_json(f"/character/{character_id}")
        except UpstreamNotFound:
            return None
        try:
            return Character.model_validate(data)
        except ValidationError:
            detail = "answered with a body that is not a character"
            raise UpstreamError(self.upstream.name, detail) from None

    async def get_many(self, ids: list[int]) -> list[Cached[Character | None]]:
        """Each id's character (None where there is none), in the order asked, fetched
        concurrently, each id once. Every call runs to its end, so that the first failure is
        reported without cancelling calls the breaker is judging."""
        unique = list(dict.fromkeys(ids))
        results = await asyncio.gather(*(self.get(i) for i in unique), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        found = dict(zip(unique, results))
        return [found[i] for i in ids]  # type: ignore[misc]
