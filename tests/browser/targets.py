"""Layout checks the editor pages must pass at every width: no sideways page scroll, every control at
least 44 px tall (WCAG 2.5.5), and tables that read whole: a stacked table's headings keep their
words whole, and a caption spans its table. Links inside a sentence (a ``p`` of text) are exempt
from the size check, as WCAG exempts inline targets."""

from __future__ import annotations

from playwright.sync_api import Page

MIN_TARGET = 44

# A checkbox or radio is tapped through its label: the label is the target that must be 44 px.
_SMALL_TARGETS = """
min => [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')]
  .filter(el => el.getClientRects().length && !el.closest('p:not(.actions)'))
  .map(el => (el.type === 'checkbox' || el.type === 'radio') && el.labels && el.labels.length ? el.labels[0] : el)
  .map(el => [el, el.getBoundingClientRect()])
  .filter(([el, r]) => r.height + 0.5 < min)
  .map(([el, r]) => {
    const name = (el.innerText || el.value || el.name || '').trim().slice(0, 40);
    return `${el.tagName.toLowerCase()} "${name}" ${Math.round(r.width)}x${Math.round(r.height)}`;
  })
"""


def small_targets(page: Page) -> list[str]:
    """The controls on the page shorter than 44 px, described for an assertion message."""
    found: list[str] = page.evaluate(_SMALL_TARGETS, MIN_TARGET)
    return found


def assert_fits(page: Page, width: int, what: str) -> None:
    """No horizontal page scroll at ``width``, no control under 44 px, no table scrolling in its box."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{what} at {width}px scrolls sideways: {scroll}px wide"
    small = small_targets(page)
    assert not small, f"{what} at {width}px has targets under {MIN_TARGET}px: {small}"
    assert_tables_fit(page, width, what)
    assert_tables_read_whole(page, width, what)


# Each table and the box around it (a .scroll wrapper, or whatever holds the table): none is wider
# than what it shows, so at a phone's width nothing has to be scrolled sideways inside its box.
_WIDE_TABLES = """
() => [...document.querySelectorAll('table')]
  .filter(t => t.getClientRects().length)
  .flatMap(t => [t, t.parentElement])
  .filter(el => el.scrollWidth > el.clientWidth + 1)
  .map(el => `${el.tagName.toLowerCase()}#${el.id}.${el.className} ${el.scrollWidth}>${el.clientWidth}`)
"""


def assert_tables_fit(page: Page, width: int, what: str) -> None:
    """No table (nor its wrapper) scrolls sideways inside its own box at ``width``."""
    wide = page.evaluate(_WIDE_TABLES)
    assert not wide, f"{what} at {width}px has tables that scroll sideways in their box: {wide}"


# On a phone each cell of a stacked table shows its column's heading (data-label) in a column of its
# own: every word of a heading must fit that column whole ("Désabonnements" broke after its 13th
# letter at 7.5rem), and a caption must span the table, not shrink to a column of a few letters.
_BROKEN_READING = """
() => {
  const found = [];
  const probe = document.createElement('span');
  probe.style.cssText = 'position:absolute;visibility:hidden;white-space:nowrap';
  document.body.append(probe);
  for (const td of document.querySelectorAll('main table td[data-label]')) {
    const style = getComputedStyle(td);
    if (!td.getClientRects().length || style.display !== 'grid') continue;
    const column = parseFloat(style.gridTemplateColumns);
    const label = getComputedStyle(td, '::before');
    Object.assign(probe.style, {fontFamily: label.fontFamily, fontSize: label.fontSize, fontWeight: label.fontWeight});
    for (const word of td.dataset.label.split(/\\s+/)) {
      probe.textContent = word;
      const width = probe.getBoundingClientRect().width;
      if (width > column + 0.5) found.push(`heading word "${word}" ${Math.ceil(width)}px in a ${column}px column`);
    }
  }
  probe.remove();
  for (const caption of document.querySelectorAll('main table caption')) {
    if (!caption.getClientRects().length) continue;
    const [own, table] = [caption, caption.closest('table')].map(el => el.getBoundingClientRect().width);
    const text = caption.textContent.trim().slice(0, 30);
    if (own + 1 < table) found.push(`caption "${text}" ${Math.round(own)}px of ${Math.round(table)}px`);
  }
  return [...new Set(found)];
}
"""


def assert_tables_read_whole(page: Page, width: int, what: str) -> None:
    """Stacked headings keep their words whole and captions span their tables at ``width``."""
    broken = page.evaluate(_BROKEN_READING)
    assert not broken, f"{what} at {width}px has tables that do not read whole: {broken}"
