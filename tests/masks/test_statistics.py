"""Hole-ratio statistics of every family at 256² (the numbers quoted in ``masks/__init__.py``).

``MEASURED_256``: mean and standard deviation of the hole ratio over 2,000 masks
(``mask_for_index(family, 12345, i, 256, 256)``, i < 2000).  The test draws 100 other masks
(seed 0) and checks the mean within 4 standard errors and the standard deviation within 35 %.
For the box families the mean is also known in closed form:

- DeepFill v1: sides 128 - 2a, 128 - 2b with a, b uniform on {0..16}: E = 112² / 256²;
- GLCIC: sides uniform on {96..128}: E = 112² / 256²;
- mmagic: sides 128 - d, d uniform on {0..20}: E = 118² / 256².

At 512² (500 masks): lama_thin_512 0.288, lama_medium_512 0.271, lama_thick_512 0.258,
strokes_deepfill_v2 0.091 (widths are pixels, the step radius scales), irregular_mmagic 0.176.
"""

from __future__ import annotations

import numpy as np
import pytest

import masks

MEASURED_256 = {
    "center_box": (0.25, 0.0),
    "box_deepfill_v1": (0.1919, 0.0238),
    "box_glcic": (0.1921, 0.0232),
    "box_mmagic": (0.2128, 0.0155),
    "box_gmcnn": (0.25, 0.0),
    "box_edgeconnect": (0.25, 0.0),
    "half_edgeconnect": (0.5, 0.0),
    "strokes_deepfill_v2": (0.1534, 0.0824),
    "mask_deepfill_v2_train": (0.3098, 0.0662),
    "strokes_paper": (0.5918, 0.0847),
    "irregular_mmagic": (0.3448, 0.0995),
    "lama_thin_256": (0.2850, 0.1285),
    "lama_medium_256": (0.2364, 0.1309),
    "lama_thick_256": (0.2603, 0.1294),
    "lama_thin_512": (0.3196, 0.1159),
    "lama_medium_512": (0.3101, 0.1265),
    "lama_thick_512": (0.3117, 0.1318),
    "lama_mixed": (0.2364, 0.1309),
    "irregular_bucket": (0.1559, 0.0265),  # default bucket "0.1-0.2"
    "noise_blob": (0.2117, 0.0106),
}

CLOSED_FORM = {
    "box_deepfill_v1": 112**2 / 256**2,
    "box_glcic": 112**2 / 256**2,
    "box_mmagic": 118**2 / 256**2,
}


def test_every_generated_family_is_measured():
    assert set(MEASURED_256) == set(masks.FAMILIES) - {"file"}


@pytest.mark.parametrize("family", sorted(MEASURED_256))
def test_hole_ratio_statistics_at_256(family):
    mean, sd = MEASURED_256[family]
    n = 100
    ratios = np.array(
        [masks.hole_ratio(masks.mask_for_index(family, 0, i, 256, 256)) for i in range(n)]
    )
    if sd == 0:
        assert np.all(ratios == mean)
        return
    assert abs(ratios.mean() - mean) < 4 * sd / np.sqrt(n)
    assert abs(ratios.std() - sd) < 0.35 * sd


@pytest.mark.parametrize("family", sorted(CLOSED_FORM))
def test_box_means_match_closed_form(family):
    mean, sd = MEASURED_256[family]
    assert abs(mean - CLOSED_FORM[family]) < 4 * sd / np.sqrt(2000)
