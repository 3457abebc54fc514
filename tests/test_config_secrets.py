"""No message ever shows a secret: secret fields' values and passwords inside URLs stay hidden,
whether the bad value comes from the file or from a ``VIGIE_*`` variable, for every command.

Also: a value from the environment is reported as coming from its variable (not the file), a
``VIGIE_*`` variable that names no setting is reported, and a listen port out of range is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from config.settings import ConfigError, load_settings, redact_secrets, warn_unknown_env
from exporter.cli import main

# (case, YAML text, environment, the secret that must never be printed)
SECRET_CASES = [
    (
        "numeric-password-file",
        "evidence_auth: {user: legal, password: 20251231}\n",
        {},
        "20251231",
    ),
    (
        "numeric-password-env-json",
        "targets: []\n",
        {"VIGIE_EVIDENCE_AUTH": '{"user": "legal", "password": 20251231}'},
        "20251231",
    ),
    ("auth-string-file", 'evidence_auth: "legal:Ev1dence-S3cret!"\n', {}, "Ev1dence-S3cret!"),
    (
        "auth-string-env",
        "targets: []\n",
        {"VIGIE_EVIDENCE_AUTH": "legal:Ev1dence-S3cret!"},
        "Ev1dence-S3cret!",
    ),
    (
        "misspelt-password-file",
        "evidence_auth: {user: legal, pasword: Typo-S3cret}\n",
        {},
        "Typo-S3cret",
    ),
    (
        "misspelt-password-env",
        "targets: []\n",
        {"VIGIE_EVIDENCE_AUTH__PASWORD": "Typo-S3cret"},
        "Typo-S3cret",
    ),
    (
        "ledger-url-file",
        "ledger: {url: 'mysql://vigie:Db-S3cret-000@db.example/vigie'}\n",
        {},
        "Db-S3cret-000",
    ),
    (
        "ledger-url-env",
        "targets: []\n",
        {"VIGIE_LEDGER__URL": "mysql://vigie:Db-S3cret-000@db.example/vigie"},
        "Db-S3cret-000",
    ),
    ("ledger-password-number", "ledger: {password: 73914625}\n", {}, "73914625"),
    ("ledger-password-list", "ledger: {password: [Lst-S3cret]}\n", {}, "Lst-S3cret"),
    ("top-level-misspelt-secret", "pasword: Top-S3cret\n", {}, "Top-S3cret"),
    (
        "target-url-with-password",
        "targets: [{id: a, name: A, kind: http, url: 'ftp://u:Tgt-S3cret@h.example/'}]\n",
        {},
        "Tgt-S3cret",
    ),
    (
        "control-url-with-password",
        "controls: ['gopher://u:Ctl-S3cret@h.example/']\n",
        {},
        "Ctl-S3cret",
    ),
    (
        "targets-env-not-json",
        "targets: []\n",
        {"VIGIE_TARGETS": '[{"id": "x", "url": "https://u:Js-S3cret@h.example/"'},
        "Js-S3cret",
    ),
    (
        "tsa-url-with-password-env",
        "targets: []\n",
        {"VIGIE_SIGNING__TSA_URL": "ldap://u:Tsa-S3cret@tsa.example/"},
        "Tsa-S3cret",
    ),
]

# Every command that reads vigie.yaml (`demo` runs its own simulator configuration).
COMMANDS = [
    ["config", "check", "{config}"],
    ["check", "--config", "{config}"],
    ["run", "--config", "{config}"],
    ["outages", "--config", "{config}"],
    ["export", "--config", "{config}", "--out", "{tmp}/out.zip"],
    ["keygen", "--config", "{config}", "--out", "{tmp}/key"],
    ["verify", "--config", "{config}", "{tmp}/missing-ledger.db"],
    ["dashboards", "push", "--config", "{config}", "--grafana-url", "http://127.0.0.1:9/"],
    ["corroborate", "--config", "{config}", "{tmp}/a.zip", "{tmp}/b.zip"],
    ["attestation", "--config", "{config}", "--window", "{window}", "--out", "{tmp}/a.pdf"],
]
WINDOW = "2026-12-01 10:00/2026-12-01 11:00"


@pytest.fixture(autouse=True)
def _no_vigie_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import os

    for name in list(os.environ):
        if name.upper().startswith("VIGIE_"):
            monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()  # `main` bound logging to pytest's captured (then closed) stderr


@pytest.mark.parametrize(
    ("case", "text", "env", "secret"), SECRET_CASES, ids=[c[0] for c in SECRET_CASES]
)
def test_secret_never_in_any_command_output(
    case: str,
    text: str,
    env: dict[str, str],
    secret: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each bad secret value, through each command: exit 2, one error naming the key, no secret."""
    config = tmp_path / "vigie.yaml"
    config.write_text(text, "utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    for command in COMMANDS:
        argv = [part.format(config=config, tmp=tmp_path, window=WINDOW) for part in command]
        code = main(argv)
        out, err = capsys.readouterr()
        assert secret not in out + err, (case, argv, out + err)
        assert "Traceback" not in err
        if command[0] in {"verify", "corroborate"}:
            continue  # these may stop on their missing inputs before reading the configuration
        assert code == 2, (case, argv, out + err)
        assert err.startswith("vigie: error: "), (argv, err)
        if env:
            # the value came from a variable: the message names it, not the file
            assert "environment variable VIGIE_" in err, err


def test_error_still_names_key_and_non_secret_value(tmp_path: Path) -> None:
    """Hiding secrets does not hide what is wrong with an ordinary value."""
    config = tmp_path / "vigie.yaml"
    config.write_text("defaults: {interval: soon}\n", "utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert info.value.lines[0].startswith(f"{config}: defaults.interval: ")
    assert "'soon'" in info.value.lines[0]


def test_redact_secrets_keeps_user_and_host() -> None:
    assert redact_secrets("x 'postgresql://vigie:p@ss/w@rd@db:5432/v' y") == (
        "x 'postgresql://vigie:***@db:5432/v' y"
    )
    assert redact_secrets("https://user@example.org/") == "https://user@example.org/"


def test_env_value_reported_as_coming_from_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "vigie.yaml"
    config.write_text("listen: 127.0.0.1:9188\n", "utf-8")
    monkeypatch.setenv("VIGIE_DEFAULTS__TIMEOUT", "later")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    (line,) = info.value.lines
    assert line.startswith("environment variable VIGIE_DEFAULTS__TIMEOUT: defaults.timeout: ")
    assert str(config) not in line


def test_misspelt_variable_is_reported_with_a_suggestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIGIE_LISTN", "0.0.0.0:80")
    monkeypatch.setenv("VIGIE_CONFIG", str(tmp_path / "vigie.yaml"))  # a known non-setting
    expected = (
        "environment variable VIGIE_LISTN names no Vigie setting and is ignored "
        "(did you mean VIGIE_LISTEN?)"
    )
    assert warn_unknown_env() == [expected]
    config = tmp_path / "vigie.yaml"
    config.write_text("targets: []\n", "utf-8")
    assert main(["config", "check", str(config)]) == 0
    err = capsys.readouterr().err
    assert "vigie: warning: environment variable VIGIE_LISTN names no Vigie setting" in err
    assert "0.0.0.0:80" not in err  # the value is never echoed


@pytest.mark.parametrize("listen", ["127.0.0.1:99999", "127.0.0.1:0", "[::1]:65536"])
def test_listen_port_out_of_range_is_refused(tmp_path: Path, listen: str) -> None:
    config = tmp_path / "vigie.yaml"
    config.write_text(f"listen: '{listen}'\n", "utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert "listen: port" in info.value.lines[0]
    assert "out of range: expected 1 to 65535" in info.value.lines[0]


def test_check_table_detail_is_not_cut_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    """`vigie check`'s DETAIL column keeps the whole error when the output is not a terminal."""
    from config.vocabulary import Outcome
    from exporter.cli import _print_table
    from probes.observation import Observation

    error = (
        "connection to [2001:db8::1]:443 failed: Network is unreachable (tried 4 addresses) " * 2
    )
    _print_table(
        [
            Observation(
                target_id="t",
                kind="http",
                vantage="v",
                started_at="2026-12-07T18:00:00.000000Z",
                duration_s=0.5,
                success=False,
                outcome=Outcome.CONNECT_ERROR,
                error=error,
            )
        ]
    )
    assert error in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('vantages:\n  - {ledger: "mysql://u:Cen-S3cret@h/x"}\n', "Cen-S3cret"),
        ('vantages:\n  - {ledger: "postgresql://u@h/x", password: 55501234}\n', "55501234"),
        ('vantages:\n  - {ledger: "postgresql://u@h/x", pasword: Cen-Typo-S3cret}\n', "Typo"),
        ('vantages:\n  - {ledger: "postgresql://u:Cen-S3cret@h/x"}\nlisten: "h:99999"\n', "S3c"),
    ],
)
def test_central_config_errors_show_no_secret(
    text: str, secret: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vigie central`'s own configuration: same rule (and its listen port range)."""
    config = tmp_path / "central.yaml"
    config.write_text(text, "utf-8")
    assert main(["central", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert secret not in out + err
    assert err.startswith("vigie: error: ")


def test_central_listen_override_out_of_range_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "central.yaml"
    config.write_text("vantages:\n  - {ledger: 'sqlite:///none.db'}\n", "utf-8")
    assert main(["central", "--config", str(config), "--listen", "127.0.0.1:99999"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "vigie: error: --listen: expected HOST:PORT with a port from 1 to 65535, "
        "got '127.0.0.1:99999'\n"
    )
