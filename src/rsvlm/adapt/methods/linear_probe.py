"""``linear-probe``: multinomial logistic regression on standardised frozen image features.

The linear-probe baseline of CLIP (Radford et al., ICML 2021) and of CoOp's few-shot tables (Zhou et al., IJCV
2022): it ignores the text tower, which is why it falls below zero-shot at one or two shots. Same classifier as
``rsvlm eval linear-probe`` (scikit-learn, lbfgs, L2 with inverse strength ``C``), kept as plain tensors
(scaler mean/scale, coefficients, intercepts) so the fitted head saves as safetensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.adapt.method import F32, Base, ClassSet, Method, Options, Support, check_same_classes
from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.models.protocols import ContrastiveModel


@dataclass
class LinearHead:
    mean: F32
    scale: F32
    coef: F32
    """(C, D); rows of classes absent from the support set are zero and their intercept is −inf-like."""
    intercept: F32
    trained: list[str]

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept}

    def logits(self, features: F32, classes: ClassSet) -> F32:
        check_same_classes(METHOD.name, self.trained, classes)
        out: F32 = (((features - self.mean) / self.scale) @ self.coef.T + self.intercept).astype(np.float32)
        return out

    def image_model(self, base: ContrastiveModel) -> ContrastiveModel:
        return base


def fit(support: Support, options: Options, seed: int) -> LinearHead:
    from sklearn.linear_model import LogisticRegression

    c = float(options["C"])
    if not c > 0:
        raise RsvlmError(f"method linear-probe: C must be positive, got {c}")
    present = np.unique(support.labels)
    if len(present) < 2:
        raise RsvlmError("method linear-probe needs examples of at least 2 classes")
    x = support.features.astype(np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    clf = LogisticRegression(C=c, max_iter=1000, random_state=seed).fit((x - mean) / scale, support.labels)
    n_classes, dim = len(support.classes.names), x.shape[1]
    coef = np.zeros((n_classes, dim), np.float32)
    intercept = np.full(n_classes, -1e4, np.float32)  # a class never seen is never predicted
    if len(clf.classes_) == 2:  # scikit-learn keeps one row for two classes: logit of the second
        coef[clf.classes_[1]], intercept[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
        coef[clf.classes_[0]], intercept[clf.classes_[0]] = 0.0, 0.0
    else:
        coef[clf.classes_] = clf.coef_
        intercept[clf.classes_] = clf.intercept_
    return LinearHead(mean.astype(np.float32), scale.astype(np.float32), coef, intercept, list(support.classes.names))


def restore(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base) -> LinearHead:
    arrays = {k: np.asarray(state[k], np.float32) for k in ("mean", "scale", "coef", "intercept")}
    return LinearHead(**arrays, trained=list(base.classes.names))


METHOD = Method(
    name="linear-probe",
    title="Linear probe (logistic regression)",
    paper="Radford et al., Learning Transferable Visual Models From Natural Language Supervision, ICML 2021",
    fit=fit,
    restore=restore,
    options={"C": ("float", 1.0)},
)
