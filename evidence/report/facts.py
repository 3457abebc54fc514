"""Tallies, over a stream of ledger entries, the report's environment facts and clock jumps.

Every distinct value of each NF Z67-147 fact (with how many observations recorded it, first
and last), the addresses of each target, and the `clock_jump` entries. Bounded memory; it
never keeps observations, and never reads or writes anything itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from config.targets import CONTROL_PREFIX
from evidence.report.data import ClockJumpFact, EnvironmentFacts, SeenValue

__all__ = [
    "CLOCK_JUMP",
    "ENVIRONMENT_FIELDS",
    "MAX_CLOCK_JUMPS",
    "MAX_VALUES",
    "ReportFacts",
    "clock_jump_fact",
    "clock_text",
    "parse_time",
    "sample_environment",
]

CLOCK_JUMP = "clock_jump"  # the ledger entry type (evidence.ledger.CLOCK_JUMP)
MAX_VALUES = 12  # distinct values listed per environment fact (and per target's addresses)
MAX_CLOCK_JUMPS = 200  # clock jumps listed in the report (all are counted)
_OPTIONAL_FIELDS = frozenset({"browsers", "proxies"})  # absent: no browser, no proxy
_MAX_ADDRESS_SETS = 256  # (remote_ip, resolved_ips) pairs per target held before tallying

# EnvironmentFacts field -> the observation's `environment` keys holding it (first present)
ENVIRONMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "hostnames": ("hostname",),
    "local_ips": ("local_ips",),
    "resolvers": ("resolvers", "resolver"),
    "proxies": ("proxy",),
    "os": ("os",),
    "python": ("python",),
    "vigie": ("vigie",),
    "browsers": ("browser",),
    "user_agents": ("user_agent",),
    "clock": ("clock",),
}

# One tallied value: [observations, earliest started_at, latest started_at]
_Seen = list[Any]
# A run of identical checks of one target:
# [environment as given, remote_ip, count, first, last, resolved_ips (tuple, or JSON bytes)]
# A run of checks of one target with the same facts but addresses:
# [environment decoded, count, first, last, its JSON text without resolved_ips (or None)]
_Run = list[Any]


# where the sync state was read (probes.environment.clock_sync_state), said in French
_CLOCK_SOURCES = {
    "kernel": "état NTP du noyau Linux",
    "ntp": "NTP",
    "system": "horloge du système",
}


def clock_text(clock: Any) -> str | None:
    """The clock facts of an observation's environment, in French."""
    if not isinstance(clock, Mapping):
        return None if clock is None else str(clock)
    raw = str(clock.get("source") or "system")
    source = _CLOCK_SOURCES.get(raw, raw)
    synced = clock.get("synchronized")
    state = (
        "synchronisée"
        if synced is True
        else "non synchronisée"
        if synced is False
        else "synchronisation inconnue"
    )
    offset = clock.get("offset_s")
    text = f"{source}, {state}"
    if isinstance(offset, int | float) and not isinstance(offset, bool):
        text += f", écart {offset:+.3f} s"
    return text


def _texts(field: str, environment: Mapping[str, Any]) -> list[str]:
    """The texts of one fact in one observation's environment (several for a list)."""
    value = None
    for key in ENVIRONMENT_FIELDS[field]:
        value = environment.get(key)
        if value is not None:
            break
    if field == "clock":
        text = clock_text(value)
        return [text] if text else []
    if value is None or value in ("", [], {}):
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [text for item in items if item is not None and (text := str(item))]


def parse_time(text: Any) -> dt.datetime | None:
    """The time of an ISO 8601 text, UTC when it names no zone (None: no text, or unreadable)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _before(a: str, b: str) -> bool:
    """Whether the time `a` is before `b` (RFC 3339 texts; UTC ones compare as text)."""
    if len(a) == len(b) and a[-1:] == "Z" and b[-1:] == "Z":
        return a < b
    ta, tb = parse_time(a), parse_time(b)
    if ta is None or tb is None:
        return tb is None and ta is not None
    return ta < tb


def _note(table: dict[str, _Seen], text: str, tally: Sequence[Any], limit: int) -> bool:
    """Add the tally ``(count, first, last)`` of `text`; False when the table is full."""
    seen = table.get(text)
    if seen is None:
        if len(table) >= limit:
            return False
        table[text] = [tally[0], tally[1], tally[2]]
        return True
    count, first, last = tally
    seen[0] += count
    old = seen[1]
    if (
        first < old
        if len(first) == len(old) and first[-1:] == old[-1:] == "Z"
        else (_before(first, old))
    ):
        seen[1] = first
    old = seen[2]
    if (
        old < last
        if len(last) == len(old) and last[-1:] == old[-1:] == "Z"
        else (_before(old, last))
    ):
        seen[2] = last
    return True


def _seen_values(table: Mapping[str, _Seen]) -> tuple[SeenValue, ...]:
    return tuple(
        SeenValue(
            value=text, count=int(seen[0]), first=parse_time(seen[1]), last=parse_time(seen[2])
        )
        for text, seen in table.items()
    )


def _decoded(environment: Any) -> Any:
    """An observation's environment as a mapping (JSON text decoded; None when absent)."""
    if environment is None or isinstance(environment, Mapping):
        return environment
    try:
        text = bytes(environment)
    except TypeError:
        return environment
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


