"""Benchmark of the browser probe: the account-creation journey against a bare Playwright script.

Also measures the memory of a Vigie-like process (20 HTTP + 5 browser targets) with its Chromium.
Runs only against a local simulator child process; prints figures and ratios, asserts nothing.

    .venv/bin/python bench/browser.py [--checks 50] [--rounds 3] [--executable PATH]

The bare script runs the same Chromium build as the probe (whichever the probe picked), so the
ratio compares the probe's own overhead, not two browsers. It runs twice: as the shortest
script would be written, and with the one wait the probe's `click` step adds by definition
(the page the click led to finishes loading); both ratios are printed.

Memory is given as the sum of RSS (counts the pages that Chromium's processes share once per
process) and as the sum of PSS (shares them out: the memory the tree really takes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog
from playwright.async_api import async_playwright

from config.targets import Target
from config.vocabulary import Outcome
from probes.base import BrowserOptions, ProbeContext, ProbeSettings
from probes.browser import BrowserProbe
from probes.browser_runtime import CHROMIUM_ARGS, process_tree
from simulator.counts import AUDIT_ENV
from simulator.process import SimulatorProcess

USER_AGENT = "Vigie-bench/1.0 (+local benchmark; lecture seule)"
CREATE_LINK = "a:has-text('Créer votre compte'), a:has-text('Première visite')"
JOURNEY_STEPS = (
    {"name": "page-de-connexion", "expect_visible": "input[name=username]"},
    {"name": "lien-creation", "click": CREATE_LINK},
    {"name": "formulaire", "expect_visible": "input[type=email]"},
)
# Issue 15: the read-only proxy every byte crosses may cost some; journey p50 ≤ 1.3 times the bare
# script, peak PSS ≤ 1.2 times the bare script's, idle memory after idle_close unchanged (~45 MB).
RATIO_GOAL = 1.3
PSS_RATIO_GOAL = 1.2
P50_GOAL_S = 0.6
RSS_GOAL_MB = 350.0
DEFAULT_CONCURRENCY = BrowserOptions().max_concurrency


def _target(**fields: Any) -> Target:
    return Target.model_validate(fields)


def _settings(
    concurrency: int = 1, executable: str | None = None, idle_close: float | None = None
) -> ProbeSettings:
    return ProbeSettings(
        vantage="bench",
        user_agent=USER_AGENT,
        environment={"vantage": "bench"},
        browser=BrowserOptions(
            executable=executable, max_concurrency=concurrency, idle_close=idle_close
        ),
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _row(label: str, values: list[float]) -> str:
    return (
        f"  {label:<34} p50 {_percentile(values, 0.5) * 1000:7.1f} ms   "
        f"p95 {_percentile(values, 0.95) * 1000:7.1f} ms   "
        f"mean {statistics.fmean(values) * 1000:7.1f} ms"
    )


# ----------------------------------------------------------------------------- latency


async def _bare_journey(browser: Any, url: str, *, settle: bool = False) -> tuple[float, float]:
    """The same journey as a minimal Playwright script would write it: (journey, total) s.

    With `settle`, the script also waits for the page the click led to to finish loading (its
    load event), as the probe's `click` step does by definition.
    """
    started = time.perf_counter()
    context = await browser.new_context(user_agent=USER_AGENT)
    page = await context.new_page()
    journey_start = time.perf_counter()
    await page.goto(url)
    await page.locator("input[name=username]").first.wait_for(state="visible")
    await page.locator(CREATE_LINK).first.click()
    if settle:
        await page.wait_for_load_state("load")
    await page.locator("input[type=email]").first.wait_for(state="visible")
    journey = time.perf_counter() - journey_start
    await context.close()
    return journey, time.perf_counter() - started


async def _probe_journey(probe: BrowserProbe, target: Target) -> tuple[float, float]:
    started = time.perf_counter()
    obs = await probe.check(ProbeContext(target=target, timeout=30))
    total = time.perf_counter() - started
    if obs.outcome is not Outcome.OK:
        raise RuntimeError(f"journey failed: {obs.error}")
    return obs.duration_s, total


async def latency(login_url: str, checks: int, executable: str | None) -> dict[str, Any]:
    """p50/p95 of the journey, Vigie's probe vs a bare Playwright script, interleaved."""
    target = _target(id="anef-creation-compte", kind="browser", url=login_url, steps=JOURNEY_STEPS)
    probe = BrowserProbe(_settings(executable=executable))
    await _probe_journey(probe, target)  # launches the browser the probe picks
    async with async_playwright() as playwright:
        bare_browser = await playwright.chromium.launch(
            executable_path=probe.runtime.executable,
            args=list(CHROMIUM_ARGS),
            chromium_sandbox=False,
        )
        try:
            for _ in range(3):  # warm-up: launches, caches of the simulator and the OS
                await _probe_journey(probe, target)
                await _bare_journey(bare_browser, login_url)
            kinds = ("probe", "bare", "settled")
            results: dict[str, list[float]] = {
                f"{kind}_{part}": [] for kind in kinds for part in ("journey", "total")
            }
            for index in range(checks):
                shift = index % len(kinds)
                for which in kinds[shift:] + kinds[:shift]:
                    if which == "probe":
                        journey, total = await _probe_journey(probe, target)
                    else:
                        journey, total = await _bare_journey(
                            bare_browser, login_url, settle=which == "settled"
                        )
                    results[f"{which}_journey"].append(journey)
                    results[f"{which}_total"].append(total)
        finally:
            await bare_browser.close()
            await probe.aclose()
    return {**results, "executable": probe.runtime.executable, "version": probe.runtime.version}


