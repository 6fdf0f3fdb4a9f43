"""Image-level rural / urban labels from RSVQA's ``rural_urban`` questions (Lobry et al., TGRS 2020).

The release asks "Is it a rural or an urban area" once per low-resolution image, answered from
OpenStreetMap; that answer is the only image-level label the questions state outright, so it is the only
one taken (presence questions say what is somewhere in the image, not what the image is). One sample per
image; an image whose rural_urban answers disagree is reported, not labelled.

Splits: the release's own (``LR_split_train`` …) when the files name one. The demo subset names none; its
50 images lie far apart (no two touch), so they are split by image, stratified: within each label, images
in id order alternate train, test (rural 14 / 14, urban 11 / 11 on the shared subset, so at most 11 shots).
The format is never detected (the same folder is an ``rsvqa`` set); name it with ``--format rsvqa-scene``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from rsvlm.data.dataset import Dataset, Unmatched
from rsvlm.data.formats.rsvqa import RsvqaDataset
from rsvlm.data.sample import Sample
from rsvlm.errors import DataError

QUESTION_TYPE = "rural_urban"
READABLE = {"rural": "rural area", "urban": "urban area"}


def _order(image_id: object) -> tuple[int, int, str]:
    return (0, image_id, "") if isinstance(image_id, int) else (1, 0, str(image_id))


class RsvqaSceneDataset(Dataset):
    format_name = "rsvqa-scene"
    description = "scene classification: rural / urban image labels from RSVQA rural_urban questions"
    default_class_names = READABLE

    @classmethod
    def detect(cls, path: Path) -> bool:
        return False

    def _load(self) -> list[Sample]:
        questions = RsvqaDataset(self.root, images=self.images_dir)
        answers: dict[Path, list[Sample]] = defaultdict(list)
        for r in questions.records:
            if r.question_type == QUESTION_TYPE and r.image_path is not None:
                answers[r.image_path].append(r)
        if not answers:
            raise DataError(
                self.root, "no rural_urban questions", "only RSVQA-LR asks them; HR images carry no scene label"
            )
        records: list[Sample] = []
        for path, asked in sorted(answers.items()):
            said = sorted({(r.answer or "").strip().lower() for r in asked})
            first = asked[0]
            if len(said) != 1 or not said[0]:
                reason = f"rural_urban answers disagree ({', '.join(said)})"
                self.unmatched.append(Unmatched(first.split, path.name, reason, len(asked)))
                continue
            records.append(
                Sample(
                    id=f"{first.meta.get('image_id')}",
                    split=first.split,
                    image_path=path,
                    label=said[0],
                    geo=first.geo,
                    meta={
                        "image_id": first.meta.get("image_id"),
                        "original_name": first.meta.get("original_name"),
                        "question_ids": [r.meta.get("question_id") for r in asked],
                    },
                )
            )
        unlabelled = len({r.image_path for r in questions.records} - set(answers))
        if unlabelled:
            self.notes.append(f"{unlabelled} images have no rural_urban question and are left out")
        if questions.unmatched:
            self.notes.append(
                f"{len(questions.unmatched)} RSVQA items could not be paired (`rsvlm data info --format rsvqa`)"
            )
        if all(r.split is None for r in records):
            records = self._stratified_split(records)
        return records

    def _stratified_split(self, records: list[Sample]) -> list[Sample]:
        by_label: dict[str, list[Sample]] = defaultdict(list)
        for r in records:
            by_label[str(r.label)].append(r)
        out: list[Sample] = []
        for label in sorted(by_label):
            ordered = sorted(by_label[label], key=lambda r: _order(r.meta.get("image_id")))
            for i, r in enumerate(ordered):
                out.append(replace(r, split="train" if i % 2 == 0 else "test"))
        self.notes.append("no release split: images split by image, stratified by label, alternating in id order")
        return sorted(out, key=lambda r: _order(r.meta.get("image_id")))
