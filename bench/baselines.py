"""The two baselines measured in the same run as the pipeline.

(a) The machine's SMTP limit: Postfix's ``smtp-source`` (C) pushes the same number of messages of
    the same size over the same number of connections to the same sink. Our sender cannot beat it;
    the ratio says how much of the machine's SMTP capacity the Python send path uses.
(b) The naive path: for a sample of real deliveries, Jinja2 render + stock premailer + MIME for
    every message (what a sender without the per-variant cache does), extrapolated to all messages
    over ``processes`` CPU-bound processes. It leaves out the database and SMTP, so it flatters the
    naive path: the ratio to it is a lower bound. The sample is rendered ``repeats`` times and the
    fastest pass counts (as ``timeit`` does): the first pass also compiles the templates, and a
    pass of a second or two is easily slowed by whatever else the machine does at that moment
    (autovacuum after the send, say). Measured a second time with this project's
    stylesheet cache in the inlining, a less naive path, and reported beside it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass

from premailer import Premailer
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bench.sink import Sink
from digest.db import session_scope
from digest.delivery.service import issue_context
from digest.ingest.models import Summary
from digest.ledger.carried import summaries_by_delivery
from digest.ledger.models import Delivery, Issue
from digest.rendering.compose import Addressee, build_variant
from digest.rendering.headers import build_mime
from digest.rendering.inlining import PREMAILER_OPTIONS, inline_css
from digest.rendering.message import OutgoingMessage
from digest.subscribers.models import Subscriber
from digest.wiring import Services


@dataclass(frozen=True)
class SMTPSourceResult:
    messages: int
    seconds: float
    received: int

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds


@dataclass(frozen=True)
class NaiveResult:
    sample: int
    seconds: float  # the fastest pass
    passes: list[float]
    processes: int
    mean_message_bytes: int
    inliner: str

    @property
    def messages_per_second(self) -> float:
        return self.sample / self.seconds * self.processes


def smtp_source(sink: Sink, *, messages: int, size: int, sessions: int) -> SMTPSourceResult | None:
    """Run smtp-source against the sink; None when Postfix's tools are not there."""
    exe = shutil.which("smtp-source")
    if exe is None:
        return None
    before = sink.count()
    cmd = [exe, "-d", "-s", str(sessions), "-l", str(size), "-m", str(messages),
           "-f", "digest@bench.example.org", "-t", "reader@bench.example.org", f"127.0.0.1:{sink.port}"]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()}")
    time.sleep(0.2)  # let the sink print its last counter
    return SMTPSourceResult(messages=messages, seconds=seconds, received=sink.count() - before)


def naive_render(
    services: Services, issue_id: int, *, sample: int, processes: int, stylesheet_cache: bool = False, repeats: int = 3
) -> NaiveResult:
    """Render ``sample`` of the issue's deliveries one by one through Jinja2 + premailer + MIME.

    Stock premailer by default: what "render and inline per message" costs a sender that does
    just that. With ``stylesheet_cache``, the inlining goes through this project's ``inline_css``,
    which parses the (shared) stylesheet once per process: a less naive path, reported beside it.
    """
    inline = inline_css if stylesheet_cache else _stock_premailer
    with session_scope(services.sessions) as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        context = issue_context(issue, services.composer.base_url)
        rows = session.execute(
            select(Delivery.id, Subscriber).join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.issue_id == issue_id).order_by(Delivery.id).limit(sample)
        ).all()  # fmt: skip
        ids = summaries_by_delivery(session, [r[0] for r in rows])
        wanted = {s for summary_ids in ids.values() for s in summary_ids}
        loaded = {
            s.id: s
            for s in session.scalars(
                select(Summary).where(Summary.id.in_(wanted)).options(selectinload(Summary.specialties))
            )
        }
        carried = {delivery_id: [loaded[s] for s in summary_ids] for delivery_id, summary_ids in ids.items()}
        work = [
            (
                delivery_id,
                Addressee(sub.id, sub.email, sub.name, sub.edition, {s.slug: s.name for s in sub.specialties}),
            )
            for delivery_id, sub in rows
        ]
        composer, renderer = services.composer, services.renderer
        passes = []
        for _ in range(repeats):
            sizes = 0
            t0 = time.perf_counter()
            for delivery_id, who in work:
                variant = build_variant(who.edition, carried.get(delivery_id, []), who.specialties, context)
                rendered = renderer.render_uninlined(variant, composer.recipient(who).values())
                msg = OutgoingMessage(delivery_id, "<naive@bench>", composer.from_header, who.email, who.name,
                                      rendered.subject, rendered.text, inline(rendered.html))  # fmt: skip
                sizes += len(build_mime(msg, issue.planned_at or issue.created_at).as_bytes())
            passes.append(time.perf_counter() - t0)
    return NaiveResult(
        sample=len(work),
        seconds=min(passes),
        passes=passes,
        processes=processes,
        mean_message_bytes=sizes // max(1, len(work)),
        inliner="premailer with this project's stylesheet cache" if stylesheet_cache else "premailer",
    )


def _stock_premailer(raw_html: str) -> str:
    return str(Premailer(raw_html, **PREMAILER_OPTIONS).transform(pretty_print=False))
