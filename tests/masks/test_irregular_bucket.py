"""NVIDIA stand-in: every mask lies in its requested PartialConv bucket, the border constraint
keeps a clear band, ratios spread over the bucket, and impossible requests fail clearly."""

from __future__ import annotations

import numpy as np
import pytest

import masks


@pytest.mark.parametrize("bucket", list(masks.BUCKETS))
@pytest.mark.parametrize("border", [False, True])
def test_ratio_in_requested_bucket(bucket, border):
    low, high = masks.BUCKETS[bucket]
    ratios = []
    for i in range(12):
        mask = masks.mask_for_index(
            "irregular_bucket", 0, i, 128, 160, bucket=bucket, border=border
        )
        ratio = masks.hole_ratio(mask)
        assert low < ratio <= high and masks.bucket_of(ratio) == bucket
        ratios.append(ratio)
        if border:  # round(50 * 128 / 512) = 12 px band without holes
            assert mask[:12].sum() == mask[-12:].sum() == 0
            assert mask[:, :12].sum() == mask[:, -12:].sum() == 0
    assert max(ratios) - min(ratios) > 0.3 * (high - low)  # spread over the bucket


def test_bucket_by_index_and_custom_margin():
    a = masks.mask_for_index("irregular_bucket", 3, 0, 96, 96, bucket=2)
    b = masks.mask_for_index("irregular_bucket", 3, 0, 96, 96, bucket="0.2-0.3")
    assert np.array_equal(a, b)
    m = masks.mask_for_index("irregular_bucket", 3, 1, 96, 96, bucket=0, border=True, margin=30)
    assert m[:30].sum() == m[-30:].sum() == m[:, :30].sum() == m[:, -30:].sum() == 0
    assert m.sum() > 0


def test_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown bucket '0.6-0.7'.*0.01-0.1"):
        masks.make_mask("irregular_bucket", 64, 64, rng, bucket="0.6-0.7")
    with pytest.raises(ValueError, match="unreachable"):
        masks.make_mask("irregular_bucket", 64, 64, rng, bucket="0.5-0.6", border=True, margin=12)
    # strokes far too wide for the first bucket: every try overshoots 10 %
    with pytest.raises(ValueError, match="after 4 tries"):
        masks.make_mask(
            "irregular_bucket",
            128,
            128,
            rng,
            bucket=0,
            min_width=400,
            max_width=400,
            min_length=300,
            max_length=300,
            max_tries=4,
        )
