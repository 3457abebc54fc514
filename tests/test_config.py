"""Configuration: the shipped file is valid, overrides work, and every bad file fails clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.probe_kinds import probe_kinds
from config.settings import ConfigError, load_settings
from config.targets import parse_duration
from exporter.cli import probe_settings
from probes.kinds import default_factories

DATA = Path(__file__).parent / "data"
INVALID = DATA / "invalid"
EXPECTED: dict[str, str] = json.loads((INVALID / "expected.json").read_text("utf-8"))
REPO = Path(__file__).resolve().parent.parent
VIGIE = [sys.executable, "-m", "exporter.cli"]


def _vigie(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VIGIE, *args], capture_output=True, text=True, timeout=60, env=env, cwd=REPO, check=False
    )


class TestShippedConfig:
    def test_shipped_file_is_valid(self) -> None:
        """The vigie.yaml shipped in the repository validates and names the ANEF targets."""
        settings = load_settings(REPO / "vigie.yaml")
        ids = [t.id for t in settings.targets]
        assert {"anef-accueil", "anef-connexion", "anef-api", "anef-creation-compte"} <= set(ids)
        assert settings.defaults.interval == 60.0
        assert settings.defaults.timeout == 30.0
        assert len(settings.controls) >= 2
        assert settings.listen == "127.0.0.1:9188"

    def test_api_target_treats_401_as_alive(self) -> None:
        """The back-end target expects 401/403: an unauthenticated refusal means it is alive."""
        settings = load_settings(REPO / "vigie.yaml")
        api = next(t for t in settings.targets if t.id == "anef-api")
        assert set(api.expect.status) == {401, 403}

    def test_every_configurable_kind_has_a_probe(self) -> None:
        """The kinds vigie.yaml accepts are the kinds probes/kinds.py builds: both read the
        same entry points."""
        assert set(probe_kinds()) == set(default_factories()) == {"http", "browser"}


class TestProbeKindRegistry:
    """A probe kind is registered once, as an entry point; another package adds one without
    editing Vigie, and a name claimed twice is one clear error."""

    @staticmethod
    def _package(root: Path, name: str, kinds: dict[str, str]) -> None:
        """An installed distribution `name` (dist-info on `root`) registering `kinds`."""
        info = root / f"{name}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        lines = "".join(f"{kind} = {target}\n" for kind, target in kinds.items())
        (info / "entry_points.txt").write_text("[vigie.probe_kinds]\n" + lines)

    @staticmethod
    def _run(root: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO}"}
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=root,
            check=False,
        )

    def test_a_kind_from_another_package(self, tmp_path: Path) -> None:
        """A package that registers `ping` makes `kind: ping` valid and builds its probe."""
        self._package(tmp_path, "vigie_ping", {"ping": "ping_probe:PingProbe"})
        (tmp_path / "ping_probe.py").write_text(
            "class PingProbe:\n    kind = 'ping'\n"
            "    def __init__(self, settings):\n        self.settings = settings\n"
        )
        (tmp_path / "v.yaml").write_text(
            'targets: [{id: p, kind: ping, url: "http://127.0.0.1/"}]\n'
        )
        done = self._run(
            tmp_path,
            "from pathlib import Path\n"
            "from config.settings import load_settings\n"
            "from probes.kinds import default_factories\n"
            "s = load_settings(Path('v.yaml'))\n"
            "print(s.targets[0].kind, sorted(default_factories()),"
            " default_factories()['ping'].__name__)\n",
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["ping", "['browser',", "'http',", "'ping']", "PingProbe"]

    def test_no_kind_registered(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Vigie run from sources that were never installed: the error says what to do."""
        import config.probe_kinds as registry

        monkeypatch.setattr(registry, "entry_points", lambda group: [])
        registry.probe_kind_entry_points.cache_clear()
        try:
            with pytest.raises(registry.ProbeKindsError, match=r"run `make venv`"):
                registry.probe_kinds()
        finally:
            monkeypatch.undo()
            registry.probe_kind_entry_points.cache_clear()
        assert registry.probe_kinds() == ("browser", "http")

    def test_a_name_claimed_twice(self, tmp_path: Path) -> None:
        """Two packages registering `http` differently: loading a configuration says so."""
        self._package(tmp_path, "vigie_other", {"http": "other:HttpProbe"})
        (tmp_path / "v.yaml").write_text(
            'targets: [{id: a, kind: http, url: "http://127.0.0.1/"}]\n'
        )
        done = self._run(
            tmp_path,
            "import sys\nfrom exporter.cli import main\nsys.exit(main())\n",
            "config",
            "check",
            "v.yaml",
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert "probe kind 'http' is registered twice" in done.stderr
        assert "other:HttpProbe" in done.stderr

    def test_browser_idle_close(self, tmp_path: Path) -> None:
        """The browser stops after 30 s without a check by default; null keeps it running."""
        settings = load_settings(REPO / "vigie.yaml")
        assert settings.browser.idle_close == 30.0
        assert probe_settings(settings).browser.idle_close == 30.0
        cfg = tmp_path / "v.yaml"
        cfg.write_text("browser: {idle_close: null}\n")
        kept = load_settings(cfg)
        assert kept.browser.idle_close is None
        assert probe_settings(kept).browser.idle_close is None

    def test_browser_restart_after(self, tmp_path: Path) -> None:
        """A fresh browser after 200 journeys by default; null never; 0 is refused."""
        settings = load_settings(REPO / "vigie.yaml")
        assert probe_settings(settings).browser.restart_after == 200
        cfg = tmp_path / "v.yaml"
        cfg.write_text("browser: {restart_after: null}\n")
        assert probe_settings(load_settings(cfg)).browser.restart_after is None
        cfg.write_text("browser: {restart_after: 0}\n")
        with pytest.raises(ConfigError, match=r"browser\.restart_after"):
            load_settings(cfg)

    def test_builtin_defaults_used_without_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With no ./vigie.yaml, the built-in ANEF configuration is used."""
        monkeypatch.chdir(tmp_path)
        settings = load_settings(None)
        assert any(t.id == "anef-accueil" for t in settings.targets)

    def test_config_check_command(self) -> None:
        """`vigie config check` on a valid file says OK and exits 0."""
        result = _vigie("config", "check", "vigie.yaml")
        assert result.returncode == 0, result.stderr
        assert "OK" in result.stdout
        assert "6 targets" in result.stdout


class TestEnvironmentOverrides:
    def test_env_overrides_yaml(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """VIGIE_* variables override keys of the file, nested keys with '__'."""
        cfg = tmp_path / "v.yaml"
        cfg.write_text(
            'listen: "127.0.0.1:1"\nledger: {url: "sqlite:///a.db"}\n'
            'targets: [{id: a, kind: http, url: "http://127.0.0.1/"}]\n'
        )
        monkeypatch.setenv("VIGIE_LISTEN", "127.0.0.1:9999")
        monkeypatch.setenv("VIGIE_LEDGER__URL", "sqlite:///b.db")
        settings = load_settings(cfg)
        assert settings.listen == "127.0.0.1:9999"
        assert settings.ledger.url == "sqlite:///b.db"

    def test_bad_env_value_is_reported(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bad value from the environment is rejected like one from the file."""
        cfg = tmp_path / "v.yaml"
        cfg.write_text('targets: [{id: a, kind: http, url: "http://127.0.0.1/"}]\n')
        monkeypatch.setenv("VIGIE_LISTEN", "nowhere")
        with pytest.raises(ConfigError, match="listen: expected HOST:PORT"):
            load_settings(cfg)


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("60s", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), (5, 5.0), ("1.5s", 1.5)],
    )
    def test_valid(self, text: str | int, seconds: float) -> None:
        """Durations with units (and plain numbers of seconds) are parsed to seconds."""
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "10", "10 s", "s", "1m 30s", "-1s", "0s", "1y", "abc"])
    def test_invalid(self, text: str) -> None:
        """Anything else is refused with a hint."""
        with pytest.raises(ValueError, match="duration"):
            parse_duration(text)


