"""Tampering with an evidence bundle, property-based: hypothesis flips, deletes, adds and
reorders bytes, members and entries of real bundles (`export_bundle`, as `vigie export` makes
them), and both ways of verifying must reject 100% of them, naming the first bad file (and
entry): `verify_bundle` (`vigie verify FILE.zip`, English) and the stand-alone verify.py shipped
in the bundle (run in-process, on the zip, with the vantage key as `--cle`, French). Since issue
16 they share one engine (verify.py; `verify_bundle` is an adapter over it that adds the TSA
roots given and the WARC digests): the properties hold the engine to 100%, and hold the adapter
and the printed ÉCHEC line to the same file and entry, each in its own language.

Three bundles of one ledger are built once: a period filtered to one target (the other
target's entries as leaf hashes only; checkpoints before, inside and after the period; RFC 3161
tokens from the local TSA; screenshots and a WARC), the same period with every entry, and one
outage (inclusion proofs).

The tamperer does not hold the vantage key: a changed file no longer matches the signed
manifest. The `resigned` examples go further and give the tamperer the key (the manifest is
rewritten to match and signed again): entries and proofs must then still be caught by the
checkpoints, which were signed (and timestamped) when the entries were written.

Documented limits (docs/reliability.md, row 4): the signed manifest declares the token it
carries, so removing `manifest.tsr` is a failure (a re-signing forger must declare a TSA failure
instead, which both verifiers show as a warning). Against the key holder who re-signs, an
entry removed together with its proof from an outage bundle, or moved into
proofs/hidden-leaves.bin in a filtered bundle, is caught by the chain of the target's entries
since issue 18 (tests/test_forgery.py); the properties here still do not draw those two.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib.util
import io
import json
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.vocabulary import CHECKPOINT, OBSERVATION, Outcome
from evidence.bundle.export import BUNDLE_FORMAT, export_bundle
from evidence.bundle.model import ExportRequest
from evidence.bundle.verify import verify_bundle
from evidence.ledger.backends import open_ledger
from evidence.ledger.signing import NoteSigner
from evidence.ledger.timestamp import HttpTimestamper
from probes.httpclient import Exchange
from probes.observation import Observation, format_time
from probes.warc import WarcCapture, build_warc
from tests.bundle_fixture import BUILD_START, VANTAGE, build_ledger, checkpoint_body
from tests.tsa_fixture import LocalTsa

STANDALONE = Path(__file__).parents[2] / "evidence" / "standalone" / "verify.py"
EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=False,
)
Members = list[tuple[str, bytes]]
_HASH_B64 = re.compile(rb"(?:(?<=\\n)|(?<![A-Za-z0-9+/]))[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])")
_FAILURE = re.compile(r"^ÉCHEC  (?P<file>[^\s,]+?)(?:, entrée (?P<entry>\d+))? : (?P<message>.*)$")


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A pristine bundle: its members in zip order, and what predicts the entry to be named."""

    mode: str
    members: tuple[tuple[str, bytes], ...]
    lines: tuple[bytes, ...]
    seqs: tuple[int, ...]
    start: int
    stop: int
    marks: tuple[int, ...]  # tree sizes signed by the bundle's checkpoints
    hidden: tuple[int, ...]  # entries given as leaf hashes only

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.members]

    def data(self, name: str) -> bytes:
        return dict(self.members)[name]

    def bounds(self, position: int) -> tuple[int, int]:
        """The entries a verifier may name when line `position` of observations.jsonl is the
        first changed one (or a hidden leaf between lines position-1 and position).

        Outage bundles prove each entry: exactly that entry. Range bundles only know the
        roots: from the last checkpoint before the change to the first one after it.
        """
        if self.mode == "outage":
            seq = self.seqs[position] if position < len(self.seqs) else self.seqs[-1] + 1
            return seq, seq
        low = self.seqs[position - 1] + 1 if position else self.start
        high = self.seqs[position] if position < len(self.seqs) else self.stop
        lower = max([m for m in self.marks if m <= low] + [self.start])
        upper = min([m for m in self.marks if m > high] or [max(self.marks)])
        return lower, upper

    def hidden_position(self, index: int) -> int:
        """The line before which hidden leaf `index` sits."""
        return bisect.bisect_left(self.seqs, self.hidden[index])


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What one verifier said: ok, or the file (and entry) it named."""

    who: str
    ok: bool
    file: str | None
    entry: int | None
    message: str


@dataclasses.dataclass(frozen=True)
class Pristine:
    """The three bundles, the vantage key, an impostor key with the vantage's name, and the
    stand-alone verifier loaded from evidence/standalone/verify.py (the bundle's copy)."""

    bundles: dict[str, Bundle]
    signer: NoteSigner
    impostor: NoteSigner
    standalone: ModuleType
    scratch: Path

    def verify(self, members: Sequence[tuple[str, bytes]], *, key: bool = True) -> list[Verdict]:
        """Both verifiers on a zip of `members` (given the vantage key unless `key` is false)."""
        path = self.scratch / "tampered.zip"
        _write_zip(path, members)
        report = verify_bundle(path, public_key=self.signer.verifier if key else None)
        verdicts = [Verdict("vigie verify", report.ok, report.file, report.entry, report.summary())]
        arguments = [str(path)] + (["--cle", self.signer.verifier.vkey()] if key else [])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = self.standalone.main(arguments)
        text = out.getvalue()
        failed = [line for line in text.splitlines() if line.startswith("ÉCHEC")]
        parsed = _FAILURE.match(failed[0]) if failed else None
        verdicts.append(
            Verdict(
                "verify.py",
                code == 0 and not failed,
                parsed["file"] if parsed else None,
                int(parsed["entry"]) if parsed and parsed["entry"] else None,
                failed[0] if failed else text,
            )
        )
        return verdicts


def _write_zip(path: Path, members: Sequence[tuple[str, bytes]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": some examples want it
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            for name, data in members:
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def _warc(when: dt.datetime) -> bytes:
    """A WARC of a 503 answer, made by the probes' own writer from the bytes of an exchange."""
    exchange = Exchange(
        method="GET",
        url="http://127.0.0.1/anef-accueil",
        scheme="http",
        host="127.0.0.1",
        port=80,
        raw_request=b"GET /anef-accueil HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        remote_ip="127.0.0.1",
        status=503,
        raw_head=b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\n",
        raw_body=b"down!",
        body=b"down!",
        complete=True,
    )
    exchange.phases["processing"] = 0.1
    capture = WarcCapture(
        target_id="anef-accueil",
        vantage=VANTAGE,
        started_at=format_time(when),
        outcome="http_status",
        error="HTTP 503",
    )
    warc = build_warc([exchange], capture)
    assert warc is not None
    return warc


def _load(mode: str, path: Path) -> Bundle:
    with zipfile.ZipFile(path) as zf:
        members = tuple((info.filename, zf.read(info)) for info in zf.infolist())
    data = dict(members)
    lines = tuple(data["observations.jsonl"].split(b"\n")[:-1])
    seqs = tuple(int(json.loads(line)["seq"]) for line in lines)
    marks = tuple(
        int(json.loads(line)["tree_size"]) for line in data["proofs/checkpoints.jsonl"].splitlines()
    )
    if mode == "outage":
        return Bundle(mode, members, lines, seqs, seqs[0], seqs[-1] + 1, marks, ())
    proof = json.loads(data["proofs/range.json"])
    assert proof["previous"] is not None, proof
    assert proof["closing"]["right"], proof
    start, stop = int(proof["start"]), int(proof["stop"])
    hidden = tuple(sorted(set(range(start, stop)) - set(seqs)))
    assert len(hidden) * 32 == len(data.get("proofs/hidden-leaves.bin", b""))
    assert bool(hidden) == (mode == "range"), mode
    return Bundle(mode, members, lines, seqs, start, stop, marks, hidden)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, local_tsa: LocalTsa) -> Pristine:
    """The three bundles of one ledger: 30 minutes of two targets, an outage of the first with
    screenshots, a WARC, checkpoints every 10 minutes timestamped by the local TSA."""
    directory = tmp_path_factory.mktemp("bundle-tamper")
    stamper = HttpTimestamper(local_tsa.url, ca_pem=local_tsa.ca_pem)
    url = f"sqlite:///{directory / 'ledger.db'}"
    built = build_ledger(
        url, directory, minutes=30, checkpoint_every=10, outage_at=(14, 19), stamper=stamper
    )
    when = BUILD_START + dt.timedelta(minutes=30)
    artifacts = {
        built.artifacts.put(_warc(when), "warc"): "warc",
        built.artifacts.put(b"\x89PNG screenshot of the 503", "screenshot"): "screenshot",
    }
    failed = Observation(
        target_id="anef-accueil",
        kind="http",
        vantage=VANTAGE,
        started_at=format_time(when),
        duration_s=1.0,
        success=False,
        outcome=Outcome.HTTP_STATUS,
        http_status=503,
        remote_ip="127.0.0.1",
        final_url="http://127.0.0.1/anef-accueil",
        artifacts=artifacts,
        error="HTTP 503",
        environment={"vantage": VANTAGE},
    ).to_dict()
    after = dict(failed, started_at=format_time(when + dt.timedelta(minutes=1.5)), artifacts={})
    writable = open_ledger(url, vantage=VANTAGE)
    try:
        writable.append([(OBSERVATION, failed)])
        # two entries after the period: the closing checkpoint's proof has right subtrees
        writable.append(
            [(OBSERVATION, after), (OBSERVATION, dict(after, target_id="anef-connexion"))]
        )
        closing = BUILD_START + dt.timedelta(minutes=32)
        writable.append([(CHECKPOINT, lambda head: checkpoint_body(built.signer, head, closing))])
    finally:
        writable.close()
    requests = {
        "range": ExportRequest(
            BUILD_START + dt.timedelta(minutes=12),
            BUILD_START + dt.timedelta(minutes=31),
            ("anef-accueil",),
        ),
        "full": ExportRequest(
            BUILD_START + dt.timedelta(minutes=12), BUILD_START + dt.timedelta(minutes=31)
        ),
        "outage": ExportRequest(
            BUILD_START, BUILD_START + dt.timedelta(minutes=31), outage_id=built.outage_ids[0]
        ),
    }
    bundles = {}
    ledger = built.open()
    try:
        for mode, request in requests.items():
            export_bundle(
                ledger,
                directory / f"{mode}.zip",
                request,
                signer=built.signer,
                artifacts_dir=built.artifacts.root,
                timestamper=stamper,
                tsa_name=local_tsa.url,
                tsa_certificates=[local_tsa.ca_pem],
                progress=False,
            )
            bundles[mode] = _load(mode, directory / f"{mode}.zip")
    finally:
        ledger.close()
    spec = importlib.util.spec_from_file_location("vigie_bundle_verify_py", STANDALONE)
    assert spec is not None
    assert spec.loader is not None
    standalone = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standalone)
    impostor = NoteSigner(VANTAGE, Ed25519PrivateKey.generate())
    return Pristine(bundles, built.signer, impostor, standalone, directory)


def _resign(
    members: Sequence[tuple[str, bytes]],
    signer: NoteSigner,
    *,
    public_key: str | None = None,
    change: dict[str, object] | None = None,
) -> Members:
    """The manifest rewritten to match `members` (and `change`), signed by `signer`; the
    manifest's timestamp token, which no longer matches, is dropped."""
    manifest = json.loads(dict(members)["manifest.json"])
    for name, content in members:
        if name in manifest["files"]:
            manifest["files"][name] = {
                "sha256": hashlib.sha256(content).hexdigest(),
                "size": len(content),
            }
    if public_key is not None:
        manifest["public_key"] = public_key
    if isinstance(manifest.get("timestamp"), dict):
        # The old token cannot cover the new manifest: the forger declares a TSA failure.
        manifest["timestamp"] = {**manifest["timestamp"], "token": None, "error": "forged"}
    manifest.update(change or {})
    raw = (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    signature = signer.sign(f"{BUNDLE_FORMAT}\n{hashlib.sha256(raw).hexdigest()}\n").encode()
    replaced = {"manifest.json": raw, "manifest.sig": signature}
    return [
        (name, replaced.get(name, content)) for name, content in members if name != "manifest.tsr"
    ]


def _replace(bundle: Bundle, name: str, content: bytes) -> Members:
    return [(n, content if n == name else data) for n, data in bundle.members]


def _assert_caught(
    verdicts: list[Verdict],
    files: str | set[str],
    bounds: tuple[int, int] | None = None,
    *,
    words: tuple[str, str] | None = None,
) -> None:
    """Each verifier failed, named one of `files` and, given `bounds`, an entry within them
    (and, given `words`, said them: English for vigie verify, French for verify.py)."""
    allowed = {files} if isinstance(files, str) else files
    for verdict in verdicts:
        assert not verdict.ok, f"{verdict.who} missed it ({files})"
        assert verdict.file in allowed, (verdict.who, files, verdict.message)
        if bounds is not None:
            assert verdict.entry is not None, (verdict.who, bounds, verdict.message)
            assert bounds[0] <= verdict.entry <= bounds[1], (verdict.who, bounds, verdict.message)
        if words is not None:
            word = words[0] if verdict.who == "vigie verify" else words[1]
            assert word in verdict.message, (verdict.who, word, verdict.message)


MODES = st.sampled_from(["range", "full", "outage"])


@pytest.mark.slow
class TestBundleTamperingIsAlwaysDetected:
    """Hypothesis draws the bundle, the member, the entry and the change; both verifiers must
    reject each tampered bundle and name what was changed."""

    def test_pristine_bundles_verify(self, pristine: Pristine) -> None:
        """The untouched bundles pass both verifiers, and verify.py is the one shipped."""
        for bundle in pristine.bundles.values():
            for verdict in pristine.verify(bundle.members):
                assert verdict.ok, (bundle.mode, verdict)
            assert bundle.data("verify.py") == STANDALONE.read_bytes()

    @settings(EXAMPLES, max_examples=100)
    @given(data=st.data(), mode=MODES)
    def test_flipped_byte_in_any_member(
        self, pristine: Pristine, data: st.DataObject, mode: str
    ) -> None:
        """A byte changed anywhere in any member (entries, proofs, captures, report, manifest,
        signature, timestamp tokens, verify.py itself) is caught and that member named; in
        observations.jsonl and the hidden leaves, with the entry it falls in."""
        bundle = pristine.bundles[mode]
        name = data.draw(st.sampled_from(bundle.names), label="member")
        content = bytearray(bundle.data(name))
        pos = data.draw(st.integers(0, len(content) - 1), label="pos")
        content[pos] ^= data.draw(st.integers(1, 255), label="mask")
        bounds = None
        if name == "observations.jsonl":
            bounds = bundle.bounds(bytes(content[:pos]).count(b"\n"))
        elif name == "proofs/hidden-leaves.bin":
            bounds = bundle.bounds(bundle.hidden_position(pos // 32))
        _assert_caught(pristine.verify(_replace(bundle, name, bytes(content))), name, bounds)

    @settings(EXAMPLES, max_examples=50)
    @given(data=st.data(), mode=MODES)
    def test_deleted_member(self, pristine: Pristine, data: st.DataObject, mode: str) -> None:
        """Any member removed (but manifest.tsr, see the module's docstring) is named."""
        bundle = pristine.bundles[mode]
        name = data.draw(st.sampled_from([n for n in bundle.names if n != "manifest.tsr"]))
        members = [(n, content) for n, content in bundle.members if n != name]
        _assert_caught(pristine.verify(members), name)

    @settings(EXAMPLES, max_examples=50)
    @given(data=st.data(), mode=MODES)
    def test_added_member(self, pristine: Pristine, data: st.DataObject, mode: str) -> None:
        """A member slipped in anywhere in the zip, new or a second copy of an existing name
        (changed or not), is named: a second copy could be what an unzip tool shows."""
        bundle = pristine.bundles[mode]
        fresh = st.builds(
            "{}{}".format,
            st.sampled_from(["", "artifacts/", "proofs/", "proofs/checkpoints/"]),
            st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,15}\Z"),
        )
        name = data.draw(fresh | st.sampled_from(bundle.names), label="name")
        content = data.draw(
            st.binary(max_size=64) | st.sampled_from([c for _, c in bundle.members]),
            label="content",
        )
        at = data.draw(st.integers(0, len(bundle.members)), label="at")
        members = list(bundle.members)
        members.insert(at, (name, content))
        _assert_caught(pristine.verify(members), name)

    @settings(EXAMPLES, max_examples=100)
    @given(
        data=st.data(),
        mode=MODES,
        op=st.sampled_from(["reorder", "delete", "insert", "duplicate"]),
        resigned=st.booleans(),
    )
    def test_observation_lines(
        self, pristine: Pristine, data: st.DataObject, mode: str, op: str, resigned: bool
    ) -> None:
        """Lines of observations.jsonl swapped, deleted, inserted (a forged entry) or
        duplicated are caught, observations.jsonl and the entry named; also when the tamperer
        holds the key and re-signs a matching manifest (the checkpoints still catch it)."""
        bundle = pristine.bundles[mode]
        if mode == "outage" and op == "delete":
            resigned = False  # documented limit (module docstring)
        lines = list(bundle.lines)
        count = len(lines)
        if op == "reorder":
            first = data.draw(st.integers(0, count - 2), label="first")
            second = data.draw(st.integers(first + 1, count - 1), label="second")
            lines[first], lines[second] = lines[second], lines[first]
            position = first
        elif op == "delete":
            position = data.draw(st.integers(0, count - 1), label="line")
            del lines[position]
        elif op == "duplicate":
            line = data.draw(st.integers(0, count - 1), label="line")
            lines.insert(line + 1, lines[line])
            position = line + 1
        else:
            position = data.draw(st.integers(0, count), label="line")
            model = json.loads(lines[data.draw(st.integers(0, count - 1), label="model")])
            near = bundle.seqs[min(position, count - 1)]
            model["seq"] = data.draw(
                st.sampled_from(sorted({near - 1, near, near + 1, bundle.stop})) | st.integers(0),
                label="seq",
            )
            model["success"] = not model.get("success", False)
            lines.insert(position, json.dumps(model, separators=(",", ":")).encode())
        members = _replace(bundle, "observations.jsonl", b"".join(x + b"\n" for x in lines))
        files = {"observations.jsonl"}
        if resigned and mode == "range":
            # the key holder's manifest matches: which of the two streams the proofs blame
            # depends on where the change makes the tree diverge
            files.add("proofs/hidden-leaves.bin")
        if resigned:
            members = _resign(members, pristine.signer)
        _assert_caught(pristine.verify(members), files, bundle.bounds(position))

    @settings(EXAMPLES, max_examples=60)
    @given(
        data=st.data(),
        mode=MODES,
        how=st.sampled_from(["signature", "key", "key-unchecked"]),
    )
    def test_manifest_signed_by_another_key(
        self, pristine: Pristine, data: st.DataObject, mode: str, how: str
    ) -> None:
        """A manifest changed to match a changed member (or with a changed field) and signed
        by another key of the same name is refused as not the vantage key: its signature
        (`signature`), the key it names (`key`), and without a key given, the checkpoints,
        which the other key did not sign (`key-unchecked`)."""
        bundle = pristine.bundles[mode]
        listed = [n for n in bundle.names if n not in ("manifest.json", "manifest.sig")]
        listed.remove("manifest.tsr")
        name = data.draw(st.sampled_from(listed), label="member")
        members = list(bundle.members)
        change: dict[str, object] = {}
        if data.draw(st.booleans(), label="field"):
            change = data.draw(
                st.sampled_from(
                    [{"operator": "quelqu'un"}, {"warnings": []}, {"created_at": "2020-01-01"}]
                )
            )
        else:
            content = bytearray(bundle.data(name))
            content[data.draw(st.integers(0, len(content) - 1), label="pos")] ^= 0x20
            members = _replace(bundle, name, bytes(content))
        impostor = pristine.impostor
        words: tuple[str, str] | None
        if how == "signature":
            members = _resign(members, impostor, change=change)
            expected, words = "manifest.sig", ("not signed by the vantage key", "non signé")
        else:
            members = _resign(members, impostor, public_key=impostor.verifier.vkey(), change=change)
            expected, words = "manifest.json", ("another key", "autre clé")
        if how == "key-unchecked":
            # the checkpoints were signed by the vantage key, not by the one now carried
            expected, words = "proofs/checkpoints.jsonl", None
        _assert_caught(pristine.verify(members, key=how != "key-unchecked"), expected, words=words)

    @settings(EXAMPLES, max_examples=80)
    @given(data=st.data(), mode=MODES, resigned=st.booleans())
    def test_changed_proof_hash(
        self, pristine: Pristine, data: st.DataObject, mode: str, resigned: bool
    ) -> None:
        """One hash of a proof replaced (range subtrees, consistency and inclusion paths,
        checkpoint roots, a hidden entry's leaf) is caught and its file named. Re-signed by the
        key holder, the proofs themselves catch it: the file is named, or observations.jsonl
        when the rebuilt tree is what no longer meets a signed root."""
        bundle = pristine.bundles[mode]
        sites = [
            (name, match.start())
            for name in bundle.names
            if name.startswith("proofs/") and name.endswith((".json", ".jsonl", ".note"))
            for match in _HASH_B64.finditer(bundle.data(name))
        ]
        if mode == "range":
            sites += [("proofs/hidden-leaves.bin", i) for i in range(len(bundle.hidden))]
        name, at = data.draw(st.sampled_from(sites), label="site")
        new = data.draw(st.binary(min_size=32, max_size=32), label="hash")
        content = bundle.data(name)
        bounds = None
        if name == "proofs/hidden-leaves.bin":
            old = content[32 * at : 32 * at + 32]
            content = content[: 32 * at] + new + content[32 * at + 32 :]
            bounds = bundle.bounds(bundle.hidden_position(at))
        else:
            old = base64.b64decode(content[at : at + 44])
            content = content[:at] + base64.b64encode(new) + content[at + 44 :]
        if new == old:
            return
        members = _replace(bundle, name, content)
        files = {name}
        if resigned:
            members = _resign(members, pristine.signer)
            files.add("observations.jsonl")
            bounds = None
        _assert_caught(pristine.verify(members), files, bounds)

    def test_removed_manifest_timestamp_is_a_failure(self, pristine: Pristine) -> None:
        """The manifest declares the token it carries (issue 18): without manifest.tsr both
        verifiers fail and name it."""
        for bundle in pristine.bundles.values():
            members = [(n, content) for n, content in bundle.members if n != "manifest.tsr"]
            path = pristine.scratch / "no-tsr.zip"
            _write_zip(path, members)
            report = verify_bundle(path, public_key=pristine.signer.verifier)
            assert not report.ok
            assert "manifest.tsr" in report.summary()
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = pristine.standalone.main(
                    [str(path), "--cle", pristine.signer.verifier.vkey()]
                )
            assert code == 1, out.getvalue()
            assert "manifest.tsr" in out.getvalue()


@pytest.mark.slow
class TestGapsFoundByExhaustiveFlips:
    """Changes the properties draw too rarely to rely on, found by flipping every byte of the
    members no manifest hash covers (manifest.sig, manifest.tsr): each is now refused."""

    def test_signature_in_non_canonical_base64(self, pristine: Pristine) -> None:
        """The last base64 character of a signature carries 2 padding bits: the 3 other
        spellings decode to the same signature and must still be refused as altered."""
        bundle = pristine.bundles["range"]
        sig = bundle.data("manifest.sig")
        at = sig.rindex(b"=\n") - 1
        alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        sibling = alphabet[alphabet.index(sig[at]) ^ 1]
        forged = sig[:at] + bytes([sibling]) + sig[at + 1 :]
        encoded = forged.rstrip(b"\n").rpartition(b" ")[2]
        assert base64.b64decode(encoded) == base64.b64decode(sig.rstrip(b"\n").rpartition(b" ")[2])
        _assert_caught(pristine.verify(_replace(bundle, "manifest.sig", forged)), "manifest.sig")

    @pytest.mark.parametrize(
        ("where", "pattern", "new"),
        [
            ("SignedData version", b"\x02\x01\x03\x31", b"\x02\x01\x02\x31"),
            ("SignerInfo version", b"\x02\x01\x01\x30", b"\x02\x01\x00\x30"),
            (
                "signature algorithm (ecdsa-with-SHA256 made SHA384)",
                b"\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02\x30",
                b"\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x03\x30",
            ),
        ],
    )
    def test_unsigned_bytes_of_the_manifest_token(
        self, pristine: Pristine, where: str, pattern: bytes, new: bytes
    ) -> None:
        """Bytes of manifest.tsr that neither the TSA's signature nor the manifest covers
        (which rfc3161-client and the CMS code ignore) are held to their only valid value."""
        bundle = pristine.bundles["outage"]
        token = bundle.data("manifest.tsr")
        at = token.rindex(pattern)
        assert token.count(pattern) == 1 or where.startswith("signature"), where
        forged = token[:at] + new + token[at + len(new) :]
        _assert_caught(pristine.verify(_replace(bundle, "manifest.tsr", forged)), "manifest.tsr")

    def test_timestamp_from_another_tsa_under_the_given_root(
        self, pristine: Pristine, local_tsa: LocalTsa, tmp_path: Path
    ) -> None:
        """A key holder who re-stamps a checkpoint with their own TSA and adds its certificates
        to proofs/tsa-certificates.pem is refused under the real root (`--tsa-cert`): the
        bundle's certificates are not trust anchors."""
        bundle = pristine.bundles["range"]
        rogue = LocalTsa.start(tmp_path / "rogue")
        try:
            forged = HttpTimestamper(rogue.url, ca_pem=rogue.ca_pem).stamp(
                bundle.data("proofs/checkpoints/44.note")
            )
            members = [
                (
                    name,
                    content + rogue.ca_pem + rogue.tsa_cert_pem
                    if name == "proofs/tsa-certificates.pem"
                    else content,
                )
                for name, content in _replace(bundle, "proofs/timestamps/44.tsr", forged)
            ]
        finally:
            rogue.close()
        path = tmp_path / "rogue.zip"
        _write_zip(path, _resign(members, pristine.signer))
        report = verify_bundle(
            path, public_key=pristine.signer.verifier, tsa_certificates=[local_tsa.ca_pem]
        )
        assert not report.ok
        assert report.file == "proofs/timestamps/44.tsr", report.summary()
        verdict = pristine.verify(_resign(members, pristine.signer))[1]
        assert not verdict.ok
        assert verdict.file == "proofs/timestamps/44.tsr", verdict.message
