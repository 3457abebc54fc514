"""Evidence bundles: one zip per request carrying entries, captures, proofs and a report.

Streams the ledger in chunks into the zip (memory stays bounded for a year of data); it only
reads the ledger and the artifact store, and writes the bundle through a temporary file so a
failed export never leaves a half bundle behind.

Layout (see LISEZMOI.txt): ``manifest.json`` (every file with SHA-256 and size) signed by the
vantage key (``manifest.sig``, a signed note over the manifest's SHA-256) and timestamped
(``manifest.tsr``) when a TSA is configured; ``observations.jsonl`` (the ledger entries, byte
for byte); ``observations.csv`` and ``outages.csv``; ``artifacts/``; ``proofs/``;
``report.pdf``; ``verify.py``; ``LISEZMOI.txt``.

Why it is long: the streaming export is one pipeline (ledger scan, ranges and their proofs,
outage bundles, manifest) tuned for a year of entries in at most 60 s; what it gathers
(model.py), its observation table and CSV worker (table.py) and its zip writer (zipwriter.py)
are apart.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import itertools
import json
import operator
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from config.french import decimal_fr
from config.settings import Settings
from config.vocabulary import (
    CHECKPOINT,
    CLOCK_JUMP,
    DRIFT,
    GAP,
    OBSERVATION,
    OUTAGE,
    REVIEW,
    TIMESTAMP,
    VANTAGE,
)
from evidence.bundle.model import (
    BundleError,
    BundleRequestError,
    BundleSummary,
    ExportRequest,
    ExportResult,
    NotCoveredYetError,
    ReportHook,
    TargetStats,
)
from evidence.bundle.table import (
    CsvBuilder,
    CsvPipeline,
    Row,
    csv_workers,
    decode_bodies,
    paris_time,
    utc_text,
)
from evidence.bundle.zipwriter import HashingWriter, Spool, ZipWriter
from evidence.ledger import chain, merkle
from evidence.ledger.checkpoint import Checkpoint, CheckpointError, Stamper
from evidence.ledger.core import STORED_LEVEL_STRIDE, Ledger
from evidence.ledger.signing import NoteSigner
from evidence.ledger.tlog_proof import format_tlog_proof
from evidence.outages.tracker import OutageRecord, entry_time, outages_from_entries

__all__ = [
    "BUNDLE_FORMAT",
    "CSV_OUTAGE_COLUMNS",
    "aligned_ranges",
    "export_bundle",
]

log = structlog.get_logger("vigie.bundle")

BUNDLE_FORMAT = "vigie-bundle/1"
RANGE_FORMAT = "vigie-range/1"
STANDALONE_DIR = Path(__file__).parent.parent / "standalone"
# Ledger rows read at a time. `bench/export.py --scale 0.03 --workers 1 --no-verify [--without
# chunk]` (fastest of 3 interleaved runs on 2 shared cores): 1.73 s and 92-99 MB peak with 8192,
# 2.03 s and 74 MB with 512.
_CHUNK = 8192
_ARTIFACT_EXT = {"screenshot": ".png", "html": ".html", "warc": ".warc"}
_TIMESTAMP_LOOKAHEAD = 256  # entries after a checkpoint searched for its timestamp

CSV_OUTAGE_COLUMNS = (
    "identifiant",
    "cible",
    "nature",
    "debut_paris",
    "fin_paris",
    "debut_utc",
    "fin_utc",
    "duree_s",
    "verifications_en_echec",
    "causes",
    "maintenance_annoncee",
    "premiere_entree",
    "derniere_entree",
    "confirme_depuis_points",
)


def aligned_ranges(start: int, stop: int) -> list[tuple[int, int]]:
    """[start, stop) as perfect subtrees (level, index), left to right, greedy (O(log n))."""
    parts: list[tuple[int, int]] = []
    position = start
    while position < stop:
        level = (position & -position).bit_length() - 1 if position else stop.bit_length()
        while (1 << level) > stop - position:
            level -= 1
        parts.append((level, position >> level))
        position += 1 << level
    return parts


def _subtree(ledger: Ledger, level: int, index: int) -> bytes:
    """Hash of the perfect subtree (level, index) from stored nodes (public ledger API)."""
    base = level - level % STORED_LEVEL_STRIDE
    width = 1 << (level - base)
    first = index * width
    if base == 0:
        hashes = [row.leaf_hash for row in ledger.iter_rows(first, first + width)]
    else:
        hashes = [h for _, h in ledger.stored_nodes(base, first, first + width)]
    if len(hashes) != width:
        raise BundleError(
            f"the ledger cannot rebuild tree node ({level}, {index}); run `vigie verify`"
        )
    return merkle.reduce_perfect(hashes)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Progress:
    """A progress bar on stderr, only when it is a terminal."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        self.total = max(total, 1)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.last = 0.0

    def update(self, done: int, label: str = "entrées") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.2 and done < self.total:
            return
        self.last = now
        ratio = min(done / self.total, 1.0)
        bar = "#" * int(ratio * 30)
        sys.stderr.write(f"\r[{bar:<30}] {ratio:6.1%} {done}/{self.total} {label}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _target_of(body: bytes) -> str | None:
    """The top-level ``target_id`` of a canonical JSON entry, found without parsing it."""
    marker = b'"target_id":"'
    at = body.find(marker)
    if at < 0:
        return None
    at += len(marker)
    end = body.find(b'"', at)
    return body[at:end].decode("utf-8", "replace")


class _CsvChunks:
    """Writes CSV rows (`;`, CRLF, UTF-8 with BOM) to a member in chunks."""

    def __init__(self, out: HashingWriter | Spool, header: Sequence[str]) -> None:
        self.out = out
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, delimiter=";", lineterminator="\r\n")
        out.write("\ufeff".encode())
        self.writer.writerow(header)

    def row(self, values: Sequence[Any]) -> None:
        self.writer.writerow(values)
        if self.buffer.tell() > 1 << 20:
            self.flush()

    def rows(self, rows: Iterable[Sequence[Any]]) -> None:
        self.writer.writerows(rows)
        if self.buffer.tell() > 1 << 20:
            self.flush()

    def flush(self) -> None:
        self.out.write(self.buffer.getvalue().encode("utf-8"))
        self.buffer.seek(0)
        self.buffer.truncate()


