"""Merkle tree hashing exactly as RFC 9162 §2.1 (Certificate Transparency): roots and proofs.

Pure computation over bytes already in memory or fetched through a node source; it never
touches storage itself and never accepts a proof it has not recomputed to the expected root.

Definitions (RFC 9162 §2.1.1): leaf hash = SHA-256(0x00 ‖ entry), interior node =
SHA-256(0x01 ‖ left ‖ right), MTH({}) = SHA-256(""), and a tree of n > 1 leaves splits at k,
the largest power of two smaller than n. A *perfect subtree* (level l, index i) covers the
leaves [i·2^l, (i+1)·2^l); every tree is a left-to-right sequence of them (its compact range),
which is what `CompactTree` keeps so that appending costs O(log n) and never needs old leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactTree",
    "NodeSink",
    "NodeSource",
    "ProofError",
    "consistency_proof",
    "fold_range",
    "inclusion_proof",
    "leaf_hash",
    "leaf_hashes",
    "memory_source",
    "mth",
    "node_hash",
    "perfect_levels",
    "prefix_nodes",
    "range_hash",
    "reduce_perfect",
    "root_from_inclusion_proof",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256
# SHA-256 states that have already absorbed the domain-separation prefix: copying one and
# feeding it the rest avoids building `prefix + data` (a copy of every entry) per hash.
_LEAF_STATE = hashlib.sha256(b"\x00")
_NODE_STATE = hashlib.sha256(b"\x01")

# (level, index) -> hash of the perfect subtree covering leaves [index << level, (index+1) << level)
NodeSource = Callable[[int, int], bytes]
# called with (level, index, hash) for every perfect subtree completed at a level it wants
NodeSink = Callable[[int, int, bytes], None]


class ProofError(ValueError):
    """A Merkle proof does not prove what it claims (the message says which check failed)."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 ‖ entry)."""
    return _sha256(b"\x00" + entry).digest()


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    """Leaf hashes of many entries: a tight loop of C calls on a pre-fed 0x00 state.

    Raises TypeError if an entry is not bytes-like (e.g. a str).
    """
    hashes: list[bytes] = []
    append = hashes.append
    start = _LEAF_STATE.copy
    for entry in entries:
        state = start()
        state.update(entry)
        append(state.digest())
    return hashes


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than `n` (n ≥ 2): where MTH splits."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves does not split")
    return 1 << ((n - 1).bit_length() - 1)


def _parents(hashes: Sequence[bytes]) -> list[bytes]:
    """The next level up: one node per complete pair (an odd last node is left out)."""
    parents: list[bytes] = []
    append = parents.append
    start = _NODE_STATE.copy
    for left, right in zip(hashes[::2], hashes[1::2], strict=False):
        state = start()
        state.update(left)
        state.update(right)
        append(state.digest())
    return parents


