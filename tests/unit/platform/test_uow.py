"""The unit of work: commands commit once, nested ones join, hooks run only after a commit."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from cms.platform import uow


@pytest.fixture
def sessions(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'uow.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    factory = sessionmaker(engine)
    ran: list[str] = []
    uow.install(factory, lambda: {"relay": lambda: ran.append("relay"), "sweep": lambda: ran.append("sweep")})
    yield factory, ran
    engine.dispose()


@uow.command
def insert(session, n: int, *, nudge: str | None = "relay", fail: bool = False) -> None:
    session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
    if nudge:
        uow.after_commit(session, nudge)
    if fail:
        raise RuntimeError("fails after writing")


def rows(factory) -> list[int]:
    with factory() as session:
        return list(session.scalars(text("SELECT n FROM t ORDER BY n")))


def test_a_command_commits_and_then_runs_its_hooks_once(sessions):
    factory, ran = sessions
    with factory() as session:
        insert(session, 1)
        insert(session, 2)  # the same hook asked again runs again, after its own commit
    assert rows(factory) == [1, 2] and ran == ["relay", "relay"]


def test_nested_commands_join_the_outer_unit_of_work(sessions):
    factory, ran = sessions
    with factory() as session, uow.transaction(session):
        insert(session, 1)
        insert(session, 2, nudge="sweep")
        insert(session, 3)
        assert ran == []  # nothing is durable yet
    assert rows(factory) == [1, 2, 3] and ran == ["relay", "sweep"]  # each name once


def test_a_failing_command_rolls_back_and_forgets_its_hooks(sessions):
    factory, ran = sessions
    with factory() as session:
        with pytest.raises(RuntimeError):
            insert(session, 1, fail=True)
        insert(session, 2, nudge=None)
    assert rows(factory) == [2] and ran == []


def test_a_savepoint_rolling_back_keeps_the_outer_hooks(sessions):
    factory, ran = sessions
    with factory() as session, uow.transaction(session):
        insert(session, 1)
        with pytest.raises(RuntimeError), session.begin_nested():
            session.execute(text("INSERT INTO t (n) VALUES (5)"))
            raise RuntimeError("inner failure")
    assert rows(factory) == [1] and ran == ["relay"]


def test_a_failing_hook_does_not_undo_the_commit(tmp_path, caplog):
    engine = create_engine(f"sqlite:///{tmp_path / 'uow.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    factory = sessionmaker(engine)

    def broken() -> None:
        raise ConnectionError("broker down")

    uow.install(factory, lambda: {"relay": broken})
    with factory() as session:
        insert(session, 1)
    assert rows(factory) == [1]
    assert "after-commit hook relay failed" in caplog.text
    engine.dispose()
