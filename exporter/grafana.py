"""`vigie dashboards push`: publish Vigie's dashboards and outage annotations to a Grafana.

It writes only to the Grafana it is given (its Vigie folder, dashboards and annotations tagged
`vigie-panne`); it never logs the API token and never deletes anything that Vigie did not push.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from pydantic import SecretStr

from config.settings import ConfigError, Settings
from config.vocabulary import PARIS

__all__ = [
    "OUTAGE_TAG",
    "TOKEN_ENV_VARS",
    "URL_ENV_VARS",
    "GrafanaPushError",
    "LedgerOutage",
    "OutageRecord",
    "PushReport",
    "add_commands",
    "annotation_for",
    "connect",
    "ledger_outages",
    "push",
    "token_from_env",
]

log = structlog.get_logger("vigie.grafana")

TOKEN_ENV_VARS = ("VIGIE_GRAFANA_TOKEN", "GRAFANA_TOKEN")
URL_ENV_VARS = ("VIGIE_GRAFANA_URL", "GRAFANA_URL")
OUTAGE_TAG = "vigie-panne"  # the tag the dashboards' annotation query filters on
FOLDER_UID = "vigie"
FOLDER_TITLE = "Vigie"
PUSH_MESSAGE = "Publié par « vigie dashboards push »"
_KIND_TEXT = {"down": "Panne confirmée", "degraded": "Ralentissement confirmé"}
_KIND_TAG = {"down": "nature:panne", "degraded": "nature:ralentissement"}
# Fields Grafana adds or bumps on save: not part of what Vigie pushes.
_SERVER_FIELDS = frozenset({"id", "version"})


class OutageRecord(Protocol):
    """What the push needs of an outage from the evidence ledger (issue 6 provides them)."""

    @property
    def id(self) -> str:
        """Stable outage id, as in the status page's /outages/<id>."""
        ...

    @property
    def target_id(self) -> str:
        """The target that failed."""
        ...

    @property
    def kind(self) -> str:
        """``down`` or ``degraded``."""
        ...

    @property
    def started_at(self) -> dt.datetime | str:
        """Time of the first failed observation (aware datetime or RFC 3339 text)."""
        ...

    @property
    def ended_at(self) -> dt.datetime | str | None:
        """Time of the first successful observation; None while the outage is open."""
        ...

    @property
    def cause(self) -> str:
        """Short French text of the cause, as shown to users."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class LedgerOutage:
    """An outage of the evidence ledger as the push needs it (`OutageRecord`)."""

    id: str
    target_id: str
    kind: str
    started_at: str
    ended_at: str | None
    cause: str

    @classmethod
    def of(cls, record: Any) -> LedgerOutage:
        """From an `evidence.outages.OutageRecord`."""
        from exporter.statuspage import causes_fr

        return cls(
            record.id,
            record.target_id,
            record.kind,
            record.started_at,
            record.ended_at,
            causes_fr(record.causes),
        )


def ledger_outages(settings: Settings) -> list[LedgerOutage] | None:
    """The configured ledger's outages (read-only), or None when there is no ledger yet."""
    from evidence.outages.history import ledger_outages as read

    records = read(settings)
    return None if records is None else [LedgerOutage.of(r) for r in records]


class GrafanaPushError(Exception):
    """Grafana refused or could not be reached; the message says what to check."""


@dataclasses.dataclass
class PushReport:
    """What one push changed, for the command's summary line."""

    folder: str = "not pushed"
    dashboards: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    duplicates_removed: int = 0

    def summary(self) -> str:
        """One line a person can read."""

        def count(actions: Mapping[str, str]) -> str:
            tally: dict[str, int] = {}
            for action in actions.values():
                tally[action] = tally.get(action, 0) + 1
            return ", ".join(f"{n} {a}" for a, n in sorted(tally.items())) or "none"

        return (
            f"folder {self.folder}; dashboards: {count(self.dashboards)}; "
            f"outage annotations: {count(self.annotations)}; "
            f"duplicates removed: {self.duplicates_removed}"
        )


# --- connection ------------------------------------------------------------------------------


def token_from_env(environ: Mapping[str, str] | None = None) -> SecretStr | None:
    """The Grafana API token from VIGIE_GRAFANA_TOKEN or GRAFANA_TOKEN (first set wins)."""
    env = os.environ if environ is None else environ
    for name in TOKEN_ENV_VARS:
        value = env.get(name, "").strip()
        if value:
            return SecretStr(value)
    return None


