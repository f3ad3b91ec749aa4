"""Accessibility audits with axe-core (the copy bundled in axe-playwright-python; no network).

Point ``audit`` at anything a browser page can show: a rendered email (``html=``) or a page of the
running web app (``url=``). It returns the violations at or above the given impact, and
``describe`` turns them into a failure message that names each rule and element.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

BLOCKING = ("serious", "critical")
# WCAG 2.0/2.1 A and AA plus axe's best practices (heading order, landmarks, ...).
RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]

_axe = Axe()


def load(page: Page, *, url: str | None = None, html: str | None = None) -> None:
    """Show a URL or an HTML document in ``page`` (exactly one of the two)."""
    if (url is None) == (html is None):
        raise ValueError("load() needs exactly one of url= or html=")
    if url is not None:
        response = page.goto(url, wait_until="load")
        if response is None or not response.ok:
            raise AssertionError(f"GET {url} answered {response.status if response else 'nothing'}")
    else:
        page.set_content(html or "", wait_until="load")


def audit(
    page: Page, *, url: str | None = None, html: str | None = None, impacts: tuple[str, ...] = BLOCKING
) -> list[dict[str, Any]]:
    """Load (if given) and run axe-core on ``page``; the violations whose impact is in ``impacts``."""
    if url is not None or html is not None:
        load(page, url=url, html=html)
    results = _axe.run(page, options={"runOnly": {"type": "tag", "values": RULE_TAGS}, "resultTypes": ["violations"]})
    return [v for v in results.response["violations"] if v.get("impact") in impacts]


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and element, for assertion messages."""
    lines = []
    for v in violations:
        for node in v["nodes"]:
            lines.append(
                f"{v['impact']} {v['id']} ({v['help']}) at {', '.join(map(str, node['target']))}: "
                f"{node.get('failureSummary', '').strip()}"
            )
    return "\n".join(lines)
