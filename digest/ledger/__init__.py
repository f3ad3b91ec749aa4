"""The ledger: issues, the one row per (issue, subscriber) that records each delivery, and what each carries.

Every stage reads or writes these tables (selection plans into them, delivery claims and records,
events move their status, the web archive reads them), so they sit below all of those stages and
import nothing of theirs.
"""
