"""A local stand-in for ANEF (site, portal, login host) with faults switched per path at run time.

For tests, benchmarks and ``vigie demo`` only: it listens on loopback and never connects out.
"""

from __future__ import annotations

from simulator.counts import AUDIT_ENV, RequestCounts, RequestKey, WriteRecord, read_audit
from simulator.faults import (
    BROWSER_FAULTS,
    FAULT_NAMES,
    HTTP_FAULTS,
    Fault,
    FaultError,
    FaultRule,
    parse_fault,
)
from simulator.pages import (
    API_PATH,
    HOME_PATH,
    INFO_PATHS,
    LOGIN_PATH,
    PORTAL_PATH,
    REGISTRATION_PATH,
    WRITE_PATHS,
)
from simulator.process import SimulatorProcess
from simulator.server import Simulator, SimulatorError

__all__ = [
    "API_PATH",
    "AUDIT_ENV",
    "BROWSER_FAULTS",
    "FAULT_NAMES",
    "HOME_PATH",
    "HTTP_FAULTS",
    "INFO_PATHS",
    "LOGIN_PATH",
    "PORTAL_PATH",
    "REGISTRATION_PATH",
    "WRITE_PATHS",
    "Fault",
    "FaultError",
    "FaultRule",
    "RequestCounts",
    "RequestKey",
    "Simulator",
    "SimulatorError",
    "SimulatorProcess",
    "WriteRecord",
    "parse_fault",
    "read_audit",
]