class TestInvalidFiles:
    def test_table_covers_every_file(self) -> None:
        """Every file in tests/data/invalid has an expected message, and there are at least 30."""
        files = {p.name for p in INVALID.glob("*.yaml")}
        assert files == set(EXPECTED)
        assert len(files) >= 30

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_rejected_with_expected_line(self, name: str) -> None:
        """Each invalid file gives the expected error naming file, key path and value."""
        path = INVALID / name
        with pytest.raises(ConfigError) as info:
            load_settings(path)
        assert info.value.lines == (f"{path}: {EXPECTED[name]}",)

    @pytest.mark.parametrize("name", ["unknown-target-key.yaml", "step-fill.yaml", "not-utf8.yaml"])
    def test_cli_exit_code_two_one_line(self, name: str) -> None:
        """The CLI prints one line, no traceback, and exits with code 2."""
        rel = f"tests/data/invalid/{name}"
        result = _vigie("config", "check", rel)
        assert result.returncode == 2
        assert result.stderr == f"vigie: error: {rel}: {EXPECTED[name]}\n"
        assert "Traceback" not in result.stderr
        assert result.stdout == ""

    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that does not exist is named as such."""
        with pytest.raises(ConfigError, match="file not found"):
            load_settings(tmp_path / "absent.yaml")

    def test_directory(self, tmp_path: Path) -> None:
        """A directory given as the configuration is named as such."""
        with pytest.raises(ConfigError, match="is a directory"):
            load_settings(tmp_path)

    @pytest.mark.skipif(os.geteuid() == 0, reason="root can read a file with mode 000")
    def test_unreadable(self, tmp_path: Path) -> None:
        """A file without read permission is named as such."""
        path = tmp_path / "secret.yaml"
        path.write_text("targets: []\n")
        path.chmod(0)
        with pytest.raises(ConfigError, match="permission denied"):
            load_settings(path)

    def test_run_refuses_bad_config(self) -> None:
        """`vigie run` with a bad file exits 2 before starting anything."""
        rel = "tests/data/invalid/duplicate-id.yaml"
        result = _vigie("run", "--config", rel)
        assert result.returncode == 2
        assert "duplicate id 'anef'" in result.stderr
