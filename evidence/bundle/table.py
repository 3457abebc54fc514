"""The observation table of a bundle: ``observations.csv`` and the per-target, per-Paris-day
figures the report is drawn from, built from the JSONL the export writes anyway, in this
process or in a worker process for large exports.

It only reads entry bytes and writes the CSV it is given a file for; it never touches the
ledger.
"""

from __future__ import annotations

import array
import bisect
import contextlib
import csv
import dataclasses
import datetime as dt
import gc
import io
import json
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

import msgspec

from config.french import decimal_fr
from config.vocabulary import (
    Outcome,
)
from evidence.bundle.model import (
    DURATION_BOUNDS,
    BundleError,
    BundleSummary,
    TargetStats,
)
from evidence.bundle.zipwriter import Background, Deflated
from evidence.outages.availability import PARIS
from evidence.report.facts import ReportFacts

__all__ = [
    "CSV_OBSERVATION_COLUMNS",
    "CsvBuilder",
    "CsvPipeline",
    "ObservationTable",
    "Row",
    "csv_workers",
    "decode_bodies",
    "paris_time",
    "utc_text",
    "worker_main",
]

try:  # orjson parses the entries several times faster; json is the fallback
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - depends on the installation
    _loads = json.loads  # type: ignore[assignment]

_PARALLEL_MIN = 200_000  # entries from which a worker process builds the CSV


_FRAME = struct.Struct("<BIQ")  # worker frame: kind, entries skipped, payload size

_FRAME_BLOCK, _FRAME_PICKLE, _FRAME_BUILT = 0, 1, 2


_F_SETPIPE_SZ = 1031  # Linux fcntl: set the buffer size of a pipe


_DAY_FIGURES = 3  # checks, successes, summed durations; the bucket counts follow


_VANTAGE_OFFLINE = Outcome.VANTAGE_OFFLINE.value


_NUMBERS = frozenset((float, int))


CSV_OBSERVATION_COLUMNS = (
    "seq",
    "cible",
    "type_sonde",
    "date_paris",
    "date_utc",
    "succes",
    "resultat",
    "statut_http",
    "duree_s",
    "ip_distante",
    "url_finale",
    "erreur",
    "artefacts",
)