def _outage_row(record: OutageRecord, corroboration: Mapping[str, int]) -> list[Any]:
    duration = record.duration_s
    return [
        record.id,
        record.target_id,
        "indisponibilité" if record.kind == "down" else "dégradation",
        paris_time(record.started_at),
        paris_time(record.ended_at) if record.ended_at else "en cours",
        utc_text(record.started_at),
        utc_text(record.ended_at),
        decimal_fr(None if duration is None else round(duration, 3)),
        record.failed_checks,
        record.causes_text_fr,
        record.maintenance or "",
        "" if record.first_seq is None else record.first_seq,
        "" if record.last_seq is None else record.last_seq,
        corroboration.get(record.id, 1),
    ]


def _standalone(name: str) -> bytes:
    return (STANDALONE_DIR / name).read_bytes()


def default_report(summary: BundleSummary, artifact: Callable[[str], bytes | None]) -> bytes:
    """The French PDF report (`evidence.bundle.report_inputs`), built from the summary alone."""
    from evidence.bundle.report_inputs import render_bundle_report  # imports reportlab: on demand

    return render_bundle_report(summary, artifact)


# --------------------------------------------------------------------------------------------


def export_bundle(
    ledger: Ledger,
    out: Path,
    request: ExportRequest,
    *,
    signer: NoteSigner,
    operator: str = "",
    artifacts_dir: Path | None = None,
    timestamper: Stamper | None = None,
    tsa_name: str | None = None,
    tsa_certificates: Sequence[bytes] = (),
    report: ReportHook | None = None,
    corroboration: Mapping[str, int] | None = None,
    progress: bool | None = None,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
    workers: int | None = None,
    bundle_name: str | None = None,
) -> ExportResult:
    """Write the evidence bundle of `request` to `out` (a zip); return what was written.

    `tsa_certificates`: the TSA's root (and intermediates) to include beside the certificates
    the tokens embed. `report`: renders ``report.pdf`` from the summary (default: the French
    report). `workers`: child processes building half the CSV (None: one for a large export
    when there is a second core, else none). `bundle_name`: the file name the report and
    LISEZMOI.txt give the bundle (default: the name of `out`). Raises BundleError when there
    is nothing to export or the ledger is unusable.
    """
    began = time.monotonic()
    if request.end <= request.start:
        raise BundleRequestError("the end of the period must come after its start")
    # The signer signs as the log's origin (its key name); the vantage name is the ledger's.
    try:
        origin = ledger.first_checkpoint_origin()
    except CheckpointError as exc:
        raise BundleError(f"the ledger's first checkpoint is unreadable: {exc}") from None
    if origin is not None and origin != signer.name:
        raise BundleError(f"the ledger's checkpoints name log {origin!r}, the key {signer.name!r}")
    vantage = ledger.vantage or signer.name
    size = ledger.size()
    created = now or dt.datetime.now(dt.UTC)
    summary = BundleSummary(
        vantage=vantage,
        operator=operator,
        period_start=request.start,
        period_end=request.end,
        created_at=created,
        targets={},
        outages=[],
        range_start=0,
        range_stop=0,
        public_key=signer.verifier.vkey(),
        tsa_name=tsa_name,
        corroboration=dict(corroboration or {}),
        target_filter=tuple(request.targets),
        outage_id=request.outage_id,
        settings=settings,
        bundle_name=bundle_name or Path(out).name,
    )
    if settings is not None:
        for target in settings.targets:
            stats = summary.targets.setdefault(target.id, TargetStats(target.id))
            stats.name = target.name
            stats.kind = str(target.kind)
            stats.url = str(target.url)
        if request.targets:
            summary.targets = {k: v for k, v in summary.targets.items() if k in request.targets}
    out = Path(out)
    tmp = out.with_name(f".{out.name}.part")
    try:
        with tmp.open("wb") as file:
            writer = ZipWriter(file)
            scanned = None
            if request.outage_id is not None:
                _write_outage(writer, ledger, size, request.outage_id, summary)
            else:
                scanned = _write_range(
                    writer,
                    ledger,
                    size,
                    request,
                    summary,
                    progress_enabled=progress,
                    workers=workers,
                )
            _write_artifacts(writer, artifacts_dir, summary)
            _write_proof_material(writer, ledger, size, summary, tsa_certificates, scanned=scanned)
            render = report or default_report
            writer.put("report.pdf", render(summary, _artifact_reader(artifacts_dir)))
            writer.put("verify.py", _standalone("verify.py"))
            writer.put("LISEZMOI.txt", _lisezmoi(summary))
            manifest, token = _stamped_manifest(summary, writer.files, timestamper)
            writer_files = dict(writer.files)
            writer.put_unlisted("manifest.json", manifest)
            digest = hashlib.sha256(manifest).hexdigest()
            signature = signer.sign(f"{BUNDLE_FORMAT}\n{digest}\n").encode()
            writer.put_unlisted("manifest.sig", signature)
            if token is not None:
                writer.put_unlisted("manifest.tsr", token)
            writer.close()
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    elapsed = time.monotonic() - began
    log.info(
        "bundle_exported",
        path=str(out),
        entries=summary.entries,
        disclosed=summary.disclosed,
        hidden=summary.hidden,
        outages=len(summary.outages),
        elapsed_s=round(elapsed, 3),
    )
    return ExportResult(out, summary, writer_files, elapsed)


