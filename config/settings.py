"""Configuration: `vigie.yaml` plus ``VIGIE_*`` environment overrides, validated up front.

Bad input fails fast with one line per problem naming the file, the key path and the value;
it never starts a half-configured service.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from config.loader import load_yaml
from config.maintenance import check_windows
from config.targets import CONTROL_PREFIX, Duration, Target, validate_http_url
from config.vkeys import parse_cosignature_vkey, parse_note_vkey

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ConfigError",
    "Settings",
    "builtin_config_text",
    "load_settings",
]

DEFAULT_CONFIG_PATH = Path("vigie.yaml")
_ENV_PREFIX = "VIGIE_"
# VIGIE_* variables that are not settings: read by other parts of Vigie or its deployment files.
_NOT_SETTINGS = frozenset(
    {
        "VIGIE_CONFIG",
        "VIGIE_GRAFANA_TOKEN",
        "VIGIE_GRAFANA_URL",
        "VIGIE_SIMULATOR_AUDIT",
        "VIGIE_SOAK",
        "VIGIE_SECRETS_DIR",
        "VIGIE_SMTP_PASSWORD",
        "VIGIE_SLACK_WEBHOOK_URL",
        "VIGIE_MATRIX_TOKEN",
        "VIGIE_CENTRAL_PASSWORD",
        "VIGIE_IMAGE",
        "VIGIE_BIND",
        "VIGIE_PORT",
        "VIGIE_OPERATOR",
        "VIGIE_VANTAGE_2",
    }
)
DEFAULT_USER_AGENT = "Vigie/0.1 (+https://github.com/vigie-observatoire/vigie; contact@example.org)"


class ConfigError(Exception):
    """The configuration cannot be used; `lines` says why, one problem per line."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = tuple(lines)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Vantage(_Section):
    """Where the probes run; recorded in every observation."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")] = "local"
    operator: str = ""
    # The checkpoint origin of a NEW ledger (C2SP tlog-checkpoint: a schema-less URL naming the
    # log, e.g. "vigie.asso.org/paris-1"). Default: public_url's host and path + the name, or
    # the bare name without public_url. A ledger that has checkpoints keeps its first origin.
    origin: Annotated[str | None, Field(min_length=1, max_length=200)] = None

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if value is not None and (
            "://" in value or value.startswith("/") or any(c.isspace() or c == "+" for c in value)
        ):
            raise ValueError(
                f"a schema-less URL such as 'vigie.asso.org/paris-1' (no 'https://', no "
                f"spaces or '+'), not {value!r}"
            )
        return value


class Defaults(_Section):
    """Values a target inherits when it does not set its own."""

    interval: Duration = 60.0
    timeout: Duration = 30.0


class OutageRules(_Section):
    """How failures become a confirmed outage and how it ends."""

    confirm_after: Annotated[int, Field(ge=1, le=100)] = 3
    recover_after: Annotated[int, Field(ge=1, le=100)] = 2
    recheck: Duration = 10.0  # never slower than a target's own interval (capped to it)
    # A failed or slow check made while Vigie's own event loop ran later than this is not held
    # against the target: recorded as the vantage's problem, and re-checked.
    max_loop_lag: Duration = 0.5
    # Outages of `core: true` targets count as confirmed in exports only once a person has
    # reviewed them (`vigie review ... --verdict confirmed`); until then: "en attente".
    review_core: bool = False


class MaintenanceWindow(_Section):
    """An announced maintenance window: recurring (`every`) or dated (`start`/`end`)."""

    every: (
        Literal["day", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        | None
    ) = None
    from_: Annotated[str | None, Field(alias="from", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = None
    to: Annotated[str | None, Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")] = None
    start: str | None = None
    end: str | None = None
    tz: str = "Europe/Paris"
    targets: tuple[str, ...] = ()
    label: str = "Maintenance annoncée"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LedgerSettings(_Section):
    """Where evidence is kept."""

    url: str = "sqlite:///var/lib/vigie/ledger.db"
    artifacts: Path = Path("/var/lib/vigie/artifacts")
    checkpoint_interval: Duration = 60.0
    password: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("ledger URL must start with sqlite:/// or postgresql://")
        return value


class SigningSettings(_Section):
    """The vantage's signing key and the optional RFC 3161 timestamp authority."""

    key: Path = Path("/var/lib/vigie/vantage.key")
    tsa_url: str | None = None
    tsa_ca: Path | None = None  # the TSA's root certificate (PEM), to verify its tokens
    tsa_timeout: Duration = 10.0

    @field_validator("tsa_url")
    @classmethod
    def _tsa_url(cls, value: str | None) -> str | None:
        return None if value is None else validate_http_url(value)


