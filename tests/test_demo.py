"""`vigie demo`: the simulator and the service start together and show live metrics."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import pytest

from tests.service_fixture import free_port, http_get


@pytest.mark.slow
class TestDemo:
    def test_demo_shows_live_metrics_and_stops(self) -> None:
        """The demo prints its URLs, serves metrics from the simulator, and stops cleanly."""
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter.cli",
                "demo",
                "--listen",
                f"127.0.0.1:{port}",
                "--duration",
                "12",
                "--fault-every",
                "4",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen = ""
        try:
            deadline = time.monotonic() + 30
            while (
                time.monotonic() < deadline and 'probe_success{target="demo-api"} 1.0' not in seen
            ):
                with contextlib.suppress(OSError):
                    seen = http_get(f"http://127.0.0.1:{port}/metrics", timeout=2)[1].decode()
                time.sleep(0.3)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert 'probe_success{target="demo-api"} 1.0' in seen
        assert 'vigie_target_info{core="false",kind="http"' in seen
        assert process.returncode == 0, stderr[-3000:]
        assert "Vigie demo is running." in stderr
        assert f"http://127.0.0.1:{port}/metrics" in stderr
        assert '"event": "demo_fault"' in stderr