def _artifact_reader(directory: Path | None) -> Callable[[str], bytes | None]:
    def read(sha: str) -> bytes | None:
        if directory is None:
            return None
        path = directory / sha[:2] / sha[2:4] / sha
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == sha else None

    return read


def _time_at(ledger: Ledger, seq: int) -> dt.datetime | None:
    """When entry `seq` was made, or (timestamps, failures) the nearest earlier entry's time."""
    for probe in range(seq, max(-1, seq - 64), -1):
        made = entry_time(json.loads(ledger.get(probe)))
        if made is not None:
            return made
    return None


def _seq_at(ledger: Ledger, size: int, moment: dt.datetime) -> int:
    """The first seq made at or after `moment` (binary search; entries are in time order)."""
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        made = _time_at(ledger, mid)
        if made is not None and made >= moment:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _find_range(ledger: Ledger, size: int, request: ExportRequest) -> tuple[int, int]:
    start = _seq_at(ledger, size, request.start)
    stop = _seq_at(ledger, size, request.end)
    return start, max(start, stop)


def _checkpoint_seqs(ledger: Ledger, start: int, stop: int) -> Iterator[tuple[int, bytes]]:
    for rows in ledger.row_chunks(start, stop, _CHUNK):  # type: ignore[attr-defined]
        for seq, kind, body, _leaf in rows:
            if kind == CHECKPOINT:
                yield seq, body


def _closing_checkpoint(ledger: Ledger, stop: int, size: int) -> tuple[int, bytes] | None:
    """The first checkpoint at or after `stop` (it covers the whole range)."""
    for found in _checkpoint_seqs(ledger, stop, size):
        return found
    return None


def _previous_checkpoint(ledger: Ledger, start: int) -> tuple[int, bytes] | None:
    """The last checkpoint before `start` (searched backwards in windows)."""
    window = 4096
    end = start
    while end > 0:
        begin = max(0, end - window)
        found = list(_checkpoint_seqs(ledger, begin, end))
        if found:
            return found[-1]
        end = begin
        window = min(window * 4, 1 << 22)
    return None


def _scan_chunks(
    ledger: Ledger, start: int, stop: int
) -> Iterator[tuple[Sequence[int], Sequence[Row]]]:
    """(seqs, rows) of [start, stop) in chunks: SQLite's fast path (`scan_chunks`: fewer
    objects per row, 15 % faster), or any ledger's rows."""
    scan = getattr(ledger, "scan_chunks", None)
    if scan is not None:
        yield from scan(start, stop, _CHUNK)
        return
    for rows in ledger.row_chunks(start, stop, _CHUNK):  # type: ignore[attr-defined]
        yield (
            [row[0] for row in rows],
            [(body, leaf, None if kind == OBSERVATION else kind) for _, kind, body, leaf in rows],
        )