_RESOLVED_KEY = b'"resolved_ips":['


def _split_addresses(text: bytes) -> tuple[bytes, bytes | None]:
    """An environment's canonical JSON without its `resolved_ips` list, and that list's JSON.

    Cut as text (the list holds address strings, which never hold ``]``), so that checks
    whose addresses alone change are compared without decoding anything.
    """
    at = text.find(_RESOLVED_KEY)
    if at < 0:
        return text, None
    start = at + len(_RESOLVED_KEY) - 1
    end = text.find(b"]", start)
    if end < 0:
        return text, None
    return text[:start] + text[end + 1 :], text[start : end + 1]


def _same_facts(a: Any, b: Any) -> bool:
    """Whether two environments hold the same facts, their `resolved_ips` aside.

    Without copying either: `b` holds `a`'s addresses for the time of one comparison.
    """
    if a.__class__ is not dict or b.__class__ is not dict or len(a) != len(b):
        return bool(a == b)
    theirs = b.get("resolved_ips")
    if theirs is None or "resolved_ips" not in a:
        return bool(a == b)
    b["resolved_ips"] = a["resolved_ips"]
    try:
        return bool(a == b)
    finally:
        b["resolved_ips"] = theirs


def clock_jump_fact(body: Mapping[str, Any], seq: int | None = None) -> ClockJumpFact | None:
    """A `clock_jump` entry as the report shows it (None when its times are unreadable)."""
    detected = parse_time(body.get("wall_after"))
    jump = body.get("jump_s")
    if detected is None or not isinstance(jump, int | float) or isinstance(jump, bool):
        return None
    clock = body.get("clock")
    synced = clock.get("synchronized") if isinstance(clock, Mapping) else None
    raw_seq = body.get("seq", seq)
    return ClockJumpFact(
        detected_at=detected,
        jump_s=float(jump),
        before=parse_time(body.get("wall_before")),
        expected_at=parse_time(body.get("wall_expected")),
        seq=raw_seq if isinstance(raw_seq, int) and not isinstance(raw_seq, bool) else seq,
        synchronized=synced if isinstance(synced, bool) else None,
    )


