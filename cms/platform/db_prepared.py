"""One-row reads straight through libpq: a named prepared statement, binary in and out.

``GET /articles/{id}`` is the product's hottest request and one statement.
psycopg's cursor (a cursor object, query conversion, its prepared-statement
cache, row loading) cost ~100 µs of CPU per read on a 2-core machine; calling
``PQexecPrepared`` on the connection's ``pgconn`` and decoding the few binary
columns here costs ~15 µs. libpq releases the GIL while it waits, as psycopg does.

Only autocommit connections idle outside a transaction take this path (the
``cms.platform.db.ReadPool`` ones): a failure there cannot poison a caller's
transaction, so a statement that vanished (``DISCARD ALL``) is simply prepared
again. Anything else, or a column type without a decoder below, answers
``NOT_HANDLED`` and the caller uses its ordinary cursor.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

NOT_HANDLED: Final = object()
BINARY = pq.Format.BINARY
_INVALID_STATEMENT_NAME = b"26000"  # the prepared statement does not exist (any more)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _text(data: bytes) -> str:
    return data.decode()


def _int(data: bytes) -> int:
    return int.from_bytes(data, "big", signed=True)


def _timestamptz(data: bytes) -> datetime:
    # Microseconds since 2000-01-01 UTC (integer datetimes, PostgreSQL >= 10 always).
    return _PG_EPOCH + timedelta(microseconds=int.from_bytes(data, "big", signed=True))


def _jsonb_text(data: bytes) -> str:
    # A version byte (1), then the JSON text; decoded only when a body must be rendered.
    if data[:1] != b"\x01":
        raise psycopg.DataError(f"unknown jsonb binary format version {data[:1]!r}")
    return data[1:].decode()


# Binary decoders by type OID: uuid, text, varchar, bpchar, int2, int4, int8,
# timestamptz, jsonb. Values come back as the cursor path returns them, except
# jsonb, which stays JSON text.
DECODERS: dict[int, Callable[[bytes], Any]] = {
    2950: lambda data: uuid.UUID(bytes=data),
    25: _text,
    1043: _text,
    1042: _text,
    21: _int,
    23: _int,
    20: _int,
    1184: _timestamptz,
    3802: _jsonb_text,
}


class PreparedRead:
    """A one-row ``SELECT`` with ``$n`` parameters, prepared once per connection."""

    def __init__(self, name: str, sql: str, param_types: Sequence[int]) -> None:
        self.name = name.encode()
        self.sql = sql.encode()
        self.param_types = list(param_types)
        self._formats = [BINARY] * len(self.param_types)
        # Per connection: the column decoders, or None when a column has no decoder.
        self._decoders: weakref.WeakKeyDictionary[Any, list[Callable[[bytes], Any]] | None] = (
            weakref.WeakKeyDictionary()
        )

    def fetch(self, conn: psycopg.Connection[Any], params: list[bytes | None], *, retry: bool = True) -> Any:
        """The decoded first row, ``None`` for no row, or ``NOT_HANDLED``.

        ``params`` are in PostgreSQL's binary format (``uuid.bytes`` for a uuid).
        Raises ``psycopg.OperationalError`` when the connection is broken, as the
        cursor would, so ``ReadPool`` replaces it.
        """
        # pgconn's status is a plain int; conn.info builds an object per access (~2 µs).
        if not conn.autocommit or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return NOT_HANDLED
        decoders = self._decoders.get(conn, NOT_HANDLED)
        if decoders is NOT_HANDLED:
            decoders = self._prepare(conn)
        if decoders is None:
            return NOT_HANDLED
        pgconn = conn.pgconn
        result = pgconn.exec_prepared(self.name, params, self._formats, BINARY)
        if result.status != pq.ExecStatus.TUPLES_OK:
            if retry and result.error_field(pq.DiagnosticField.SQLSTATE) == _INVALID_STATEMENT_NAME:
                del self._decoders[conn]  # deallocated behind our back: prepare again
                return self.fetch(conn, params, retry=False)
            self._raise(conn, result)
        if result.ntuples == 0:
            return None
        value = result.get_value
        return tuple(
            None if (data := value(0, i)) is None else decode(data) for i, decode in enumerate(decoders)
        )

    def _prepare(self, conn: psycopg.Connection[Any]) -> list[Callable[[bytes], Any]] | None:
        pgconn = conn.pgconn
        result = pgconn.prepare(self.name, self.sql, self.param_types)
        if result.status != pq.ExecStatus.COMMAND_OK:
            self._raise(conn, result)
        described = pgconn.describe_prepared(self.name)
        if described.status != pq.ExecStatus.COMMAND_OK:
            self._raise(conn, described)
        types = [described.ftype(i) for i in range(described.nfields)]
        decoders = None if any(t not in DECODERS for t in types) else [DECODERS[t] for t in types]
        self._decoders[conn] = decoders
        return decoders

    @staticmethod
    def _raise(conn: psycopg.Connection[Any], result: pq.abc.PGresult) -> None:
        if conn.pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError(conn.pgconn.get_error_message())
        raise error_from_result(result, encoding=conn.info.encoding)
