"""Vigie's Grafana dashboards, generated from plain Python dicts (`dashboards.build`).

The committed JSON files beside this module are outputs: edit `build.py`, never the JSON.
"""

from __future__ import annotations

from dashboards.build import (
    DASHBOARD_FILES,
    FOLDER_TITLE,
    FOLDER_UID,
    all_dashboards,
    check_directory,
    panel_queries,
    render,
    write_directory,
)

__all__ = [
    "DASHBOARD_FILES",
    "FOLDER_TITLE",
    "FOLDER_UID",
    "all_dashboards",
    "check_directory",
    "panel_queries",
    "render",
    "write_directory",
]