@contextlib.contextmanager
def connect(
    url: str, token: SecretStr, *, timeout: float = 10.0, user_agent: str = ""
) -> Iterator[Any]:
    """A `grafana_client.GrafanaApi` for `url` that authenticates with `token` (Bearer).

    A context manager: the HTTP connections are closed on exit. Raises `ConfigError` for a URL
    that cannot be used.
    """
    from grafana_client.api import GrafanaApi

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError([f"--grafana-url: not an http(s) URL (got {url!r})"])
    if parts.username or parts.password:
        raise ConfigError(
            [
                (
                    "--grafana-url: remove the user name and password from the URL; "
                    "put a service-account token in GRAFANA_TOKEN instead"
                )
            ]
        )
    if parts.query or parts.fragment:
        raise ConfigError([f"--grafana-url: no query or fragment expected (got {url!r})"])
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    prefix = parts.path.strip("/")
    api = GrafanaApi(
        auth=token.get_secret_value(),
        host=host,
        port=parts.port,
        url_path_prefix=f"{prefix}/" if prefix else "",
        protocol=parts.scheme,
        timeout=timeout,
        user_agent=user_agent or None,
    )
    try:
        yield api
    finally:
        api.client.s.close()


# --- push ------------------------------------------------------------------------------------


def push(
    client: Any,
    dashboards: Iterable[Mapping[str, Any]],
    outages: Iterable[OutageRecord],
    *,
    target_names: Mapping[str, str] | None = None,
    public_url: str | None = None,
    folder_uid: str = FOLDER_UID,
    folder_title: str = FOLDER_TITLE,
) -> PushReport:
    """Create or update the folder, the dashboards and one annotation per outage.

    Idempotent: a second run with the same input changes nothing. `client` is a
    `grafana_client.GrafanaApi` (see `connect`). Raises `GrafanaPushError`.
    """
    from grafana_client.client import GrafanaException

    report = PushReport()
    try:
        health = client.client.GET("/health")  # fails fast when Grafana is unreachable
        log.info("grafana_connected", version=(health or {}).get("version"))
        dashboards = list(dashboards)
        if dashboards:
            report.folder = _ensure_folder(client, folder_uid, folder_title)
        for dashboard in dashboards:
            uid = str(dashboard["uid"])
            report.dashboards[uid] = _push_dashboard(client, dashboard, folder_uid)
        for outage in outages:
            body = annotation_for(outage, target_names or {}, public_url)
            action, removed = _push_annotation(client, outage.id, body)
            report.annotations[outage.id] = action
            report.duplicates_removed += removed
    except GrafanaException as exc:
        raise GrafanaPushError(_explain(exc)) from None
    except OSError as exc:  # niquests' ConnectionError is an OSError
        raise GrafanaPushError(f"cannot reach Grafana: {exc}") from None
    return report


def _explain(exc: Any) -> str:
    status = getattr(exc, "status_code", 0)
    message = getattr(exc, "message", "") or str(exc)
    if status == 401:
        return (
            "Grafana refused the token (401): check GRAFANA_TOKEN; it must be a service-account "
            "token of this Grafana"
        )
    if status == 403:
        return (
            "Grafana denied the request (403): the service account needs the Editor role "
            "(folders, dashboards and annotations)"
        )
    if status == 0:
        return f"cannot reach Grafana: {message}"
    return f"Grafana answered {status}: {message}"


def _expect(answer: Any, kind: type, what: str) -> Any:
    """`answer` when Grafana answered with a `kind` (JSON object or list), else a clear error.

    A proxy, another application at the URL or a Grafana version with another API can answer
    with something else; it is named, never a traceback.
    """
    if isinstance(answer, kind):
        return answer
    names: dict[type, str] = {dict: "an object", list: "a list"}
    shape = names.get(type(answer), type(answer).__name__)
    expected = names[kind]
    raise GrafanaPushError(
        f"Grafana answered the lookup of {what} with {shape}, not {expected}: "
        "is --grafana-url the address of Grafana (with its sub-path, if any)?"
    )


def _is_not_found(exc: Any) -> bool:
    return getattr(exc, "status_code", None) == 404


def _ensure_folder(client: Any, uid: str, title: str) -> str:
    from grafana_client.client import GrafanaClientError

    try:
        folder = _expect(client.folder.get_folder(uid), dict, f"the folder {uid!r}")
    except GrafanaClientError as exc:
        if not _is_not_found(exc):
            raise
        client.folder.create_folder(title, uid=uid)
        log.info("grafana_folder", uid=uid, action="created")
        return "created"
    if folder.get("title") == title:
        return "unchanged"
    client.folder.update_folder(uid, title=title, version=folder.get("version"), overwrite=True)
    log.info("grafana_folder", uid=uid, action="updated")
    return "updated"


def _comparable(dashboard: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dashboard.items() if k not in _SERVER_FIELDS}


