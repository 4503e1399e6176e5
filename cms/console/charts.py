"""The overview's charts: plain SVG drawn on the server by leather.

leather writes presentation attributes only (no ``<style>``, no script), so the
charts sit inline in the page under the console's strict CSP and need no asset.
Each chart spans the overview's minutes; the x axis reads as clock times (UTC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import leather
from markupsafe import Markup, escape

WIDTH, HEIGHT = 560, 240
COLORS = {
    "events": "#377eb8",
    "succeeded": "#4daf4a",
    "retrying": "#ff7f00",
    "lease-expired": "#984ea3",
    "failed": "#e41a1c",
    "gone": "#a65628",
    "p50": "#377eb8",
    "p99": "#e41a1c",
}


def _theme() -> None:
    """The console's look (leather keeps its style in module variables)."""
    for part in ("title", "legend", "axis_title", "tick"):
        setattr(leather.theme, f"{part}_font_family", "system-ui, sans-serif")
    leather.theme.title_font_size = 14
    leather.theme.tick_font_size = leather.theme.legend_font_size = 11
    leather.theme.tick_font_char_width = leather.theme.legend_font_char_width = 6
    leather.theme.background_color = "#ffffff"
    leather.theme.margin = 0.03


def _chart(title: str, minutes: Sequence[datetime], top: float, y_format: Any = None) -> leather.Chart:
    _theme()
    chart = leather.Chart(title)
    n = len(minutes)
    chart.add_x_scale(0, max(n - 1, 1))
    chart.add_y_scale(0, top)
    step = max(1, n // 6)
    ticks = list(range(n - 1, -1, -step))[::-1]
    chart.add_x_axis(ticks=ticks, tick_formatter=lambda v, _i, _c: minutes[int(v)].strftime("%H:%M"))
    chart.add_y_axis(tick_formatter=y_format)
    return chart


def _nice_top(values: Sequence[float]) -> float:
    """A round upper bound for the y axis (at least 1)."""
    top = max([v for v in values if v is not None] or [0.0])
    if top <= 1:
        return 1.0
    magnitude = 10 ** (len(str(int(top))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if top <= m * magnitude:
            return float(m * magnitude)
    return float(top)


def _svg(chart: leather.Chart, title: str) -> Markup:
    svg: str = chart.to_svg(width=WIDTH, height=HEIGHT)
    label = str(escape(title))  # screen readers read the title; leather escaped the rest
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{label}" class="chart" ', 1))


def counts(title: str, minutes: Sequence[datetime], series: Mapping[str, Sequence[int]]) -> Markup:
    """Counts per minute, one line per series (only series with a count are drawn)."""
    drawn = {name: values for name, values in series.items() if any(values)} or {
        next(iter(series)): next(iter(series.values()))
    }
    chart = _chart(title, minutes, _nice_top([v for values in drawn.values() for v in values]))
    for name, values in drawn.items():
        chart.add_line(list(enumerate(values)), name=name, stroke_color=COLORS.get(name))
    return _svg(chart, title)


def latency(title: str, minutes: Sequence[datetime], series: Mapping[str, Sequence[float | None]]) -> Markup:
    """Seconds per minute, a dot per minute and quantile (a minute without deliveries has none)."""
    drawn = {name: _present(values) for name, values in series.items()}
    drawn = {name: points for name, points in drawn.items() if points}
    top = _nice_top([y for points in drawn.values() for _x, y in points])
    chart = _chart(title, minutes, top, y_format=lambda v, _i, _c: f"{v:g} s")
    if not drawn:  # leather draws no series without a value: a flat line says "nothing"
        chart.add_line([(0, 0), (max(len(minutes) - 1, 1), 0)], name="no deliveries", stroke_color="#bbb")
    for name, points in drawn.items():
        chart.add_dots(points, name=name, fill_color=COLORS.get(name), radius=3)
    return _svg(chart, title)


def _present(values: Sequence[float | None]) -> list[tuple[int, float]]:
    return [(i, v) for i, v in enumerate(values) if v is not None]
