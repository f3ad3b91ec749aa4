"""Imports run one way: down the layers of the code, never back up, and no two parts import each other.

``LAYERS`` is the one statement of the rule. A *part* is a top-level package or module of ``digest``
(``digest/ingest/``, ``digest/wiring.py``; ``digest`` itself is the package's ``__init__``) or the
``workers`` package. A module may import from its own part, from any part of a lower layer, and from
another part of its own layer as long as no cycle forms between parts. Every import counts: at the top
of a module, inside a function (the lazy imports of the CLI) and under ``TYPE_CHECKING``, because each
is a dependency a reader has to follow. The files are read with ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS: tuple[tuple[str, ...], ...] = (
    # Foundation: settings, database plumbing, shared helpers, translations.
    ("digest", "config", "errors", "macs", "progress", "resources", "i18n", "db", "lru", "untrusted"),
    # What is stored: summaries, subscribers with the suppression list, editors, the send ledger
    # (issues, deliveries, selections and what a delivery carries).
    # API keys and the outgoing-webhook outbox sit beside them (the changes that emit events write
    # to it in their own transaction).
    ("ingest", "subscribers", "editors", "ledger", "integrations"),
    # What a reader gets: choosing the summaries, building the email.
    ("selection", "rendering"),
    # Telling readers of an earlier version (corrections, retractions) and urgent safety alerts.
    ("corrections",),
    # Sending it, and what comes back (provider events, clicks, one-click unsubscribes).
    ("delivery", "events"),
    # Each email provider in one module: its transport (delivery) beside its webhook parser
    # (events), so above both; wiring and the webhook route look providers up in its registry.
    ("providers",),
    # The editors' campaigns over all of the above: planning, test sends, figures, the archive.
    # Readers' data rights read and anonymise every table that can hold an address.
    ("issues", "rights"),
    # Putting it together: every model for the migrations, metrics, the task queue, the Services bag
    # (wiring) and the dispatch of planned sends to tasks.
    ("models", "migrations", "schema", "observability", "queue", "wiring", "dispatch"),
    # Entry points. The web app reaches dispatch through digest, never the worker module.
    ("web", "cli", "demo", "workers"),
)
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}


@dataclass(frozen=True)
class Import:
    source: str  # the importing part
    target: str  # the imported part
    where: str  # path:line

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _part(dotted: str) -> str | None:
    """The part a module belongs to, None outside digest and workers."""
    names = dotted.split(".")
    if names[0] == "workers":
        return "workers"
    if names[0] != "digest":
        return None
    return names[1] if len(names) > 1 else "digest"


def _imported_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:  # relative: resolved against the importing module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1])
        origin = f"{base}.{node.module}" if node.module else base
    else:
        origin = node.module or ""
    for alias in node.names:  # `from digest import dispatch` imports the module digest.dispatch
        submodule = f"{origin}.{alias.name}"
        yield submodule if _is_module(submodule) else origin


def project_imports() -> list[Import]:
    found = []
    for path in sorted([*ROOT.glob("digest/**/*.py"), *ROOT.glob("workers/**/*.py")]):
        module = _module_name(path)
        source = _part(module)
        assert source is not None
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for imported in _imported_modules(node, module, path.name == "__init__.py"):
                target = _part(imported)
                if target is not None and target != source:
                    found.append(Import(source, target, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def module_imports(path: str) -> set[str]:
    """The modules one file imports (dotted names, at any depth of the file)."""
    file = ROOT / path
    module = _module_name(file)
    tree = ast.parse(file.read_text(encoding="utf-8"))
    return {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in _imported_modules(node, module, file.name == "__init__.py")
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one part (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_part_has_its_layer() -> None:
    parts = {"digest", "workers"} | {
        path.stem if path.suffix == ".py" else path.name
        for path in (ROOT / "digest").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    assert parts - LAYER_OF.keys() == set(), "a new part of digest: place it in LAYERS"
    assert LAYER_OF.keys() - parts == set(), "LAYERS names a part that no longer exists"
    assert len(LAYER_OF) == sum(len(parts) for parts in LAYERS), "a part is in two layers"


def test_imports_never_run_back_up_the_layers() -> None:
    upward = [str(i) for i in project_imports() if LAYER_OF[i.target] > LAYER_OF[i.source]]
    assert upward == []


def test_no_cycle_between_parts() -> None:
    edges: dict[str, set[str]] = {}
    for i in project_imports():
        edges.setdefault(i.source, set()).add(i.target)
    assert cycles(edges) == []


def test_the_web_app_never_imports_the_worker_module_or_the_cli() -> None:
    """It hands work over through ``Services.queue`` (digest.queue) and calls ``digest.dispatch``."""
    reached = [str(i) for i in project_imports() if i.source == "web" and i.target in ("workers", "cli", "demo")]
    assert reached == []


def test_the_celery_app_does_not_import_its_tasks() -> None:
    """``workers/tasks.py`` registers its tasks on ``workers.app.celery_app``; the app finds them by
    name (``include``), so the two never import each other."""
    assert "workers.tasks" not in module_imports("workers/app.py")
    assert "workers.app" in module_imports("workers/tasks.py")


def test_the_checks_see_imports_that_run_back_up() -> None:
    """The rules catch what they are for: an upward import, a cycle, a relative import resolved."""
    imports = [Import("ledger", "delivery", "x:1"), Import("delivery", "ledger", "x:2")]
    assert [str(i) for i in imports if LAYER_OF[i.target] > LAYER_OF[i.source]] == ["x:1: ledger imports delivery"]
    assert cycles({"ledger": {"delivery"}, "delivery": {"ledger", "db"}, "db": set()}) == [["delivery", "ledger"]]
    relative = ast.parse("from ..ledger.models import Delivery\nfrom . import service").body
    resolved = [
        name
        for node in relative
        if isinstance(node, ast.ImportFrom)
        for name in _imported_modules(node, "digest.delivery.service", is_package=False)
    ]
    assert [_part(name) for name in resolved] == ["ledger", "delivery"]
