"""Latency histograms: buckets as SQL's width_bucket numbers them, and quantiles
estimated within one bucket's width of the exact value."""

from __future__ import annotations

import math
import random

from cms.platform.tallies import Histogram
from cms.webhooks.stats import LATENCY


def test_buckets_follow_width_bucket():
    h = Histogram("x:", (1.0, 2.0, 4.0))
    assert [h.bucket(v) for v in (-1, 0, 0.99, 1.0, 1.5, 2.0, 3.9, 4.0, 100)] == [0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert h.metric(1.5) == "x:1"
    assert h.counts([("x:1", 2), ("x:3", 1), ("y:1", 9), ("x:1", 1)]) == {1: 3, 3: 1}


def test_quantiles_are_within_a_bucket_of_the_exact_value():
    rng = random.Random(11)
    for _ in range(20):
        values = sorted(rng.lognormvariate(0, 1.5) for _ in range(rng.randint(1, 2000)))
        counts: dict[int, int] = {}
        for v in values:
            counts[LATENCY.bucket(v)] = counts.get(LATENCY.bucket(v), 0) + 1
        for q in (0.5, 0.9, 0.99):
            exact = values[math.ceil(q * len(values)) - 1]
            got = LATENCY.quantile(counts, q)
            assert exact / 1.25 <= got <= max(exact * 1.25, LATENCY.bounds[0]), (q, got, exact)


def test_no_counts_no_quantile_and_the_open_bucket_says_at_least():
    assert LATENCY.quantile({}, 0.5) is None
    top = LATENCY.bucket(10**9)
    assert top == len(LATENCY.bounds) and LATENCY.quantile({top: 3}, 0.99) == LATENCY.bounds[-1] >= 86400