class EvidenceAuth(_Section):
    """HTTP basic authentication required to download evidence bundles from the status page."""

    user: Annotated[str, Field(min_length=1)]
    password: SecretStr


class OpenDataSettings(_Section):
    """The licence published with the open data (`/datapackage.json`, `/outages.atom`)."""

    licence_name: Annotated[str, Field(min_length=1)] = "etalab-2.0"  # SPDX identifier
    licence_title: Annotated[str, Field(min_length=1)] = "Licence Ouverte / Open Licence 2.0"
    licence_url: str = "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"

    @field_validator("licence_url")
    @classmethod
    def _licence_url(cls, value: str) -> str:
        return validate_http_url(value)


class BrowserSettings(_Section):
    """The headless browser used by `browser` targets."""

    executable: Path | None = None
    # One journey at a time by default: each concurrent one costs a renderer process (~20-50 MB)
    # and the shipped journeys (a few seconds every 5 minutes) never need to overlap.
    max_concurrency: Annotated[int, Field(ge=1, le=16)] = 1
    # Stop the browser (and Playwright's driver, ~300 MB together) after this long without a
    # check; the next check starts it again (~0.5 s, not counted in its timings). null: keep it.
    idle_close: Duration | None = 30.0
    # Start a fresh browser after this many journeys (once those in flight end): a Chromium
    # that runs for days keeps growing (+106 MiB in 10 min under the hostile pages of
    # tests/reliability). Only matters when idle_close never comes. null: never renew.
    restart_after: Annotated[int, Field(ge=1)] | None = 200


class FollowedLog(_Section):
    """A log this vantage witnesses: its checkpoint origin and its note key (vkey)."""

    origin: Annotated[str, Field(min_length=1)]
    key: Annotated[str, Field(min_length=1)]

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        try:
            parse_note_vkey(value)
        except ValueError as exc:
            raise ValueError(f"not a log key (vkey): {exc}") from None
        return value


class AskedWitness(_Section):
    """A witness this vantage asks to cosign its checkpoints (C2SP tlog-witness)."""

    name: Annotated[str, Field(min_length=1)]
    key: Annotated[str, Field(min_length=1)]  # its cosignature vkey (type 0x04)
    url: str  # its submission prefix: <url>/add-checkpoint

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        try:
            parse_cosignature_vkey(value)
        except ValueError as exc:
            raise ValueError(f"not a witness key (vkey): {exc}") from None
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return validate_http_url(value)


class WitnessingSettings(_Section):
    """Witnessing (issue 18): as a witness for other vantages' logs, and as a log that asks
    witnesses. See docs/witnesses.md."""

    listen: str | None = None  # where POST /add-checkpoint is served; null: not a witness
    key: Path = Path("/var/lib/vigie/witness.key")  # created on first start
    name: str | None = None  # the cosigner name; default: "<vantage name>/temoin"
    state: Path = Path("/var/lib/vigie/witness.json")
    follow: tuple[FollowedLog, ...] = ()
    ask: tuple[AskedWitness, ...] = ()
    timeout: Duration = 5.0


