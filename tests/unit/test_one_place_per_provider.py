"""Each email provider's code is in one place: its module (or package) in ``digest/providers/``,
transport, webhook parser and registration side by side. No other module of ``digest`` or
``workers`` names a provider in its code but the registry (``digest/providers/__init__.py``), which
imports each; the webhook route and ``wiring.make_transport`` reach providers through it.

The check reads code, not prose: identifiers (names, attributes, definitions, arguments, imports)
and string literals, split into words (``SESTransport``: ses, transport; ``"/webhooks/ses"``:
webhooks, ses; ``"sessions"`` is not ses). Comments and docstrings may name a provider.
``digest/config.py`` may name them where settings are declared: ``TRANSPORTS`` and the ``Settings``
fields (``DIGEST_POSTMARK_WEBHOOK_USER`` is read there, with every other variable) and properties.
The files are read with ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from digest.config import TRANSPORTS

ROOT = Path(__file__).resolve().parents[2]

# The words that give a provider's code away: its name, and those of its API, SDK or client.
WORDS: dict[str, frozenset[str]] = {
    "postmark": frozenset({"postmark"}),
    "sendgrid": frozenset({"sendgrid", "twilio"}),
    "ses": frozenset({"ses", "sesv", "sns", "boto", "botocore"}),
    # "smtp" itself also names the protocol that the bounce intake and the test sink speak.
    "smtp": frozenset({"smtplib"}),
}
NOT_CHECKED = {"outbox": "'outbox' also names the outgoing-webhook outbox (digest/integrations)"}

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def words(text: str) -> set[str]:
    """``SESTransport`` -> {ses, transport}; ``ses_topic_arns`` -> {ses, topic, arns}."""
    return {w.lower() for w in _WORD.findall(text)}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _settings_declarations(tree: ast.Module) -> set[int]:
    """config.py's nodes that may name providers: ``TRANSPORTS``, and the ``Settings`` fields and properties."""
    allowed: list[ast.AST] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TRANSPORTS" for t in node.targets):
            allowed.append(node)
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            allowed += [
                item
                for item in node.body
                if isinstance(item, ast.AnnAssign)
                or (
                    isinstance(item, ast.FunctionDef)
                    and any(isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list)
                )
            ]
    return {id(inner) for node in allowed for inner in ast.walk(node)}


def code_words(source: str, *, settings_module: bool = False) -> Iterator[tuple[int, str]]:
    """(line, word) for every word of the code: identifiers and string literals, not docstrings."""
    tree = ast.parse(source)
    skipped = _docstrings(tree) | (_settings_declarations(tree) if settings_module else set())
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        texts: list[str] = []
        if isinstance(node, ast.Name):
            texts = [node.id]
        elif isinstance(node, ast.Attribute):
            texts = [node.attr]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            texts = [node.name]
        elif isinstance(node, ast.arg | ast.keyword):
            texts = [node.arg or ""]  # a keyword's arg is None for **kwargs
        elif isinstance(node, ast.alias):
            texts = [node.name, node.asname or ""]
        elif isinstance(node, ast.ImportFrom):
            texts = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts = [node.value]
        for text in texts:
            yield from ((getattr(node, "lineno", 0), word) for word in words(text))


def _home(provider: str) -> tuple[Path, Path]:
    base = ROOT / "digest" / "providers" / provider
    return base.with_suffix(".py"), base


REGISTRY = ROOT / "digest" / "providers" / "__init__.py"


def _is_home(path: Path, provider: str) -> bool:
    module, package = _home(provider)
    return path in (module, REGISTRY) or package in path.parents


def _python_files() -> list[Path]:
    return sorted([*ROOT.glob("digest/**/*.py"), *ROOT.glob("workers/**/*.py")])


def test_every_provider_is_checked_or_says_why_not() -> None:
    assert set(WORDS) | set(NOT_CHECKED) == set(TRANSPORTS)
    assert set(WORDS) & set(NOT_CHECKED) == set()


def test_no_module_outside_a_providers_own_names_it() -> None:
    strays = []
    for path in _python_files():
        source = path.read_text(encoding="utf-8")
        settings_module = path == ROOT / "digest" / "config.py"
        for line, word in code_words(source, settings_module=settings_module):
            for provider, marks in WORDS.items():
                if word in marks and not _is_home(path, provider):
                    strays.append(f"{path.relative_to(ROOT)}:{line}: {word!r} belongs to digest/providers/{provider}")
    assert strays == []


def test_each_providers_words_are_the_ones_its_own_code_uses() -> None:
    """Keeps ``WORDS`` honest: a word list that matched nothing would check nothing."""
    for provider, marks in WORDS.items():
        module, package = _home(provider)
        files = [module] if module.is_file() else sorted(package.glob("**/*.py"))
        used = {word for file in files for _, word in code_words(file.read_text(encoding="utf-8"))}
        assert marks <= used, f"{provider}: {sorted(marks - used)} do not occur in its code"


def test_the_check_reads_code_and_skips_prose() -> None:
    source = '''"""Sends through Postmark."""
import boto3  # SES
from digest.providers.ses import SESTransport
def f(sessions: int) -> str:
    """Uses SendGrid."""
    return f"/webhooks/{'sendgrid'}" + SESTransport.name
'''
    found = {word for _, word in code_words(source)}
    assert {"boto", "ses", "sendgrid"} <= found
    assert {"postmark", "uses"}.isdisjoint(found)
    assert "sessions" in found and "ses" not in words("sessions uses")
    assert words("X-Twilio-Email-Event-Webhook-Signature") >= {"twilio"}