# --------------------------------------------------------------------------------- RSS


def _kind(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):
        return "?"
    if "playwright/driver" in command:
        return "playwright driver (node)"
    if "python" in command.split(" ", 1)[0]:
        return "python (Vigie or the script)"
    parts = command.split()
    for prefix in ("--utility-sub-type=", "--type="):
        for part in parts:
            if part.startswith(prefix):
                return "chromium " + part.split("=", 1)[1].split(".")[0]
    return "chromium browser"


def _memory(root: int) -> dict[str, dict[str, int]]:
    """RSS and PSS (bytes) of the tree under `root`, by kind of process."""
    kinds: dict[str, dict[str, int]] = {}
    for pid in process_tree(root):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text("ascii")
        except OSError:
            continue
        values = {
            line.split(":")[0]: int(line.split()[1]) * 1024
            for line in text.splitlines()[1:]
            if line.endswith("kB")
        }
        row = kinds.setdefault(_kind(pid), {"rss": 0, "pss": 0, "count": 0})
        row["rss"] += values.get("Rss", 0)
        row["pss"] += values.get("Pss", 0)
        row["count"] += 1
    return kinds


def _total(kinds: dict[str, dict[str, int]], key: str) -> int:
    return sum(row[key] for row in kinds.values())


async def _rss_child(
    urls: dict[str, str], rounds: int, executable: str | None, idle_close: float
) -> dict[str, Any]:
    """Inside the child: 20 HTTP + 5 browser targets, `rounds` times; peak memory of the tree."""
    from probes.http import HttpProbe

    site, login, portal = urls["site_url"], urls["login_url"], urls["portal_url"]
    http_urls = [
        site,
        f"{site}informations/titres-de-sejour",
        f"{site}informations/naturalisation",
        f"{site}informations/aide",
        portal,
        login,
        urls["registration_url"],
    ]
    http_targets = [
        _target(id=f"http-{i:02d}", kind="http", url=http_urls[i % len(http_urls)])
        for i in range(20)
    ]
    browser_targets = [
        _target(id="b-creation", kind="browser", url=login, steps=JOURNEY_STEPS),
        _target(
            id="b-portail",
            kind="browser",
            url=portal,
            steps=({"expect_visible": "app-root"}, {"fail_if_text": "Site en maintenance"}),
        ),
        _target(
            id="b-connexion",
            kind="browser",
            url=login,
            steps=(
                {"expect_visible": "input[name=username]"},
                {"expect_visible": "input[name=password]"},
                {"expect_visible": "text=FranceConnect"},
            ),
        ),
        _target(id="b-accueil", kind="browser", url=site, steps=({"expect_text": "ANEF"},)),
        _target(
            id="b-aide",
            kind="browser",
            url=f"{site}informations/aide",
            steps=({"expect_text": "Aide et contact"},),
        ),
    ]
    settings = _settings(
        concurrency=DEFAULT_CONCURRENCY, executable=executable, idle_close=idle_close
    )
    http = HttpProbe(settings)
    browser = BrowserProbe(settings)
    me = os.getpid()
    peak: dict[str, Any] = {"rss": 0, "pss": 0, "kinds": {}}
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            kinds = _memory(me)
            if _total(kinds, "rss") > peak["rss"]:
                peak.update(rss=_total(kinds, "rss"), pss=_total(kinds, "pss"), kinds=kinds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    sampler = asyncio.create_task(sample())
    outcomes: dict[str, int] = {}
    try:
        for _ in range(rounds):
            jobs = [http.check(ProbeContext(target=t, timeout=10)) for t in http_targets]
            jobs += [browser.check(ProbeContext(target=t, timeout=30)) for t in browser_targets]
            for obs in await asyncio.gather(*jobs):
                outcomes[str(obs.outcome)] = outcomes.get(str(obs.outcome), 0) + 1
        kinds = _memory(me)
        idle: dict[str, Any] = {
            "rss": _total(kinds, "rss"),
            "pss": _total(kinds, "pss"),
            "kinds": kinds,
        }
        processes = len(process_tree(me))
        await asyncio.sleep(idle_close + 2)  # the browser and its driver stop when idle
        kinds = _memory(me)
        closed: dict[str, Any] = {
            "rss": _total(kinds, "rss"),
            "pss": _total(kinds, "pss"),
            "kinds": kinds,
        }
    finally:
        stop.set()
        await sampler
        await browser.aclose()
        await http.aclose()
    return {
        "peak": peak,
        "idle": idle,
        "closed": closed,
        "outcomes": outcomes,
        "processes": processes,
    }


async def _bare_memory_child(urls: dict[str, str], rounds: int, executable: str) -> dict[str, Any]:
    """Inside the child: the reference, a bare Playwright script doing the journey `rounds` times.

    Launched as such a script would launch it (Playwright's own flags only), on the same
    Chromium build; its peak memory is what any Playwright journey costs on this machine.
    Sampled once each page is shown (the Vigie side every 0.2 s): if anything, the reference
    peak is underestimated, which leans the ratio against Vigie.
    """
    me = os.getpid()
    peak: dict[str, Any] = {"rss": 0, "pss": 0, "kinds": {}}

    def sample() -> None:
        kinds = _memory(me)
        if _total(kinds, "rss") > peak["rss"]:
            peak.update(rss=_total(kinds, "rss"), pss=_total(kinds, "pss"), kinds=kinds)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable)
        try:
            for _ in range(rounds):
                context = await browser.new_context(user_agent=USER_AGENT)
                page = await context.new_page()
                await page.goto(urls["login_url"])
                sample()
                await page.locator(CREATE_LINK).first.click()
                await page.locator("input[type=email]").first.wait_for(state="visible")
                sample()
                await context.close()
        finally:
            await browser.close()
    return {"peak": peak}


