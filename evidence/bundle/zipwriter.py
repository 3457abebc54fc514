"""The bundle's zip writer: members hashed as they are written, deflated in a thread of their
own (ISA-L when installed, else zlib), large members spliced in already deflated.

It only writes the new zip it is given. Splicing a deflated member uses private attributes of
`zipfile`'s member writer (checked first; without them the data is inflated and written the
ordinary way): replacing them by a writer of our own (ZIP64 included) is still to do (issue 16).
"""

from __future__ import annotations

import hashlib
import queue
import sys
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any, Protocol

from evidence.bundle.model import BundleError

__all__ = [
    "Background",
    "Deflated",
    "DeflatedContent",
    "HashingWriter",
    "RawMember",
    "Spool",
    "ZipWriter",
    "crc32",
]


class DeflatedContent(Protocol):
    """What is known of a member deflated elsewhere: its content's CRC-32, SHA-256 and size."""

    @property
    def crc(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    @property
    def size(self) -> int: ...


_ZLIB_LEVEL = 1  # deflate level of the large members when ISA-L is missing


_DEFLATE_MIN = 1 << 18  # bytes gathered before they are deflated


class HashingWriter:
    """Wraps a zip member: counts and hashes what is written."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        self.stream.write(data)


class ZipWriter:
    """Builds one bundle into an open zip."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.files: dict[str, tuple[str, int]] = {}

    def member(self, name: str) -> _Member:
        return _Member(self, name)

    def put(self, name: str, data: bytes) -> None:
        with self.member(name) as out:
            out.write(data)

    def put_spool(self, name: str, spool: Spool) -> None:
        """Copy a spooled temporary file into the zip (one member is written at a time)."""
        spool.file.seek(0)
        with self.deflated(name) as out:
            while block := spool.file.read(1 << 20):
                out.write(block)

    def deflated(self, name: str) -> _DeflatedMember:
        """A member deflated here (ISA-L when installed), not by `zipfile`."""
        return _DeflatedMember(self, name)

    def put_deflated(self, name: str, file: IO[bytes], csv: DeflatedContent) -> None:
        """Splice a member whose content `csv` describes and whose deflated data is `file`."""
        file.seek(0)
        with RawMember(self.zf, name) as raw:
            while block := file.read(1 << 20):
                raw.write(block)
            raw.done(csv.crc, csv.size)
        self.files[name] = (csv.sha256, csv.size)


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


def _isal() -> tuple[Callable[[int, int, int], _Compressor] | None, Callable[[bytes, int], int]]:
    """ISA-L's deflate (4-5x faster than zlib at level 1, and smaller) and CRC-32 (3x faster);
    zlib is the fallback where the `isal` wheel is not installed."""
    try:
        from isal.isal_zlib import compressobj, crc32
    except ImportError:  # pragma: no cover - depends on the installation
        return None, zlib.crc32
    return compressobj, crc32


_ISAL_COMPRESSOBJ, crc32 = _isal()


def _compressobj() -> _Compressor:
    """A raw deflate stream (as in a zip member): ISA-L level 1, or zlib level 1."""
    if _ISAL_COMPRESSOBJ is not None:
        return _ISAL_COMPRESSOBJ(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    return zlib.compressobj(_ZLIB_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)


class Deflated:
    """Deflates the content of a member into `out`, with its CRC-32, SHA-256 and size.

    Small writes are gathered first: ISA-L compresses a small input after another one poorly.
    """

    def __init__(self, out: Callable[[bytes], object]) -> None:
        self.out = out
        self.compressor = _compressobj()
        self.crc = 0
        self.sha = hashlib.sha256()
        self.size = 0
        self.pending: list[bytes] = []
        self.pending_size = 0

    def write(self, data: bytes) -> None:
        self.crc = crc32(data, self.crc)
        self.sha.update(data)
        self.size += len(data)
        if self.pending or len(data) < _DEFLATE_MIN:
            self.pending.append(data)
            self.pending_size += len(data)
            if self.pending_size < _DEFLATE_MIN:
                return
            data = b"".join(self.pending)
            self.pending, self.pending_size = [], 0
        if deflated := self.compressor.compress(data):
            self.out(deflated)

    def finish(self) -> None:
        if self.pending:
            self.out(self.compressor.compress(b"".join(self.pending)))
            self.pending, self.pending_size = [], 0
        self.out(self.compressor.flush())


class _AsIs:
    """Stands in for the compressor of a zip member whose data comes deflated."""

    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


class RawMember:
    """A zip member written with data already deflated (a raw deflate stream).

    `zipfile` has no public way to write compressed data: its member writer is given a
    compressor that passes data as is, and the CRC-32 and size of the content at the end.
    Should a Python version lack those attributes, the data is inflated and written the
    ordinary way (slower, same member).
    """

    _ATTRIBUTES = ("_compressor", "_crc", "_file_size", "_compress_size")

    def __init__(self, zf: zipfile.ZipFile, name: str) -> None:
        self.zf = zf
        self.name = name
        self.inflater: Any = None
        self.raw: Any = None
        self.sizes: tuple[int, int] | None = None

    def __enter__(self) -> RawMember:
        self.raw = self.zf.open(_zip_info(self.name), "w", force_zip64=True)
        if _splicing(self.raw):
            self.raw._compressor = _AsIs()
        else:
            self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        return self

    def write(self, deflated: bytes) -> None:
        if self.inflater is None:
            self.raw.write(deflated)
        else:
            self.raw.write(self.inflater.decompress(deflated))

    def done(self, crc: int, size: int) -> None:
        """The content is complete: its CRC-32 and size (before compression)."""
        self.sizes = (crc, size)
        if self.inflater is not None:
            self.raw.write(self.inflater.flush())
        else:
            self.raw._crc = crc
            self.raw._file_size = size

    def __exit__(self, *exc: object) -> None:
        if self.sizes is None and exc[0] is None:
            raise BundleError(f"internal error: {self.name} was not completed")
        self.raw.close()
        if exc[0] is None:
            info = self.zf.getinfo(self.name)
            if (info.CRC, info.file_size) != self.sizes:
                raise BundleError(f"internal error: {self.name} was written wrong")


def _splicing(raw: object) -> bool:
    return all(hasattr(raw, name) for name in RawMember._ATTRIBUTES)


class _DeflatedMember:
    """A member deflated by this module (`Deflated`) in a thread of its own.

    zlib, ISA-L and hashlib release the GIL: the compression of a large member overlaps the
    reading of the ledger. As a context manager it gives the `Background` to write to; the
    member is complete at exit.
    """

    def __init__(self, writer: ZipWriter, name: str) -> None:
        self.writer = writer
        self.name = name
        self.raw = RawMember(writer.zf, name)
        self.content = Deflated(self.raw.write)
        self.sink = Background(self.content.write)

    def __enter__(self) -> Background:
        self.raw.__enter__()
        try:
            return self.sink.__enter__()
        except BaseException:
            self.raw.__exit__(*sys.exc_info())
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            self.sink.__exit__(*exc)  # the thread is done (its error raised) first
            if exc[0] is None:
                self.content.finish()
                self.raw.done(self.content.crc, self.content.size)
        except BaseException:
            self.raw.__exit__(*sys.exc_info())
            raise
        self.raw.__exit__(*exc)
        if exc[0] is None:
            self.writer.files[self.name] = (self.content.sha.hexdigest(), self.content.size)


class Spool:
    """A temporary file standing in for a member while another one is being written."""

    def __init__(self) -> None:
        self.size = 0

    def __enter__(self) -> Spool:
        self.file: IO[bytes] = tempfile.TemporaryFile()
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)


class Background:
    """Hands blocks to `write` in a thread: zlib, ISA-L, hashlib and pipe writes release the
    GIL, so they overlap the work of the caller.

    At most `depth` blocks wait in the queue (memory stays bounded); an error in the thread is
    raised in the caller at the next write or at exit.
    """

    def __init__(self, write: Callable[[bytes], object], depth: int = 3) -> None:
        self.out = write
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bundle-writer", daemon=True)
        self.closed = False

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def _run(self) -> None:
        while (block := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.out(block)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                    self.error = exc

    def write(self, block: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(block)

    def __exit__(self, *exc: object) -> None:
        if self.closed:
            return
        self.closed = True
        self.queue.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


class _Member:
    def __init__(self, writer: ZipWriter, name: str) -> None:
        self.writer = writer
        self.name = name
        self._raw: IO[bytes] | None = None
        self._hashing: HashingWriter | None = None

    def __enter__(self) -> HashingWriter:
        info = zipfile.ZipInfo(self.name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self._raw = self.writer.zf.open(info, "w", force_zip64=True)
        self._hashing = HashingWriter(self._raw)
        return self._hashing

    def __exit__(self, *exc: object) -> None:
        assert self._raw is not None
        assert self._hashing is not None
        self._raw.close()
        self.writer.files[self.name] = (self._hashing.sha.hexdigest(), self._hashing.size)
