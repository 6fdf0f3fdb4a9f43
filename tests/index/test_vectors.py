"""The FAISS vector index: exact where promised, tuned recall where approximate, filters, edits, files."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from rsvlm.errors import DataError, RsvlmError
from rsvlm.index import vectors as vx
from rsvlm.index.tuning import recall_at
from rsvlm.index.vectors import TARGET_RECALL, TuningReport, VectorIndex

DIM = 32
Data = tuple[np.ndarray, np.ndarray, np.ndarray]
Chunks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
SCORE_TOL = 1e-5  # FAISS and numpy sum the same products in different orders


def clustered(n: int, seed: int = 0, centres: int = 100, spread: float = 1.0) -> np.ndarray:
    """Unit vectors around random centres: clustered like real embeddings, unlike i.i.d. Gaussians."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, DIM))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, DIM)) / np.sqrt(DIM)
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def chunked(ids: np.ndarray, x: np.ndarray, size: int = 700) -> Chunks:
    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for s in range(0, len(ids), size):
            yield ids[s : s + size], x[s : s + size]

    return chunks


def brute(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = q @ x.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1), ids[order]


@pytest.fixture(scope="module")
def data() -> Data:
    x = clustered(4060)  # overlapping clusters: IVF needs several of its 32 lists for 0.95
    ids = np.arange(4000, dtype=np.int64) * 7 + 3  # not row numbers: ids and positions must not be confused
    return ids, x[:4000], x[4000:]  # the queries are fresh draws from the same clusters


@pytest.fixture(scope="module")
def ivf(data: Data) -> VectorIndex:
    ids, x, _ = data
    return VectorIndex.build(chunked(ids, x), len(ids), DIM, kind="ivf-flat", seed=0)


def test_flat_is_exact(data: Data) -> None:
    ids, x, q = data
    index = VectorIndex.build(chunked(ids, x), len(ids), DIM)
    assert index.kind == "flat" and index.tuning is None and len(index) == 4000
    scores, got = index.search(q, 10)
    want_scores, want = brute(x, ids, q, 10)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(scores, want_scores, atol=SCORE_TOL)


def test_default_kind_follows_exact_max(monkeypatch: pytest.MonkeyPatch, data: Data) -> None:
    ids, x, _ = data
    monkeypatch.setattr(vx, "EXACT_MAX", 3000)
    assert VectorIndex.build(chunked(ids, x), len(ids), DIM).kind == "ivf-flat"


def test_approximate_reaches_target_and_records_tuning(ivf: VectorIndex, data: Data) -> None:
    ids, x, q = data
    t = ivf.tuning
    assert ivf.kind == "ivf-flat" and t is not None
    assert t.kind == "ivf-flat" and t.queries == vx.TUNING_QUERIES and t.seconds > 0
    assert t.recall_at_10 >= TARGET_RECALL
    nlist, nprobe = int(t.params["nlist"]), int(t.params["nprobe"])
    assert nprobe == ivf.nprobe and 1 < nprobe < nlist  # approximate, and one list is not enough here
    assert TuningReport.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    # Fresh queries from the same clusters: recall near the target (60 queries: allow 0.05 sampling slack).
    scores, got = ivf.search(q, 10)
    assert recall_at(got, brute(x, ids, q, 10)[1]) >= TARGET_RECALL - 0.05
    stored = ivf.vectors(got.ravel()).reshape(len(q), 10, DIM)  # scores are exact inner products of those ids
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, stored), atol=SCORE_TOL)


def lower_bound(found: np.ndarray, exact: np.ndarray) -> float:
    """One-sided 95 % lower bound of mean recall@10 over queries, as tuning computes it."""
    per_query = np.array([np.isin(e, f).mean() for f, e in zip(found, exact, strict=True)])
    return float(per_query.mean() - 1.645 * per_query.std(ddof=1) / np.sqrt(len(per_query)))


