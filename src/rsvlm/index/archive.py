"""An index opened for queries: metadata in memory as columns, the FAISS vectors, thumbnails and scene overviews.

One ``Archive`` serves many threads (the web service shares it): searches only read, and the few lazy loads
(vectors, the adapter, per-scene stretch limits for thumbnails) happen under a lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.errors import RsvlmError
from rsvlm.index.search import MAX_K, Hit, SearchQuery, SearchResult
from rsvlm.index.store import IndexStore, describe_model

if TYPE_CHECKING:
    from rsvlm.adapt.saved import Adapter, BaseModelId
    from rsvlm.data.sample import RasterImage
    from rsvlm.index.vectors import VectorIndex
    from rsvlm.models.protocols import ContrastiveModel

_NO_TIME = np.iinfo(np.int64).min


class Archive:
    def __init__(self, store: IndexStore) -> None:
        import pyarrow.compute as pc

        self.store = store
        self.path = store.folder
        table = store.metadata()
        self._table = table
        self.ids: npt.NDArray[np.int64] = table.column("id").to_numpy()
        bbox = table.column("bbox").combine_chunks()
        self._box = np.stack(
            [pc.struct_field(bbox, k).to_numpy(zero_copy_only=False) for k in ("xmin", "ymin", "xmax", "ymax")]
        ).astype(np.float64) if len(table) else np.zeros((4, 0))  # fmt: skip
        self._box = np.where(np.isnan(self._box), np.nan, self._box)
        times = table.column("datetime").combine_chunks().cast("int64")
        self._time = times.fill_null(_NO_TIME).to_numpy() if len(table) else np.zeros(0, np.int64)
        self._geoms: Any = None
        self._vectors: VectorIndex | None = None
        self._adapter: Adapter | None = None
        self._scenes: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def model_id(self) -> BaseModelId:
        from rsvlm.adapt.saved import BaseModelId

        return BaseModelId(**self.store.model)

    @property
    def vectors(self) -> VectorIndex:
        with self._lock:
            if self._vectors is None:
                from rsvlm.index.build import load_vectors

                self._vectors = load_vectors(self.store)
            return self._vectors

    # -- description -----------------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        from rsvlm.index.build import vector_state

        valid = ~np.isnan(self._box[0]) if len(self) else np.zeros(0, bool)
        bounds = (
            [float(np.min(self._box[0, valid])), float(np.min(self._box[1, valid])),
             float(np.max(self._box[2, valid])), float(np.max(self._box[3, valid]))]
            if valid.any() else None
        )  # fmt: skip
        known = self._time[self._time != _NO_TIME]
        span = [_iso(int(known.min())), _iso(int(known.max()))] if len(known) else None
        kinds = self._table.column("kind").value_counts().to_pylist() if len(self) else []
        state = vector_state(self.store)
        scenes = [
            {"path": path, **{k: v for k, v in scene.items() if k != "overview"}}
            for path, scene in self.store.manifest.get("scenes", {}).items()
        ]
        return {
            "path": str(self.path),
            "count": len(self),
            "model": self.store.model,
            "adapter": self.store.manifest.get("adapter"),
            "vectors": {"kind": state.get("kind"), "tuning": state.get("tuning")},
            "bounds": bounds,
            "time": span,
            "kinds": {str(k["values"]): int(k["counts"]) for k in kinds},
            "scenes": scenes,
            "sources": self.store.manifest.get("sources", []),
        }

    # -- models ----------------------------------------------------------------------------------------------------
    def check_model(self, model: ContrastiveModel) -> None:
        from rsvlm.adapt.saved import BaseModelId

        given = BaseModelId.of_model(model)
        if given != self.model_id:
            mine = self.store.model
            self._refuse_imported()
            raise RsvlmError(
                f"{self.path}: index was built with {describe_model(mine)}, not {given.describe()}; "
                f"query it with --model {mine['name']} (and its --weights)"
            )

    def _refuse_imported(self) -> None:
        mine = self.store.model
        if mine["preprocess_id"] == "precomputed":
            raise RsvlmError(
                f"{self.path}: holds embeddings imported without their model ({mine['name']}); search it by vector, "
                "or import them again with --model NAME"
            )

    def image_model(self, model: ContrastiveModel) -> ContrastiveModel:
        """The model that embeds image queries: the base, or the index's adapter's image tower."""
        identity = self.store.manifest.get("adapter")
        if not identity:
            return model
        with self._lock:
            if self._adapter is None:
                from rsvlm.adapt.saved import load_adapter

                folder = Path(identity["folder"])
                if not folder.is_dir():
                    raise RsvlmError(
                        f"{self.path}: built with the adapter {folder}, which is gone; put it back to query by image"
                    )
                self._adapter = load_adapter(folder, model)
            return self._adapter.image_model(model)

    def embed_query(self, query: SearchQuery, model: ContrastiveModel) -> npt.NDArray[np.float32]:
        from rsvlm.pipeline import embed_texts

        given = [x is not None for x in (query.text, query.image, query.vector)]
        if sum(given) != 1:
            raise RsvlmError("give exactly one query: a text, an image or a vector")
        if query.vector is not None:
            vector = np.asarray(query.vector, dtype=np.float32).reshape(1, -1)
            if vector.shape[1] != self.store.dim:
                raise RsvlmError(f"query vector has {vector.shape[1]} values, the index holds {self.store.dim}-d")
            return vector / max(float(np.linalg.norm(vector)), 1e-12)
        self.check_model(model)
        if query.text is not None:
            if not query.text.strip():
                raise RsvlmError("the text query is empty: describe what to find, e.g. 'a flooded field'")
            return embed_texts(model, [query.text])
        return _embed_image(self.image_model(model), query.image)

    # -- search ----------------------------------------------------------------------------------------------------
    def allowed(self, query: SearchQuery) -> npt.NDArray[np.int64] | None:
        """Ids that pass the place and time filters (None: no filter)."""
        if query.bbox is None and query.within is None and query.time is None:
            return None
        mask = np.ones(len(self), dtype=bool)
        for box in [query.bbox, query.within.bounds if query.within is not None else None]:
            if box is not None:
                w, s, e, n = box
                xmin, ymin, xmax, ymax = self._box
                with np.errstate(invalid="ignore"):
                    mask &= (xmax >= w) & (xmin <= e) & (ymax >= s) & (ymin <= n)
        if query.within is not None and mask.any():
            import shapely

            rows = np.flatnonzero(mask)
            mask[rows] = shapely.intersects(self._geometries()[rows], query.within)
        if query.time is not None:
            begin, end = query.time
            known = self._time != _NO_TIME
            mask &= known
            if begin is not None:
                mask &= self._time >= _micros(begin)
            if end is not None:
                mask &= self._time <= _micros(end)
        return self.ids[mask]

    def search(self, query: SearchQuery, model: ContrastiveModel | None) -> SearchResult:
        if not 1 <= query.k <= MAX_K:
            raise RsvlmError(f"k={query.k}: ask for 1 to {MAX_K} results")
        start = time.perf_counter()
        if query.vector is None and model is None:
            raise RsvlmError("a text or image query needs the index's model")
        vector = self.embed_query(query, model)  # type: ignore[arg-type]
        allowed = self.allowed(query)
        candidates = len(self) if allowed is None else len(allowed)
        index = self.vectors
        hits: list[Hit] = []
        if candidates:
            scores, ids = index.search(vector, min(query.k, candidates), allowed)
            for rank, (score, id_) in enumerate(zip(scores[0], ids[0], strict=True), start=1):
                if id_ >= 0:
                    hits.append(self._hit(int(id_), rank, float(score)))
        from rsvlm.index.vectors import EXACT_FILTER_MAX, FLAT

        exact = index.kind == FLAT or (allowed is not None and len(allowed) <= EXACT_FILTER_MAX)
        took = (time.perf_counter() - start) * 1000
        return SearchResult(hits, took, exact, candidates, query.describe())

    def item(self, id_: int) -> Hit:
        return self._hit(id_, 0, float("nan"))

    def _row(self, id_: int) -> int:
        row = int(np.searchsorted(self.ids, id_))
        if row >= len(self.ids) or self.ids[row] != id_:
            raise RsvlmError(f"no item {id_} in the index {self.path}")
        return row

    def _hit(self, id_: int, rank: int, score: float) -> Hit:
        import shapely

        row = self._table.slice(self._row(id_), 1).to_pylist()[0]
        window = (row["col"], row["row"], row["width"], row["height"]) if row["col"] is not None else None
        geometry = shapely.geometry.mapping(shapely.from_wkb(row["geometry"])) if row["geometry"] else None
        when = row["datetime"]
        return Hit(
            id=id_, rank=rank, score=score, key=row["key"], path=row["path"], window=window, label=row["label"],
            datetime=when.isoformat() if when is not None else None, geometry=_plain(geometry), crs=row["crs"],
            footprint=row["footprint"], kind=row["kind"],
        )  # fmt: skip

    def _geometries(self) -> Any:
        with self._lock:
            if self._geoms is None:
                import shapely

                self._geoms = shapely.from_wkb(self._table.column("geometry").to_numpy(zero_copy_only=False))
            return self._geoms

    # -- pictures --------------------------------------------------------------------------------------------------
    def thumbnail(self, id_: int, max_side: int = 256) -> bytes:
        """A PNG of the item as the model saw it (a scene tile stretched with its scene's limits)."""
        from rsvlm.geo.outputs import png_bytes

        hit = self.item(id_)
        if hit.kind == "external":
            raise RsvlmError(f"item {id_} was imported as an embedding: rsvlm has no pixels for it")
        if hit.kind == "tile" and hit.window is not None:
            rgb = self._tile_rgb(hit)
        else:  # a whole file, or a dataset record that is a window of one (LoveDA patches, flood chips)
            rgb = _rgb8(_read(Path(hit.path), hit.window))
        return png_bytes(_shrink(rgb, max_side))

    def _tile_rgb(self, hit: Hit) -> npt.NDArray[np.uint8]:
        from rsvlm.data.bands import rgb_composite
        from rsvlm.data.raster import Window

        scene, stats = self._scene(hit.path)
        assert hit.window is not None
        image, _ = scene.read(Window(*hit.window))
        rgb: npt.NDArray[np.uint8] = rgb_composite(image, scene.rgb, stats).to_hwc()
        return rgb

    def _scene(self, path: str) -> tuple[Any, Any]:
        from rsvlm.geo.maps import scene_stats
        from rsvlm.geo.source import open_scene

        with self._lock:
            if path in self._scenes:
                self._scenes.move_to_end(path)
                return self._scenes[path]
        scene = open_scene(path)
        found = (scene, scene_stats(scene))
        with self._lock:
            self._scenes[path] = found
            while len(self._scenes) > 16:
                self._scenes.popitem(last=False)
        return found

    def scene_overview(self, n: int) -> bytes:
        """The PNG overview the build wrote for the ``n``-th scene of ``info()["scenes"]``."""
        from rsvlm.index.build import OVERVIEWS

        scenes = list(self.store.manifest.get("scenes", {}).values())
        if not 0 <= n < len(scenes):
            raise RsvlmError(f"no scene {n} in the index {self.path} (it has {len(scenes)})")
        data: bytes = (self.path / OVERVIEWS / str(scenes[n]["overview"])).read_bytes()
        return data


def open_archive(path: str | Path) -> Archive:
    return Archive(IndexStore.open(path))


def load_index_model(archive: Archive, name: str | None = None, weights: Path | None = None) -> ContrastiveModel:
    """The model the index was built with (by its registry name unless ``name`` says otherwise), checked."""
    from rsvlm.models.openclip import load_contrastive
    from rsvlm.models.registry import get_spec

    built = archive.store.model
    archive._refuse_imported()
    if name is not None and get_spec(name).name != built["name"]:  # refused before a slow load
        raise RsvlmError(
            f"{archive.path}: index was built with {describe_model(built)}, not {get_spec(name).name}; "
            f"query it with --model {built['name']} (or omit --model)"
        )
    model = load_contrastive(name or built["name"], weights)
    archive.check_model(model)
    return model


def _embed_image(model: ContrastiveModel, image: Path | RasterImage | None) -> npt.NDArray[np.float32]:
    from rsvlm.data.raster import read_image
    from rsvlm.index.items import model_ready

    if image is None:
        raise RsvlmError("no image given")
    pixels = model_ready(read_image(image), model, image) if isinstance(image, Path) else model_ready(image, model)
    vectors: npt.NDArray[np.float32] = model.encode_images(model.preprocess(pixels)[None]).cpu().numpy()
    return vectors.astype(np.float32)


def _read(path: Path, window: tuple[int, int, int, int] | None = None) -> RasterImage:
    from rsvlm.data.raster import Window, read_image

    return read_image(path, window=Window(*window) if window is not None else None)


def _rgb8(image: RasterImage) -> npt.NDArray[np.uint8]:
    """8-bit RGB of any image: photographs as they are, other rasters stretched between their 2nd–98th percentiles."""
    from rsvlm.data.bands import band_stats, rgb_composite

    if image.dtype == np.uint8 and image.band_count in (3, 4):
        rgb: npt.NDArray[np.uint8] = np.ascontiguousarray(np.moveaxis(image.data[:3], 0, -1))
        return rgb
    bands = (0, 1, 2) if image.band_count >= 3 else (0, 0, 0)
    out: npt.NDArray[np.uint8] = rgb_composite(image, bands, band_stats(image)).to_hwc()
    return out


def _shrink(rgb: npt.NDArray[np.uint8], max_side: int) -> npt.NDArray[np.uint8]:
    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((max_side, max_side))
    return np.asarray(img)


def _micros(value: datetime) -> int:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1_000_000)


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).isoformat()


def _plain(value: Any) -> Any:
    """Shapely's mapping uses tuples; JSON and tests want lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