def rss(
    sim: SimulatorProcess, rounds: int, executable: str | None, idle_close: float
) -> dict[str, Any]:
    """Run the Vigie-like process as a child so its tree is only itself and its browser."""
    return _child(sim, "--rss-child", rounds, executable, idle_close)


def bare_rss(sim: SimulatorProcess, rounds: int, executable: str) -> dict[str, Any]:
    """The reference: a bare Playwright script's tree, as a child process too."""
    return _child(sim, "--bare-rss-child", rounds, executable, 0.0)


def _child(
    sim: SimulatorProcess, mode: str, rounds: int, executable: str | None, idle_close: float
) -> dict[str, Any]:
    extra = ["--executable", executable] if executable else []
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            mode,
            json.dumps(sim.urls),
            "--rounds",
            str(rounds),
            "--idle-close",
            str(idle_close),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _service_targets(urls: dict[str, str]) -> list[dict[str, Any]]:
    """The 20 HTTP + 5 browser targets of the memory goal, as `vigie.yaml` entries."""
    site, login, portal = urls["site_url"], urls["login_url"], urls["portal_url"]
    pages = [f"{site}informations/{name}" for name in ("titres-de-sejour", "aide")]
    http_urls = [site, portal, login, urls["registration_url"], *pages]
    targets: list[dict[str, Any]] = [
        {"id": f"http-{i:02d}", "kind": "http", "url": http_urls[i % len(http_urls)]}
        for i in range(20)
    ]
    journeys: list[tuple[str, list[dict[str, Any]]]] = [
        (login, [dict(step) for step in JOURNEY_STEPS]),
        (portal, [{"expect_visible": "app-root"}, {"fail_if_text": "Site en maintenance"}]),
        (login, [{"expect_visible": "input[name=username]"}]),
        (site, [{"expect_text": "ANEF"}]),
        (pages[1], [{"expect_text": "Aide et contact"}]),
    ]
    for i, (url, steps) in enumerate(journeys):
        targets.append(
            {"id": f"browser-{i}", "kind": "browser", "url": url, "steps": steps, "interval": "5m"}
        )
    return targets


