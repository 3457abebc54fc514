"""Strict DER reading: just enough to walk CMS SignedData (RFC 3161 tokens and replies).

Definite lengths only, no trailing bytes, no high tag numbers; it only reads. The stand-alone
verifier shipped in bundles keeps its own copy (it imports nothing of Vigie).
"""

from __future__ import annotations

import dataclasses

__all__ = ["DerError", "Tlv", "children", "encode_tlv", "read_tlv", "top_sequence"]


class DerError(ValueError):
    """Bytes that are not the strict DER expected (the message says where it breaks)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Tlv:
    """One DER element of `buf`: its tag and where its encoding and contents lie."""

    tag: int
    start: int  # first byte of the tag
    body: int  # first byte of the contents
    end: int  # one past the last byte

    def contents(self, buf: bytes) -> bytes:
        """The element's contents (without tag and length)."""
        return buf[self.body : self.end]

    def encoding(self, buf: bytes) -> bytes:
        """The element's whole encoding (tag, length, contents)."""
        return buf[self.start : self.end]


def read_tlv(buf: bytes, pos: int, limit: int) -> Tlv:
    """The element at `pos`, which must end by `limit` (DerError otherwise)."""
    if pos + 2 > limit:
        raise DerError("truncated DER")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("unexpected high tag number")
    first = buf[pos + 1]
    body = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DerError("indefinite or oversized DER length")
        if body + count > limit:
            raise DerError("truncated DER length")
        length = int.from_bytes(buf[body : body + count], "big")
        body += count
    if body + length > limit:
        raise DerError("DER value runs past its container")
    return Tlv(tag, pos, body, body + length)


def children(buf: bytes, parent: Tlv) -> list[Tlv]:
    """The elements inside a constructed `parent`, which must fill it exactly."""
    items: list[Tlv] = []
    pos = parent.body
    while pos < parent.end:
        item = read_tlv(buf, pos, parent.end)
        items.append(item)
        pos = item.end
    return items


def top_sequence(buf: bytes) -> Tlv:
    """`buf` as one SEQUENCE and nothing after it."""
    top = read_tlv(buf, 0, len(buf))
    if top.tag != 0x30 or top.end != len(buf):
        raise DerError("not a single DER SEQUENCE")
    return top


def encode_tlv(tag: int, contents: bytes) -> bytes:
    """The DER encoding of `contents` under `tag` (definite, shortest length)."""
    size = len(contents)
    if size < 0x80:
        return bytes([tag, size]) + contents
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + contents