def _split_by_target(
    seqs: Sequence[int], rows: Sequence[Row], wanted: set[str]
) -> tuple[list[int], list[Row], list[bytes]]:
    """Seqs and rows to disclose (wanted targets, entries of no target), and leaf hashes of
    the others."""
    shown_seqs: list[int] = []
    shown: list[Row] = []
    hidden: list[bytes] = []
    for seq, row in zip(seqs, rows, strict=True):
        target = _target_of(row[0])
        if target is not None and target not in wanted:
            hidden.append(row[1])
        else:
            shown_seqs.append(seq)
            shown.append(row)
    return shown_seqs, shown, hidden


def _other_entries(
    rows: Sequence[tuple[int, object, bytes]],
    summary: BundleSummary,
    outages: list[dict[str, Any]],
    checkpoints: list[tuple[int, bytes]],
) -> None:
    """Outage events, checkpoints and timestamps among the (seq, type, body) `rows`."""
    for seq, kind, body in rows:
        if kind in {OUTAGE, REVIEW}:  # reviews: the outages' review state
            outage = json.loads(body)
            outage.setdefault("seq", seq)
            outages.append(outage)
        elif kind == CHECKPOINT:
            checkpoints.append((seq, body))
        elif kind == TIMESTAMP:
            stamp = json.loads(body)
            summary.timestamps[int(stamp["checkpoint_seq"])] = str(stamp.get("gen_time") or "")
        elif kind == GAP:
            gap = json.loads(body)
            summary.gaps.append((str(gap.get("from") or ""), str(gap.get("to") or "")))
        elif kind == VANTAGE:
            event = json.loads(body)
            summary.vantage_events.append((str(event.get("at") or ""), str(event.get("event"))))
        elif kind == DRIFT:
            event = json.loads(body)
            summary.drift_events.append(
                (str(event.get("at") or ""), str(event.get("event")), str(event.get("target_id")))
            )
        elif kind == CLOCK_JUMP:
            summary.report_facts.clock_jump(seq, json.loads(body))


@dataclasses.dataclass(frozen=True, slots=True)
class _Scanned:
    """The entries [start, stop) read by `_write_range`, and the seqs of its timestamps."""

    start: int
    stop: int
    stamps: list[int]


def _write_range(
    writer: ZipWriter,
    ledger: Ledger,
    size: int,
    request: ExportRequest,
    summary: BundleSummary,
    *,
    progress_enabled: bool | None,
    workers: int | None,
) -> _Scanned:
    start, stop = _find_range(ledger, size, request)
    if stop <= start:
        raise BundleRequestError(
            f"the ledger holds no entry between {request.start.isoformat()} and "
            f"{request.end.isoformat()}: choose another period"
        )
    summary.range_start, summary.range_stop = start, stop
    # The report's period is that of the data: it starts at the first entry exported, and a
    # period still running (a day asked for before its end) ends at the last entry, not in
    # the future. The request is kept for the manifest, and the report names it.
    first, last = _time_at(ledger, start), _time_at(ledger, stop - 1)
    summary.requested_start, summary.requested_end = request.start, request.end
    if first is not None and first > request.start:
        summary.period_start = first
    if request.end > summary.created_at and last is not None and last >= summary.period_start:
        summary.period_end = min(last, request.end)
    wanted = set(request.targets)
    outage_entries: list[dict[str, Any]] = []
    in_range_checkpoints: list[tuple[int, bytes]] = []
    stamps: list[int] = []
    progress = _Progress(stop - start, progress_enabled)
    nones = itertools.repeat(None)
    with contextlib.ExitStack() as stack:
        csv_file = stack.enter_context(tempfile.TemporaryFile())
        hidden_spool = stack.enter_context(Spool()) if wanted else None
        tables = CsvPipeline(
            csv_file, workers=csv_workers(stop - start) if workers is None else workers
        )
        stack.enter_context(tables)
        done = 0
        try:
            with writer.deflated("observations.jsonl") as sink:
                for chunk_seqs, chunk_rows in _scan_chunks(ledger, start, stop):
                    done += len(chunk_rows)
                    seqs, rows = chunk_seqs, chunk_rows
                    if wanted:
                        stamps.extend(
                            s for s, r in zip(seqs, rows, strict=True) if r[2] == TIMESTAMP
                        )
                        seqs, rows, hidden = _split_by_target(seqs, rows, wanted)
                        if hidden_spool is not None and hidden:
                            hidden_spool.write(b"".join(hidden))
                        summary.hidden += len(hidden)
                    if not rows:
                        continue
                    bodies = [row[0] for row in rows]
                    bodies.append(b"")
                    block = b"\n".join(bodies)  # one line per entry
                    sink.write(block)
                    summary.disclosed += len(rows)
                    kinds = [row[2] for row in rows]  # None: an observation
                    skip: Sequence[int] = ()
                    if kinds.count(None) != len(kinds):
                        others_at = map(operator.is_not, kinds, nones)
                        skip = list(itertools.compress(range(len(kinds)), others_at))
                        others = [(seqs[i], kinds[i], rows[i][0]) for i in skip]
                        if not wanted:
                            stamps.extend(seq for seq, kind, _ in others if kind == TIMESTAMP)
                        _other_entries(others, summary, outage_entries, in_range_checkpoints)
                    tables.submit(rows, block, skip)
                    progress.update(done)
            csv = tables.finish()
        finally:
            progress.close()
        if done != stop - start:
            raise BundleError(
                f"the ledger has gaps between entries {start} and {stop}: run `vigie verify`"
            )
        summary.entries = stop - start
        csv.table.finish(summary)
        writer.put_deflated("observations.csv", csv_file, csv)
        if hidden_spool is not None:
            writer.put_spool("proofs/hidden-leaves.bin", hidden_spool)
    summary.outages = [
        r for r in outages_from_entries(outage_entries) if not wanted or r.target_id in wanted
    ]
    with writer.member("outages.csv") as member:
        outage_table = _CsvChunks(member, CSV_OUTAGE_COLUMNS)
        outage_table.rows(_outage_row(r, summary.corroboration) for r in summary.outages)
        outage_table.flush()
    _write_range_proof(writer, ledger, summary, size=size, stop=stop, in_range=in_range_checkpoints)
    return _Scanned(start, stop, stamps)


