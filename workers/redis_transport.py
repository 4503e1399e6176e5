"""kombu's Redis transport, failing like a lost connection once its connection is gone.

When the broker goes away, Celery 5.7 collects the worker's connection (the
transport forgets its client) and afterwards still closes channels and acks
finished ``acks_late`` tasks through it. Each of those then dies on
``None.hostname`` with an ``AttributeError``, which Celery does not treat as a
connection error, so the whole worker stops instead of reconnecting. Raising
redis's ``ConnectionError`` instead lets Celery's own recovery run: the worker
waits for Redis and carries on. Nothing is lost either way: deliveries and
events live in the database and the periodic relay and sweep pick them up.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[no-any-return]


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel
