"""What a delivery carries, read from the ledger: each delivery's summaries in message order, by
delivery and by selection (deliveries of one planning group share their selection)."""

from __future__ import annotations

from digest.db import session_scope
from digest.ledger.carried import carried, summaries_by_delivery, summaries_by_selection
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus, Selection, SelectionItem
from digest.wiring import Services
from tests.factories import add_subscriber, add_summaries, summary_record


def test_deliveries_carry_their_selection_in_message_order(services: Services) -> None:
    with session_scope(services.sessions) as s:
        add_summaries(s, *(summary_record(id=f"s{n}") for n in range(1, 5)))
        people = [add_subscriber(s, f"reader{n}@example.org", ["cardiology"]) for n in range(3)]
        issue = Issue(subject="x", status=IssueStatus.SENDING)
        s.add(issue)
        s.flush()
        shared, own = Selection(issue_id=issue.id, key="group"), Selection(issue_id=issue.id, key="one")
        s.add_all([shared, own])
        s.flush()
        # Positions out of insertion order: the reads order by position, not by row order.
        s.add_all(
            [
                SelectionItem(selection_id=shared.id, summary_id="s3", position=2),
                SelectionItem(selection_id=shared.id, summary_id="s1", position=1),
                SelectionItem(selection_id=own.id, summary_id="s4", position=1),
            ]
        )
        deliveries = [
            Delivery(
                issue_id=issue.id, subscriber_id=people[0].id, status=DeliveryStatus.PENDING, selection_id=shared.id
            ),
            Delivery(issue_id=issue.id, subscriber_id=people[1].id, status=DeliveryStatus.SENT, selection_id=shared.id),
            Delivery(issue_id=issue.id, subscriber_id=people[2].id, status=DeliveryStatus.PENDING, selection_id=own.id),
        ]
        s.add_all(deliveries)
        s.flush()
        ids = [d.id for d in deliveries]
        selections = (shared.id, own.id)

    with session_scope(services.sessions) as s:
        assert summaries_by_delivery(s, ids) == {ids[0]: ["s1", "s3"], ids[1]: ["s1", "s3"], ids[2]: ["s4"]}
        assert summaries_by_delivery(s, [ids[2], 999_999]) == {ids[2]: ["s4"]}  # unknown ids are absent
        assert summaries_by_selection(s, selections) == {selections[0]: ["s1", "s3"], selections[1]: ["s4"]}
        # The base query takes filters on Delivery: what the sent deliveries carried.
        sent = carried().where(Delivery.status == DeliveryStatus.SENT).order_by(SelectionItem.position)
        assert [tuple(row) for row in s.execute(sent)] == [(ids[1], "s1", 1), (ids[1], "s3", 2)]