def _node_list(ledger: Ledger, parts: Iterable[tuple[int, int]]) -> list[dict[str, Any]]:
    return [
        {"level": level, "index": index, "hash": _b64(_subtree(ledger, level, index))}
        for level, index in parts
    ]


def _left_parts(start: int) -> list[tuple[int, int]]:
    parts = []
    position = 0
    for level in range(start.bit_length() - 1, -1, -1):
        if start >> level & 1:
            parts.append((level, position >> level))
            position += 1 << level
    return parts


def _write_range_proof(
    writer: ZipWriter,
    ledger: Ledger,
    summary: BundleSummary,
    *,
    size: int,
    stop: int,
    in_range: list[tuple[int, bytes]],
) -> None:
    start = summary.range_start
    closing = _closing_checkpoint(ledger, stop, size)
    previous = _previous_checkpoint(ledger, start)
    chosen: list[tuple[int, bytes]] = []
    if previous is not None:
        chosen.append(previous)
    chosen.extend(in_range)
    if closing is not None:
        chosen.append(closing)
    else:
        summary.warnings.append(
            f"no checkpoint after entry {stop - 1} yet: the last entries of the period are "
            "covered only by the checkpoints inside it"
        )
    checkpoints = [Checkpoint.from_entry(seq, body) for seq, body in chosen]
    summary.checkpoints = checkpoints
    consistency = []
    for old, new in itertools.pairwise(checkpoints):
        consistency.append(
            {
                "old": old.tree_size,
                "new": new.tree_size,
                "proof": [_b64(h) for h in ledger.consistency_proof(old.tree_size, new.tree_size)],
            }
        )
    proof = {
        "format": RANGE_FORMAT,
        "start": start,
        "stop": stop,
        "left": _node_list(ledger, _left_parts(start)),
        "closing": None
        if closing is None
        else {"seq": closing[0], "right": _node_list(ledger, aligned_ranges(stop, closing[0]))},
        "previous": None if previous is None else previous[0],
        "hidden": summary.hidden,
        "consistency": consistency,
    }
    writer.put("proofs/range.json", _pretty(proof))
    writer.put("proofs/checkpoints.jsonl", b"".join(body + b"\n" for _, body in chosen))
    if closing is not None and summary.target_filter:  # complete histories (evidence/chain.py)
        _put_chain(writer, chain.after_lines(ledger, summary.target_filter, stop, closing[0]))


def _put_chain(writer: ZipWriter, after: bytes) -> None:
    """``proofs/chain.jsonl``: the target's entries between the bundle's and the checkpoint
    whose heads anchor its chain (evidence/chain.py); none: no member."""
    if after:
        writer.put("proofs/chain.jsonl", after)


