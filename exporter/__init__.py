"""Vigie's service: configuration, scheduler, metrics, HTTP endpoints and the `vigie` CLI.

The composition root lives in `exporter.cli`; no module here holds global state.
"""
