"""Tests of `vigie dashboards push` against a local stand-in of Grafana's HTTP API."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from config.settings import ConfigError, load_settings
from dashboards import all_dashboards
from exporter.grafana import (
    GrafanaPushError,
    add_commands,
    annotation_for,
    connect,
    push,
    token_from_env,
)
from tests.grafana_standin import GrafanaStandIn

TOKEN = "glsa_standin_token_0123456789"
UTC = dt.UTC


@dataclasses.dataclass(frozen=True)
class Outage:
    """An outage record as the ledger will hand them over."""

    id: str
    target_id: str
    kind: str
    started_at: dt.datetime | str
    ended_at: dt.datetime | str | None
    cause: str


CLOSED = Outage(
    "out-anef-accueil-1",
    "anef-accueil",
    "down",
    dt.datetime(2026, 3, 2, 7, 14, 3, tzinfo=UTC),
    dt.datetime(2026, 3, 2, 8, 2, 11, tzinfo=UTC),
    "Erreur du serveur (HTTP 503)",
)
OPEN = Outage(
    "out-anef-creation-compte-7",
    "anef-creation-compte",
    "down",
    "2026-03-03T10:00:00.000000+00:00",
    None,
    "Étape « formulaire » impossible : le champ e-mail n'apparaît pas",
)
NAMES = {"anef-accueil": "ANEF — page d'accueil"}


@pytest.fixture
def grafana() -> Any:
    with GrafanaStandIn(TOKEN) as standin:
        yield standin


@contextlib.contextmanager
def _client(standin: GrafanaStandIn, token: str = TOKEN) -> Iterator[Any]:
    with connect(standin.url, SecretStr(token), timeout=5.0) as client:
        yield client


@pytest.fixture
def api(grafana: GrafanaStandIn) -> Iterator[Any]:
    with _client(grafana) as client:
        yield client


def _dashboards() -> list[dict[str, Any]]:
    return list(all_dashboards().values())


class TestTokenFromEnv:
    def test_vigie_variable_wins(self) -> None:
        """VIGIE_GRAFANA_TOKEN is preferred over GRAFANA_TOKEN."""
        token = token_from_env({"GRAFANA_TOKEN": "b", "VIGIE_GRAFANA_TOKEN": "a"})
        assert token is not None
        assert token.get_secret_value() == "a"

    def test_blank_means_unset(self) -> None:
        """A blank variable is ignored rather than sent as an empty token."""
        assert token_from_env({"VIGIE_GRAFANA_TOKEN": "  ", "GRAFANA_TOKEN": ""}) is None

    def test_token_is_masked(self) -> None:
        """The token renders masked, so it cannot leak through a log line or repr."""
        token = token_from_env({"GRAFANA_TOKEN": TOKEN})
        assert TOKEN not in repr(token)
        assert TOKEN not in str(token)


class TestConnect:
    def test_credentials_in_url_are_refused(self) -> None:
        """A user:password URL is refused with a hint to use the token variable."""
        with pytest.raises(ConfigError, match="GRAFANA_TOKEN"):
            connect("http://admin:admin@127.0.0.1:3000", SecretStr("x")).__enter__()

    def test_non_http_url_is_refused(self) -> None:
        """Only http(s) URLs are accepted."""
        with pytest.raises(ConfigError, match="not an http"):
            connect("ftp://127.0.0.1/", SecretStr("x")).__enter__()

    def test_sub_path_is_kept(self) -> None:
        """A Grafana served under a sub-path (reverse proxy) receives /sub/api/... requests."""
        with GrafanaStandIn(TOKEN, prefix="/grafana") as standin, _client(standin) as client:
            report = push(client, _dashboards()[:1], [])
        assert report.dashboards == {"vigie-overview": "created"}
        assert standin.calls("POST", "/api/dashboards/db")

    def test_bearer_token_on_every_call(self, grafana: GrafanaStandIn, api: Any) -> None:
        """Every request carries the token as a Bearer Authorization header."""
        push(api, _dashboards(), [CLOSED])
        assert grafana.requests
        assert {r.authorization for r in grafana.requests} == {f"Bearer {TOKEN}"}


class TestAnnotationFor:
    def test_closed_outage_is_a_region(self) -> None:
        """A closed outage becomes a start-to-end region in epoch milliseconds."""
        body = annotation_for(CLOSED, NAMES, None)
        assert body["time"] == int(CLOSED.started_at.timestamp() * 1000)  # type: ignore[union-attr]
        assert body["timeEnd"] == int(CLOSED.ended_at.timestamp() * 1000)  # type: ignore[union-attr]

    def test_text_is_french_with_id_and_cause(self) -> None:
        """The text names the service, Paris times, duration, cause and outage id."""
        text = annotation_for(CLOSED, NAMES, "https://vigie.example.org/")["text"]
        assert "Panne confirmée : ANEF — page d'accueil (anef-accueil)." in text
        assert "Début : 02/03/2026 à 08:14:03 (heure de Paris)." in text
        assert "durée 48 min 8 s" in text
        assert "Cause constatée : Erreur du serveur (HTTP 503)." in text
        assert "Identifiant de la panne : out-anef-accueil-1." in text
        assert "https://vigie.example.org/outages/out-anef-accueil-1" in text

    def test_open_outage_is_a_point_marked_ongoing(self) -> None:
        """An open outage is a point at its start, tagged and described as ongoing."""
        body = annotation_for(OPEN, {}, None)
        assert body["time"] == body["timeEnd"]
        assert "en-cours" in body["tags"]
        assert "panne en cours" in body["text"]

    def test_tags_find_it_again(self) -> None:
        """Tags carry the dashboard filter tag, the target and the outage id."""
        tags = annotation_for(CLOSED, {}, None)["tags"]
        assert {"vigie-panne", "cible:anef-accueil", "panne:out-anef-accueil-1"} <= set(tags)
        assert "terminée" in tags

    def test_naive_time_is_refused(self) -> None:
        """A time without zone is refused rather than guessed."""
        naive = dataclasses.replace(CLOSED, started_at=dt.datetime(2026, 3, 2, 7, 0))  # noqa: DTZ001
        with pytest.raises(ValueError, match="time zone"):
            annotation_for(naive, {}, None)


class TestPush:
    def test_first_push_creates_everything(self, grafana: GrafanaStandIn, api: Any) -> None:
        """The folder, three dashboards and one annotation per outage are created."""
        report = push(api, _dashboards(), [CLOSED, OPEN], target_names=NAMES)
        assert report.folder == "created"
        assert set(report.dashboards.values()) == {"created"}
        assert report.annotations == {CLOSED.id: "created", OPEN.id: "created"}
        assert grafana.folders["vigie"]["title"] == "Vigie"
        assert {d["folderUid"] for d in grafana.dashboards.values()} == {"vigie"}
        assert len(grafana.annotations) == 2

    def test_dashboard_body_follows_the_api(self, grafana: GrafanaStandIn, api: Any) -> None:
        """Dashboards are saved with id null, the folder uid, overwrite and a message."""
        push(api, _dashboards(), [])
        bodies = [r.body for r in grafana.calls("POST", "/api/dashboards/db")]
        assert len(bodies) == 3
        for body in bodies:
            assert body["dashboard"]["id"] is None
            assert body["folderUid"] == "vigie"
            assert body["overwrite"] is True
            assert body["message"]

    def test_second_push_writes_nothing(self, grafana: GrafanaStandIn, api: Any) -> None:
        """Pushing the same input twice changes nothing the second time (no duplicates)."""
        client = api
        push(client, _dashboards(), [CLOSED, OPEN])
        writes = len(grafana.writes())
        report = push(client, _dashboards(), [CLOSED, OPEN])
        assert len(grafana.writes()) == writes
        assert report.folder == "unchanged"
        assert set(report.dashboards.values()) == {"unchanged"}
        assert set(report.annotations.values()) == {"unchanged"}
        assert len(grafana.annotations) == 2

    def test_outage_that_closed_is_updated_in_place(
        self, grafana: GrafanaStandIn, api: Any
    ) -> None:
        """When an open outage ends, its annotation becomes a region; no second one appears."""
        client = api
        push(client, [], [OPEN])
        closed = dataclasses.replace(OPEN, ended_at="2026-03-03T10:30:00+00:00")
        report = push(client, [], [closed])
        assert report.annotations == {OPEN.id: "updated"}
        (note,) = grafana.annotations.values()
        assert note["timeEnd"] - note["time"] == 30 * 60 * 1000
        assert "terminée" in note["tags"]
        assert "en-cours" not in note["tags"]
        (update,) = [r for r in grafana.writes() if r.method == "PUT"]
        assert set(update.body) == {"time", "timeEnd", "tags", "text"}

    def test_duplicates_are_removed_keeping_the_oldest(
        self, grafana: GrafanaStandIn, api: Any
    ) -> None:
        """Duplicates left by an interrupted run are deleted; the oldest annotation stays."""
        body = annotation_for(CLOSED, {}, None)
        first = grafana.add_raw_annotation(body)
        grafana.add_raw_annotation(body)
        grafana.add_raw_annotation({**body, "text": "ancien texte"})
        report = push(api, [], [CLOSED])
        assert report.duplicates_removed == 2
        assert list(grafana.annotations) == [first]

    def test_other_annotations_are_left_alone(self, grafana: GrafanaStandIn, api: Any) -> None:
        """Annotations Vigie did not push (other tags) are never touched."""
        other = grafana.add_raw_annotation(
            {"time": 1_700_000_000_000, "tags": ["deploy"], "text": "mise en production"}
        )
        push(api, [], [CLOSED])
        assert other in grafana.annotations
        assert not [r for r in grafana.writes() if r.path == f"/api/annotations/{other}"]

    def test_provisioned_dashboard_is_skipped(self, grafana: GrafanaStandIn, api: Any) -> None:
        """A dashboard provisioned from files is left as is (Grafana refuses to save it)."""
        dashboards = _dashboards()
        grafana.folders["vigie"] = {"id": 1, "uid": "vigie", "title": "Vigie", "version": 1}
        grafana.seed_provisioned_dashboard(dashboards[0], "vigie")
        report = push(api, dashboards, [])
        assert report.dashboards[dashboards[0]["uid"]].startswith("skipped")
        assert len(grafana.calls("POST", "/api/dashboards/db")) == 2

    def test_edited_dashboard_is_restored(self, grafana: GrafanaStandIn, api: Any) -> None:
        """A dashboard changed by hand in Grafana is put back to the generated version."""
        client = api
        push(client, _dashboards(), [])
        grafana.dashboards["vigie-overview"]["dashboard"]["title"] = "modifié à la main"
        report = push(client, _dashboards(), [])
        assert report.dashboards["vigie-overview"] == "updated"
        saved = grafana.dashboards["vigie-overview"]["dashboard"]
        assert saved["title"] == "Vigie — Vue d'ensemble"
        assert saved["version"] == 2

    def test_renamed_folder_is_restored(self, grafana: GrafanaStandIn, api: Any) -> None:
        """A folder renamed in Grafana gets its title back."""
        grafana.folders["vigie"] = {"id": 1, "uid": "vigie", "title": "Autre", "version": 3}
        report = push(api, _dashboards()[:1], [])
        assert report.folder == "updated"
        assert grafana.folders["vigie"]["title"] == "Vigie"

    def test_bad_token_is_explained_without_leaking_it(self, grafana: GrafanaStandIn) -> None:
        """A refused token gives an actionable error that does not contain the token."""
        with (
            _client(grafana, "wrong-token-secret") as client,
            pytest.raises(GrafanaPushError, match="refused the token") as caught,
        ):
            push(client, _dashboards(), [])
        assert "wrong-token-secret" not in str(caught.value)

    def test_unreachable_grafana_is_explained(self) -> None:
        """A Grafana that does not answer gives a 'cannot reach' error, not a traceback."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with (
            connect(f"http://127.0.0.1:{port}", SecretStr(TOKEN), timeout=2.0) as client,
            pytest.raises(GrafanaPushError, match="cannot reach Grafana"),
        ):
            push(client, _dashboards(), [])


