"""Delivery: the ledger, the transports that move the bytes, and the service that claims and sends."""
