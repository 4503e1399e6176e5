"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, made fit
for several processes (the API, a worker, beat) on one laptop.

* it polls every 0.1 s (kombu reads the interval from the transport class;
  passing it as a transport option crashes the worker);
* a consumed message is deleted instead of being kept as invisible, so the
  file does not grow for ever;
* WAL journal and a busy timeout, so a poller never blocks a publisher.

Select it with ``CMS_BROKER_URL=sqla+sqlite:///path/broker.sqlite3`` (the
default when the database is SQLite). Nothing depends on the broker keeping
messages: events and deliveries live in the database.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

from kombu.transport.sqlalchemy import Channel as SqlaChannel
from kombu.transport.sqlalchemy import Transport as SqlaTransport
from kombu.transport.sqlalchemy import loads
from kombu.utils.encoding import bytes_to_str
from sqlalchemy import event, text


class Channel(SqlaChannel):  # type: ignore[misc]
    def _engine_from_config(self) -> Any:
        engine = super()._engine_from_config()

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine

    def _get(self, queue: str) -> Any:
        obj = self._get_or_create(queue)
        self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            msg = (
                self.session.query(self.message_cls)
                .filter(self.message_cls.queue_id == obj.id)
                .order_by(self.message_cls.sent_at, self.message_cls.id)
                .limit(1)
                .first()
            )
            if msg is None:
                raise Empty()
            payload = loads(bytes_to_str(msg.payload))
            self.session.delete(msg)
            return payload
        finally:
            self.session.commit()


class Transport(SqlaTransport):  # type: ignore[misc]
    Channel = Channel
    polling_interval = 0.1
