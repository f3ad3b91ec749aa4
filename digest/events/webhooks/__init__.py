"""Provider webhooks: each module verifies one provider's requests and turns its payload into
``DeliveryEvent``s; ``digest.events.service`` records them in one place."""