def _push_dashboard(client: Any, dashboard: Mapping[str, Any], folder_uid: str) -> str:
    from grafana_client.client import GrafanaClientError

    uid = str(dashboard["uid"])
    try:
        current = _expect(client.dashboard.get_dashboard(uid), dict, f"the dashboard {uid!r}")
    except GrafanaClientError as exc:
        if not _is_not_found(exc):
            raise
        current = None
    if current is not None:
        meta = current.get("meta", {})
        if meta.get("provisioned"):
            log.info("grafana_dashboard", uid=uid, action="skipped", reason="provisioned")
            return "skipped (provisioned from files)"
        same_folder = meta.get("folderUid") == folder_uid
        if same_folder and _comparable(current.get("dashboard", {})) == _comparable(dashboard):
            return "unchanged"
    body = {
        "dashboard": {**dashboard, "id": None},
        "folderUid": folder_uid,
        "message": PUSH_MESSAGE,
        "overwrite": True,
    }
    client.dashboard.update_dashboard(body)
    action = "created" if current is None else "updated"
    log.info("grafana_dashboard", uid=uid, action=action)
    return action


def _millis(moment: dt.datetime | str) -> int:
    return round(_aware(moment).timestamp() * 1000)


def _aware(moment: dt.datetime | str) -> dt.datetime:
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        raise ValueError(f"outage time without a time zone: {moment.isoformat()}")
    return moment


def _paris(moment: dt.datetime | str) -> str:
    return _aware(moment).astimezone(PARIS).strftime("%d/%m/%Y à %H:%M:%S")


def _duration_fr(seconds: float) -> str:
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} j")
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


def outage_tags(outage: OutageRecord) -> list[str]:
    """The annotation's tags: what the dashboards filter on and what finds it again."""
    return [
        "vigie",
        OUTAGE_TAG,
        f"cible:{outage.target_id}",
        f"panne:{outage.id}",
        _KIND_TAG.get(outage.kind, f"nature:{outage.kind}"),
        "en-cours" if outage.ended_at is None else "terminée",
    ]


def annotation_for(
    outage: OutageRecord, target_names: Mapping[str, str], public_url: str | None
) -> dict[str, Any]:
    """The Grafana annotation (region from start to end) that shows `outage`, text in French."""
    start = _millis(outage.started_at)
    name = target_names.get(outage.target_id, outage.target_id)
    what = _KIND_TEXT.get(outage.kind, f"Incident ({outage.kind})")
    lines = [f"{what} : {name} ({outage.target_id})."]
    lines.append(f"Début : {_paris(outage.started_at)} (heure de Paris).")
    if outage.ended_at is None:
        end = start
        lines.append("Fin : panne en cours au moment de la publication.")
    else:
        end = _millis(outage.ended_at)
        duration = (_aware(outage.ended_at) - _aware(outage.started_at)).total_seconds()
        lines.append(f"Fin : {_paris(outage.ended_at)} — durée {_duration_fr(duration)}.")
    cause = " ".join(outage.cause.split())
    if cause:
        lines.append(f"Cause constatée : {cause}.".replace("..", "."))
    lines.append(f"Identifiant de la panne : {outage.id}.")
    if public_url:
        lines.append(f"Preuves : {public_url.rstrip('/')}/outages/{outage.id}")
    return {"time": start, "timeEnd": end, "tags": outage_tags(outage), "text": "\n".join(lines)}


def _find_annotations(client: Any, outage_id: str) -> list[dict[str, Any]]:
    params = [
        ("tags", OUTAGE_TAG),
        ("tags", f"panne:{outage_id}"),
        ("type", "annotation"),
        ("limit", "100"),
    ]
    found = _expect(client.client.GET("/annotations", params=params) or [], list, "annotations")
    return sorted(
        (a for a in found if isinstance(a, dict) and f"panne:{outage_id}" in (a.get("tags") or [])),
        key=lambda a: int(a.get("id", 0)),
    )


def _push_annotation(client: Any, outage_id: str, body: Mapping[str, Any]) -> tuple[str, int]:
    existing = _find_annotations(client, outage_id)
    if not existing:
        client.annotations.add_annotation(
            time_from=body["time"], time_to=body["timeEnd"], tags=body["tags"], text=body["text"]
        )
        log.info("grafana_annotation", outage=outage_id, action="created")
        return "created", 0
    keep, *extra = existing
    for duplicate in extra:
        client.annotations.delete_annotations_by_id(duplicate["id"])
        log.warning(
            "grafana_annotation",
            outage=outage_id,
            action="duplicate_removed",
            annotation=duplicate["id"],
        )
    current = {
        "time": keep.get("time"),
        "timeEnd": keep.get("timeEnd") or keep.get("time"),
        "tags": sorted(keep.get("tags") or []),
        "text": keep.get("text"),
    }
    wanted = {**body, "tags": sorted(body["tags"])}
    if current == wanted:
        return "unchanged", len(extra)
    client.annotations.update_annotation(
        keep["id"],
        time_from=body["time"],
        time_to=body["timeEnd"],
        tags=body["tags"],
        text=body["text"],
    )
    log.info("grafana_annotation", outage=outage_id, action="updated")
    return "updated", len(extra)


