"""Characters from the seed talk's public API (Rick and Morty), fetched through a resilient
upstream: one at a time, or many at once, concurrently, through the upstream's bulkhead."""

import asyncio
from typing import Any

from pydantic import BaseModel, ValidationError

from ..resilience import Upstream, UpstreamError
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
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def get(self, character_id: int) -> Character | None:
        """The character, or None when the API has no character with that id."""
        try:
            data: Any = await self.upstream.get_json(f"/character/{character_id}")
        except UpstreamNotFound:
            return None
        try:
            return Character.model_validate(data)
        except ValidationError:
            detail = "answered with a body that is not a character"
            raise UpstreamError(self.upstream.name, detail) from None

    async def get_many(self, ids: list[int]) -> list[Character | None]:
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