def _write_outage(
    writer: ZipWriter, ledger: Ledger, size: int, outage_id: str, summary: BundleSummary
) -> None:
    events: list[dict[str, Any]] = []
    marker = f'"outage_id":"{outage_id}"'.encode()
    for rows in ledger.row_chunks(0, size, _CHUNK):  # type: ignore[attr-defined]
        for seq, kind, body, _leaf in rows:
            if kind in {OUTAGE, REVIEW} and marker in body:  # with its reviews
                event = json.loads(body)
                event.setdefault("seq", seq)
                events.append(event)
    if not events:
        raise BundleRequestError(f"no outage {outage_id!r} in the ledger: see `vigie outages`")
    record = outages_from_entries(events)[0]
    summary.outages = [record]
    summary.target_filter = (record.target_id,)
    seqs = {int(e["seq"]) for e in events}
    first = record.first_seq if record.first_seq is not None else min(seqs)
    last = record.last_seq if record.last_seq is not None else max(seqs)
    if record.is_open:
        # Still going on: the target's observations up to the last checkpoint show it lasting.
        latest = ledger.latest_checkpoint()
        if latest is not None and latest.seq is not None and latest.seq > max(last, *seqs):
            last = latest.seq - 1
    selected: list[tuple[int, bytes]] = []
    # up to the last event too: every entry of the target up to there is shown (chain.py)
    for rows in ledger.row_chunks(first, max(last, *seqs) + 1, _CHUNK):  # type: ignore[attr-defined]
        for seq, kind, body, _leaf in rows:
            if seq in seqs or kind == CLOCK_JUMP or _target_of(body) == record.target_id:
                selected.append((seq, body))
    selected_seqs = {s for s, _ in selected}
    selected.extend((seq, ledger.get(seq)) for seq in sorted(seqs - selected_seqs))
    selected.sort()
    top = selected[-1][0]
    closing = _closing_checkpoint(ledger, top + 1, size)
    if closing is None:
        raise NotCoveredYetError(
            f"the outage {outage_id} is not yet covered by a checkpoint: retry after the "
            "next one (every ledger.checkpoint_interval)"
        )
    tree_size = closing[0]
    summary.range_start, summary.range_stop = selected[0][0], top + 1
    # The period of an outage bundle is that of the entries it carries, not the request's.
    times = [t for _, body in selected if (t := entry_time(json.loads(body))) is not None]
    summary.period_start = min([record.start, *times])
    summary.period_end = max([record.end or record.start, *times])
    summary.entries = summary.disclosed = len(selected)
    summary.checkpoints = [Checkpoint.from_entry(*closing)]
    tlog: list[tuple[int, list[bytes]]] = []  # each entry's C2SP tlog-proof (tlog_proof.py)
    with tempfile.TemporaryFile() as csv_file, Spool() as proofs:
        observations = CsvBuilder(csv_file)
        with writer.member("observations.jsonl") as jsonl:
            for seq, body in selected:
                jsonl.write(body + b"\n")
                nodes = ledger.inclusion_proof(seq, tree_size)
                tlog.append((seq, nodes))
                path = [_b64(h) for h in nodes]
                line = {"seq": seq, "tree_size": tree_size, "path": path}
                proofs.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
                entry = json.loads(body)
                if entry.get("type") == OBSERVATION:
                    observations.add(decode_bodies([body]))
                elif entry.get("type") == TIMESTAMP:
                    summary.timestamps[int(entry["checkpoint_seq"])] = str(entry.get("gen_time"))
                elif entry.get("type") == CLOCK_JUMP:
                    summary.report_facts.clock_jump(seq, entry)
        csv = observations.finish()
        csv.table.finish(summary)
        writer.put_deflated("observations.csv", csv_file, csv)
        writer.put_spool("proofs/inclusion.jsonl", proofs)
    with writer.member("outages.csv") as member:
        table = _CsvChunks(member, CSV_OUTAGE_COLUMNS)
        table.row(_outage_row(record, summary.corroboration))
        table.flush()
    writer.put("proofs/checkpoints.jsonl", closing[1] + b"\n")
    _put_chain(writer, chain.after_lines(ledger, (record.target_id,), top + 1, tree_size))
    note = _with_cosignatures(ledger, size, summary.checkpoints[0])
    for seq, nodes in tlog:
        writer.put(f"proofs/tlog/{seq}.tlog-proof", format_tlog_proof(seq, nodes, note).encode())
    summary.mode = "outage"


