"""The ledger: append-only entries in a Merkle tree, its backends, checkpoints, signing, artifacts.

Nothing here updates, deletes or rewrites an entry; it imports only `config` and `probes`.
"""
