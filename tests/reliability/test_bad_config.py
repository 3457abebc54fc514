"""Bad configuration, every category of the issue: each file gives exactly one clear line on
stderr and exit code 2, never a traceback — through `vigie config check` and `vigie run`.

The 38 files of tests/data/invalid (syntax, types, unknown keys, durations, ids, dangerous
steps, not UTF-8, empty) run through the CLI's `main()`; the extra hostile categories (unreadable,
directory, binary, UTF-16, duplicate keys, alias bomb, absurd nesting, huge file, bad
environment override) run as real child processes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from exporter import cli
from tests.reliability.harness import REPO

INVALID = REPO / "tests" / "data" / "invalid"
EXPECTED: dict[str, str] = json.loads((INVALID / "expected.json").read_text("utf-8"))
# Categories the issue names -> files of tests/data/invalid that cover them.
CATEGORIES = {
    "syntax errors": {"syntax-error.yaml", "syntax-tab.yaml"},
    "wrong types": {
        "interval-bool.yaml",
        "status-not-int.yaml",
        "targets-not-list.yaml",
        "top-level-list.yaml",
    },
    "unknown keys": {"unknown-target-key.yaml", "unknown-top-key.yaml"},
    "bad durations": {
        "bad-duration-negative.yaml",
        "bad-duration-unit.yaml",
        "bad-duration-word.yaml",
        "bad-duration-zero.yaml",
    },
    "bad ids": {"id-missing.yaml", "id-space.yaml", "id-uppercase.yaml", "duplicate-id.yaml"},
    "dangerous steps": {
        "step-fill.yaml",
        "step-press.yaml",
        "step-submit.yaml",
        "method-post.yaml",
        "steps-on-http.yaml",
    },
    "not UTF-8": {"not-utf8.yaml"},
    "empty": {"empty.yaml", "only-comment.yaml"},
}
_NO_DAC = [
    "--bounding-set",
    "-dac_override,-dac_read_search",
    "--inh-caps",
    "-dac_override,-dac_read_search",
]


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))


def _cli(
    path: Path,
    *,
    command: str = "config",
    prefix: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    args = ["config", "check", str(path)] if command == "config" else ["run", "--config", str(path)]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "exporter.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=False,
        env={**os.environ, **(env or {})},
        preexec_fn=_limit_memory,
    )


def _one_clear_line(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("vigie: error: ")
    assert words in lines[0], lines[0]
    assert len(lines[0]) < 400


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """`cli.main()` configures structlog on the captured stderr: restore it afterwards."""
    saved = structlog.get_config()
    try:
        yield
    finally:
        structlog.configure(**saved)


@pytest.mark.usefixtures("keep_logging")
class TestInvalidFilesThroughTheCli:
    """The 38 files of tests/data/invalid through the CLI entry point."""

    def test_categories_of_the_issue_are_covered(self) -> None:
        """Each category the issue names has at least one file, and there are 30 or more."""
        for category, files in CATEGORIES.items():
            assert files <= set(EXPECTED), category
        assert len(EXPECTED) >= 30

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_one_line_exit_two(self, name: str, capsys: pytest.CaptureFixture[str]) -> None:
        """`vigie config check FILE` returns 2 and prints exactly the expected line."""
        code = cli.main(["config", "check", str(INVALID / name)])
        out, err = capsys.readouterr()
        assert code == 2
        assert out == ""
        assert err == f"vigie: error: {INVALID / name}: {EXPECTED[name]}\n"


def _unreadable(tmp: Path) -> Path:
    path = tmp / "secret.yaml"
    path.write_text("targets: []\n")
    path.chmod(0)
    return path


def _directory(tmp: Path) -> Path:
    return tmp


def _binary(tmp: Path) -> Path:
    path = tmp / "image.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return path


def _utf16(tmp: Path) -> Path:
    path = tmp / "utf16.yaml"
    path.write_bytes("targets: []\n".encode("utf-16"))
    return path


def _duplicate_key(tmp: Path) -> Path:
    path = tmp / "dup.yaml"
    path.write_text(
        'targets:\n  - {id: a, kind: http, url: "http://127.0.0.1/"}\n'
        'listen: "127.0.0.1:9188"\ntargets: []\n'
    )
    return path


def _alias_bomb(tmp: Path) -> Path:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, 9)]
    path = tmp / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _deep(tmp: Path) -> Path:
    path = tmp / "deep.yaml"
    path.write_text("targets: " + "[" * 3000 + "]" * 3000 + "\n")
    return path


def _huge(tmp: Path) -> Path:
    path = tmp / "huge.yaml"
    path.write_text("targets: []\n# " + "x" * (20 << 20) + "\nlisten: nowhere\n")
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "absent.yaml"


HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (_missing, "file not found"),
    "unreadable": (_unreadable, "permission denied"),
    "directory": (_directory, "is a directory"),
    "binary": (_binary, "not valid UTF-8"),
    "utf16": (_utf16, "not valid UTF-8"),
    "duplicate-key": (_duplicate_key, "given twice"),
    "alias-bomb": (_alias_bomb, "expands to more than"),
    "deep-nesting": (_deep, "nesting deeper than"),
    "huge": (_huge, "listen"),
}


@pytest.mark.slow
class TestHostileFiles:
    """Files crafted to break a parser: one line, exit 2, bounded time and memory."""

    @pytest.mark.parametrize("case", sorted(HOSTILE))
    def test_config_check(self, case: str, tmp_path: Path) -> None:
        """`vigie config check` refuses it with one line naming the problem."""
        make, words = HOSTILE[case]
        prefix: tuple[str, ...] = ()
        if case == "unreadable" and os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("root reads mode-000 files and setpriv is missing")
            prefix = ("setpriv", *_NO_DAC)  # root without CAP_DAC_*: obeys file modes
        _one_clear_line(_cli(make(tmp_path), prefix=prefix), words)

    @pytest.mark.parametrize("case", ["duplicate-key", "alias-bomb", "binary"])
    def test_run_refuses_before_starting(self, case: str, tmp_path: Path) -> None:
        """`vigie run` refuses the same files the same way, before listening or writing."""
        make, words = HOSTILE[case]
        _one_clear_line(_cli(make(tmp_path), command="run"), words)
        assert not list(tmp_path.glob("*.db"))

    def test_bad_environment_override(self, tmp_path: Path) -> None:
        """A bad VIGIE_* variable is one line naming the key, exit 2."""
        config = tmp_path / "ok.yaml"
        config.write_text('targets: [{id: a, kind: http, url: "http://127.0.0.1/"}]\n')
        done = _cli(config, env={"VIGIE_DEFAULTS__INTERVAL": "soon"})
        _one_clear_line(done, "defaults.interval")
