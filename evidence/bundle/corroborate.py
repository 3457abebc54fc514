"""Corroboration across vantages: outages of the same target seen from several bundles.

Each bundle is verified first (a bundle that does not verify is refused, never half-used);
outages are read from the bundle's own signed entries, never from its CSV or report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evidence.bundle.verify import verify_bundle
from evidence.outages.tracker import outages_from_entries

__all__ = [
    "CorroboratedOutage",
    "Corroboration",
    "CorroborationError",
    "OutageSighting",
    "corroborate",
]


class CorroborationError(Exception):
    """A bundle cannot be used for corroboration (it does not verify, or is unreadable)."""


@dataclasses.dataclass(frozen=True, slots=True)
class OutageSighting:
    """One outage as one vantage's bundle records it."""

    vantage: str
    bundle: str
    outage_id: str
    target_id: str
    kind: str
    start: str
    end: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class CorroboratedOutage:
    """Overlapping outages of one target seen from `vantages` (at least the minimum)."""

    target_id: str
    start: str  # the earliest start among the sightings
    end: str | None  # the latest end (None: still open in one of them)
    overlap_start: str  # when every vantage saw it at once
    overlap_end: str | None
    vantages: tuple[str, ...]
    members: tuple[OutageSighting, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {
            "target_id": self.target_id,
            "start": self.start,
            "end": self.end,
            "overlap_start": self.overlap_start,
            "overlap_end": self.overlap_end,
            "vantages": list(self.vantages),
            "members": [dataclasses.asdict(m) for m in self.members],
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Corroboration:
    """The result of `corroborate`: vantages compared and outages seen by enough of them."""

    vantages: tuple[str, ...]
    min_vantages: int
    groups: tuple[CorroboratedOutage, ...]

    def vantages_for(self, vantage: str, outage_id: str) -> int:
        """How many vantages saw the outage `outage_id` of `vantage` (1 if not corroborated)."""
        return len(self.names_for(vantage, outage_id)) or 1

    def names_for(self, vantage: str, outage_id: str) -> tuple[str, ...]:
        """The vantages that saw the outage `outage_id` of `vantage` (empty: not corroborated)."""
        for group in self.groups:
            if any(m.vantage == vantage and m.outage_id == outage_id for m in group.members):
                return group.vantages
        return ()

    def names_by_outage(self, vantage: str) -> dict[str, tuple[str, ...]]:
        """Outage id of `vantage` -> the vantages that saw it (corroborated outages only)."""
        found: dict[str, tuple[str, ...]] = {}
        for group in self.groups:
            for member in group.members:
                if member.vantage == vantage:
                    found.setdefault(member.outage_id, group.vantages)
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Corroboration:
        """Read back `to_dict` output (the JSON of `vigie corroborate --json`).

        Raises CorroborationError when it is not that JSON.
        """
        try:
            groups = tuple(
                CorroboratedOutage(
                    target_id=str(group["target_id"]),
                    start=str(group["start"]),
                    end=None if group.get("end") is None else str(group["end"]),
                    overlap_start=str(group.get("overlap_start") or group["start"]),
                    overlap_end=None
                    if group.get("overlap_end") is None
                    else str(group["overlap_end"]),
                    vantages=tuple(str(v) for v in group["vantages"]),
                    members=tuple(
                        OutageSighting(
                            vantage=str(m["vantage"]),
                            bundle=str(m.get("bundle") or ""),
                            outage_id=str(m["outage_id"]),
                            target_id=str(m.get("target_id") or group["target_id"]),
                            kind=str(m.get("kind") or "down"),
                            start=str(m.get("start") or group["start"]),
                            end=None if m.get("end") is None else str(m["end"]),
                        )
                        for m in group.get("members", ())
                    ),
                )
                for group in data.get("outages", ())
            )
            vantages = tuple(str(v) for v in data.get("vantages", ()))
            min_vantages = int(data.get("min_vantages", 2))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorroborationError(
                f"not the JSON of `vigie corroborate --json`: {type(exc).__name__}: {exc}"
            ) from None
        if not vantages:  # older output: the vantages of the groups
            vantages = tuple(dict.fromkeys(v for g in groups for v in g.vantages))
        return cls(vantages, min_vantages, groups)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (what `vigie export --corroboration` reads)."""
        return {
            "vantages": list(self.vantages),
            "min_vantages": self.min_vantages,
            "outages": [g.to_dict() for g in self.groups],
        }


def _time(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.max.replace(tzinfo=dt.UTC)
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _sightings(path: Path) -> tuple[str, list[OutageSighting]]:
    report = verify_bundle(path)
    if not report.ok:
        raise CorroborationError(f"{path} does not verify: {report.summary()}")
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        vantage = str(manifest["vantage"])
        with zf.open("observations.jsonl") as lines:
            entries: list[dict[str, Any]] = [
                json.loads(line) for line in lines if b'"type":"outage"' in line
            ]
    sightings = [
        OutageSighting(vantage, str(path), r.id, r.target_id, r.kind, r.started_at, r.ended_at)
        for r in outages_from_entries(entries)
        if r.kind == "down"
    ]
    return vantage, sightings


def corroborate(bundles: Sequence[Path], *, min_vantages: int = 2) -> Corroboration:
    """Verify each bundle and group the outages seen by at least `min_vantages` vantages.

    Outages of the same target id whose periods overlap are grouped (transitively); a group
    counts each vantage once. Raises CorroborationError when a bundle does not verify.
    """
    vantages: list[str] = []
    everything: list[OutageSighting] = []
    for path in bundles:
        vantage, sightings = _sightings(Path(path))
        if vantage not in vantages:
            vantages.append(vantage)
        everything.extend(sightings)
    groups: list[CorroboratedOutage] = []
    by_target: dict[str, list[OutageSighting]] = {}
    for one in everything:
        by_target.setdefault(one.target_id, []).append(one)
    for target, sightings in sorted(by_target.items()):
        sightings.sort(key=lambda s: _time(s.start))
        cluster: list[OutageSighting] = []
        cluster_end = dt.datetime.min.replace(tzinfo=dt.UTC)
        pending: list[OutageSighting | None] = [*sightings, None]
        for sighting in pending:
            if sighting is not None and (not cluster or _time(sighting.start) < cluster_end):
                cluster.append(sighting)
                cluster_end = max(cluster_end, _time(sighting.end))
                continue
            if cluster:
                seen = tuple(dict.fromkeys(s.vantage for s in cluster))
                if len(seen) >= min_vantages:
                    groups.append(_group(target, cluster, seen))
            cluster = [] if sighting is None else [sighting]
            cluster_end = (
                dt.datetime.min.replace(tzinfo=dt.UTC) if sighting is None else _time(sighting.end)
            )
    groups.sort(key=lambda g: (g.start, g.target_id))
    return Corroboration(tuple(vantages), min_vantages, tuple(groups))


def _group(target: str, cluster: list[OutageSighting], seen: tuple[str, ...]) -> CorroboratedOutage:
    ends = [s.end for s in cluster]
    end = None if any(e is None for e in ends) else max(ends, key=_time)
    overlap_start = max((s.start for s in cluster), key=_time)
    finite = [e for e in ends if e is not None]
    overlap_end = min(finite, key=_time) if finite else None
    return CorroboratedOutage(
        target_id=target,
        start=min((s.start for s in cluster), key=_time),
        end=end,
        overlap_start=overlap_start,
        overlap_end=overlap_end,
        vantages=seen,
        members=tuple(cluster),
    )