def reduce_perfect(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree from its 2^k node hashes at one level (k ≥ 0)."""
    level = list(hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError(f"a perfect subtree has a power-of-two width, got {len(level)}")
    while len(level) > 1:
        level = _parents(level)
    return level[0]


def perfect_levels(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every perfect subtree of a run of leaves that starts at a multiple of a large power of 2.

    `levels[l][i]` is the hash of the perfect subtree (l, i) relative to the run's start; level l
    holds ⌊n / 2^l⌋ nodes. Used to scan a log in aligned segments.
    """
    levels = [list(hashes)]
    current = levels[0]
    while len(current) > 1:
        current = _parents(current)
        levels.append(current)
    return levels


def prefix_nodes(levels: Sequence[Sequence[bytes]], size: int) -> list[bytes]:
    """The compact range of the first `size` leaves of a run, left to right, from its levels."""
    nodes: list[bytes] = []
    pos = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append(levels[level][pos >> level])
            pos += 1 << level
    return nodes


def fold_range(nodes: Sequence[bytes]) -> bytes:
    """MTH of a tree given its compact range (perfect subtrees left to right, sizes decreasing)."""
    if not nodes:
        return EMPTY_ROOT
    acc = nodes[-1]
    for node in reversed(nodes[:-1]):
        acc = _sha256(b"\x01" + node + acc).digest()
    return acc


def mth(entries: Sequence[bytes]) -> bytes:
    """MTH (Merkle Tree Hash) of a list of entries, computed in one streaming pass."""
    tree = CompactTree()
    tree.extend(leaf_hashes(entries))
    return tree.root()


def memory_source(hashes: Sequence[bytes]) -> NodeSource:
    """A node source over leaf hashes held in memory (tests, small trees)."""

    def source(level: int, index: int) -> bytes:
        start = index << level
        end = start + (1 << level)
        if end > len(hashes):
            raise IndexError(f"subtree ({level}, {index}) runs past {len(hashes)} leaves")
        return reduce_perfect(hashes[start:end])

    return source


def range_hash(source: NodeSource, start: int, end: int) -> bytes:
    """MTH of the leaves [start, end) where the range is a subtree of RFC 9162's recursion.

    `start` must be a multiple of the largest power of two not above `end - start` (always
    true for the sublists PATH and SUBPROOF visit).
    """
    n = end - start
    if n <= 0:
        raise ValueError(f"empty or negative range [{start}, {end})")
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return source(level, start >> level)
    k = split_point(n)
    return node_hash(range_hash(source, start, start + k), range_hash(source, start + k, end))


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1: the audit path of leaf `index` in a tree of `size`."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end, m = 0, size, index
    # Iterative form of the recursion: collect siblings top-down, return them bottom-up.
    while end - start > 1:
        k = split_point(end - start)
        if m < k:
            path.append(range_hash(source, start + k, end))
            end = start + k
        else:
            path.append(range_hash(source, start, start + k))
            start, m = start + k, m - k
    path.reverse()
    return path


def consistency_proof(source: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 between tree sizes `old_size` ≤ `new_size`.

    Empty when `old_size` is 0 or equals `new_size` (nothing to prove).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(range_hash(source, start, end))
            break
        k = split_point(n)
        if m <= k:
            proof.append(range_hash(source, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(source, start, start + k))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, a SHA-256 hash is {HASH_SIZE}")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1-4)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    _check_hash(leaf, "the leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p, "a proof element")
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2); raise ProofError if it does not hold."""
    _check_hash(root, "the root hash")
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError(f"leaf {index} is not in the tree of size {size} with this root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof (RFC 9162 §2.1.4.2); raise ProofError if it does not hold.

    Sizes 0 and equal sizes follow the usual conventions: an empty tree is consistent with
    any tree (empty proof), equal sizes need equal roots and an empty proof.
    """
    _check_hash(old_root, "the old root hash")
    _check_hash(new_root, "the new root hash")
    if not 0 <= old_size <= new_size:
        raise ProofError(f"the tree cannot shrink from size {old_size} to {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    for p in proof:
        _check_hash(p, "a proof element")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: an exact power of 2
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is deep")
    if fr != old_root:
        raise ProofError(f"the proof does not lead to the old root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"the proof does not lead to the new root of size {new_size}")


class CompactTree:
    """An append-only Merkle tree kept as its compact range: O(log n) memory, O(1) amortised append.

    `nodes` are the perfect subtrees of the tree, left to right (levels = the set bits of `size`,
    highest first). A `NodeSink` given to `extend` receives every perfect subtree completed at
    a level that is a positive multiple of `sink_stride`, so a store can persist a sparse set
    of interior nodes and later answer proofs without rehashing the log.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(nodes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} compact-range nodes")
        self._size = size
        self._nodes = list(nodes)

    @classmethod
    def from_source(cls, source: NodeSource, size: int) -> CompactTree:
        """The compact range of a tree of `size` leaves, fetched from a node source."""
        nodes: list[bytes] = []
        pos = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                nodes.append(source(level, pos >> level))
                pos += 1 << level
        return cls(size, nodes)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """The compact range, left to right."""
        return tuple(self._nodes)

    def copy(self) -> CompactTree:
        """An independent copy (to build on before a transaction commits)."""
        return CompactTree(self._size, self._nodes)

    def root(self) -> bytes:
        """MTH of the tree."""
        return fold_range(self._nodes)

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        self._push(0, leaf, None, 0)

    def push(
        self, level: int, node: bytes, sink: NodeSink | None = None, sink_stride: int = 4
    ) -> None:
        """Append a whole perfect subtree; the current size must be a multiple of 2^level."""
        if level < 0 or self._size % (1 << level):
            raise ValueError(f"size {self._size} is not aligned for a subtree of level {level}")
        self._push(level, node, sink, sink_stride)

    def extend(
        self, hashes: Sequence[bytes], sink: NodeSink | None = None, sink_stride: int = 4
    ) -> None:
        """Append leaf hashes, reducing aligned blocks in bulk (list comprehensions, not loops)."""
        i, n = 0, len(hashes)
        while i < n:
            size = self._size
            remaining = n - i
            block = 1 << (remaining.bit_length() - 1)
            if size:
                block = min(block, size & -size)
            if block == 1:
                self._push(0, hashes[i], sink, sink_stride)
                i += 1
                continue
            level_hashes = list(hashes[i : i + block])
            level = 0
            while len(level_hashes) > 1:
                level_hashes = _parents(level_hashes)
                level += 1
                if sink is not None and level % sink_stride == 0:
                    first = size >> level
                    for j, node in enumerate(level_hashes):
                        sink(level, first + j, node)
            self._push(level, level_hashes[0], sink, sink_stride)
            i += block

    def _push(self, level: int, node: bytes, sink: NodeSink | None, stride: int) -> None:
        index = self._size >> level
        self._size += 1 << level
        nodes = self._nodes
        while index & 1:
            node = _sha256(b"\x01" + nodes.pop() + node).digest()
            level += 1
            index >>= 1
            if sink is not None and level % stride == 0:
                sink(level, index, node)
        nodes.append(node)