def test_tuning_is_the_smallest_nprobe_for_the_queries_given(data: Data, ivf: VectorIndex) -> None:
    """Queries unlike the stored vectors (another set of clusters, as text is to images) need more lists."""
    ids, x, _ = data
    far = clustered(200, seed=1)
    index = VectorIndex.build(chunked(ids, x), len(ids), DIM, kind="ivf-flat", tuning_queries=far, target_recall=0.9)
    t = index.tuning
    assert t is not None and t.queries == len(far) == t.params["other_queries"] and "stored_queries" not in t.params
    exact = brute(x, ids, far, 10)[1]
    nprobe = int(t.params["nprobe"])
    found = index._search_index(far, 10, nprobe=nprobe)[1]
    assert recall_at(found, exact) == pytest.approx(t.recall_at_10)
    assert lower_bound(found, exact) == pytest.approx(t.params["recall_other_lower_95"], abs=1e-4)
    assert lower_bound(found, exact) >= 0.9 > lower_bound(index._search_index(far, 10, nprobe=nprobe - 1)[1], exact)
    assert nprobe > int(ivf.nprobe or 0)


def test_stored_and_other_tuning_queries_must_each_reach_the_target(data: Data) -> None:
    """A mix of easy (stored) and hard (far) queries is tuned for the harder group, not for their average."""
    ids, x, _ = data
    far = clustered(100, seed=1)
    stored = x[::40]  # stored vectors, left out of their own results
    tuned = {}
    for name, queries in (("far", far), ("stored", stored), ("mix", np.concatenate([far, stored]))):
        index = VectorIndex.build(chunked(ids, x), len(ids), DIM, kind="ivf-flat", tuning_queries=queries)
        assert index.tuning is not None
        tuned[name] = index.tuning
    nprobe = {name: int(t.params["nprobe"]) for name, t in tuned.items()}
    assert nprobe["mix"] == max(nprobe["far"], nprobe["stored"]) and nprobe["far"] > nprobe["stored"]
    assert tuned["mix"].params["stored_queries"] == 100 and tuned["mix"].params["other_queries"] == 100
    assert tuned["mix"].recall_at_10 == min(
        tuned["mix"].params["recall_stored_queries"], tuned["mix"].params["recall_other_queries"]
    )
    assert 0 < float(tuned["stored"].params["recall_stored_queries"]) < 1  # its own vector is no free hit


def test_recall_at_counts_shared_ids_and_ignores_padding() -> None:
    exact = np.array([[1, 2, 3, -1], [5, 6, 7, 8]])
    approx = np.array([[3, 9, 1, -1], [8, 7, 6, 5]])
    assert recall_at(approx, exact) == pytest.approx((2 / 3 + 1) / 2)


def test_add_and_remove(data: Data) -> None:
    ids, x, q = data
    index = VectorIndex.build(chunked(ids[:3000], x[:3000]), 3000, DIM, kind="ivf-flat")
    index.add(ids[3000:], x[3000:])
    assert len(index) == 4000
    with pytest.raises(RsvlmError, match="already in the index"):
        index.add(ids[10:11], x[10:11])
    _, top = index.search(q, 5)
    gone = np.unique(top[:, 0])
    assert index.remove(np.concatenate([gone, [10**12]])) == gone.size  # an absent id is ignored
    assert len(index) == 4000 - gone.size
    assert index.remove(gone) == 0
    _, after = index.search(q, 50)
    assert not np.isin(after, gone).any()
    with pytest.raises(RsvlmError, match="not in the vector index"):
        index.vectors(gone[:1])
    index.add(gone[:1], x[np.searchsorted(ids, gone[:1])])  # a removed id may come back
    assert len(index) == 4001 - gone.size


def test_flat_add_remove(data: Data) -> None:
    ids, x, q = data
    index = VectorIndex.build(chunked(ids[:100], x[:100]), 100, DIM)
    index.add(ids[100:200], x[100:200])
    assert index.remove(ids[:50]) == 50 and len(index) == 150
    scores, got = index.search(q, 10)
    want_scores, want = brute(x[50:200], ids[50:200], q, 10)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(scores, want_scores, atol=SCORE_TOL)


