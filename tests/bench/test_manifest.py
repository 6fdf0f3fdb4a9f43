"""Data manifests: round trip, change and loss detection, strict parsing, and the shipped manifests against the
real data they describe."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsvlm.bench.manifest import (
    MANIFEST_DIR,
    ManifestCheck,
    manifest_names,
    manifest_path,
    read_manifest,
    require_manifest,
    verify_manifest,
    write_manifest,
)
from rsvlm.errors import DataError, RsvlmError

ROOT = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> list[Path]:
    files = [root / "b" / "two.jpg", root / "a" / "one.jpg", root / "c.txt"]
    for i, f in enumerate(files):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(bytes([i]) * (100 + i))
    return files


def test_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "data"
    files = _tree(root)
    out = tmp_path / "m.txt"
    written = write_manifest(root, [files[0], "a/one.jpg", "c.txt", files[1]], out, "suite data: toy; made by a test")
    again = read_manifest(out)
    assert list(again) == ["a/one.jpg", "b/two.jpg", "c.txt"]  # sorted, duplicates merged
    assert dict(again.files) == {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in again}
    assert again.comments[0] == "suite data: toy; made by a test" and "files: 3" in again.comments
    assert again.digest == written.digest == hashlib.sha256(out.read_bytes()).hexdigest()
    assert write_manifest(root, files, tmp_path / "n.txt", "suite data: toy; made by a test").digest == again.digest
    check = verify_manifest(out, root)
    assert check == ManifestCheck(True, [], [], again.digest, 3) and check.summary() == "3 files match"


def test_verify_detects_a_changed_and_a_missing_file(tmp_path: Path) -> None:
    root = tmp_path / "data"
    files = _tree(root)
    manifest = write_manifest(root, files, tmp_path / "m.txt", "toy")
    data = bytearray(files[0].read_bytes())
    data[10] ^= 1
    files[0].write_bytes(bytes(data))
    files[2].unlink()
    check = verify_manifest(manifest, root)
    assert not check.ok and check.changed == ["b/two.jpg"] and check.missing == ["c.txt"]
    assert check.summary() == "1 missing (e.g. c.txt); 1 changed (e.g. b/two.jpg) of 3 files"
    with pytest.raises(RsvlmError, match=r"data differs from manifest m\.txt: 1 missing"):
        require_manifest(manifest, root)


@pytest.mark.shared
def test_verify_with_real_images(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name in ("Airport/airport_1.jpg", "Beach/beach_1.jpg"):
        (root / "aid" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "aid" / name, root / "aid" / name)
    manifest = write_manifest(root, sorted(root.rglob("*.jpg")), tmp_path / "m.txt", "two AID images")
    assert verify_manifest(manifest, root).ok
    image = root / "aid/Beach/beach_1.jpg"
    data = bytearray(image.read_bytes())
    data[-3] ^= 0xFF
    image.write_bytes(bytes(data))
    assert verify_manifest(manifest, root).changed == ["aid/Beach/beach_1.jpg"]
    (root / "aid/Airport/airport_1.jpg").unlink()
    assert verify_manifest(manifest, root).missing == ["aid/Airport/airport_1.jpg"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# only a comment\n", "lists no files"),
        ("a.jpg 0123\n", "line 1: expected 'relative/path<TAB>sha256'"),
        ("# c\na.jpg\t" + "0" * 63 + "\n", "line 2: expected"),
        ("/abs/a.jpg\t" + "0" * 64 + "\n", "not a normalised path relative to the data root"),
        ("../a.jpg\t" + "0" * 64 + "\n", "not a normalised path relative to the data root"),
        ("a.jpg\t" + "0" * 64 + "\na.jpg\t" + "1" * 64 + "\n", "line 2: 'a.jpg' is listed twice"),
    ],
)
def test_malformed_manifests_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.txt") as info:
        read_manifest(path)
    assert expected in str(info.value)


def test_write_refuses_files_outside_the_root_or_absent(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _tree(root)
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(b"x")
    with pytest.raises(RsvlmError, match="not under the data root"):
        write_manifest(root, [outside], tmp_path / "m.txt", "x")
    with pytest.raises(DataError, match="not a readable file"):
        write_manifest(root, ["a/one.jpg", "nope.jpg"], tmp_path / "m.txt", "x")
    with pytest.raises(RsvlmError, match="no files"):
        write_manifest(root, [], tmp_path / "m.txt", "x")


def test_manifest_path_finds_shipped_and_explicit_files(tmp_path: Path) -> None:
    assert manifest_path("aid-smoke.txt") == MANIFEST_DIR / "aid-smoke.txt"
    own = tmp_path / "own.txt"
    own.write_text("a\t" + "0" * 64 + "\n", encoding="utf-8")
    assert manifest_path(own) == own
    with pytest.raises(RsvlmError, match=r"manifest 'aid-smol.txt' not found.*aid-smoke\.txt"):
        manifest_path("aid-smol.txt")


def test_shipped_manifests_have_the_documented_sizes() -> None:
    sizes = {name: len(read_manifest(MANIFEST_DIR / name)) for name in manifest_names()}
    assert sizes == {
        "aid.txt": 10_000,
        "aid-smoke.txt": 300,
        "rsicd-test.txt": 1_027 + 2,
        "rsvqa-lr-heldout.txt": 10 + 3,
        "rsvqa-hr-heldout.txt": 10 + 3,
        "neon.txt": 2,
        "golden-whurs19.txt": 440,
        "loveda.txt": 3 + 3,  # tiles and masks
        "sen1floods11.txt": 3,  # S1, S2, hand labels
        "rsvqa-lr.txt": 50 + 3,  # images and the three JSON files
    }
    smoke = read_manifest(MANIFEST_DIR / "aid-smoke.txt")
    assert set(smoke) <= set(read_manifest(MANIFEST_DIR / "rsicd-test.txt"))  # held out of training
    assert all("made by scripts/make_manifests.py" in read_manifest(MANIFEST_DIR / n).comments[0] for n in sizes)


@pytest.mark.shared
def test_real_aid_smoke_manifest_matches_the_shared_data(shared_data: Path) -> None:
    start = time.perf_counter()
    check = verify_manifest(manifest_path("aid-smoke.txt"), shared_data)
    assert check.ok, check.summary()
    assert check.files == 300 and time.perf_counter() - start < 5


@pytest.mark.shared
def test_rebuilding_the_manifests_gives_the_shipped_bytes(shared_data: Path, tmp_path: Path) -> None:
    """The manifests are a pure function of the data and the builder config (held-out split included)."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "make_manifests.py"),
            "--shared",
            str(shared_data),
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for name in manifest_names():
        assert (tmp_path / name).read_bytes() == (MANIFEST_DIR / name).read_bytes(), name