class Settings(BaseSettings):
    """The whole configuration of one Vigie vantage."""

    model_config = SettingsConfigDict(
        env_prefix="VIGIE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    vantage: Vantage = Vantage()
    user_agent: Annotated[str, Field(min_length=8)] = DEFAULT_USER_AGENT
    defaults: Defaults = Defaults()
    targets: tuple[Target, ...] = ()
    controls: tuple[Annotated[str, AfterValidator(validate_http_url)], ...] = ()
    outages: OutageRules = OutageRules()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    ledger: LedgerSettings = LedgerSettings()
    signing: SigningSettings = SigningSettings()
    browser: BrowserSettings = BrowserSettings()
    listen: Annotated[str, Field(pattern=r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$")] = (
        "127.0.0.1:9188"
    )
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 64
    evidence_auth: EvidenceAuth | None = None
    public_url: str | None = None
    # Host names the HTTP endpoint answers to besides `listen`'s and `public_url`'s (a request
    # for any other gets 421: DNS-rebinding defence). "*" answers any (behind a proxy).
    allowed_hosts: tuple[Annotated[str, Field(pattern=r"^(\*|[A-Za-z0-9.:\[\]-]+)$")], ...] = ()
    open_data: OpenDataSettings = OpenDataSettings()
    witnessing: WitnessingSettings = WitnessingSettings()
    min_interval: Duration = 1.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment variables override the YAML file (passed as init values)."""
        return (env_settings, init_settings)

    @field_validator("listen")
    @classmethod
    def _listen_port(cls, value: str) -> str:
        port = int(value.rsplit(":", 1)[1])
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} is out of range: expected 1 to 65535")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else validate_http_url(value)

    @property
    def listen_host(self) -> str:
        """Host part of `listen`, without IPv6 brackets."""
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def listen_port(self) -> int:
        """Port part of `listen`."""
        return int(self.listen.rsplit(":", 1)[1])

    def interval_of(self, target: Target) -> float:
        """The target's interval, never below the politeness floor `min_interval`."""
        return max(target.interval or self.defaults.interval, self.min_interval)

    def timeout_of(self, target: Target) -> float:
        """The target's overall timeout."""
        return target.timeout or self.defaults.timeout


def builtin_config_text() -> str:
    """The built-in ANEF configuration shipped with Vigie."""
    return resources.files("config").joinpath("vigie.default.yaml").read_text("utf-8")


def load_settings(path: Path | None) -> Settings:
    """Load and validate the configuration.

    `path=None` means ``./vigie.yaml`` when it exists, else the built-in defaults. Raises
    `ConfigError` with one line per problem.
    """
    for warning in warn_unknown_env():
        print(f"vigie: warning: {warning}", file=sys.stderr)
    if path is None:
        if DEFAULT_CONFIG_PATH.exists():
            path = DEFAULT_CONFIG_PATH
        else:
            return _validate(yaml.safe_load(builtin_config_text()), "<built-in vigie.yaml>")
    label = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{label}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{label}: is a directory, not a configuration file"]) from None
    except PermissionError:
        raise ConfigError([f"{label}: permission denied"]) from None
    except OSError as exc:
        raise ConfigError([f"{label}: cannot be read ({exc.strerror})"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{label}: not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})"]
        ) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{label}: {where}invalid YAML: {problem}"]) from None
    return _validate(data, label)


def _validate(data: Any, label: str) -> Settings:
    if data is None:
        raise ConfigError([f"{label}: the file is empty; it needs at least a 'targets' list"])
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{label}: the top level must be a mapping of keys (got {type(data).__name__})"]
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError([f"{label}: {bad_keys[0]!r}: keys must be text"])
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError([_format_error(label, err, data) for err in exc.errors()]) from None
    except SettingsError as exc:  # a VIGIE_* variable holding a list or mapping is not JSON
        raise ConfigError([_env_parse_error(str(exc))]) from None
    _check_unique_ids(settings, label)
    _check_maintenance(settings, label)
    return settings


def _check_maintenance(settings: Settings, label: str) -> None:
    problems = [f"{label}: {line}" for line in check_windows(settings.maintenance)]
    ids = {t.id for t in settings.targets}
    for index, window in enumerate(settings.maintenance):
        problems += [
            f"{label}: maintenance[{index}].targets: no target with id {tid!r}"
            for tid in window.targets
            if tid not in ids
        ]
    if problems:
        raise ConfigError(problems)


def _check_unique_ids(settings: Settings, label: str) -> None:
    seen: dict[str, int] = {}
    for index, target in enumerate(settings.targets):
        if target.id.startswith(CONTROL_PREFIX):
            message = f"ids starting with {CONTROL_PREFIX!r} are reserved for the control sites"
            raise ConfigError([f"{label}: targets[{index}].id: {message} (got {target.id!r})"])
        if target.id in seen:
            first = seen[target.id]
            message = f"duplicate id {target.id!r} (already used by targets[{first}])"
            raise ConfigError([f"{label}: targets[{index}].id: {message}"])
        seen[target.id] = index


def _format_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"function-after", "function-before"} or "[" in part:
            continue
        else:
            path += f".{part}" if path else part
    return path or "(top level)"


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "tuple_type": "should be a list",
    "list_type": "should be a list",
    "model_type": "should be a mapping of keys",
    "dict_type": "should be a mapping of keys",
}

