"""A ridge-regression head on frozen image embeddings: the non-generative route to per-tile quantities.

Counting trees, % impervious surface or biomass per tile is a number, not a sentence. Instead of asking a chat
model to write it, a linear head on a contrastive model's image embeddings predicts it directly: features are
standardised, the ridge penalty is chosen by internal cross-validation (``RidgeCV``), counts may be fitted on
``log1p`` (their errors grow with the count) and predictions are clipped at 0 when the target cannot be negative.

A fitted head is tied to the embeddings it saw: it is saved as safetensors (coefficients, intercept, scaler) plus
JSON naming the model, its weights and preprocessing, and it refuses features from any other model.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.data.tiling import Window
from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json

if TYPE_CHECKING:
    from rsvlm.data.dataset import Dataset
    from rsvlm.data.sample import GeoInfo, RasterImage
    from rsvlm.models.protocols import ContrastiveModel

FORMAT = "rsvlm-regression/1"
TRANSFORMS = ("none", "log1p")
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(10.0**k) for k in np.arange(-2.0, 6.01, 0.5))
"""Ridge penalties tried (on standardised features), 1e-2 … 1e6: wide enough that 500-d embeddings of a few
hundred tiles are neither interpolated nor flattened to the mean."""
_WEIGHTS = "regression.safetensors"
_CONFIG = "regression.json"


@dataclass
class RegressionHead:
    """Standardise → ridge (penalty by cross-validation) → inverse target transform → clip.

    Build one with ``for_model`` so it records which embeddings it belongs to; ``fit`` on (N, D) features.
    """

    model_name: str
    preprocess_id: str
    embed_dim: int
    weights_id: str = ""
    target: str = "count"
    """What is predicted, for reports and for whoever loads the head (``count``, ``impervious_pct`` …)."""
    transform: str = "none"
    """``none`` or ``log1p`` (fit log(1 + y), predict exp(z) - 1: relative errors, suited to counts)."""
    nonnegative: bool = True
    """Clip predictions at 0 (counts, areas, biomass cannot be negative)."""
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    alpha: float | None = None
    """The penalty cross-validation chose; None until fitted."""
    cv: str = ""
    """How the penalty was chosen: ``loo`` (efficient leave-one-out) or ``group-kfold-<k>``."""
    n_train: int = 0
    coef: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    intercept: float = 0.0
    mean: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    scale: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise RsvlmError(f"regression transform {self.transform!r} is unknown; use one of {', '.join(TRANSFORMS)}")
        if not self.alphas or any(not a > 0 for a in self.alphas):
            raise RsvlmError("regression alphas must be a non-empty list of positive penalties")

    @classmethod
    def for_model(
        cls, model: ContrastiveModel, *, target: str = "count", transform: str = "none", nonnegative: bool = True
    ) -> RegressionHead:
        """An unfitted head bound to ``model``'s embeddings."""
        return cls(
            model_name=model.name,
            preprocess_id=model.preprocess_id,
            embed_dim=model.embed_dim,
            weights_id=model.weights_id,
            target=target,
            transform=transform,
            nonnegative=nonnegative,
        )

    @property
    def fitted(self) -> bool:
        return self.alpha is not None

    # -- fit / predict -------------------------------------------------------------------------------------
    def _features(self, features: npt.ArrayLike) -> npt.NDArray[np.float64]:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.embed_dim:
            raise RsvlmError(
                f"features of shape {x.shape} do not fit this head ({self.embed_dim}-d {self.model_name} embeddings); "
                f"embed the images with {self.model_name}"
            )
        if not np.isfinite(x).all():
            raise RsvlmError("features contain NaN or infinite values; re-embed the images")
        return x

    def fit(
        self, features: npt.ArrayLike, targets: npt.ArrayLike, groups: Sequence[Any] | None = None
    ) -> RegressionHead:
        """Fit on (N, D) features and N targets. ``groups`` (e.g. region or spatial block per tile) makes the
        penalty search hold out whole groups, so overlapping or neighbouring tiles cannot vouch for each other;
        without groups (or with one) it is efficient leave-one-out. ``cv`` records which was used."""
        from sklearn.linear_model import RidgeCV
        from sklearn.model_selection import GroupKFold
        from sklearn.preprocessing import StandardScaler

        x = self._features(features)
        y = np.asarray(targets, dtype=np.float64).reshape(-1)
        if len(y) != len(x):
            raise RsvlmError(f"{len(x)} feature rows but {len(y)} targets; give one target per image")
        if len(y) < 3:
            raise RsvlmError(f"{len(y)} training examples are too few to fit a regression head; give at least 3")
        if not np.isfinite(y).all():
            raise RsvlmError(f"{self.target} targets contain NaN or infinite values; drop or fix those examples")
        if self.transform == "log1p" and float(y.min()) < 0:
            raise RsvlmError(f"{self.target} has negative targets, which log1p cannot take; use transform='none'")
        splits: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] | None = None
        cv = "loo"
        if groups is not None:
            if len(groups) != len(y):
                raise RsvlmError(f"{len(groups)} groups for {len(y)} targets; give one group per example")
            n_groups = len({str(g) for g in groups})
            if n_groups >= 2:
                k = min(5, n_groups)
                labels = np.array([str(g) for g in groups])
                splits = list(GroupKFold(n_splits=k).split(x, y, labels))
                cv = f"group-kfold-{k}"
        scaler = StandardScaler().fit(x)
        z = scaler.transform(x)
        ridge = RidgeCV(alphas=self.alphas, cv=splits).fit(z, self._forward(y))
        self.alpha, self.cv = float(ridge.alpha_), cv
        self.coef = np.asarray(ridge.coef_, dtype=np.float64).reshape(-1)
        self.intercept = float(ridge.intercept_)
        self.mean = np.asarray(scaler.mean_, dtype=np.float64)
        self.scale = np.asarray(scaler.scale_, dtype=np.float64)
        self.n_train = len(y)
        return self

    def _forward(self, y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.log1p(y) if self.transform == "log1p" else y

    def predict(self, features: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """One prediction per feature row, in the target's own units."""
        if not self.fitted:
            raise RsvlmError("this regression head is not fitted; call fit() or load a saved head")
        z = (self._features(features) - self.mean) / self.scale
        raw = z @ self.coef + self.intercept
        out = np.expm1(raw) if self.transform == "log1p" else raw
        return np.maximum(out, 0.0) if self.nonnegative else out

    def predict_images(
        self, model: ContrastiveModel, images: Sequence[RasterImage], *, batch_size: int = 32
    ) -> npt.NDArray[np.float64]:
        """Embed ``images`` with ``model`` (which must be the head's model) and predict."""
        self.check_model(model)
        return self.predict(embed_rasters(model, images, batch_size=batch_size))

    def check_model(self, model: ContrastiveModel, where: str = "this regression head") -> None:
        """Refuse a model whose embeddings are not the ones the head was fitted on."""
        mine = (self.model_name, self.embed_dim, self.preprocess_id)
        theirs = (model.name, model.embed_dim, model.preprocess_id)
        weights = model.weights_id
        if mine != theirs or (self.weights_id and weights and weights != self.weights_id):
            raise RsvlmError(
                f"{where} was fitted on {self.model_name} embeddings ({self.embed_dim}-d, {self.preprocess_id}, "
                f"weights {self.weights_id or '?'}), not {model.name} ({model.embed_dim}-d, {model.preprocess_id}, "
                f"weights {weights or '?'}); use {self.model_name} or refit the head on this model's features"
            )

    # -- save / load ---------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``regression.safetensors`` and ``regression.json`` into ``folder`` (no pickle anywhere)."""
        from safetensors.numpy import save_file

        if not self.fitted:
            raise RsvlmError("this regression head is not fitted; fit it before saving")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            "coef": self.coef,
            "intercept": np.array([self.intercept]),
            "scaler_mean": self.mean,
            "scaler_scale": self.scale,
        }
        save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in tensors.items()}, str(folder / _WEIGHTS))
        config = {
            "format": FORMAT,
            "model": {
                "name": self.model_name,
                "weights_id": self.weights_id,
                "preprocess_id": self.preprocess_id,
                "embed_dim": self.embed_dim,
            },
            "target": self.target,
            "transform": self.transform,
            "nonnegative": self.nonnegative,
            "alpha": self.alpha,
            "alphas": list(self.alphas),
            "cv": self.cv,
            "n_train": self.n_train,
        }
        atomic_write_json(folder / _CONFIG, config)
        return folder

    @classmethod
    def load(cls, folder: str | Path, model: ContrastiveModel | None = None) -> RegressionHead:
        """Read a saved head; with ``model``, also check that it produces the embeddings the head expects."""
        from safetensors.numpy import load_file

        from rsvlm.models.checkpoint import read_saved_config

        folder = Path(folder)
        weights_path = folder / _WEIGHTS
        config = read_saved_config(folder, _CONFIG, _WEIGHTS, FORMAT, "regression head")
        try:
            tensors = load_file(str(weights_path))
            info = config["model"]
            head = cls(
                model_name=str(info["name"]),
                preprocess_id=str(info["preprocess_id"]),
                embed_dim=int(info["embed_dim"]),
                weights_id=str(info.get("weights_id", "")),
                target=str(config["target"]),
                transform=str(config["transform"]),
                nonnegative=bool(config["nonnegative"]),
                alphas=tuple(float(a) for a in config["alphas"]),
                alpha=float(config["alpha"]),
                cv=str(config.get("cv", "")),
                n_train=int(config.get("n_train", 0)),
                coef=tensors["coef"],
                intercept=float(tensors["intercept"][0]),
                mean=tensors["scaler_mean"],
                scale=tensors["scaler_scale"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RsvlmError(f"{folder}: not a readable regression head ({type(exc).__name__}: {exc})") from None
        d = head.embed_dim
        if any(v.shape != (d,) for v in (head.coef, head.mean, head.scale)):
            raise RsvlmError(f"{weights_path}: tensor shapes do not match embed_dim {d} in {_CONFIG}; refit the head")
        if model is not None:
            head.check_model(model, where=f"regression head {folder}")
        return head


def regression_metrics(pred: npt.ArrayLike, target: npt.ArrayLike) -> dict[str, float]:
    """MAE, RMSE, mean signed error (``bias``: > 0 means over-prediction) and ``n``."""
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(target, dtype=np.float64).reshape(-1)
    if len(p) != len(t):
        raise ValueError(f"{len(p)} predictions for {len(t)} targets")
    if not len(t):
        raise ValueError("no predictions to score")
    err = p - t
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": math.sqrt(float((err**2).mean())),
        "n": len(t),
        "bias": float(err.mean()),
    }


# -- tiles with counts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CountTile:
    """One tile of a box-annotated image and the number of boxes whose centre lies in it."""

    region: str
    """The source sample's id (one image = one region, the unit a fair split holds out)."""
    window: Window
    image: RasterImage
    count: int


def _window_geo(geo: GeoInfo | None, window: Window) -> GeoInfo | None:
    """The source geo-reference moved to the tile's top-left corner."""
    if geo is None or geo.transform is None:
        return geo
    from rsvlm.data.raster import window_geo

    return window_geo(geo.crs, geo.transform, *window)


def count_tiles(
    dataset: Dataset | str | Path, tile: int, stride: int | None = None, *, regions: Collection[str] | None = None
) -> list[CountTile]:
    """Tiles of every box-annotated image (``tile`` px, ``stride`` px apart, default ``tile``: no overlap except
    the last row/column, which is flush with the edge) with their box-centre counts. ``regions`` keeps only those
    sample ids."""
    from rsvlm.data.raster import read_image
    from rsvlm.data.registry import open_dataset
    from rsvlm.data.sample import RasterImage
    from rsvlm.data.tiling import boxes_in_tile, tiles

    if tile <= 0 or (stride is not None and stride <= 0):
        raise RsvlmError(f"tile ({tile}) and stride ({stride}) must be positive numbers of pixels")
    ds = open_dataset(dataset) if isinstance(dataset, str | Path) else dataset
    records = [r for r in ds.records if r.image_path is not None and r.boxes is not None]
    if regions is not None:
        missing = sorted(set(regions) - {r.id for r in records})
        if missing:
            have = ", ".join(r.id for r in records) or "none"
            raise RsvlmError(f"{ds.root}: no box-annotated image {missing[0]!r} (it has {have})")
        records = [r for r in records if r.id in regions]
    out: list[CountTile] = []
    for r in records:
        assert r.image_path is not None and r.boxes is not None
        image = read_image(r.image_path)
        for window in tiles(image.height, image.width, tile, stride or tile):
            x, y, w, h = window
            pixels = RasterImage(
                np.ascontiguousarray(image.data[:, y : y + h, x : x + w]),
                image.bands,
                image.nodata,
                _window_geo(image.geo, window),
            )
            out.append(CountTile(r.id, window, pixels, len(boxes_in_tile(r.boxes, window))))
    return out


# -- embeddings of in-memory images --------------------------------------------------------------------------
def pixel_hash(image: RasterImage) -> str:
    """Content key of in-memory pixels for the feature cache (files are keyed by file bytes instead)."""
    h = hashlib.blake2b(digest_size=20, person=b"rsvlm-pixels")
    h.update(f"{image.data.shape}|{image.data.dtype.str}|{image.bands}".encode())
    h.update(np.ascontiguousarray(image.data).tobytes())
    return h.hexdigest()


def embed_rasters(
    model: ContrastiveModel,
    images: Sequence[RasterImage],
    *,
    batch_size: int = 32,
    cache_dir: Path | None = None,
    use_cache: bool = False,
) -> npt.NDArray[np.float32]:
    """(N, D) embeddings of images already in memory (tiles cut from a larger image), optionally cached by pixel
    content in the same feature cache as ``rsvlm.pipeline.embed_images`` (through the same loop)."""
    from rsvlm.pipeline import embed_cached

    return embed_cached(
        model, images, _same, pixel_hash, batch_size=batch_size, cache_dir=cache_dir, use_cache=use_cache
    )


def _same(image: RasterImage) -> RasterImage:
    return image