# --- command line ----------------------------------------------------------------------------

LoadSettings = Callable[[Path | None], Settings]
# settings -> the ledger's outages, or None when there is no ledger yet (nothing to annotate)
LoadOutages = Callable[[Settings], Iterable[OutageRecord] | None]


def add_commands(
    subparsers: Any, load_settings: LoadSettings, load_outages: LoadOutages | None = None
) -> None:
    """Add `vigie dashboards push` to the `vigie` parser's subcommands.

    `load_outages(settings)` reads the outages from the evidence ledger; without it only the
    dashboards are pushed (and a warning says so).
    """
    dashboards = subparsers.add_parser(
        "dashboards", help="publish the Grafana dashboards and outage annotations"
    )
    sub = dashboards.add_subparsers(dest="dashboards_command", required=True, metavar="COMMAND")
    cmd = sub.add_parser(
        "push",
        help="create or update the Vigie folder, dashboards and outage annotations in Grafana",
        description=(
            "Create or update the Vigie folder, dashboards and outage annotations in a Grafana. "
            "The API token (a Grafana service-account token with the Editor role) is read from "
            "VIGIE_GRAFANA_TOKEN or GRAFANA_TOKEN. Running it twice changes nothing."
        ),
    )
    cmd.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="configuration file (default: ./vigie.yaml, else the built-in ANEF defaults)",
    )
    cmd.add_argument(
        "--grafana-url",
        default=None,
        metavar="URL",
        help="Grafana's address, e.g. http://localhost:3000 (default: $VIGIE_GRAFANA_URL or "
        "$GRAFANA_URL)",
    )
    cmd.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    what = cmd.add_mutually_exclusive_group()
    what.add_argument("--no-dashboards", action="store_true", help="push only the annotations")
    what.add_argument("--no-annotations", action="store_true", help="push only the dashboards")
    cmd.add_argument("--format", choices=["text", "json"], default="text")

    def handler(args: argparse.Namespace) -> int:
        return _cmd_push(args, load_settings, load_outages)

    cmd.set_defaults(handler=handler)


def _cmd_push(
    args: argparse.Namespace, load_settings: LoadSettings, load_outages: LoadOutages | None
) -> int:
    settings = load_settings(args.config)
    url = args.grafana_url or next((os.environ[n] for n in URL_ENV_VARS if os.environ.get(n)), None)
    if not url:
        raise ConfigError(["--grafana-url: required (or set VIGIE_GRAFANA_URL)"])
    token = token_from_env()
    if token is None:
        raise ConfigError(
            [
                (
                    "environment: GRAFANA_TOKEN (or VIGIE_GRAFANA_TOKEN) is not set; create a "
                    "service account with the Editor role in Grafana and export its token"
                )
            ]
        )

    dashboards: list[Mapping[str, Any]] = []
    if not args.no_dashboards:
        try:
            from dashboards import all_dashboards
        except ImportError:
            print(
                "vigie: error: the `dashboards` package is not installed with Vigie; "
                "reinstall it (pip install .) or use --no-dashboards",
                file=sys.stderr,
            )
            return 1
        dashboards = list(all_dashboards().values())
    outages: list[OutageRecord] = []
    if not args.no_annotations:
        from evidence.ledger.entries import LedgerError

        if load_outages is None:
            log.warning(
                "outage_annotations_skipped",
                reason="this build cannot read outages from the ledger",
            )
        else:
            try:
                found = load_outages(settings)
            except (LedgerError, OSError) as exc:
                print(
                    f"vigie: error: cannot read the outages from the ledger ({exc}); "
                    "use --no-annotations to push the dashboards only",
                    file=sys.stderr,
                )
                return 1
            if found is None:
                log.warning(
                    "outage_annotations_skipped",
                    reason=f"no ledger at {settings.ledger.url} yet: no outage to annotate",
                )
            outages = list(found or ())
    try:
        with connect(url, token, timeout=args.timeout, user_agent=settings.user_agent) as client:
            report = push(
                client,
                dashboards,
                outages,
                target_names={t.id: t.display_name for t in settings.targets},
                public_url=getattr(settings, "public_url", None),
            )
    except GrafanaPushError as exc:
        print(f"vigie: error: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2))
    else:
        print(f"{_safe_url(url)}: {report.summary()}")
    return 0


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
