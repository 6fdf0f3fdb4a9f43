"""Object boxes in Pascal-VOC XML, one file per image (NEON trees via DeepForest, DIOR, many labelImg sets).

Accepts a folder of XML files with the images beside them, the VOC layout (``Annotations/`` +
``JPEGImages/``), or a single XML file. Objects that carry a ``<description>`` (the referring expressions
of visual-grounding sets such as DIOR-RSVG) become one grounding sample each: the expression as the
question and that object's box as the target. Rotated boxes in the roLabelImg extension (``<robndbox>`` with
centre, size and angle in radians) are kept with their angle. XML is parsed with defusedxml: a file
that declares a DTD or entities is refused, so annotation files cannot read local files or expand bombs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rsvlm.data.dataset import Dataset, Unmatched, image_files, inside, leaves_folder
from rsvlm.data.raster import IMAGE_SUFFIXES
from rsvlm.data.sample import Boxes, Sample
from rsvlm.errors import AnnotationError


def parse_voc_xml(path: Path) -> tuple[str | None, tuple[int, int] | None, Boxes, tuple[str | None, ...]]:
    """File name, (width, height), boxes and each box's referring expression (or None) of one annotation."""
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    try:
        root = SafeET.parse(path, forbid_dtd=True).getroot()
        if root is None:
            raise SafeET.ParseError("no root element")
    except FileNotFoundError:
        raise AnnotationError(path, "file not found", "check the path") from None
    except DefusedXmlException as exc:
        raise AnnotationError(
            path, f"unsafe XML refused ({type(exc).__name__})", "remove the DOCTYPE/entity declarations"
        ) from None
    except SafeET.ParseError as exc:
        raise AnnotationError(path, f"malformed XML: {exc}", "the file is truncated or corrupt") from None
    if root.tag != "annotation":
        raise AnnotationError(path, f"root element is <{root.tag}>, not <annotation>", "is this a Pascal-VOC file?")
    size: tuple[int, int] | None = None
    w, h = root.findtext("size/width"), root.findtext("size/height")
    if w and h:
        size = (int(_number(path, w, "size/width")), int(_number(path, h, "size/height")))
    coords: list[list[float]] = []
    angles: list[float] = []
    labels: list[str] = []
    descriptions: list[str | None] = []
    for k, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise AnnotationError(path, f"object {k} has no <name>")
        box, angle = _box(path, k, obj)
        coords.append(box)
        angles.append(angle)
        labels.append(name)
        descriptions.append((obj.findtext("description") or "").strip() or None)
    xyxy = np.asarray(coords, dtype=np.float64).reshape(-1, 4)
    rotated = any(a != 0.0 for a in angles)
    boxes = Boxes(xyxy, tuple(labels), np.asarray(angles, dtype=np.float64) if rotated else None)
    return (root.findtext("filename") or "").strip() or None, size, boxes, tuple(descriptions)


def _number(path: Path, text: str | None, what: str) -> float:
    try:
        return float(text) if text is not None else math.nan
    except ValueError:
        raise AnnotationError(path, f"<{what}> is not a number: {text!r}") from None


def _box(path: Path, k: int, obj: Any) -> tuple[list[float], float]:
    bnd = obj.find("bndbox")
    if bnd is not None:
        values = [_number(path, bnd.findtext(t), f"object {k} {t}") for t in ("xmin", "ymin", "xmax", "ymax")]
        if any(math.isnan(v) for v in values) or values[2] < values[0] or values[3] < values[1]:
            raise AnnotationError(path, f"object {k} has an incomplete or inverted <bndbox>: {values}")
        return values, 0.0
    rbox = obj.find("robndbox")
    if rbox is not None:
        cx, cy, bw, bh, angle = (
            _number(path, rbox.findtext(t), f"object {k} {t}") for t in ("cx", "cy", "w", "h", "angle")
        )
        if any(math.isnan(v) for v in (cx, cy, bw, bh, angle)) or bw < 0 or bh < 0:
            raise AnnotationError(path, f"object {k} has an incomplete <robndbox>")
        return [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], math.degrees(angle)
    raise AnnotationError(path, f"object {k} has neither <bndbox> nor <robndbox>")


class VocDataset(Dataset):
    format_name = "voc"
    description = "object boxes, Pascal-VOC XML per image (NEON trees, DIOR, labelImg)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return path.suffix.lower() == ".xml"
        folder = path / "Annotations" if (path / "Annotations").is_dir() else path
        return path.is_dir() and any(folder.glob("*.xml"))

    def _xml_files(self) -> tuple[list[Path], list[Path]]:
        """Annotation files and the folders to look for their images in."""
        if self.root.is_file():
            return [self.root], [self.images_dir or self.root.parent]
        folder = self.root / "Annotations" if (self.root / "Annotations").is_dir() else self.root
        search = [self.images_dir] if self.images_dir else [self.root / "JPEGImages", folder]
        return sorted(folder.glob("*.xml")), [d for d in search if d.is_dir()]

    def _load(self) -> list[Sample]:
        xml_files, search = self._xml_files()
        by_stem: dict[str, list[Path]] = {}
        for d in search:
            for p in image_files(d):
                by_stem.setdefault(p.stem, []).append(p)
        records: list[Sample] = []
        for xml in xml_files:
            filename, size, boxes, descriptions = parse_voc_xml(xml)
            image = self._find_image(xml, filename, search, by_stem)
            if image is None:
                escapes = filename is not None and leaves_folder(filename)
                reason = "image path outside the dataset folder (absolute or '..')" if escapes else "image not found"
                self.unmatched.append(Unmatched(None, filename or xml.name, reason, len(boxes)))
                continue
            meta = {"annotation": str(xml), "size": size}
            if any(descriptions):
                records.extend(_referring_samples(xml.stem, image, boxes, descriptions, meta))
            else:
                records.append(Sample(id=xml.stem, image_path=image, boxes=boxes, meta=meta))
        return records

    def _find_image(
        self, xml: Path, filename: str | None, search: list[Path], by_stem: dict[str, list[Path]]
    ) -> Path | None:
        """The image ``<filename>`` names under a search folder, else the image sharing the XML's stem.

        A ``<filename>`` that leaves the folder (``../..``, an absolute path) is never opened.
        """
        outside = filename is not None and leaves_folder(filename)
        if filename and not outside:
            for d in search:
                path = inside(d, filename)
                if path is not None and path.is_file():
                    return path
        candidates = [p for p in by_stem.get(xml.stem, []) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not candidates:
            return None
        if filename:
            why = "outside the dataset folder, so not read" if outside else "which is absent"
            self.notes.append(f"{xml.name}: names {filename}, {why}; using {candidates[0].name}")
        return candidates[0]


def _referring_samples(
    stem: str, image: Path, boxes: Boxes, descriptions: tuple[str | None, ...], meta: dict[str, Any]
) -> list[Sample]:
    """One grounding sample per described object (id ``<file>#<object index>``)."""
    out = []
    for k, text in enumerate(descriptions):
        if text is None:
            continue
        angles = None if boxes.angles is None else boxes.angles[k : k + 1]
        one = Boxes(boxes.xyxy[k : k + 1], boxes.labels[k : k + 1], angles)
        out.append(Sample(id=f"{stem}#{k}", image_path=image, boxes=one, question=text, meta=meta))
    return out
