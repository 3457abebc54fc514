"""Vigie evidence: the append-only Merkle ledger, signed checkpoints, artifacts, verification.

Evidence is only ever appended: nothing in this package updates, deletes or rewrites an entry.
"""
