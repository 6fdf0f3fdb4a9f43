"""Saying when a scene is outside what the model learnt from, so a map of it is not read as land cover.

The default model learnt from RGB aerial photographs (AID). It maps whatever it is fed, so a 2-band radar
scene comes out as "79 % forest" with full confidence. These checks look only at the scene's bands and a
decimated read of its pixels, and return plain-language notes for the log, ``summary.json`` and the report.
"""

from __future__ import annotations

import re

import numpy as np

from rsvlm.data.bands import data_mask
from rsvlm.data.sample import RasterImage
from rsvlm.geo.source import Scene

_SAR = re.compile(r"(^|[^a-z])(vv|vh|hh|hv|sigma0|gamma0|beta0|backscatter)([^a-z]|$)", re.IGNORECASE)
"""Band names of radar products: polarisations (Sentinel-1 VV/VH, HH/HV) and calibrated backscatter."""


def domain_notes(scene: Scene, overview: RasterImage, model_name: str, model_bands: int | None = None) -> list[str]:
    """Why the model's view of ``scene`` may be meaningless; empty when the scene looks like optical imagery.

    ``model_bands``: the band count a spectral-adapter model takes directly; a scene with that many bands is
    what the adapter was trained for, so only the pixel values are checked.
    """
    out_of_domain = (
        f"{model_name} learnt from RGB photographs (optical, visible light), so its maps of this scene are out of "
        "its training domain: read them as similarity pictures, not as land cover"
    )
    notes: list[str] = []
    own_bands = model_bands == scene.band_count
    radar = [name for name in scene.band_names if _SAR.search(name)]
    if radar and not own_bands:
        notes.append(f"bands {', '.join(radar)} look like radar (SAR) backscatter; {out_of_domain}")
    elif scene.band_count < 3 and not own_bands:
        shown = "grey" if scene.band_count == 1 else f"band {scene.band_names[0]} in grey"
        notes.append(f"only {scene.band_count} band(s), shown to the model as {shown}; {out_of_domain}")
    elif scene.preset is None and not own_bands and not (scene.dtype == "uint8" and scene.band_count in (3, 4)):
        rgb = ", ".join(scene.band_names[i] for i in scene.rgb)
        notes.append(
            f"no sensor preset fits these {scene.band_count} {scene.dtype} bands: {rgb} are taken as red, green, "
            "blue; name the sensor with --bands if that is wrong"
        )
    negative = _negative_median(scene, overview)
    if negative is not None and not radar:
        notes.append(
            f"band {negative[0]} is mostly negative (median {negative[1]:.3g}): not reflectance (radar in dB?); "
            f"{out_of_domain}"
        )
    return notes


def _negative_median(scene: Scene, overview: RasterImage) -> tuple[str, float] | None:
    """The first colour band whose valid pixels have a negative median (backscatter in dB, temperatures …)."""
    if not np.issubdtype(overview.data.dtype, np.signedinteger) and not np.issubdtype(overview.data.dtype, np.floating):
        return None
    valid = data_mask(overview)
    for i in dict.fromkeys(scene.rgb):
        values = overview.data[i][valid]
        values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if values.size and float(np.median(values)) < 0:
            return scene.band_names[i], float(np.median(values))
    return None