class ReportFacts:
    """Environment facts and clock jumps of a stream of entries, in ledger order.

    `observation` is called for every observation and costs one dict comparison while the
    facts of a target do not change: runs of identical facts are tallied at once. A target
    whose addresses change at every check (DNS round robin) costs a few dict operations more;
    only a change of its other facts costs a full tally. Tallies of consecutive parts of the
    stream merge with `merge` (e.g. from worker processes; the object pickles). At most
    `limit` distinct values are kept per fact: the observations of the others are counted in
    `omitted`.
    """

    __slots__ = (
        "_addresses",
        "_facts",
        "_runs",
        "jumps",
        "jumps_total",
        "limit",
        "missing",
        "not_fresh_connection",
        "not_fresh_profile",
        "observations",
        "omitted",
        "remote_ips",
        "resolved_ips",
        "values",
    )

    def __init__(self, limit: int = MAX_VALUES) -> None:
        self.limit = limit
        # target -> run of identical checks (see _Run)
        self._runs: dict[str, _Run] = {}
        # target -> run of identical facts but addresses: [environment, count, first, last]
        self._facts: dict[str, _Run] = {}
        # target -> (remote_ip, resolved_ips) -> [count, first, last], tallied at `close`
        self._addresses: dict[str, dict[tuple[Any, Any], _Seen]] = {}
        self.values: dict[str, dict[str, _Seen]] = {field: {} for field in ENVIRONMENT_FIELDS}
        self.remote_ips: dict[str, dict[str, _Seen]] = {}
        self.resolved_ips: dict[str, dict[str, _Seen]] = {}
        self.omitted: dict[str, int] = {}
        self.missing: dict[str, int] = {}
        self.observations = 0
        self.not_fresh_profile = 0
        self.not_fresh_connection = 0
        self.jumps: list[tuple[int | None, dict[str, Any]]] = []
        self.jumps_total = 0

    def __getstate__(self) -> dict[str, Any]:
        self.close()
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def observation(self, target: str, started: str, remote_ip: Any, environment: Any) -> None:
        """Tally one observation: its target, `started_at`, `remote_ip` and `environment`.

        `environment`: the decoded mapping, or its JSON text undecoded (bytes, or any object
        comparable with ``==`` that `bytes()` accepts, such as ``msgspec.Raw``): it is then
        decoded only when it differs from the previous check's of the target.
        """
        run = self._runs.get(target)
        if run is not None and run[1] == remote_ip and run[0] == environment:
            run[2] += 1
            run[4] = started
            return
        self._change(target, started, remote_ip, environment, run)

    def _change(
        self, target: str, started: str, remote_ip: Any, environment: Any, run: _Run | None
    ) -> None:
        """A check unlike the previous one of its target: end that run, maybe its facts."""
        if run is not None:
            self._flush_run(target, run)
        facts = self._facts.get(target)
        mapping = environment
        if environment is not None and not isinstance(environment, Mapping):
            # JSON text: decoded only when more than its addresses changed
            text = bytes(environment)
            rest, listed = _split_addresses(text)
            if listed is not None or b'"resolved_ips"' not in text:
                if facts is None or facts[4] != rest:
                    if facts is not None:
                        self._flush_facts(facts)
                    self._facts[target] = [_decoded(text), 0, started, started, rest]
                self._runs[target] = [environment, remote_ip, 1, started, started, listed]
                return
            mapping = _decoded(text)  # not canonical JSON: compared decoded
        resolved = mapping.get("resolved_ips") if isinstance(mapping, Mapping) else None
        addresses = tuple(resolved) if isinstance(resolved, list) else resolved
        if facts is None or facts[4] is not None or not _same_facts(facts[0], mapping):
            if facts is not None:
                self._flush_facts(facts)
            self._facts[target] = [mapping, 0, started, started, None]
        self._runs[target] = [environment, remote_ip, 1, started, started, addresses]

    def observation_entry(self, entry: Mapping[str, Any]) -> None:
        """Tally one decoded observation entry."""
        self.observation(
            str(entry.get("target_id") or ""),
            str(entry.get("started_at") or ""),
            entry.get("remote_ip"),
            entry.get("environment"),
        )

    def clock_jump(self, seq: int | None, body: Mapping[str, Any]) -> None:
        """Note one `clock_jump` entry (the first MAX_CLOCK_JUMPS are kept, all counted)."""
        self.jumps_total += 1
        if len(self.jumps) < MAX_CLOCK_JUMPS:
            self.jumps.append((seq, dict(body)))

    def _omit(self, key: str, count: int) -> None:
        self.omitted[key] = self.omitted.get(key, 0) + count

    def _flush_run(self, target: str, run: _Run) -> None:
        """Count a run of identical checks in its run of facts and by its addresses."""
        count, last = run[2], run[4]
        self.observations += count
        facts = self._facts[target]
        facts[1] += count
        facts[3] = last
        key = (run[1], run[5])
        addresses = self._addresses.get(target)
        if addresses is None:
            addresses = self._addresses[target] = {}
        seen = addresses.get(key)
        if seen is not None:  # runs of one target come in ledger order
            seen[0] += count
            seen[2] = last
            return
        if len(addresses) >= _MAX_ADDRESS_SETS:
            self._flush_addresses(target, addresses)
            addresses.clear()
        addresses[key] = [count, run[3], last]

    def _flush_addresses(self, target: str, addresses: Mapping[tuple[Any, Any], _Seen]) -> None:
        """Tally each address of each (remote_ip, resolved_ips) pair seen for `target`."""
        limit = self.limit
        for (remote_ip, listed), tally in addresses.items():
            count = tally[0]
            resolved = listed
            if remote_ip:
                table = self.remote_ips.setdefault(target, {})
                if not _note(table, str(remote_ip), tally, limit):
                    self._omit(f"remote_ips/{target}", count)
            if isinstance(listed, bytes):  # the JSON list, as `_split_addresses` cut it
                try:
                    resolved = json.loads(listed)
                except ValueError:
                    resolved = None
            if isinstance(resolved, tuple | list) and resolved:
                table = self.resolved_ips.setdefault(target, {})
                for item in resolved:
                    if item and not _note(table, str(item), tally, limit):
                        self._omit(f"resolved_ips/{target}", count)

    def _flush_facts(self, facts: _Run) -> None:
        """Tally the facts (all but the addresses) of a run of checks."""
        environment, count = facts[0], facts[1]
        if not count:
            return
        if not isinstance(environment, Mapping):
            environment = {}
        tally = facts[1:4]
        limit = self.limit
        for field, table in self.values.items():
            texts = _texts(field, environment)
            if not texts and field not in _OPTIONAL_FIELDS:
                self.missing[field] = self.missing.get(field, 0) + count
            for text in texts:
                if not _note(table, text, tally, limit):
                    self._omit(field, count)
        if environment.get("fresh_profile") is False:
            self.not_fresh_profile += count
        if environment.get("fresh_connection") is False:
            self.not_fresh_connection += count

    def close(self) -> None:
        """Tally the pending runs (done by every reader; more observations may follow)."""
        runs, self._runs = self._runs, {}
        for target, run in runs.items():
            self._flush_run(target, run)
        facts, self._facts = self._facts, {}
        for run in facts.values():
            self._flush_facts(run)
        addresses, self._addresses = self._addresses, {}
        for target, pairs in addresses.items():
            self._flush_addresses(target, pairs)

    def merge(self, later: ReportFacts) -> None:
        """Add the tallies of the entries that come after these ones."""
        self.close()
        later.close()
        limit = self.limit
        self.observations += later.observations
        self.not_fresh_profile += later.not_fresh_profile
        self.not_fresh_connection += later.not_fresh_connection
        for key, count in later.omitted.items():
            self._omit(key, count)
        for key, count in later.missing.items():
            self.missing[key] = self.missing.get(key, 0) + count
        for field, table in later.values.items():
            mine = self.values.setdefault(field, {})
            for text, tally in table.items():
                if not _note(mine, text, tally, limit):
                    self._omit(field, tally[0])
        for name, own, tables in (
            ("remote_ips", self.remote_ips, later.remote_ips),
            ("resolved_ips", self.resolved_ips, later.resolved_ips),
        ):
            for target, table in tables.items():
                mine = own.setdefault(target, {})
                for text, tally in table.items():
                    if not _note(mine, text, tally, limit):
                        self._omit(f"{name}/{target}", tally[0])
        room = MAX_CLOCK_JUMPS - len(self.jumps)
        self.jumps.extend(later.jumps[: max(room, 0)])
        self.jumps_total += later.jumps_total

    def environment_facts(
        self, vantage: str, operator: str, user_agent: str | None = None
    ) -> EnvironmentFacts:
        """The tallied facts, every distinct value with its count, first and last time."""
        self.close()
        fields = {field: _seen_values(table) for field, table in self.values.items()}
        if not fields["user_agents"] and user_agent:
            fields["user_agents"] = (SeenValue(user_agent),)  # configured, not recorded
        return dataclasses.replace(
            _facts(vantage, operator, fields),
            fresh_profile=self.not_fresh_profile == 0,
            fresh_connection=self.not_fresh_connection == 0,
            # the targets' addresses; the controls (our own network's check) are not targets
            remote_ips={
                t: _seen_values(v)
                for t, v in sorted(self.remote_ips.items())
                if v and not t.startswith(CONTROL_PREFIX)
            },
            resolved_ips={
                t: _seen_values(v)
                for t, v in sorted(self.resolved_ips.items())
                if v and not t.startswith(CONTROL_PREFIX)
            },
            complete=True,
            observations=self.observations,
            omitted=dict(self.omitted),
            missing=dict(self.missing),
            not_fresh_profile=self.not_fresh_profile,
            not_fresh_connection=self.not_fresh_connection,
        )

    def clock_jumps(self) -> tuple[ClockJumpFact, ...]:
        """The listed clock jumps, in ledger order (unreadable ones left out)."""
        facts = (clock_jump_fact(body, seq) for seq, body in self.jumps)
        return tuple(fact for fact in facts if fact is not None)