def _with_cosignatures(ledger: Ledger, size: int, checkpoint: Checkpoint) -> str:
    """The signed note of `checkpoint` with the witnesses' cosignature lines appended (a
    tlog-proof carries the checkpoint with its cosignatures)."""
    from evidence.ledger import cosignatures

    assert checkpoint.seq is not None
    found = cosignatures.collect(ledger, checkpoint.seq, size)
    lines = [json.loads(line)["cosignature"] for line in found.splitlines()]
    return checkpoint.note + "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _write_cosignatures(
    writer: ZipWriter, ledger: Ledger, size: int, summary: BundleSummary
) -> None:
    """The witnesses' cosignatures of the checkpoint covering the bundle (cosignatures.py)."""
    from evidence.ledger import cosignatures

    asked = summary.settings.witnessing.ask if summary.settings is not None else ()
    if asked:
        writer.put("proofs/witnesses.txt", "".join(f"{w.key}\n" for w in asked).encode())
    if summary.checkpoints and summary.checkpoints[-1].seq is not None:
        found = cosignatures.collect(ledger, summary.checkpoints[-1].seq, size)
        if found:
            writer.put("proofs/cosignatures.jsonl", found)


def _write_artifacts(writer: ZipWriter, directory: Path | None, summary: BundleSummary) -> None:
    kinds = dict(summary.artifact_files)
    summary.artifact_files = {}
    read = _artifact_reader(directory)
    missing = 0
    for sha, kind in sorted(kinds.items()):
        data = read(sha)
        if data is None:
            missing += 1
            continue
        ext = _ARTIFACT_EXT.get(kind, ".bin")
        if kind == "warc" and data[:2] == b"\x1f\x8b":
            ext = ".warc.gz"
        name = f"artifacts/{sha}{ext}"
        writer.put(name, data)
        summary.artifact_files[sha] = name
    if missing:
        summary.warnings.append(
            f"{missing} artifacts named by the entries are missing or altered in the store"
            + ("" if directory is not None else " (no artifact directory given)")
        )


def _write_proof_material(
    writer: ZipWriter,
    ledger: Ledger,
    size: int,
    summary: BundleSummary,
    tsa_certificates: Sequence[bytes],
    *,
    scanned: _Scanned | None = None,
) -> None:
    """Checkpoint notes, their RFC 3161 tokens, the public key and the TSA certificates.

    A checkpoint's token is in the first timestamp entry for it found among the
    `_TIMESTAMP_LOOKAHEAD` entries after it; timestamps of the entries `scanned` by the export
    are known and not read again.
    """
    from evidence.ledger.timestamp import certificates_pem, load_certificates, token_certificates

    verifier_pem = _public_pem(summary.public_key)
    writer.put("proofs/vantage.pub", verifier_pem)
    _write_cosignatures(writer, ledger, size, summary)
    writer.put("proofs/vantage.vkey", summary.public_key.encode() + b"\n")
    wanted = {cp.seq for cp in summary.checkpoints if cp.seq is not None}
    tokens: dict[int, bytes] = {}
    windows: list[tuple[int, int]] = []  # where each checkpoint's timestamp is looked for
    for cp in summary.checkpoints:
        assert cp.seq is not None
        writer.put(f"proofs/checkpoints/{cp.seq}.note", cp.note.encode("utf-8"))
        windows.append((cp.seq + 1, min(size, cp.seq + 1 + _TIMESTAMP_LOOKAHEAD)))
    for body in _timestamp_bodies(ledger, windows, scanned):
        stamp = json.loads(body)
        target = int(stamp.get("checkpoint_seq", -1))
        if target in wanted and target not in tokens:
            tokens[target] = base64.b64decode(stamp["token"])
            summary.timestamps[target] = str(stamp.get("gen_time") or "")
    certs: list[bytes] = []
    for seq, token in sorted(tokens.items()):
        writer.put(f"proofs/timestamps/{seq}.tsr", token)
        try:
            for der in token_certificates(token):
                if der not in certs:
                    certs.append(der)
        except Exception as exc:  # noqa: BLE001 - a bad token is reported by verify
            summary.warnings.append(f"timestamp of checkpoint {seq} unreadable: {exc}")
    roots: list[bytes] = []
    for blob in tsa_certificates:
        for cert in load_certificates(blob):
            from cryptography.hazmat.primitives.serialization import Encoding

            der = cert.public_bytes(Encoding.DER)
            if der not in roots:
                roots.append(der)
    if certs:
        writer.put("proofs/tsa-certificates.pem", certificates_pem(certs))
    if roots:
        writer.put("proofs/tsa-ca.pem", certificates_pem(roots))


def _timestamp_bodies(
    ledger: Ledger, windows: Sequence[tuple[int, int]], scanned: _Scanned | None
) -> Iterator[bytes]:
    """Bodies of the timestamp entries in the union of the [start, stop) `windows`, in seq
    order (each once); those in the `scanned` range come from its list of timestamp seqs."""
    merged: list[list[int]] = []
    for low, high in sorted(windows):
        if low >= high:
            continue
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    for low, high in merged:
        if scanned is None:
            yield from _read_timestamps(ledger, low, high)
            continue
        yield from _read_timestamps(ledger, low, min(high, scanned.start))
        first = bisect.bisect_left(scanned.stamps, max(low, scanned.start))
        end = bisect.bisect_left(scanned.stamps, min(high, scanned.stop))
        for seq in scanned.stamps[first:end]:
            yield ledger.get(seq)
        yield from _read_timestamps(ledger, max(low, scanned.stop), high)


