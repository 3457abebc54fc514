"""The report: the facts a PDF states (data, facts, journey steps) and its French rendering.

It only reads outage records and ledger entries; it never writes evidence.
"""
