"""The unit of work: each use case is a command that owns one transaction.

A command (``@command``) commits when it returns and rolls back when it raises;
a command called by another joins the caller's transaction. Work that must
only happen once the data is durable (nudging the workers) is asked for with
``after_commit(session, name)`` and runs after the outermost commit; a rollback
forgets it. Work that must happen last inside the transaction (handing out
change-feed positions in commit order) is asked for with ``before_commit``. The
app binds each after-commit name to what it means in this process
(``install``), so domain code never imports a broker, Flask or Celery.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_DEPTH = "cms_uow_depth"
_HOOKS = "cms_after_commit"
_BEFORE = "cms_before_commit"


def after_commit(session: Session, name: str) -> None:
    """Run the hook ``name`` once, after the current transaction commits."""
    pending: set[str] = session.info.setdefault(_HOOKS, set())
    pending.add(name)


def before_commit(session: Session, fn: Callable[[Session, list[Any]], None], item: Any) -> None:
    """Call ``fn(session, items)`` once, as the last step before the outermost commit of
    the current unit of work, with every ``item`` added for ``fn`` meanwhile. A
    rollback forgets them. Only units of work (``transaction``/``@command``) run these."""
    pending: dict[Any, list[Any]] = session.info.setdefault(_BEFORE, {})
    pending.setdefault(fn, []).append(item)


def _run_before_commit(session: Session) -> None:
    while pending := session.info.pop(_BEFORE, None):
        for fn, items in pending.items():
            fn(session, items)


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """One unit of work on ``session``: commit at the end, roll back on error.

    Nested use joins the outer unit of work, which alone commits."""
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    try:
        yield session
        if depth == 0:
            _run_before_commit(session)
            session.commit()
    except BaseException:
        if depth == 0:
            session.info.pop(_BEFORE, None)
            session.rollback()
        raise
    finally:
        session.info[_DEPTH] = depth


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Make ``fn(session, ...)`` a command: it runs in (and owns) a unit of work."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        session = args[0]
        assert isinstance(session, Session) or hasattr(session, "info"), "a command takes the session first"
        with transaction(session):  # type: ignore[arg-type]
            return fn(*args, **kwargs)

    return run


Hooks = Mapping[str, Callable[[], None]]


def install(sessions: Any, resolve: Callable[[], Hooks]) -> None:
    """Run hooks after commits of the sessions ``sessions`` makes (a sessionmaker,
    scoped_session or Session class). ``resolve`` gives the hooks by name at commit
    time (the app's, which may differ between apps sharing one session factory).
    Installing again only replaces ``resolve``. A failing hook is logged, never
    raised: the commit already happened, and the periodic relay and sweep find
    the work anyway."""
    already = getattr(sessions, "_cms_uow_resolve", None) is not None
    sessions._cms_uow_resolve = resolve
    if already:
        return

    def committed(session: Session) -> None:
        names = session.info.pop(_HOOKS, ())
        if not names:
            return
        hooks = sessions._cms_uow_resolve()
        for name in sorted(names):
            hook = hooks.get(name)
            if hook is None:
                continue
            try:
                hook()
            except Exception:
                log.warning("after-commit hook %s failed", name, exc_info=True)

    def rolled_back(session: Session, previous: Any) -> None:
        # A savepoint rolling back leaves the outer transaction (and its hooks) alive.
        if previous.parent is None:
            session.info.pop(_HOOKS, None)

    event.listen(sessions, "after_commit", committed)
    event.listen(sessions, "after_soft_rollback", rolled_back)