class TestCommand:
    def _run(self, argv: list[str], outages: list[Outage] | None = None) -> int:
        parser = argparse.ArgumentParser(prog="vigie")
        sub = parser.add_subparsers(dest="command", required=True)
        add_commands(sub, load_settings, (lambda _s: outages) if outages is not None else None)
        args = parser.parse_args(argv)
        return int(args.handler(args))

    def test_push_command(
        self,
        grafana: GrafanaStandIn,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`vigie dashboards push` pushes dashboards and outages and prints a JSON report."""
        monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
        config = tmp_path / "vigie.yaml"
        config.write_text("targets: []\n", encoding="utf-8")
        argv = [
            "dashboards",
            "push",
            "--config",
            str(config),
            "--grafana-url",
            grafana.url,
            "--format",
            "json",
        ]
        with structlog.testing.capture_logs() as logs:
            assert self._run(argv, [CLOSED]) == 0
        report = json.loads(capsys.readouterr().out)
        assert {e["event"] for e in logs} >= {"grafana_folder", "grafana_dashboard"}
        assert TOKEN not in repr(logs)
        assert report["annotations"] == {CLOSED.id: "created"}
        assert len(report["dashboards"]) == 3

    def test_missing_token_is_a_config_error(
        self, grafana: GrafanaStandIn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a token the command stops before any request, naming the variable."""
        monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
        monkeypatch.delenv("VIGIE_GRAFANA_TOKEN", raising=False)
        with pytest.raises(ConfigError, match="GRAFANA_TOKEN"):
            self._run(["dashboards", "push", "--grafana-url", grafana.url])
        assert grafana.requests == []

    def test_cli_wiring_never_logs_the_token(
        self,
        grafana: GrafanaStandIn,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Through the real `vigie` CLI the push succeeds and the token appears in no output."""
        cli = pytest.importorskip("exporter.cli")
        monkeypatch.setenv("VIGIE_GRAFANA_TOKEN", TOKEN)
        config = tmp_path / "vigie.yaml"
        config.write_text("targets: []\n", encoding="utf-8")
        try:
            code = cli.main(
                ["dashboards", "push", "--config", str(config), "--grafana-url", grafana.url]
            )
        finally:
            structlog.reset_defaults()  # the CLI bound logging to pytest's captured stderr
        out = capsys.readouterr()
        assert code == 0
        assert "dashboards: 3 created" in out.out
        assert TOKEN not in out.out + out.err
        assert grafana.folders

    def test_wrong_token_exits_1(
        self,
        grafana: GrafanaStandIn,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A refused token ends with exit code 1 and a message on stderr."""
        monkeypatch.setenv("VIGIE_GRAFANA_TOKEN", "not-the-token")
        assert self._run(["dashboards", "push", "--grafana-url", grafana.url]) == 1
        assert "refused the token" in capsys.readouterr().err


class TestRealWiring:
    """`vigie dashboards push` as installed: outages read from the configured ledger."""

    def _config(self, tmp_path: Path, ledger: Path) -> Path:
        config = tmp_path / "vigie.yaml"
        config.write_text(
            "vantage: {name: paris-1}\n"
            "targets:\n"
            "  - {id: anef-accueil, name: 'ANEF — accueil', kind: http, url: 'http://127.0.0.1:9/'}\n"
            f"ledger: {{url: 'sqlite:///{ledger}', artifacts: '{tmp_path / 'artifacts'}'}}\n",
            encoding="utf-8",
        )
        return config

    def _push(self, config: Path, url: str, *extra: str) -> int:
        cli = pytest.importorskip("exporter.cli")
        try:
            return int(
                cli.main(
                    ["dashboards", "push", "--config", str(config), "--grafana-url", url, *extra]
                )
            )
        finally:
            structlog.reset_defaults()  # the CLI bound logging to pytest's captured stderr

    def test_outages_of_the_ledger_become_annotations(
        self,
        grafana: GrafanaStandIn,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The outage recorded in the ledger is annotated in Grafana, with its French cause."""
        from tests.bundle_fixture import build_ledger

        monkeypatch.setenv("VIGIE_GRAFANA_TOKEN", TOKEN)
        ledger = tmp_path / "ledger.db"
        built = build_ledger(
            f"sqlite:///{ledger}",
            tmp_path,
            minutes=40,
            targets=("anef-accueil",),
            outage_at=(10, 20),
        )
        capsys.readouterr()  # the fixture's own log lines
        assert self._push(self._config(tmp_path, ledger), grafana.url, "--format", "json") == 0
        out = capsys.readouterr()
        report = json.loads(out.out)
        assert report["annotations"] == {built.outage_ids[0]: "created"}
        assert "outage_annotations_skipped" not in out.err
        (annotation,) = grafana.annotations.values()
        assert f"panne:{built.outage_ids[0]}" in annotation["tags"]
        assert "ANEF — accueil" in annotation["text"]

    def test_no_ledger_yet_pushes_dashboards_and_says_so(
        self,
        grafana: GrafanaStandIn,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Before the first run there is no ledger: dashboards go, a warning names the ledger."""
        monkeypatch.setenv("VIGIE_GRAFANA_TOKEN", TOKEN)
        config = self._config(tmp_path, tmp_path / "none.db")
        assert self._push(config, grafana.url) == 0
        out = capsys.readouterr()
        assert "dashboards: 3 created" in out.out
        assert "no ledger at" in out.err
        assert not grafana.annotations

    @pytest.mark.parametrize("answer", [[], [{"uid": "vigie", "title": "Vigie"}], "ok"])
    def test_folder_lookup_answered_with_a_list(
        self,
        grafana: GrafanaStandIn,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        answer: Any,
    ) -> None:
        """A folder lookup answered with a list (or text) is one clear line and exit 1."""
        monkeypatch.setenv("VIGIE_GRAFANA_TOKEN", TOKEN)
        grafana.folder_answer = answer
        config = self._config(tmp_path, tmp_path / "none.db")
        assert self._push(config, grafana.url, "--no-annotations") == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err
        (line,) = [x for x in err.splitlines() if "error" in x]
        assert "answered the lookup of the folder 'vigie' with" in line
        assert not grafana.dashboards
