"""Outages: the per-target state machine over observations, outage records, availability.

It reads and appends ledger entries; it never imports the report, the bundle or the service.
"""
