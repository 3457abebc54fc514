"""Evidence bundles: the export (zip, CSV table, proofs, manifest), its report inputs, the
verifier adapter, corroboration, court pièces and attestations. Bundles are only ever written anew.
"""
