"""RSVQA (Lobry et al., TGRS 2020) in its release JSON: ``<prefix>_images.json``, ``<prefix>_questions.json``
and ``<prefix>_answers.json`` beside an image folder.

The prefix names the split in the full release (``LR_split_train``, ``USGS_split_test_phili``) and is
``LR``/``HR`` in the demo subsets. One sample per active question; images are ``<folder>/<image id>.<ext>``.
Question types are kept as the release spells them (``comp``, ``presence``, ``count``, ``rural_urban``,
``area``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from rsvlm.data.dataset import Dataset, Unmatched, find_images_dir, read_json
from rsvlm.data.raster import IMAGE_SUFFIXES
from rsvlm.data.sample import GeoInfo, Sample
from rsvlm.errors import AnnotationError, DataError

_SUFFIX = "_questions.json"


def _prefixes(path: Path) -> list[str]:
    return sorted(p.name[: -len(_SUFFIX)] for p in path.glob(f"*{_SUFFIX}"))


def _split_of(prefix: str) -> str | None:
    """``LR_split_train`` → ``train``; the demo subsets' bare ``LR``/``HR`` carry no split."""
    match = re.search(r"split_(\w+)$", prefix)
    return match.group(1) if match else None


def _metres(value: Any) -> float | None:
    """``"10m"`` / ``".1524m"`` → metres; None when absent or unparsable."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*m?\s*", str(value)) if value is not None else None
    return float(match.group(1)) if match else None


@dataclass
class _Table:
    """One release table keyed by id; rows whose id was already taken are kept aside to be reported."""

    path: Path
    key: str
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    """(position in the list, id) of each repeated id; the first row with an id is the one used."""


def _table(path: Path, key: str) -> _Table:
    data = read_json(path)
    rows = data.get(key) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise AnnotationError(path, f'expected an object with a "{key}" list')
    table = _Table(path, key)
    for i, row in enumerate(rows):
        row_id = row.get("id") if isinstance(row, dict) else None
        if not isinstance(row, dict) or not _is_id(row_id):
            raise AnnotationError(path, f"{key}[{i}] has no integer id")
        if row_id in table.rows:
            table.duplicates.append((i, row_id))
            continue
        table.rows[row_id] = row
    return table


def _is_id(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _answer_text(value: Any) -> str | None:
    """The reference text of an answer: a non-blank string or an integer count; None for anything else."""
    if isinstance(value, str) and value.strip():
        return value
    if _is_id(value):
        return str(value)
    return None


def _geo(image: dict[str, Any]) -> GeoInfo | None:
    """Transform from the upper-left corner and resolution the release stores; its CRS is not recorded."""
    x, y = image.get("upperleft_map_x"), image.get("upperleft_map_y")
    rx, ry = _metres(image.get("res_x")), _metres(image.get("res_y"))
    if not isinstance(x, int | float) or not isinstance(y, int | float) or rx is None or ry is None:
        return None
    return GeoInfo(crs=None, transform=(rx, 0.0, float(x), 0.0, -ry, float(y)), resolution=(rx, ry))


class RsvqaDataset(Dataset):
    format_name = "rsvqa"
    description = "visual question answering, RSVQA LR/HR release JSON"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and any(
            (path / f"{p}_answers.json").is_file() and (path / f"{p}_images.json").is_file() for p in _prefixes(path)
        )

    def _load(self) -> list[Sample]:
        prefixes = _prefixes(self.root)
        if not prefixes:
            raise DataError(self.root, "no *_questions.json file", "point at the RSVQA folder")
        images_dir = self.images_dir or find_images_dir(self.root, ("images", "Images_LR", "Data"))
        if images_dir is None:
            raise DataError(self.root, "no images folder", "pass --images DIR")
        by_id = {p.stem: p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        records: list[Sample] = []
        for prefix in prefixes:
            records.extend(self._load_split(prefix, by_id))
        return records

    def _load_split(self, prefix: str, by_id: dict[str, Path]) -> list[Sample]:
        split = _split_of(prefix)
        q_path = self.root / f"{prefix}_questions.json"
        images = _table(self.root / f"{prefix}_images.json", "images")
        questions = _table(q_path, "questions")
        answers = _table(self.root / f"{prefix}_answers.json", "answers")
        for table, what in ((images, "image"), (questions, "question"), (answers, "answer")):
            for i, row_id in table.duplicates:
                reason = f"{what} id repeated in {table.path.name} (the first is used)"
                dropped = 0 if what == "image" else 1  # a repeated question or answer is one annotation unused
                self.unmatched.append(Unmatched(split, f"{table.key}[{i}] (id {row_id})", reason, dropped))
        inactive = 0
        missing_images: dict[str, int] = {}
        records: list[Sample] = []
        for qid, q in questions.rows.items():
            if not q.get("active", True):
                inactive += 1
                continue
            answer = self._answer(q_path, split, qid, q, answers.rows)
            if answer is None:
                continue
            img_id = q.get("img_id")
            image = images.rows.get(img_id) if _is_id(img_id) else None
            path = by_id.get(str(img_id))
            if image is None or path is None:
                missing_images[str(img_id)] = missing_images.get(str(img_id), 0) + 1
                continue
            if not isinstance(q.get("question"), str) or not isinstance(q.get("type"), str):
                raise AnnotationError(q_path, f"question {qid} lacks a question text or type")
            records.append(
                Sample(
                    id=f"{prefix}/{qid}",
                    split=split,
                    image_path=path,
                    question=q["question"],
                    answer=answer,
                    question_type=q["type"],
                    geo=_geo(image),
                    meta={
                        "image_id": img_id,
                        "question_id": qid,
                        "original_name": image.get("original_name"),
                    },
                )
            )
        for img_id, n in sorted(missing_images.items()):
            self.unmatched.append(Unmatched(split, f"image {img_id}", "image not found", n))
        if inactive:
            self.notes.append(f"{prefix}: {inactive} inactive questions skipped (the release marks them unused)")
        return records

    def _answer(
        self, q_path: Path, split: str | None, qid: int, q: dict[str, Any], answers: dict[int, dict[str, Any]]
    ) -> str | None:
        """The reference answer of a question; a question without a usable one is reported and gets None."""
        ids = q.get("answers_ids")
        ids = [] if ids is None else ids
        if not isinstance(ids, list) or not all(_is_id(a) for a in ids):
            shown = json.dumps(ids)
            raise AnnotationError(
                q_path,
                f"question {qid} has answers_ids {shown[:60]}{'…' if len(shown) > 60 else ''}",
                "expected a list of integer answer ids, e.g. [12]",
            )
        active = [answers[a] for a in ids if a in answers and answers[a].get("active", True)]
        if not active:
            self.unmatched.append(Unmatched(split, f"question {qid}", "no active answer"))
            return None
        texts = [_answer_text(a.get("answer")) for a in active]
        if any(t is None for t in texts):  # never let null or {} become the reference string "None"
            self.unmatched.append(Unmatched(split, f"question {qid}", "answer is null, blank or not text"))
            return None
        return texts[0]
