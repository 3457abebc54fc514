"""The `vigie` subcommands (verify, keygen, export, corroborate, outages, attestation) and their
plumbing; the top layer: nothing else in Vigie imports from here.
"""
