"""Targets: what to probe, how often, and what counts as a success.

Validation only: a target describes a read-only check and can never describe a write.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from config.probe_kinds import probe_kinds

__all__ = [
    "ALLOWED_STEPS",
    "CONTROL_PREFIX",
    "REFUSED_STEPS",
    "Duration",
    "Expectation",
    "Step",
    "Target",
    "parse_duration",
    "validate_http_url",
]

# Ids of control sites (vantage health checks) are `control-1`, `control-2`...: reserved.
CONTROL_PREFIX = "control-"

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_HINT = "expected a duration such as 30s, 1m30s or 500ms"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds in a duration such as ``60s``, ``1m30s``, ``500ms``, or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(_DURATION_HINT)  # noqa: TRY004 - pydantic reports ValueError as input error
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        pos = 0
        seconds = 0.0
        for match in _DURATION_RE.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(_DURATION_HINT)
    else:
        raise ValueError(_DURATION_HINT)  # noqa: TRY004 - pydantic reports ValueError as input error
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def validate_http_url(url: str) -> str:
    """Return `url` if it is an absolute http(s) URL with a host; raise ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("URL has no host name")
    if any(ch.isspace() for ch in url):
        raise ValueError("URL contains white space")
    return url


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expectation(_Strict):
    """What a successful HTTP answer looks like."""

    status: tuple[int, ...] = (200,)
    contains: str | None = None
    not_contains: str | None = None

    @field_validator("status")
    @classmethod
    def _status_codes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for code in value:
            if not 100 <= code <= 599:
                raise ValueError(f"HTTP status {code} is not between 100 and 599")
        if not value:
            raise ValueError("list at least one expected HTTP status")
        return value


ALLOWED_STEPS = (
    "goto",
    "click",
    "wait_for",
    "expect_visible",
    "expect_text",
    "expect_url",
    "fail_if_text",
)
# Actions a browser could do that would write to the site or act as a user: never allowed.
REFUSED_STEPS = (
    "fill",
    "type",
    "press",
    "select",
    "select_option",
    "check",
    "uncheck",
    "submit",
    "upload",
    "set_input_files",
    "evaluate",
    "post",
    "login",
)


class Step(_Strict):
    """One read-only step of a browser journey: exactly one action and its argument."""

    goto: str | None = None
    click: str | None = None
    wait_for: str | None = None
    expect_visible: str | None = None
    expect_text: str | None = None
    expect_url: str | None = None
    fail_if_text: str | None = None
    name: str | None = None
    timeout: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_read_only_action(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(  # noqa: TRY004 - pydantic turns ValueError into a config error
                "a step is a mapping such as {click: 'text=Se connecter'}"
            )
        for key in data:
            if key in REFUSED_STEPS:
                raise ValueError(
                    f"step '{key}' is refused: probes are read-only and never type, fill, "
                    f"select, press keys or submit (allowed: {', '.join(ALLOWED_STEPS)})"
                )
        actions = [k for k in data if k in ALLOWED_STEPS]
        if len(actions) != 1:
            raise ValueError(f"a step needs exactly one action among: {', '.join(ALLOWED_STEPS)}")
        return data

    @property
    def action(self) -> str:
        """The action this step performs (e.g. ``click``)."""
        for key in ALLOWED_STEPS:
            if getattr(self, key) is not None:
                return key
        raise AssertionError("validated step without action")  # pragma: no cover

    @property
    def argument(self) -> str:
        """The selector, text or URL the action works on."""
        value = getattr(self, self.action)
        assert isinstance(value, str)
        return value

    @property
    def label(self) -> str:
        """A short stable name for metrics and reports."""
        return self.name or f"{self.action}:{self.argument}"[:80]


class Target(_Strict):
    """A service to watch. `id` keys the evidence forever: never rename it."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62})$")]
    name: str = ""
    kind: str  # a registered probe kind (config/probe_kinds.py)
    url: str
    method: Literal["GET", "HEAD"] = "GET"
    expect: Expectation = Expectation()
    interval: Duration | None = None
    timeout: Duration | None = None
    slow_after: Duration | None = None
    max_redirects: Annotated[int, Field(ge=0, le=30)] = 10
    steps: tuple[Step, ...] = ()
    screenshot_every: Duration = 3600.0
    core: bool = False  # the journey that matters most (e.g. account creation): its own alert

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        known = probe_kinds()
        if value not in known:
            raise ValueError(f"unknown probe kind (known: {', '.join(known)})")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return validate_http_url(value)

    @model_validator(mode="after")
    def _kind_rules(self) -> Target:
        if self.kind == "http" and self.steps:
            raise ValueError("steps are only for targets of kind 'browser'")
        return self

    @property
    def display_name(self) -> str:
        """The name users read (falls back to the id)."""
        return self.name or self.id
