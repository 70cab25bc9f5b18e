"""A stand-in for messaging.broker.Broker: records what is published, or fails as a broker
that is away."""

import aio_pika

from {{ cookiecutter.package_name }}.messaging.broker import BrokerUnavailable


class FakeBroker:
    """Records what is published; `down` makes every use fail as a broker that is away."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.published: list[tuple[str, str, aio_pika.Message]] = []

    @property
    def connected(self) -> bool:
        return not self.down

    async def open(self) -> None:
        if self.down:
            raise BrokerUnavailable("ConnectionRefusedError: the fake broker is down")

    async def publish(
        self, message: aio_pika.Message, routing_key: str, exchange: str = ""
    ) -> None:
        await self.open()
        self.published.append((exchange, routing_key, message))

    async def publish_event(self, message: aio_pika.Message, routing_key: str) -> None:
        await self.publish(message, routing_key, "events")

    async def close(self) -> None:
        pass
