"""Bulk writes for the delivery engine: PostgreSQL's COPY and array UPDATEs, plain
executemany elsewhere. Fan-out and outcome recording write a row per delivery;
doing that a statement (or a parameter set) at a time would cost more than
sending the webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def driver_connection(session: Session) -> Any:
    """The psycopg connection under the session, inside its transaction."""
    driver = session.connection().connection.driver_connection
    assert driver is not None
    return driver


def driver_cursor(session: Session) -> Any:
    return driver_connection(session).cursor()


def copy_rows(session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows that cannot conflict (COPY on PostgreSQL)."""
    if not rows:
        return
    if is_postgres(session):
        cursor = driver_cursor(session)
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])


def insert_ignoring_conflicts(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = (pg_insert if is_postgres(session) else sqlite_insert)(table).on_conflict_do_nothing()
    session.execute(stmt, rows)