def paris_time(moment: dt.datetime | str | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in Europe/Paris (what a French spreadsheet shows as a date)."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = _parse(moment)
    return moment.astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")


def utc_text(moment: dt.datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = _parse(moment)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _parse(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def csv_workers(entries: int) -> int:
    """Worker processes for the CSV of `entries` entries: one for a large export, when there
    is a second core (starting one costs a fraction of a second).

    Measured with `bench/export.py --no-verify --workers 1` / `--workers 0`, interleaved runs
    on 2 cores shared with five other engineers: at `--scale 0.1` (526,476 entries) 3.24 and
    3.32 s with the worker, 4.22 and 4.09 s without (-20 %); at `--scale 0.03` (157,942)
    1.73 s with it, 1.71 s without: no gain below `_PARALLEL_MIN`."""
    parallel = entries >= _PARALLEL_MIN and (os.cpu_count() or 1) > 1 and os.name == "posix"
    return 1 if parallel else 0


class CsvBuilder:
    """``observations.csv`` and the report figures of the observations, deflated as built.

    The CSV (BOM, header, one line per observation) goes through `Deflated` into `file`,
    to be spliced into the zip by `ZipWriter.put_deflated`.
    """

    def __init__(self, file: IO[bytes]) -> None:
        self.table = ObservationTable()
        self.content = Deflated(file.write)
        self.file = file
        self.content.write("\ufeff".encode() + _csv_text([CSV_OBSERVATION_COLUMNS]))

    def add(self, entries: Sequence[_Observation]) -> None:
        """Add observation entries (decoded, in ledger order)."""
        self.content.write(_lines(self.table, entries))

    def add_built(self, text: bytes, table: ObservationTable) -> None:
        """Add the next entries, built apart: their CSV lines and `part` table."""
        self.content.write(text)
        self.table.merge(table)

    def finish(self) -> _CsvResult:
        self.content.finish()
        self.file.flush()
        self.table.clock = _Clock()  # not worth sending back
        content = self.content
        return _CsvResult(self.table, content.crc, content.sha.hexdigest(), content.size)


def _lines(table: ObservationTable, entries: Sequence[_Observation]) -> bytes:
    """`table.lines(entries)` in UTF-8, the cyclic garbage collector paused meanwhile: it
    creates many containers and no cycle, and its passes would cost a good part of the time."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return table.lines(entries).encode("utf-8")
    finally:
        if paused:
            gc.enable()


def _chunk_observations(
    rows: Sequence[Row], block: bytes, skip: Sequence[int]
) -> list[_Observation]:
    """The decoded observations of a chunk: its rows, their JSONL block, the positions of
    the entries that are not observations."""
    if block.count(b"\n") == len(rows):
        return _block_observations(block, len(rows), skip)
    return decode_bodies([row[0] for row in rows if row[2] is None])


@dataclasses.dataclass(slots=True)
class _CsvResult:
    """A built CSV (its deflated data is in the builder's file) and its figures."""

    table: ObservationTable
    crc: int
    sha256: str
    size: int


class CsvPipeline:
    """Builds ``observations.csv`` and the figures, in this process or in a worker process.

    The worker (a child `python` running `worker_main`) gets each chunk as the JSONL block
    this process writes anyway, with the positions of its entries that are not observations
    (sent from a thread: one copy through a pipe), and deflates the whole CSV into `file`,
    whose descriptor it inherits, while this process reads the ledger and deflates the
    entries. When a chunk is already waiting for the worker, this process builds the next
    one itself and sends its CSV lines and figures (a `part` table, merged in order): the
    two processes share the work whatever else the machine does. Only the figures come back,
    at the end.
    """

    def __init__(self, file: IO[bytes], *, workers: int) -> None:
        self.file = file
        self.local = None if workers else CsvBuilder(file)
        self.worker: subprocess.Popen[bytes] | None = None
        self.sender: Background | None = None
        self.clock = _Clock()  # for the chunks built here

    def __enter__(self) -> CsvPipeline:
        if self.local is None:
            fd = self.file.fileno()
            code = (
                f"import sys; sys.path[:0] = {sys.path!r}; "
                f"from evidence.bundle.table import worker_main; worker_main({fd})"
            )
            self.worker = subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=(fd,),
            )
            assert self.worker.stdin is not None
            with contextlib.suppress(OSError, ImportError):  # Linux: 16x fewer wake-ups
                import fcntl

                fcntl.fcntl(self.worker.stdin.fileno(), _F_SETPIPE_SZ, 1 << 20)
            self.sender = Background(self.worker.stdin.write, depth=4)
            self.sender.__enter__()
        return self

    def submit(self, rows: Sequence[Row], block: bytes, skip: Sequence[int]) -> None:
        """A chunk: its rows, their JSONL block, the positions of the non-observations."""
        if self.local is not None:
            self.local.add(_chunk_observations(rows, block, skip))
            return
        assert self.sender is not None
        if len(skip) == len(rows):
            return
        if self._build_here():
            table = ObservationTable(part=True, clock=self.clock)
            text = _lines(table, _chunk_observations(rows, block, skip))
            table.clock = _Clock()  # not worth sending
            payload = pickle.dumps((text, table), pickle.HIGHEST_PROTOCOL)
            head = _FRAME.pack(_FRAME_BUILT, 0, len(payload))
            skip = ()
        elif block.count(b"\n") == len(rows):  # one line per entry: the worker decodes it
            head = _FRAME.pack(_FRAME_BLOCK, len(skip), len(block))
            payload = block
        else:  # an entry holds a line break (not canonical JSON): send the entries
            payload = pickle.dumps(
                [row[0] for row in rows if row[2] is None], pickle.HIGHEST_PROTOCOL
            )
            head = _FRAME.pack(_FRAME_PICKLE, 0, len(payload))
            skip = ()
        try:
            self.sender.write(head + array.array("I", skip).tobytes())
            self.sender.write(payload)
        except OSError as exc:
            raise BundleError(f"the CSV worker process stopped: {exc}") from None

    def _build_here(self) -> bool:
        """Whether this process builds the next chunk: one already waits for the worker (two
        queued blocks: its frame head and its data)."""
        assert self.sender is not None
        return self.sender.queue.qsize() >= 2

    def finish(self) -> _CsvResult:
        """Wait for the CSV: its figures, CRC-32, SHA-256 and size (data in `file`)."""
        if self.local is not None:
            return self.local.finish()
        assert self.worker is not None
        assert self.worker.stdin is not None
        assert self.worker.stdout is not None
        assert self.sender is not None
        try:
            self.sender.__exit__(None, None, None)
            self.worker.stdin.close()
        except OSError as exc:
            raise BundleError(f"the CSV worker process stopped: {exc}") from None
        data = self.worker.stdout.read()
        if self.worker.wait() != 0 or not data:
            raise BundleError("the CSV worker process failed (see the error above)")
        result: _CsvResult = pickle.loads(data)  # noqa: S301 - our own child
        return result

    def __exit__(self, *exc: object) -> None:
        worker, self.worker = self.worker, None
        if worker is None:
            return
        if worker.returncode is None:
            worker.kill()  # an error here: the CSV is not needed any more
        if self.sender is not None:
            self.sender.__exit__(*exc)
        for stream in (worker.stdin, worker.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        worker.wait()


def worker_main(fd: int) -> None:
    """The worker of `CsvPipeline`: frames in on stdin, the CSV into `fd`, figures out."""
    gc.disable()  # no cycle is made here
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    with os.fdopen(fd, "wb") as file:
        builder = CsvBuilder(file)
        while head := source.read(_FRAME.size):
            kind, skipped, size = _FRAME.unpack(head)
            skip = array.array("I")
            skip.frombytes(source.read(skipped * skip.itemsize))
            payload = source.read(size)
            if kind == _FRAME_BLOCK:
                count = payload.count(b"\n")
                builder.add(_block_observations(payload, count, skip))
            elif kind == _FRAME_PICKLE:
                builder.add(decode_bodies(pickle.loads(payload)))  # noqa: S301 - our parent
            else:
                builder.add_built(*pickle.loads(payload))  # noqa: S301
        result = builder.finish()
    sink.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sink.flush()


class _Clock:
    """Paris and UTC spreadsheet times of ledger timestamps, cached per UTC hour.

    Europe/Paris is a whole number of hours from UTC, so the minutes and seconds of a UTC time
    are those of its Paris time: one zone conversion per hour of data instead of per entry.
    """

    def __init__(self) -> None:
        self.hours: dict[str, str] = {}

    def times(self, text: str) -> tuple[str, str]:
        """(Paris, UTC) as ``YYYY-MM-DD HH:MM:SS`` of an RFC 3339 time (``""`` if none)."""
        if len(text) >= 20 and text[10] == "T" and (text[-1] == "Z" or text[-6:] == "+00:00"):
            hour = text[:13]
            paris = self.hours.get(hour)
            if paris is None:
                try:
                    moment = dt.datetime.fromisoformat(hour + ":00:00+00:00")
                except ValueError:
                    return paris_time(text), utc_text(text)
                paris = self.hours[hour] = moment.astimezone(PARIS).strftime("%Y-%m-%d %H")
            return paris + text[13:19], text[:10] + " " + text[11:19]
        if not text:
            return "", ""
        try:
            return paris_time(text), utc_text(text)
        except ValueError:
            return text, text


class _Observation(msgspec.Struct, gc=False):
    """The fields of an observation entry that the CSV and the figures use.

    Decoded straight from the JSON body (``None`` when absent, any JSON value otherwise, as
    `dict.get` on the parsed entry gives): the other fields (phases, TLS…) are skipped, never
    built, and the environment is kept as JSON text (parsed for the few entries opening a
    day), which makes decoding 3x faster than parsing the whole entry. The whole export:
    `bench/export.py --scale 0.03 --no-verify --workers 0 [--without msgspec]` (157,942
    entries, fastest of 3 interleaved runs on 2 shared cores): 1.71 s, 2.69 s with every
    entry parsed whole by orjson.
    """

    artifacts: Any = None
    duration_s: Any = None
    environment: msgspec.Raw = msgspec.Raw()  # empty when absent
    error: Any = None
    final_url: Any = None
    http_status: Any = None
    kind: Any = None
    outcome: Any = None
    remote_ip: Any = None
    seq: Any = None
    started_at: Any = None
    success: Any = None
    target_id: Any = None


_OBSERVATION_DECODER = msgspec.json.Decoder(_Observation)


_decode_observation = _OBSERVATION_DECODER.decode


_OBSERVATION_FIELDS = tuple(_Observation.__struct_fields__)


def _observation_of(body: bytes) -> _Observation:
    """`_Observation` of a body msgspec refuses (a number it cannot hold, not an object…):
    parsed whole, the way the entries were before (its errors are raised the same way)."""
    entry = _loads(body)
    fields = {name: entry.get(name) for name in _OBSERVATION_FIELDS}
    environment = fields.pop("environment")
    raw = msgspec.Raw() if "environment" not in entry else msgspec.Raw(json.dumps(environment))
    return _Observation(**fields, environment=raw)


def decode_bodies(bodies: Iterable[bytes]) -> list[_Observation]:
    """Observation entries decoded one by one."""
    entries: list[_Observation] = []
    append = entries.append
    decode = _decode_observation
    for body in bodies:
        try:
            append(decode(body))
        except msgspec.DecodeError:
            append(_observation_of(body))
    return entries


def _block_observations(block: bytes, count: int, skip: Sequence[int]) -> list[_Observation]:
    """The observations of a JSONL block of `count` entries, one a line (`skip`: positions of
    the entries that are not observations). One call decodes the block, 30 % faster than
    splitting it; a line msgspec refuses has the block decoded line by line."""
    try:
        entries = _OBSERVATION_DECODER.decode_lines(block)
    except msgspec.DecodeError:
        entries = []
    if len(entries) != count:
        bodies = block.split(b"\n")
        bodies.pop()  # after the last line end
        for position in reversed(skip):
            del bodies[position]
        return decode_bodies(bodies)
    for position in reversed(skip):
        del entries[position]
    return entries


class ObservationTable:
    """Turns observation entries into CSV rows and per-target, per-day figures (bounded).

    A `part` table holds the figures of a chunk built apart, to be merged in ledger order
    (`merge`) into the table of the entries before it, with the very figures that table would
    have tallied itself: durations are kept to be summed in order, and the environment of
    each entry opening a day is kept as it may be the first.
    """

    def __init__(self, *, part: bool = False, clock: _Clock | None = None) -> None:
        self.clock = clock or _Clock()
        # (target, Paris day) -> TargetStats.daily figures
        self.days: dict[tuple[str, str], list[float]] = {}
        self.outcomes: dict[tuple[str, str], int] = {}
        self.first: dict[str, str] = {}
        self.last: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self.artifacts: dict[str, str] = {}  # sha -> kind, first seen first
        self.screenshots: list[tuple[str, str]] = []  # (sha, target)
        self.captures: dict[str, tuple[str, str]] = {}  # sha -> (started_at, outcome)
        self.environment: dict[str, Any] | None = None
        # part tables: the durations of the successful checks of each day, in order, and
        # the environments of the entries that open a day (the first may be the one)
        self.durations: dict[tuple[str, str], list[float]] | None = {} if part else None
        self.openers: list[tuple[tuple[str, str], dict[str, Any]]] = []
        # every distinct environment fact, each target's addresses (the report)
        self.facts = ReportFacts()

    def lines(self, entries: Iterable[_Observation]) -> str:
        """The CSV lines of observation entries (decoded); figures are tallied.

        Lines are formatted directly (one f-string each, 3-4x faster than `csv.writer`): a
        cell holding a separator, a quote or a line break is quoted then, exactly as
        `csv.writer` would (QUOTE_MINIMAL).
        """
        out: list[str] = []
        append = out.append
        times = self.clock.times
        hours = self.clock.hours
        days, outcomes, first, last = self.days, self.outcomes, self.first, self.last
        bucket, bounds, blank = bisect.bisect_right, DURATION_BOUNDS, _BLANK_DAY
        durations = self.durations
        note = self.facts.observation
        for entry in entries:
            target = entry.target_id or ""
            started = entry.started_at or ""
            hour = hours.get(started[:13]) if started.endswith("Z") else None
            if hour is None:  # first entry of an hour, or an unusual time
                paris, utc = times(started)
            else:
                paris, utc = hour + started[13:19], started[:10] + " " + started[11:19]
            success = entry.success is True
            outcome = entry.outcome or ""
            duration = entry.duration_s
            status = entry.http_status
            url = entry.final_url or ""
            error = entry.error or ""
            artifacts = entry.artifacts
            if duration.__class__ is float:
                seconds = f"{duration:.6f}".rstrip("0").rstrip(".").replace(".", ",")
            else:
                seconds = decimal_fr(duration)
            if error:
                error = error.replace("\r", " ").replace("\n", " ")[:300]
            ip = entry.remote_ip or ""
            note(target, started, ip, entry.environment)
            kind = entry.kind or ""
            code = "" if status is None else status
            marks = (
                " ".join(f"{k}:{sha}" for sha, k in sorted(artifacts.items())) if artifacts else ""
            )
            line = (
                f"{entry.seq};{target};{kind};{paris};{utc};{'oui' if success else 'non'};"
                f"{outcome};{code};{seconds};{ip};{url};{error};{marks}"
            )
            if line.count(";") != _SEPARATORS or '"' in line or "\r" in line or "\n" in line:
                # rare: a cell holds a separator, a quote or a line break and must be quoted
                line = _csv_line(
                    [
                        entry.seq,
                        target,
                        kind,
                        paris,
                        utc,
                        "oui" if success else "non",
                        outcome,
                        code,
                        seconds,
                        ip,
                        url,
                        error,
                        marks,
                    ]
                )
            append(line + "\r\n")
            day = days.get((target, paris[:10]))
            if day is None:
                day = days[target, paris[:10]] = blank.copy()
                if target not in first:
                    first[target] = started
                    self.kinds[target] = kind
                if self.environment is None and entry.environment:  # parsed only here
                    environment = _loads(bytes(entry.environment))
                    if isinstance(environment, dict):
                        if durations is None:
                            self.environment = environment
                        else:
                            self.openers.append(((target, paris[:10]), environment))
            day[0] += 1
            if success:
                day[1] += 1
                if durations is None:
                    day[2] += float(duration or 0.0)
                else:
                    durations.setdefault((target, paris[:10]), []).append(float(duration or 0.0))
            if duration.__class__ in _NUMBERS and outcome != _VANTAGE_OFFLINE:
                day[_DAY_FIGURES + bucket(bounds, duration)] += 1  # type: ignore[call-overload]
            key = (target, outcome)
            outcomes[key] = outcomes.get(key, 0) + 1
            last[target] = started
            if artifacts:
                self._artifacts(target, artifacts, started, "ok" if success else outcome)
        return "".join(out)

    def _artifacts(
        self, target: str, artifacts: Mapping[str, Any], started: str, outcome: str
    ) -> None:
        for sha, kind in artifacts.items():
            if sha not in self.artifacts:
                self.artifacts[sha] = str(kind)
                if kind == "screenshot":
                    self.screenshots.append((sha, target))
                    self.captures[sha] = (started, outcome)

    def merge(self, later: ObservationTable) -> None:
        """Add the figures of the `part` table of the next entries, exactly as if they had
        been tallied here (same sums, same first environment, artifacts and screenshots)."""
        assert later.durations is not None
        days = self.days
        if self.environment is None:
            for key, environment in later.openers:
                if key not in days:  # the first entry of its day here too
                    self.environment = environment
                    break
        for key, figures in later.days.items():
            day = days.get(key)
            if day is None:
                days[key] = figures  # its sum of durations is 0.0, added to below
            else:
                sum_s = day[2]
                days[key] = day = [a + b for a, b in zip(day, figures, strict=True)]
                day[2] = sum_s
        for key, values in later.durations.items():
            day = days[key]
            for value in values:
                day[2] += value
        for key, count in later.outcomes.items():
            self.outcomes[key] = self.outcomes.get(key, 0) + count
        for target, started in later.first.items():
            self.first.setdefault(target, started)
            self.kinds.setdefault(target, later.kinds[target])
        self.last.update(later.last)
        self.screenshots.extend(s for s in later.screenshots if s[0] not in self.artifacts)
        for sha, kind in later.artifacts.items():
            self.artifacts.setdefault(sha, kind)
        for sha, info in later.captures.items():
            self.captures.setdefault(sha, info)
        self.facts.merge(later.facts)

    def finish(self, summary: BundleSummary) -> None:
        """Fold the tallies into the summary (`TargetStats`, artifacts, environment)."""
        targets = summary.targets
        for (target, day), figures in self.days.items():
            stats = targets.get(target)
            if stats is None:
                stats = targets[target] = TargetStats(target)
            stats.checks += int(figures[0])
            stats.successes += int(figures[1])
            stats.duration_sum_s += figures[2]
            counts = stats.daily.get(day)
            stats.daily[day] = (
                list(figures)
                if counts is None
                else [a + b for a, b in zip(counts, figures, strict=True)]
            )
        for (target, outcome), count in self.outcomes.items():
            targets[target].outcomes[outcome] += count
        for target, started in self.first.items():
            stats = targets[target]
            if stats.first_at is None:
                stats.first_at = started
            stats.last_at = self.last[target]
            if not stats.kind:
                stats.kind = self.kinds[target]
        for sha, kind in self.artifacts.items():
            summary.artifact_files.setdefault(sha, kind)
        summary.screenshots.extend(self.screenshots)
        for sha, info in self.captures.items():
            summary.capture_info.setdefault(sha, info)
        if not summary.environment and self.environment:
            summary.environment = self.environment
        summary.report_facts.merge(self.facts)


_SEPARATORS = len(CSV_OBSERVATION_COLUMNS) - 1


def _csv_line(cells: Sequence[Any]) -> str:
    """One row as `csv.writer` writes it (`;`, QUOTE_MINIMAL), without its line end."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="").writerow(cells)
    return buffer.getvalue()


def _csv_text(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as `;`-separated CSV lines (CRLF), UTF-8, no BOM."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


_BLANK_DAY: list[float] = [0, 0, 0.0] + [0] * (len(DURATION_BOUNDS) + 1)


# (body, leaf hash, type or None for an observation), values as stored
Row = tuple[bytes, bytes, object]