def test_bad_vectors_are_refused(data: Data) -> None:
    ids, x, q = data
    index = VectorIndex.build(chunked(ids[:10], x[:10]), 10, DIM)
    with pytest.raises(RsvlmError, match="not 1"):
        index.add(np.array([99]), 2 * x[:1])
    with pytest.raises(RsvlmError, match="dimension 32"):
        index.add(np.array([99]), x[:1, :16])
    with pytest.raises(RsvlmError, match="dimension 32"):
        index.search(q[:, :16], 3)
    with pytest.raises(RsvlmError, match="unique"):
        VectorIndex.build(chunked(np.zeros(10, np.int64), x[:10]), 10, DIM)
    with pytest.raises(RsvlmError, match="expected 11"):
        VectorIndex.build(chunked(ids[:10], x[:10]), 11, DIM)


@pytest.mark.parametrize("kind", ["flat", "ivf-flat"])
def test_allowed_filters(kind: str, data: Data, ivf: VectorIndex) -> None:
    ids, x, q = data
    index = ivf if kind == "ivf-flat" else VectorIndex.build(chunked(ids, x), len(ids), DIM)
    rng = np.random.default_rng(2)
    rows = np.sort(rng.choice(len(ids), 30, replace=False))
    allowed = np.concatenate([ids[rows], [-5, 10**15]])  # ids that are not stored are ignored
    scores, got = index.search(q, 10, allowed=allowed)
    want_scores, want = brute(x[rows], ids[rows], q, 10)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(scores, want_scores, atol=SCORE_TOL)
    scores, got = index.search(q, 50, allowed=ids[rows[:3]])  # fewer allowed than k: padded
    assert (got[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    assert set(got[:, :3].ravel()) == set(ids[rows[:3]])
    scores, got = index.search(q, 5, allowed=np.zeros(0, np.int64))
    assert (got == -1).all() and np.isneginf(scores).all()


@pytest.mark.parametrize("offset", [0, 2**40])  # small ids filter through a bitmap, huge ones through a hash set
def test_large_filters_use_the_selector(monkeypatch: pytest.MonkeyPatch, data: Data, offset: int) -> None:
    ids, x, q = data
    ids = ids + offset
    index = VectorIndex.build(chunked(ids, x), len(ids), DIM, kind="ivf-flat", seed=0)
    monkeypatch.setattr(vx, "SUBSET_RECONSTRUCT_MAX", 10)
    monkeypatch.setattr(vx, "EXACT_FILTER_MAX", 500)
    rows = np.sort(np.random.default_rng(3).choice(len(ids), 400, replace=False))
    scores, got = index.search(q, 10, allowed=ids[rows])  # ≤ EXACT_FILTER_MAX: every list, exact
    want_scores, want = brute(x[rows], ids[rows], q, 10)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(scores, want_scores, atol=SCORE_TOL)
    half = np.sort(np.random.default_rng(4).choice(len(ids), 2000, replace=False))
    assert index._filtered_nprobe(2000) == min(int(index.index.nlist), 2 * int(index.nprobe or 0))
    _, got = index.search(q, 10, allowed=ids[half])  # approximate, filtered
    assert np.isin(got[got >= 0], ids[half]).all()
    assert recall_at(got, brute(x[half], ids[half], q, 10)[1]) >= TARGET_RECALL - 0.05


@pytest.mark.parametrize("kind", ["flat", "ivf-flat"])
def test_padding_when_k_exceeds_count(kind: str, data: Data) -> None:
    ids, x, q = data
    n = 2000
    index = VectorIndex.build(chunked(ids[:n], x[:n]), n, DIM, kind=kind)
    scores, got = index.search(q[:2], n + 5, allowed=None if kind == "flat" else ids[:n])
    assert (got[:, n:] == -1).all() and np.isneginf(scores[:, n:]).all()
    assert sorted(got[0, :n]) == sorted(ids[:n])
    assert (np.diff(scores[:, :n], axis=1) <= 0).all()


def test_vectors_are_exact_copies(ivf: VectorIndex, data: Data) -> None:
    ids, x, _ = data
    pick = np.array([5, 0, 3999, 5])
    np.testing.assert_array_equal(ivf.vectors(ids[pick]), x[pick])
    assert ivf.vectors(np.zeros(0, np.int64)).shape == (0, DIM)


@pytest.mark.parametrize("kind", ["flat", "ivf-flat"])
def test_save_load_round_trip(tmp_path: Path, kind: str, data: Data, ivf: VectorIndex) -> None:
    ids, x, q = data
    index = ivf if kind == "ivf-flat" else VectorIndex.build(chunked(ids, x), len(ids), DIM)
    path = tmp_path / "sub" / "vectors.faiss"
    index.save(path)
    loaded = VectorIndex.load(path)
    assert (loaded.kind, loaded.dim, len(loaded), loaded.tuning, loaded.nprobe) == (
        index.kind, index.dim, len(index), index.tuning, index.nprobe,
    )  # fmt: skip
    for allowed in (None, ids[::3]):
        a, b = index.search(q, 10, allowed=allowed), loaded.search(q, 10, allowed=allowed)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])
    assert loaded.remove(ids[:5]) == 5 and loaded.vectors(ids[5:6]).shape == (1, DIM)
    assert [p.name for p in path.parent.iterdir()] == ["vectors.faiss"]  # no temporary file left