_PATTERN_HINTS = {
    "id": "use only lowercase letters, digits and '-' (at most 63, starting with a letter "
    "or digit); the id keys the evidence, so choose it once",
    "listen": "expected HOST:PORT, e.g. 127.0.0.1:9188",
    "from": "expected a time of day HH:MM, e.g. 22:00",
    "from_": "expected a time of day HH:MM, e.g. 22:00",
    "to": "expected a time of day HH:MM, e.g. 06:00 (24:00 for midnight)",
    "name": "use only letters, digits, '.', '_' and '-' (at most 63)",
}


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The pydantic model that holds the key at `loc` (for 'did you mean' hints)."""
    model: Any = Settings
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _unwrap(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    for arg in (*getattr(annotation, "__args__", ()), annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = getattr(arg, "__args__", None)
        if inner and arg is not annotation:
            found = _unwrap(arg)
            if found is not None:
                return found
    return None


def _did_you_mean(loc: Sequence[int | str]) -> str:
    model = _model_at(loc)
    if model is None or not isinstance(loc[-1], str):
        return ""
    known = [f.alias or name for name, f in model.model_fields.items()]
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# A key whose name is (or looks like a misspelling of) one of these holds a secret: its value
# is never shown in a message, whatever the error.
_SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "auth", "apikey", "api_key")
_URL_PASSWORD_RE = re.compile(r"(://[^:@/\s'\"]*):[^\s'\"]*@")


def redact_secrets(text: str) -> str:
    """`text` with the password of every URL in it replaced by ``***``."""
    return _URL_PASSWORD_RE.sub(r"\1:***@", text)


def is_secret_key(name: str) -> bool:
    """Whether a configuration key holds a secret (or is a misspelling of such a key)."""
    low = name.lower()
    if any(word in low for word in _SECRET_WORDS):
        return True
    return bool(difflib.get_close_matches(low, _SECRET_WORDS, n=1, cutoff=0.75))


def _env_paths(environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Key paths set by ``VIGIE_*`` variables (``VIGIE_LEDGER__URL`` -> ledger.url)."""
    paths: dict[tuple[str, ...], str] = {}
    for name in environ:
        if name.upper().startswith(_ENV_PREFIX) and name.upper() not in _NOT_SETTINGS:
            paths[tuple(name[len(_ENV_PREFIX) :].lower().split("__"))] = name
    return paths


def _source(label: str, loc: Sequence[int | str], data: Mapping[str, Any]) -> str:
    """The file, or the environment variable, that gave the value at `loc`."""
    keys = tuple(str(p).lower() for p in loc if isinstance(p, str))
    for path, name in _env_paths(os.environ).items():
        if keys[: len(path)] == path or (keys[:1] == path[:1] and keys[0] not in data):
            return f"environment variable {name}"
    return label


def _env_parse_error(message: str) -> str:
    """One line for pydantic-settings' failure to parse a ``VIGIE_*`` value (never the value)."""
    match = re.search(r'field "([^"]+)"', message)
    field = match.group(1) if match else ""
    names = [n for n in os.environ if n.upper() == f"{_ENV_PREFIX}{field.upper()}"]
    where = f"environment variable {names[0]}" if names else "environment"
    return (
        f"{where}: {field or 'a setting'}: not valid JSON (a list or mapping of keys is expected "
        "here, written in JSON)"
    )


def warn_unknown_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning per ``VIGIE_*`` variable that names no setting (it would be ignored)."""
    env = os.environ if environ is None else environ
    known = [name.upper() for name in Settings.model_fields]
    warnings = []
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith(_ENV_PREFIX) or upper in _NOT_SETTINGS:
            continue
        top = upper[len(_ENV_PREFIX) :].split("__", 1)[0]
        if top in known:
            continue
        close = difflib.get_close_matches(top, known, n=1, cutoff=0.6)
        hint = f" (did you mean {_ENV_PREFIX}{close[0]}?)" if close else ""
        warnings.append(f"environment variable {name} names no Vigie setting and is ignored{hint}")
    return warnings


def _format_error(label: str, err: Any, data: Mapping[str, Any] | None = None) -> str:
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-",)))]
    label = _source(label, loc, data or {})
    path = _format_path(loc)
    kind = err["type"]
    message = _MESSAGES.get(kind) or str(err["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch" and loc and str(loc[-1]) in _PATTERN_HINTS:
        message = _PATTERN_HINTS[str(loc[-1])]
    if kind == "extra_forbidden":
        message += _did_you_mean(loc)
    value = err.get("input")
    if kind == "missing" or isinstance(value, dict):
        return redact_secrets(f"{label}: {path}: {message}")
    if any(is_secret_key(part) for part in loc if isinstance(part, str)):
        return redact_secrets(f"{label}: {path}: {message} (value not shown: it is a secret)")
    shown = redact_secrets(repr(value))
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return redact_secrets(f"{label}: {path}: {message} (got {shown})")


def local_hostname() -> str:
    """This machine's host name, used as the default vantage name in the demo."""
    return socket.gethostname().split(".")[0] or "local"
