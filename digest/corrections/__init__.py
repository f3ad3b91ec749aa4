"""Corrections, retractions and urgent safety alerts to the readers who got the earlier word."""
