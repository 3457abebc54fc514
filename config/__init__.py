"""Vigie configuration: `vigie.yaml` and `VIGIE_*` read into Settings, targets, maintenance windows.

The bottom layer: it imports nothing else from Vigie, so every other folder may import it.
"""