def _read_timestamps(ledger: Ledger, start: int, stop: int) -> Iterator[bytes]:
    if start >= stop:
        return
    for rows in ledger.row_chunks(start, stop, _CHUNK):  # type: ignore[attr-defined]
        for _seq, kind, body, _leaf in rows:
            if kind == TIMESTAMP:
                yield body


def _public_pem(vkey: str) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from evidence.ledger.signing import NoteVerifier

    return NoteVerifier.parse(vkey).public_key.public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )


def _pretty(data: Any) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _stamped_manifest(
    summary: BundleSummary, files: Mapping[str, tuple[str, int]], timestamper: Stamper | None
) -> tuple[bytes, bytes | None]:
    """The manifest and its token. With a TSA, the manifest declares the token it carries
    (``timestamp.token``), so removing ``manifest.tsr`` is a failure; when the TSA fails, the
    manifest declares that instead (``token: null`` and the error), a warning at verification.
    """
    if timestamper is None:
        return _manifest(summary, files), None
    manifest = _manifest(summary, files, token=True)
    try:
        return manifest, timestamper.stamp(manifest)
    except Exception as exc:  # noqa: BLE001 - the bundle stays valid without it
        summary.warnings.append(f"manifest not timestamped: {exc}")
        log.warning("bundle_tsa_failed", error=str(exc))
        return _manifest(summary, files, token=False, error=str(exc)), None


def _manifest(
    summary: BundleSummary,
    files: Mapping[str, tuple[str, int]],
    *,
    token: bool | None = None,
    error: str | None = None,
) -> bytes:
    data = {
        "format": BUNDLE_FORMAT,
        "created_at": summary.created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "vantage": summary.vantage,
        "operator": summary.operator,
        "public_key": summary.public_key,
        "mode": summary.mode,
        "period": {
            "from": (summary.requested_start or summary.period_start)
            .astimezone(dt.UTC)
            .isoformat(),
            "to": (summary.requested_end or summary.period_end).astimezone(dt.UTC).isoformat(),
        },
        "targets": list(summary.target_filter) or None,
        "outage": summary.outage_id,
        "range": {"start": summary.range_start, "stop": summary.range_stop},
        "entries": {
            "total": summary.entries,
            "disclosed": summary.disclosed,
            "hidden": summary.hidden,
        },
        "outages": [
            {
                "id": r.id,
                "target_id": r.target_id,
                "kind": r.kind,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
            }
            for r in summary.outages
        ],
        "tsa": summary.tsa_name,
        "warnings": summary.warnings,
        **_timestamp_declaration(summary, token, error),
        "files": {
            name: {"sha256": sha, "size": size} for name, (sha, size) in sorted(files.items())
        },
    }
    return _pretty(data)


def _fingerprint_of(vkey: str) -> str:
    from evidence.ledger.signing import NoteVerifier, key_fingerprint

    return key_fingerprint(NoteVerifier.parse(vkey).raw)


def _timestamp_declaration(
    summary: BundleSummary, token: bool | None, error: str | None
) -> dict[str, Any]:
    if token is None:
        return {}
    return {
        "timestamp": {
            "tsa": summary.tsa_name,
            "token": "manifest.tsr" if token else None,
            "error": error,
        }
    }


def _lisezmoi(summary: BundleSummary) -> bytes:
    template = _standalone("LISEZMOI.txt").decode("utf-8")
    targets = ", ".join(summary.target_filter) or "toutes les cibles"
    values = {
        "vantage": summary.vantage,
        "operator": summary.operator
        or "(non renseigné : vantage.operator est vide dans la configuration)",
        "debut": paris_time(summary.period_start),
        "fin": paris_time(summary.period_end),
        "cibles": targets,
        "cle": summary.public_key,
        "entrees": f"{summary.range_start} à {max(summary.range_stop - 1, summary.range_start)}",
        "cree": paris_time(summary.created_at),
        "demande": (
            f"l'interruption {summary.outage_id} (la période est celle de ses entrées)"
            if summary.outage_id is not None
            else f"du {paris_time(summary.requested_start or summary.period_start)} au "
            f"{paris_time(summary.requested_end or summary.period_end)} (heure de Paris)"
        ),
        "archive": summary.bundle_name or "dossier.zip",
        "empreinte": _fingerprint_of(summary.public_key),
    }
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template.encode("utf-8")
