"""Bar charts as inline SVG, drawn on the server: no JavaScript and nothing fetched from the network.

Each chart is an ``<svg role="img">`` with a text alternative; pages show the same numbers in a
table next to it, so the chart is never the only way to read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

COLOURS = ("#0b5a74", "#c2571a", "#5b3f99", "#2f7d32")  # distinguishable, AA against white


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 720,
    height: int = 260,
    empty: str = "nothing to show yet",
) -> Markup:
    """Grouped bars: one group per label, one bar per series, with a y axis and a legend."""
    if not labels:
        return Markup(f'<p class="hint">{escape(title)}: {escape(empty)}.</p>')
    left, right, top, bottom = 44, 12, 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1, *(v for s in series for v in s.values)])
    step = _nice_step(peak)
    ymax = step * -(-peak // step)
    group = plot_w / len(labels)
    bar = max(2.0, min(28.0, group * 0.8 / max(1, len(series))))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>'
    ]
    for tick in range(0, ymax + 1, step):
        y = top + plot_h - plot_h * tick / ymax
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c5ced8" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="currentColor">{tick}</text>'
        )
    every = max(1, len(labels) // 12)  # at most about a dozen axis labels
    for i, label in enumerate(labels):
        x0 = left + group * i + (group - bar * len(series)) / 2
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / ymax
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar - 1:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[j % len(COLOURS)]}"><title>{escape(label)}: {value} {escape(s.name)}</title></rect>'
            )
        if i % every == 0:
            cx = left + group * (i + 0.5)
            parts.append(
                f'<text x="{cx:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11" '
                f'fill="currentColor">{escape(label)}</text>'
            )
    for j, s in enumerate(series):
        x = left + j * 130
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{COLOURS[j % len(COLOURS)]}"/>')
        parts.append(f'<text x="{x + 17}" y="16" font-size="12" fill="currentColor">{escape(s.name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_step(peak: int) -> int:
    """A round tick spacing giving at most about five gridlines."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if peak / step <= 5:
            return step
    return 10 ** len(str(peak // 5))
