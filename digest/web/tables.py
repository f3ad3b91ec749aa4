"""Give each body cell of an editor page's tables the text of its column heading (``data-label``),
so that at a phone's width the tables stack into one card per row, each value under its heading
(the CSS in templates/web/editor/_layout.html), instead of scrolling sideways inside their box."""

from __future__ import annotations

import re

_TABLE = re.compile(r"<table\b.*?</table>", re.S | re.I)
_HEAD = re.compile(r"<thead\b.*?</thead>", re.S | re.I)
_HEADING = re.compile(r"<th\b([^>]*)>(.*?)</th>", re.S | re.I)
_ROW = re.compile(r"(<tr\b[^>]*>)(.*?)(</tr>)", re.S | re.I)
_CELL = re.compile(r"<(td|th)\b([^>]*)>", re.I)
_TAG = re.compile(r"<[^>]+>")
_SPAN = re.compile(r"""colspan\s*=\s*["']?(\d+)""", re.I)


def _span(attrs: str) -> int:
    found = _SPAN.search(attrs)
    return max(1, int(found.group(1))) if found else 1


def _headings(head: str) -> list[str]:
    labels: list[str] = []
    for attrs, inner in _HEADING.findall(head):
        text = " ".join(_TAG.sub("", inner).split()).replace('"', "&quot;")
        labels.extend([text] * _span(attrs))
    return labels


def _label_row(row: re.Match[str], labels: list[str]) -> str:
    column = 0

    def label(cell: re.Match[str]) -> str:
        nonlocal column
        tag, attrs = cell.group(1), cell.group(2)
        at = column
        column += _span(attrs)
        if tag.lower() != "td" or "data-label" in attrs or at >= len(labels) or not labels[at]:
            return cell.group(0)
        return f'<{tag} data-label="{labels[at]}"{attrs}>'

    return row.group(1) + _CELL.sub(label, row.group(2)) + row.group(3)


def _label_table(table: re.Match[str]) -> str:
    html = table.group(0)
    head = _HEAD.search(html)
    if head is None:
        return html
    labels = _headings(head.group(0))
    body = _ROW.sub(lambda row: _label_row(row, labels), html[head.end() :])
    return html[: head.end()] + body


def label_cells(html: str) -> str:
    """``html`` with ``data-label`` on every ``td`` under a ``thead`` that has none (by column)."""
    return _TABLE.sub(_label_table, html)
