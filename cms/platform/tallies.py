"""Counts per minute: the aggregates behind the ops overview.

A tally row is (Unix minute, metric, shard) -> n. Writers add to it in their own
transaction (so a count exists if and only if what it counts was committed);
readers sum a range of minutes, which costs the same whatever the size of the
tables counted. On PostgreSQL each connection adds to its own shard (backend
pid mod ``SHARDS``), so concurrent writers never wait on one row.

Latencies are kept as histograms: one metric per bucket of ``Histogram.bounds``,
from which any quantile is estimated (within one bucket's width).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, SmallInteger, String, delete, func, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from cms.platform.models import Base

SHARDS = 16


class MinuteTally(Base):
    __tablename__ = "minute_tallies"

    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger)


T = MinuteTally.__table__


def minute_of(moment: datetime) -> int:
    """The Unix minute of an aware datetime (what the SQL writers compute too)."""
    return int(moment.timestamp()) // 60


def add(session: Session, counts: Mapping[tuple[int, str], int]) -> None:
    """Add ``{(minute, metric): n}`` in the caller's transaction (never commits)."""
    rows = [{"minute": m, "metric": k, "n": n} for (m, k), n in sorted(counts.items()) if n]
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        shard = literal_column(f"pg_backend_pid() % {SHARDS}")
        stmt = pg_insert(T).values([{**r, "shard": shard} for r in rows])
    else:
        stmt = sqlite_insert(T).values([{**r, "shard": 0} for r in rows])
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[T.c.minute, T.c.metric, T.c.shard], set_={"n": T.c.n + stmt.excluded.n}
        )
    )


def read(session: Session, first: int, last: int, prefixes: Sequence[str]) -> dict[tuple[int, str], int]:
    """``{(minute, metric): n}`` for minutes ``first..last`` and metrics starting with a prefix."""
    wanted = [T.c.metric.startswith(p, autoescape=True) for p in prefixes]
    stmt = (
        select(T.c.minute, T.c.metric, func.sum(T.c.n))
        .where(T.c.minute.between(first, last))
        .group_by(T.c.minute, T.c.metric)
    )
    if wanted:
        stmt = stmt.where(or_(*wanted))
    return {(m, k): int(n) for m, k, n in session.execute(stmt)}


_PG_COMPACT = text(
    """
WITH folded AS (
    DELETE FROM minute_tallies WHERE minute < :before AND shard <> 0 RETURNING minute, metric, n
)
INSERT INTO minute_tallies AS t (minute, metric, shard, n)
SELECT minute, metric, 0, sum(n) FROM folded GROUP BY minute, metric ORDER BY minute, metric
ON CONFLICT (minute, metric, shard) DO UPDATE SET n = t.n + EXCLUDED.n
"""
)


def compact(session: Session, before: int) -> int:
    """Fold the shards of minutes before ``before`` into shard 0 (one statement, so no
    count is lost or doubled, even beside writers): the shards only matter while a
    minute is being written. How many rows were folded."""
    if session.get_bind().dialect.name != "postgresql":
        return 0  # one writer at a time: everything is in shard 0 already
    return session.execute(_PG_COMPACT, {"before": before}).rowcount or 0  # type: ignore[attr-defined]


def prune(session: Session, before: int) -> int:
    """Delete tallies of minutes before ``before``; how many rows went."""
    return session.execute(delete(T).where(T.c.minute < before)).rowcount or 0  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Histogram:
    """Buckets of a latency: bucket ``i`` holds values in ``[bounds[i-1], bounds[i])``
    (bucket 0 from 0, the last one open-ended); numbered as SQL's ``width_bucket``."""

    prefix: str
    bounds: tuple[float, ...]

    @classmethod
    def geometric(cls, prefix: str, first: float, factor: float, last: float) -> Histogram:
        bounds = [first]
        while bounds[-1] < last:
            bounds.append(float(f"{bounds[-1] * factor:.4g}"))
        return cls(prefix, tuple(bounds))

    def bucket(self, value: float) -> int:
        return bisect.bisect_right(self.bounds, value)

    def metric(self, value: float) -> str:
        return f"{self.prefix}{self.bucket(value)}"

    def counts(self, tallies: Iterable[tuple[str, int]]) -> dict[int, int]:
        """Bucket -> count from ``(metric, n)`` pairs of this histogram."""
        out: dict[int, int] = {}
        for metric, n in tallies:
            if metric.startswith(self.prefix):
                i = int(metric[len(self.prefix) :])
                out[i] = out.get(i, 0) + n
        return out

    def quantile(self, counts: Mapping[int, int], q: float) -> float | None:
        """The value under which a fraction ``q`` of the counts lie, interpolated
        linearly inside its bucket; None without counts."""
        total = sum(counts.values())
        if total <= 0:
            return None
        rank = q * total
        seen = 0
        for i in sorted(counts):
            n = counts[i]
            if n and seen + n >= rank:
                low = self.bounds[i - 1] if i > 0 else 0.0
                if i >= len(self.bounds):
                    return low  # the open-ended bucket: at least this
                return low + (self.bounds[i] - low) * max(0.0, rank - seen) / n
            seen += n
        return self.bounds[-1]
