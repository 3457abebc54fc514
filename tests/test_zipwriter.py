"""The bundle's own zip writer (evidence/bundle/zipwriter.py): what it writes is read back by
Python's `zipfile` and by Info-ZIP's `unzip -t`, ZIP64 cases included, and its bytes are the
ones `zipfile` itself writes for the same members (the bundles did not change with it)."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest

from evidence.bundle.model import BundleError
from evidence.bundle.zipwriter import Spool, ZipArchive, ZipLimits, ZipWriter

EPOCH = (1980, 1, 1, 0, 0, 0)


def _noise(size: int, seed: int) -> bytes:
    """Text that deflates somewhat, as the bundle's members do (not a run of one byte)."""
    rng = random.Random(seed)
    words = [b"observation", b"cible", b"200", b"503", b"2026-01-01T00:00:00Z", b"ok", b"\n"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b","
    return bytes(out[:size])


def _unzip_t(path: Path) -> int:
    """How many members `unzip -t` tested OK (it fails on any error)."""
    done = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No errors detected" in done.stdout
    tested = [line for line in done.stdout.splitlines() if line.lstrip().startswith("testing:")]
    assert all(line.rstrip().endswith("OK") for line in tested)
    return len(tested)


def _with_zipfile(path: Path, members: list[tuple[str, bytes, bool]]) -> None:
    """The same members written by `zipfile` as the export wrote them before its own writer:
    listed members through `open(..., force_zip64=True)`, unlisted ones through `writestr`."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, listed in members:
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            if listed:
                with zf.open(info, "w", force_zip64=True) as out:
                    out.write(data)
            else:
                zf.writestr(info, data)


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


class _Content:
    def __init__(self, data: bytes) -> None:
        self.crc = zlib.crc32(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.size = len(data)


def test_same_bytes_as_zipfile(tmp_path: Path) -> None:
    """Members deflated by zlib (listed or not, ASCII or UTF-8 names) come out byte for byte as
    `zipfile` wrote them: a bundle exported before and after the change is the same file."""
    members = [
        ("report.pdf", _noise(70_000, 1), True),
        ("proofs/checkpoints/12.note", b"paris-1\n12\nroot\n", True),
        ("pi\u00e8ces/r\u00e9sum\u00e9.txt", "déjà vu\n".encode(), True),
        ("empty.txt", b"", True),
        ("manifest.json", _noise(3_000, 2), False),
        ("manifest.sig", b"signature\n", False),
    ]
    ours, theirs = tmp_path / "ours.zip", tmp_path / "theirs.zip"
    with ours.open("wb") as file:
        writer = ZipWriter(file)
        for name, data, listed in members:
            if listed:
                writer.put(name, data)
            else:
                writer.put_unlisted(name, data)
        writer.close()
    _with_zipfile(theirs, members)
    assert ours.read_bytes() == theirs.read_bytes()
    assert writer.files["report.pdf"] == (hashlib.sha256(members[0][1]).hexdigest(), 70_000)
    assert "manifest.json" not in writer.files
    assert _unzip_t(ours) == len(members)


def test_every_kind_of_member_reads_back(tmp_path: Path) -> None:
    """Members deflated in a thread (ISA-L when installed), spliced already deflated, copied
    from a spool: `zipfile` checks every CRC-32 and `unzip -t` agrees."""
    big, csv, spooled = _noise(3_000_000, 3), _noise(500_000, 4), _noise(200_000, 5)
    path = tmp_path / "b.zip"
    with path.open("wb") as file, Spool() as spool:
        writer = ZipWriter(file)
        with writer.deflated("observations.jsonl") as sink:
            for start in range(0, len(big), 10_000):
                sink.write(big[start : start + 10_000])
        writer.put_deflated("observations.csv", io.BytesIO(_deflate(csv)), _Content(csv))
        spool.write(spooled)
        writer.put_spool("proofs/inclusion.jsonl", spool)
        writer.put("LISEZMOI.txt", b"Lisez-moi\n")
        writer.close()
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert zf.read("observations.jsonl") == big
        assert zf.read("observations.csv") == csv
        assert zf.read("proofs/inclusion.jsonl") == spooled
        assert zf.namelist() == [
            "observations.jsonl",
            "observations.csv",
            "proofs/inclusion.jsonl",
            "LISEZMOI.txt",
        ]
    assert writer.files["observations.csv"] == (_Content(csv).sha256, len(csv))
    assert writer.files["observations.jsonl"] == (hashlib.sha256(big).hexdigest(), len(big))
    assert _unzip_t(path) == 4


def _end_record(data: bytes) -> tuple[int, int, int]:
    end = data.rindex(b"PK\x05\x06")
    _, _, _, _, count, size, offset, _ = struct.unpack("<4s4H2LH", data[end : end + 22])
    return count, size, offset


def test_zip64_sizes_offsets_and_end_records(tmp_path: Path) -> None:
    """Past the limits (lowered here so that the archive stays small): members get ZIP64 sizes
    and offsets in the central directory, the archive a ZIP64 end record and locator, and the
    classic end record says 'see ZIP64' (0xFFFF, 0xFFFFFFFF). Both readers read it whole."""
    limits = ZipLimits(size=4_000, count=5)
    contents = {f"m{i}.txt": _noise(1_000 + 2_000 * i, i) for i in range(8)}
    path = tmp_path / "z64.zip"
    with path.open("wb") as file:
        writer = ZipWriter(file, limits=limits)
        for name, data in contents.items():
            writer.put(name, data)
        writer.put_unlisted("manifest.json", _noise(6_000, 9))
        writer.close()
    data = path.read_bytes()
    assert b"PK\x06\x06" in data  # ZIP64 end of central directory record
    assert b"PK\x06\x07" in data  # its locator
    count, directory_size, directory_offset = _end_record(data)
    assert (count, directory_offset) == (0xFFFF, 0xFFFFFFFF)
    assert directory_size < limits.size  # small enough for its classic field
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        for name, content in contents.items():
            assert zf.read(name) == content
            assert zf.getinfo(name).file_size == len(content)
        assert zf.getinfo("m7.txt").header_offset > limits.size
    assert _unzip_t(path) == 9


@pytest.mark.slow
def test_zip64_for_more_than_65535_members(tmp_path: Path) -> None:
    """With the real limits: 70,000 members need the ZIP64 end record (their count does not fit
    in 16 bits); `zipfile` and `unzip` count them all."""
    path = tmp_path / "many.zip"
    with path.open("wb") as file:
        writer = ZipWriter(file)
        for i in range(70_000):
            writer.put_unlisted(f"{i}", b"")
        writer.close()
    data = path.read_bytes()
    assert _end_record(data)[0] == 0xFFFF
    with zipfile.ZipFile(path) as zf:
        assert len(zf.infolist()) == 70_000
        assert zf.read("69999") == b""
    assert _unzip_t(path) == 70_000


def test_a_large_member_without_zip64_fields_is_refused(tmp_path: Path) -> None:
    """A member whose sizes do not fit the classic fields is never written truncated."""
    with (tmp_path / "x.zip").open("wb") as file:
        archive = ZipArchive(file, ZipLimits(size=100))
        entry = archive.begin("big", zip64=False)
        archive.write(b"x" * 200)
        with pytest.raises(BundleError, match="big is too large"):
            archive.end(entry, 0, 200)


def test_a_name_written_twice_is_refused(tmp_path: Path) -> None:
    """Two members of one name would let a reader pick the one the manifest does not list."""
    with (tmp_path / "x.zip").open("wb") as file:
        writer = ZipWriter(file)
        writer.put("manifest.json", b"{}")
        with pytest.raises(BundleError, match=r"manifest\.json written twice"):
            writer.put_unlisted("manifest.json", b"{}")