def _facts(
    vantage: str, operator: str, fields: Mapping[str, tuple[SeenValue, ...]]
) -> EnvironmentFacts:
    return EnvironmentFacts(
        vantage=vantage,
        operator=operator,
        hostnames=fields["hostnames"],
        local_ips=fields["local_ips"],
        resolvers=fields["resolvers"],
        proxies=fields["proxies"],
        os=fields["os"],
        python=fields["python"],
        vigie=fields["vigie"],
        browsers=fields["browsers"],
        user_agents=fields["user_agents"],
        clock=fields["clock"],
    )


def sample_environment(
    environment: Mapping[str, Any],
    vantage: str,
    operator: str,
    *,
    user_agent: str | None = None,
    kinds: frozenset[str] = frozenset(),
) -> EnvironmentFacts:
    """The facts of ONE observation's environment (`complete=False`: the report says so)."""
    fields = {
        field: tuple(SeenValue(text) for text in dict.fromkeys(_texts(field, environment)))
        for field in ENVIRONMENT_FIELDS
    }
    if not fields["user_agents"] and user_agent:
        fields["user_agents"] = (SeenValue(user_agent),)
    return dataclasses.replace(
        _facts(vantage, operator, fields),
        fresh_profile=environment.get("fresh_profile") is not False or "browser" not in kinds,
        fresh_connection=environment.get("fresh_connection") is not False or "http" not in kinds,
        complete=False,
    )
