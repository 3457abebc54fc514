"""RFC 9162 Merkle trees: known vectors, and a cross-check against a naive implementation.

The vectors are those of transparency-dev/merkle (proof/verify_test.go, rfc6962_test.go), the
reference Go implementation of RFC 6962/9162. The naive implementation below follows the RFC's
recursive definitions word for word and shares no code with evidence.merkle.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.ledger import merkle

# --- an independent, naive implementation (RFC 9162 §2.1, recursive, no shortcuts) ---------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(d: list[bytes]) -> bytes:
    if not d:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = _k(len(d))
    return _h(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*naive_path(m, d[:k]), naive_mth(d[k:])]
    return [*naive_path(m - k, d[k:]), naive_mth(d[:k])]


def naive_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [naive_mth(d)]
    k = _k(n)
    if m <= k:
        return [*naive_subproof(m, d[:k], b), naive_mth(d[k:])]
    return [*naive_subproof(m - k, d[k:], False), naive_mth(d[:k])]


def naive_proof(m: int, d: list[bytes]) -> list[bytes]:
    return naive_subproof(m, d, True) if 0 < m < len(d) else []


def naive_root_from_path(m: int, n: int, leaf: bytes, path: list[bytes]) -> bytes:
    """Recompute the root by descending the same recursion as PATH (independent verifier)."""
    if n == 1:
        assert not path
        return leaf
    k = _k(n)
    if m < k:
        return _h(b"\x01" + naive_root_from_path(m, k, leaf, path[:-1]) + path[-1])
    return _h(b"\x01" + path[-1] + naive_root_from_path(m - k, n - k, leaf, path[:-1]))


def _dh(text: str) -> bytes:
    return bytes.fromhex(text)


# --- vectors from transparency-dev/merkle -----------------------------------------------------

LEAVES = [
    _dh(""),
    _dh("00"),
    _dh("10"),
    _dh("2021"),
    _dh("3031"),
    _dh("40414243"),
    _dh("5051525354555657"),
    _dh("606162636465666768696a6b6c6d6e6f"),
]
ROOTS = [
    _dh("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    _dh("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    _dh("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    _dh("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    _dh("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    _dh("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    _dh("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    _dh("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
# (leaf index, 1-based as in the Go file; tree size; proof)
INCLUSION = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = _dh("abacaba000000000000000000000000000000000000000000060061e00123456")


def _entries(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 40)) for _ in range(n)]


class TestHashes:
    """The RFC 6962/9162 hashing primitives."""

    def test_empty_tree_is_hash_of_nothing(self) -> None:
        """MTH of no entries is SHA-256 of the empty string."""
        assert merkle.EMPTY_ROOT.hex() == (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        assert merkle.mth([]) == merkle.EMPTY_ROOT

    def test_leaf_hash_vectors(self) -> None:
        """Leaf hashes are SHA-256(0x00 ‖ entry), distinct from the empty tree hash."""
        assert merkle.leaf_hash(b"").hex() == (
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        )
        assert merkle.leaf_hash(b"L123456").hex() == (
            "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
        )

    def test_node_hash_vector(self) -> None:
        """Interior nodes are SHA-256(0x01 ‖ left ‖ right), order-sensitive."""
        assert merkle.node_hash(b"N123", b"N456").hex() == (
            "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
        )
        assert merkle.node_hash(b"N456", b"N123") != merkle.node_hash(b"N123", b"N456")

    def test_leaf_and_node_domains_differ(self) -> None:
        """A leaf equal to two concatenated hashes does not collide with their parent node."""
        left, right = merkle.leaf_hash(b"Hello"), merkle.leaf_hash(b"World")
        assert merkle.leaf_hash(left + right) != merkle.node_hash(left, right)


class TestRoots:
    """MTH for every size, batch and streaming."""

    def test_known_roots(self) -> None:
        """The roots of the first 1..8 vector leaves match the reference values."""
        for size in range(1, 9):
            assert merkle.mth(LEAVES[:size]) == ROOTS[size - 1]

    def test_matches_naive_for_every_small_size(self) -> None:
        """MTH equals the naive recursive definition for sizes 0 to 300."""
        entries = _entries(300)
        for size in range(301):
            assert merkle.mth(entries[:size]) == naive_mth(entries[:size])

    def test_streaming_in_random_chunks(self) -> None:
        """A compact tree fed in uneven chunks has the right root after every chunk."""
        entries = _entries(1100, seed=3)
        hashes = merkle.leaf_hashes(entries)
        rng = random.Random(7)
        tree = merkle.CompactTree()
        position = 0
        while position < len(entries):
            step = rng.choice([1, 2, 3, 7, 16, 64, 100, 256])
            tree.extend(hashes[position : position + step])
            position = min(position + step, len(entries))
            assert tree.size == position
            assert tree.root() == naive_mth(entries[:position])

    def test_compact_range_rebuilt_from_a_node_source(self) -> None:
        """A tree rebuilt from subtree hashes has the same compact range and root."""
        hashes = merkle.leaf_hashes(_entries(77))
        streamed = merkle.CompactTree()
        streamed.extend(hashes)
        rebuilt = merkle.CompactTree.from_source(merkle.memory_source(hashes), 77)
        assert rebuilt.nodes == streamed.nodes
        assert len(rebuilt.nodes) == (77).bit_count()

    def test_sink_receives_every_stored_level_node_once(self) -> None:
        """Every perfect subtree at levels 4, 8 ... is handed to the sink exactly once, right."""
        hashes = merkle.leaf_hashes(_entries(1000, seed=5))
        seen: dict[tuple[int, int], bytes] = {}

        def sink(level: int, index: int, node: bytes) -> None:
            assert (level, index) not in seen
            seen[(level, index)] = node

        tree = merkle.CompactTree()
        rng = random.Random(1)
        position = 0
        while position < len(hashes):
            step = rng.choice([1, 5, 16, 33, 128])
            tree.extend(hashes[position : position + step], sink, 4)
            position += step
        source = merkle.memory_source(hashes)
        expected = {(level, index) for level in (4, 8) for index in range(len(hashes) >> level)}
        assert set(seen) == expected
        for (level, index), node in seen.items():
            assert node == source(level, index)

    def test_leaf_hashes_in_bulk(self) -> None:
        """The bulk leaf hashes (from a pre-fed 0x00 state) equal one-by-one SHA-256(0x00 ‖ e),
        also when called again (the shared state is copied, never consumed); text is refused."""
        entries = [b"", b"\x00", b"\x01" * 63, b"x" * 64, b"y" * 1500, *_entries(20, seed=2)]
        expected = [_h(b"\x00" + entry) for entry in entries]
        assert merkle.leaf_hashes(entries) == expected
        assert merkle.leaf_hashes(iter(entries)) == expected
        with pytest.raises(TypeError):
            merkle.leaf_hashes([b"ok", "text"])  # type: ignore[list-item]

    def test_perfect_levels_and_prefix_nodes(self) -> None:
        """The levels of a run give the compact range (and root) of every prefix."""
        hashes = merkle.leaf_hashes(_entries(50))
        levels = merkle.perfect_levels(hashes)
        for size in range(51):
            nodes = merkle.prefix_nodes(levels, size)
            assert merkle.fold_range(nodes) == naive_mth(_entries(50)[:size])

    @settings(max_examples=60, deadline=None, database=None)
    @given(st.lists(st.binary(max_size=20), max_size=70))
    def test_property_matches_naive(self, entries: list[bytes]) -> None:
        """For arbitrary entries, the streaming root equals the naive root."""
        assert merkle.mth(entries) == naive_mth(entries)


class TestInclusionProofs:
    """PATH generation (§2.1.3.1) and verification (§2.1.3.2)."""

    @pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
    def test_known_proofs(self, leaf: int, size: int, proof: list[str]) -> None:
        """Generated proofs equal the reference ones, and verify against the known root."""
        hashes = merkle.leaf_hashes(LEAVES[:size])
        generated = merkle.inclusion_proof(merkle.memory_source(hashes), leaf - 1, size)
        assert [p.hex() for p in generated] == proof
        merkle.verify_inclusion(hashes[leaf - 1], leaf - 1, size, generated, ROOTS[size - 1])

    def test_matches_naive_for_all_small_trees(self) -> None:
        """For every tree up to 40 leaves and every leaf, PATH equals the naive one and verifies."""
        entries = _entries(40, seed=9)
        for size in range(1, 41):
            hashes = merkle.leaf_hashes(entries[:size])
            source = merkle.memory_source(hashes)
            root = naive_mth(entries[:size])
            for index in range(size):
                proof = merkle.inclusion_proof(source, index, size)
                assert proof == naive_path(index, entries[:size])
                assert naive_root_from_path(index, size, hashes[index], proof) == root
                merkle.verify_inclusion(hashes[index], index, size, proof, root)

    @pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
    def test_corrupted_proofs_are_rejected(self, leaf: int, size: int, proof: list[str]) -> None:
        """Wrong index, size, leaf, root, or any altered, added or removed element fails."""
        index = leaf - 1
        path = [_dh(p) for p in proof]
        leaf_hash = merkle.leaf_hash(LEAVES[index])
        root = ROOTS[size - 1]
        probes: list[tuple[int, int, bytes, list[bytes], bytes]] = [
            (index - 1, size, leaf_hash, path, root),
            (index + 1, size, leaf_hash, path, root),
            (index ^ 2, size, leaf_hash, path, root),
            (index, size * 2, leaf_hash, path, root),
            (index, size // 2, leaf_hash, path, root),
            (index, size, merkle.leaf_hash(b"WrongLeaf"), path, root),
            (index, size, leaf_hash, path, merkle.EMPTY_ROOT),
            (index, size, leaf_hash, path, SOME_HASH),
            (index, size, leaf_hash, [*path, root], root),
            (index, size, leaf_hash, [root, *path], root),
            (index, size, leaf_hash, path[:-1], root),
            (index, size, leaf_hash, [*path, b""], root),
        ]
        for position in range(len(path)):
            flipped = list(path)
            flipped[position] = bytes([flipped[position][0] ^ 8]) + flipped[position][1:]
            probes.append((index, size, leaf_hash, flipped, root))
        for p_index, p_size, p_leaf, p_path, p_root in probes:
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(p_leaf, p_index, p_size, p_path, p_root)

    def test_single_entry_tree(self) -> None:
        """In a one-entry tree the root is the leaf hash and the proof is empty."""
        leaf = merkle.leaf_hash(b"data")
        merkle.verify_inclusion(leaf, 0, 1, [], leaf)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(leaf, 0, 1, [], merkle.EMPTY_ROOT)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(leaf, 1, 1, [], leaf)

    def test_index_outside_tree_refused(self) -> None:
        """Asking for a proof of a leaf that is not in the tree is an error."""
        source = merkle.memory_source(merkle.leaf_hashes(LEAVES))
        with pytest.raises(ValueError, match="not in a tree"):
            merkle.inclusion_proof(source, 8, 8)


class TestConsistencyProofs:
    """PROOF generation (§2.1.4.1) and verification (§2.1.4.2)."""

    @pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
    def test_known_proofs(self, old: int, new: int, proof: list[str]) -> None:
        """Generated proofs equal the reference ones and verify between the known roots."""
        source = merkle.memory_source(merkle.leaf_hashes(LEAVES[:new]))
        generated = merkle.consistency_proof(source, old, new)
        assert [p.hex() for p in generated] == proof
        merkle.verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], generated)

    def test_matches_naive_for_all_small_pairs(self) -> None:
        """For all 0 ≤ m ≤ n ≤ 40, PROOF equals the naive one and verifies."""
        entries = _entries(40, seed=11)
        source = merkle.memory_source(merkle.leaf_hashes(entries))
        roots = [naive_mth(entries[:n]) for n in range(41)]
        for new in range(41):
            for old in range(new + 1):
                proof = merkle.consistency_proof(source, old, new)
                assert proof == naive_proof(old, entries[:new])
                merkle.verify_consistency(old, new, roots[old], roots[new], proof)

    @pytest.mark.parametrize(("old", "new", "proof"), [c for c in CONSISTENCY if c[2]])
    def test_corrupted_proofs_are_rejected(self, old: int, new: int, proof: list[str]) -> None:
        """Wrong sizes, roots, or any altered, added, removed element fails verification."""
        path = [_dh(p) for p in proof]
        root1, root2 = ROOTS[old - 1], ROOTS[new - 1]
        probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
            (old - 1, new, root1, root2, path),
            (old + 1, new, root1, root2, path),
            (old ^ 2, new, root1, root2, path),
            (old, new * 2, root1, root2, path),
            (old, new // 2, root1, root2, path),
            (old, new, SOME_HASH, root2, path),
            (old, new, root1, SOME_HASH, path),
            (old, new, root2, root1, path),
            (old, new, root1, root2, []),
            (old, new, root1, root2, [*path, root1]),
            (old, new, root1, root2, [*path, root2]),
            (old, new, root1, root2, [root1, *path]),
            (old, new, root1, root2, [root2, *path]),
            (old, new, root1, root2, [path[0], *path]),
            (old, new, root1, root2, path[:-1]),
        ]
        for position in range(len(path)):
            flipped = list(path)
            flipped[position] = bytes([flipped[position][0] ^ 16]) + flipped[position][1:]
            probes.append((old, new, root1, root2, flipped))
        for p_old, p_new, p_root1, p_root2, p_path in probes:
            if p_old == p_new == 0 or (p_old == p_new and p_root1 == p_root2 and not p_path):
                continue
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(p_old, p_new, p_root1, p_root2, p_path)

    def test_edge_cases(self) -> None:
        """Empty trees, equal sizes and shrinking follow the usual conventions."""
        a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
        merkle.verify_consistency(0, 0, a, a, [])
        merkle.verify_consistency(0, 5, a, b, [])
        merkle.verify_consistency(3, 3, b, b, [])
        for old, new, r1, r2, proof in [
            (3, 3, a, b, []),
            (1, 0, a, b, []),
            (2, 1, a, b, []),
            (1, 2, a, b, []),
            (0, 1, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [merkle.EMPTY_ROOT]),
            (1, 1, a, a, [a]),
        ]:
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(old, new, r1, r2, proof)
