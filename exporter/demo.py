"""`vigie demo`: the simulator plus the service against it, so a newcomer sees everything work.

It only ever talks to the local simulator; nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog
import yaml

from config.settings import load_settings

__all__ = ["DEMO_OWNED", "FAULT_CYCLE", "cmd_demo", "demo_config", "merged_config"]

log = structlog.get_logger("vigie.demo")

# What the demo does to the simulated home page, in turn: (fault or None to clear, what it shows).
FAULT_CYCLE: tuple[tuple[str | None, str], ...] = (
    ("http_503_maintenance", "home page answers 503 'Site en maintenance' -> outage"),
    (None, "home page repaired -> recovery"),
    ("slow:3", "home page answers in 3 s -> degraded"),
    (None, "home page repaired"),
    ("reset", "connections to the home page are reset -> outage"),
    (None, "home page repaired -> recovery"),
)


def _browser_available() -> bool:
    return shutil.which("chromium") is not None or Path("/usr/bin/chromium").exists()


def demo_config(urls: dict[str, str], state: Path, listen: str) -> dict[str, Any]:
    """A configuration probing the simulator at `urls`, keeping its evidence in `state`."""
    site = urls["site_url"].rstrip("/")
    targets: list[dict[str, Any]] = [
        {
            "id": "demo-accueil",
            "name": "Simulateur — page d'accueil",
            "kind": "http",
            "url": site + "/",
            "expect": {"status": [200], "contains": "étrangers"},
            "slow_after": "2s",
        },
        {
            "id": "demo-connexion",
            "name": "Simulateur — page de connexion",
            "kind": "http",
            "url": urls["login_url"],
            "expect": {"status": [200], "contains": "username"},
        },
        {
            "id": "demo-api",
            "name": "Simulateur — service en ligne (API)",
            "kind": "http",
            "url": urls["api_url"],
            "expect": {"status": [401, 403]},
        },
    ]
    if _browser_available():
        targets.append(
            {
                "id": "demo-creation-compte",
                "name": "Simulateur — création de compte",
                "kind": "browser",
                "url": urls["login_url"],
                "interval": "15s",
                "steps": [
                    {"name": "page-de-connexion", "expect_visible": "input[name=username]"},
                    {"name": "lien-creation", "click": "text=Créer votre compte"},
                    {"name": "formulaire", "expect_visible": "input[type=email]"},
                ],
            }
        )
    admin = urls["admin_url"].rstrip("/")
    return {
        "vantage": {"name": "demo", "operator": "Démonstration locale"},
        "user_agent": "Vigie-demo/0.1 (+http://localhost; simulateur local)",
        "defaults": {"interval": "5s", "timeout": "10s"},
        "targets": targets,
        # The simulator's admin API stands in for independent control sites.
        "controls": [admin + "/faults", admin + "/requests"],
        "outages": {"confirm_after": 3, "recover_after": 2, "recheck": "2s"},
        "ledger": {
            "url": f"sqlite:///{state / 'ledger.db'}",
            "artifacts": str(state / "artifacts"),
            "checkpoint_interval": "30s",
        },
        "signing": {"key": str(state / "vantage.key")},
        "listen": listen,
        "min_interval": "1s",
    }


# What the demo always sets itself: the simulated targets and controls, where evidence goes.
DEMO_OWNED = ("targets", "controls", "ledger", "signing", "listen")


def merged_config(demo: dict[str, Any], base: Path | None) -> dict[str, Any]:
    """The demo's configuration over the file `base` (``--config``).

    Everything but `DEMO_OWNED` (outage rules, maintenance windows, vantage, evidence
    password...) comes from `base` when it sets it. `base` must have been validated.
    """
    if base is None:
        return demo
    raw = yaml.safe_load(base.read_text(encoding="utf-8")) or {}
    merged = {**demo, **{k: v for k, v in raw.items() if k not in DEMO_OWNED}}
    for key in DEMO_OWNED:
        merged[key] = demo[key]
    return merged


def cmd_demo(
    args: argparse.Namespace,
    serve: Callable[..., Coroutine[Any, Any, int]],
    run_async: Callable[[Callable[[], Any]], Any],
) -> int:
    """Run the simulator and the service against it; flip faults now and then.

    `serve(settings, ready=...)` and `run_async` are the CLI's (passed in: the CLI imports
    this module, not the other way round).
    """
    from simulator.process import SimulatorProcess

    if args.config is not None:
        load_settings(args.config)  # a bad --config stops here, before the simulator starts
    state = Path(tempfile.mkdtemp(prefix="vigie-demo-"))
    with SimulatorProcess() as sim:
        config = merged_config(demo_config(sim.urls, state, args.listen), args.config)
        config_path = state / "vigie-demo.yaml"
        config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
        settings = load_settings(config_path)

        def ready(url: str) -> None:
            print(
                f"\nVigie demo is running.\n"
                f"  status page : {url}\n"
                f"  metrics     : {url}metrics\n"
                f"  simulator   : {sim.urls['site_url']} (admin: {sim.urls['admin_url']})\n"
                f"  config      : {config_path}\n"
                f"  evidence    : {state}\n"
                f"A fault is switched on the simulated home page every "
                f"{args.fault_every:g} s. Stop with Ctrl-C.\n",
                file=sys.stderr,
                flush=True,
            )

        async def main() -> int:
            service = asyncio.create_task(serve(settings, ready=ready))
            flipper = asyncio.create_task(_flip_faults(sim, args.fault_every))
            if args.duration:
                done, _ = await asyncio.wait({service}, timeout=args.duration)
                if not done:
                    import os
                    import signal

                    os.kill(os.getpid(), signal.SIGTERM)
            code = await service
            flipper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flipper
            return code

        return int(run_async(main))


async def _flip_faults(sim: Any, every: float) -> None:
    index = 0
    while True:
        await asyncio.sleep(every)
        fault, meaning = FAULT_CYCLE[index % len(FAULT_CYCLE)]
        index += 1
        if fault is None:
            await asyncio.to_thread(sim.clear_faults)
        else:
            await asyncio.to_thread(sim.set_fault, "/", fault, "site")
        log.info("demo_fault", fault=fault or "none", meaning=meaning)