def service_memory(sim: SimulatorProcess, seconds: float) -> dict[str, Any]:
    """The real `vigie run` with the shipped defaults: its tree's memory over `seconds`."""
    from tests.service_fixture import ServiceProcess

    samples: list[tuple[float, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="vigie-bench-") as state:
        config = {
            "vantage": {"name": "bench"},
            "defaults": {"interval": "60s", "timeout": "30s"},
            "targets": _service_targets(sim.urls),
            "controls": [sim.urls["site_url"]],
        }
        service = ServiceProcess(config, Path(state))
        service.start()
        assert service.process is not None
        began = time.monotonic()
        try:
            while (elapsed := time.monotonic() - began) < seconds:
                kinds = _memory(service.process.pid)
                samples.append((elapsed, _total(kinds, "rss"), _total(kinds, "pss")))
                time.sleep(0.25)
            checks = service.metrics().count("probe_success{")
        finally:
            service.stop()
    peak = max(samples, key=lambda sample: sample[2])
    # Time-weighted: samples are evenly spaced, so the mean of the samples.
    return {
        "peak_rss": max(sample[1] for sample in samples),
        "peak_pss": peak[2],
        "mean_rss": statistics.fmean(sample[1] for sample in samples),
        "mean_pss": statistics.fmean(sample[2] for sample in samples),
        "samples": len(samples),
        "series": checks,
    }


# -------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executable", default=None, help="browser (default: the probe's choice)")
    parser.add_argument(
        "--idle-close", type=float, default=5.0, help="browser.idle_close in seconds (default 5)"
    )
    parser.add_argument(
        "--service-seconds",
        type=float,
        default=330.0,
        help="how long to run the real service for its memory (default 330: every target once)",
    )
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--bare-rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Library logs at warning and above only: stdout carries the figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.bare_rss_child:
        urls = json.loads(args.bare_rss_child)
        result = asyncio.run(_bare_memory_child(urls, args.rounds, args.executable))
        print(json.dumps(result))
        return 0
    if args.rss_child:
        urls = json.loads(args.rss_child)
        result = asyncio.run(_rss_child(urls, args.rounds, args.executable, args.idle_close))
        print(json.dumps(result))
        return 0
    # The bare script is not read-only: keep its writes out of any simulator write audit.
    env = {k: v for k, v in os.environ.items() if k != AUDIT_ENV}
    with SimulatorProcess(env=env) as sim:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"Machine: {os.cpu_count()} CPUs, load average {load} (figures depend on it)")
        print(f"Browser journey on the simulator ({args.checks} checks each, interleaved)")
        print(f"  journey: {sim.login_url[:60]}… → click '{CREATE_LINK}' → e-mail field")
        results = asyncio.run(latency(sim.login_url, args.checks, args.executable))
        print(f"  browser: {results['executable']} (Chromium {results['version']}), both sides")
        print(_row("Vigie probe, journey", results["probe_journey"]))
        print(_row("bare Playwright, journey", results["bare_journey"]))
        print(_row("Vigie probe, whole check", results["probe_total"]))
        print(_row("bare Playwright, context+journey", results["bare_total"]))
        print(_row("bare + load wait, journey", results["settled_journey"]))
        print(_row("bare + load wait, context+journey", results["settled_total"]))
        for reference, label in (("bare", "bare script"), ("settled", "bare + load wait")):
            for kind in ("journey", "total"):
                for q, name in ((0.5, "p50"), (0.95, "p95")):
                    ratio = _percentile(results[f"probe_{kind}"], q) / _percentile(
                        results[f"{reference}_{kind}"], q
                    )
                    verdict = "ok" if ratio <= RATIO_GOAL else "ABOVE GOAL"
                    print(
                        f"  ratio vs {label:<16} {kind:<8} {name}: {ratio:5.2f} "
                        f"(goal ≤ {RATIO_GOAL}) {verdict}"
                    )
        p50 = _percentile(results["probe_journey"], 0.5)
        verdict = "ok" if p50 <= P50_GOAL_S else "ABOVE GOAL"
        print(f"  probe journey p50: {p50:.3f} s (goal ≤ {P50_GOAL_S} s) {verdict}")

        print(f"\nMemory: one process, 20 HTTP + 5 browser targets, {args.rounds} rounds")
        print(
            f"  (all 25 checks started at once, browser concurrency {DEFAULT_CONCURRENCY} "
            "as shipped: the worst case)"
        )
        memory = rss(sim, args.rounds, args.executable, args.idle_close)
        bare = bare_rss(sim, args.rounds, results["executable"])
        mb = 1024 * 1024
        labels = {
            "peak": "peak",
            "idle": "idle, browser open",
            "closed": f"idle, after idle_close ({args.idle_close:g} s)",
        }
        for key, label in labels.items():
            print(
                f"  {label:<32} RSS sum {memory[key]['rss'] / mb:7.1f} MB   "
                f"PSS sum {memory[key]['pss'] / mb:7.1f} MB"
            )
        for key in ("rss", "pss"):
            peak = memory["peak"][key] / mb
            verdict = "ok" if peak <= RSS_GOAL_MB else "ABOVE GOAL"
            print(f"  peak {key.upper()} sum / goal: {peak:.1f} / {RSS_GOAL_MB:.0f} MB {verdict}")
        print(
            f"  reference, bare Playwright script doing the journey (its own flags): "
            f"RSS sum {bare['peak']['rss'] / mb:.1f} MB, PSS sum {bare['peak']['pss'] / mb:.1f} MB"
        )
        for key in ("rss", "pss"):
            ratio = memory["peak"][key] / bare["peak"][key]
            goal = f" (goal ≤ {PSS_RATIO_GOAL}) " if key == "pss" else ""
            verdict = ("ok" if ratio <= PSS_RATIO_GOAL else "ABOVE GOAL") if goal else ""
            print(f"  peak {key.upper()} sum / bare script's: {ratio:.2f}{goal}{verdict}")
        for label, peak_kinds in (
            ("Vigie", memory["peak"]["kinds"]),
            ("bare", bare["peak"]["kinds"]),
        ):
            print(f"  at peak, {label}, by process kind (RSS / PSS MB, count):")
            for kind, row in sorted(peak_kinds.items(), key=lambda kv: -kv[1]["pss"]):
                print(
                    f"    {kind:<28} {row['rss'] / mb:7.1f} / {row['pss'] / mb:7.1f}  "
                    f"x{row['count']}"
                )
        print(f"  processes in the tree: {memory['processes']}; outcomes: {memory['outcomes']}")

        if args.service_seconds > 0:
            print(
                f"\nMemory: the real service (vigie run, shipped defaults: HTTP every 60 s, "
                f"journeys every 5 min, idle_close 30 s), {args.service_seconds:g} s"
            )
            served = service_memory(sim, args.service_seconds)
            for key in ("rss", "pss"):
                peak = served[f"peak_{key}"] / mb
                verdict = "ok" if peak <= RSS_GOAL_MB else "ABOVE GOAL"
                print(
                    f"  {key.upper()} sum: peak {peak:7.1f} MB ({verdict}, goal "
                    f"{RSS_GOAL_MB:.0f}), time-weighted mean {served[f'mean_{key}'] / mb:7.1f} MB"
                )
            print(f"  {served['samples']} samples, {served['series']} targets with a result")
    return 0


if __name__ == "__main__":
    sys.exit(main())