def test_corrupt_or_missing_files_are_one_line_errors(tmp_path: Path, data: Data) -> None:
    ids, x, _ = data
    path = tmp_path / "v.faiss"
    VectorIndex.build(chunked(ids[:500], x[:500]), 500, DIM).save(path)
    good = path.read_bytes()
    cases = {
        "missing": None,
        "truncated": good[: len(good) // 2],
        "flipped": good[:200] + bytes([good[200] ^ 0xFF]) + good[201:],
        "garbage": b"hello" * 10,
        "empty": b"",
    }
    for name, payload in cases.items():
        target = tmp_path / f"{name}.faiss"
        if payload is not None:
            target.write_bytes(payload)
        with pytest.raises(DataError) as err:
            VectorIndex.load(target)
        assert "\n" not in str(err.value) and str(target) in str(err.value), name
    flipped = tmp_path / "flipped.faiss"
    with pytest.raises(DataError, match="checksum"):
        VectorIndex.load(flipped)


def test_save_failure_leaves_nothing(tmp_path: Path, data: Data) -> None:
    ids, x, _ = data
    index = VectorIndex.build(chunked(ids[:50], x[:50]), 50, DIM)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError):
        index.save(tmp_path / "file" / "v.faiss")  # parent is a file
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


@pytest.mark.parametrize("kind", ["flat", "ivf-flat"])
def test_build_reads_chunks_lazily(kind: str, data: Data) -> None:
    """Each pass holds one chunk at a time: when chunk i is made, chunk i-2 is already freed."""
    ids, x, _ = data
    calls = 0
    refs: list[weakref.ref[np.ndarray]] = []

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        nonlocal calls
        calls += 1
        refs.clear()
        for s in range(0, len(ids), 250):
            if len(refs) >= 2:
                assert refs[-2]() is None, "build kept a reference to an earlier chunk"
            fresh = x[s : s + 250].copy()  # a new array, as read from disk
            refs.append(weakref.ref(fresh))
            yield ids[s : s + 250].copy(), fresh
            del fresh

    index = VectorIndex.build(chunks, len(ids), DIM, kind=kind)
    assert calls == (1 if kind == "flat" else 2) and len(index) == len(ids)


def test_rebuild_advice(monkeypatch: pytest.MonkeyPatch, data: Data) -> None:
    ids, x, _ = data
    flat = VectorIndex.build(chunked(ids[:100], x[:100]), 100, DIM)
    assert not flat.rebuild_advised
    monkeypatch.setattr(vx, "EXACT_MAX", 150)
    flat.add(ids[100:200], x[100:200])
    assert flat.rebuild_advised
