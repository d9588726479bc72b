"""Seeded hole masks of the classic inpainting papers, and frozen evaluation sets.

Contract: a family is ``fn(height, width, rng, **params) -> np.ndarray`` of shape (H, W),
dtype ``uint8``, values in {0, 1}, **1 = hole**; all randomness comes from the
``np.random.Generator`` argument (never the global ``np.random`` or ``random``).  Every family
is registered in ``FAMILIES``; ``make_mask(family, H, W, rng, **params)`` validates names and
parameters (``ValueError`` listing the valid ones).  ``mask_for_index(family, seed, index, H,
W, **params)`` is the mask of test image ``index``: ``np.random.default_rng([seed, index])``.
``to_tensor`` gives the float32 N x 1 x H x W tensor of the zoo's tensor contract.
``MaskSpec.from_config({"family": ..., "params": {...}})`` maps a config entry to a family.
``hole_ratio``, ``BUCKETS`` (the six PartialConv buckets, (low, high]) and ``bucket_of``.
Frozen sets: ``python -m masks.freeze --help`` (or ``write_frozen``), ``load_frozen(dir)``.

Dependencies: numpy, Pillow, OpenCV, torch (for ``to_tensor``) only.  Protocol and pitfalls:
``/work/shared/reference/protocol.md`` sections 2 and 3.

Family table (name: paper | official code | parameters, defaults).  Lengths marked "at 256"
are scaled per axis as round(L * side / 256) by default; the other families use pixels as given.

center_box: Context Encoder / Shift-Net / GMCNN centre hole
    | pathak22/context-encoder train.lua; Shift-Net_pytorch; inpainting_gmcnn generate_rect_mask
    | size = (H//2, W//2) (CE: 64 of 128; Shift-Net: 120 of 256), top-left ((H-h)//2, (W-w)//2)
box_deepfill_v1: DeepFill v1 (Yu et al., CVPR 2018)
    | JiahuiYu/generative_inpainting v1.0.0 inpaint_ops.py random_bbox + bbox2mask
    | box_size 128, max_delta 32 (at 256), margin 0, fixed False: even sides 96..128
box_glcic: GLCIC (Iizuka et al., SIGGRAPH 2017) | paper only (no training code)
    | min_size 96, max_size 128 (at 256), inclusive, uniform position
box_mmagic: GL / DeepFill v1 configs of mmagic | open-mmlab/mmagic trans_utils.py random_bbox
    | max_bbox_shape 128, max_bbox_delta 40, min_margin 20 (at 256): sides 108..128
box_gmcnn: GMCNN (Wang et al., NeurIPS 2018) | generate_rect_mask(rand_mask=True)
    | size (H//2, W//2), margin 8 (at 256): offset in [8, 120)
box_edgeconnect, half_edgeconnect: EdgeConnect MASK=1 / 2 | knazeri/edge-connect dataset.py
    | (H//2) x (W//2) block at a uniform position / left or right half
strokes_deepfill_v2: DeepFill v2 (Yu et al., ICCV 2019)
    | generative_inpainting master inpaint_ops.py brush_stroke_mask (PIL ImageDraw)
    | max_loops 4 (1..3 strokes), vertices [4, 12), mean_angle 2pi/5, angle_range 2pi/15,
      width int(U(12, 40)), step N(R, R//2) with R = sqrt(H^2 + W^2) / 8
mask_deepfill_v2_train: DeepFill v2 training mask | inpaint_model.py build_graph_with_losses
    | box_deepfill_v1 OR strokes_deepfill_v2 (parameters of both)
strokes_paper: DeepFill v2 paper Algorithm 1 | shepnerd/inpainting_gmcnn generate_stroke_mask
    | parts 10, max_vertex 20, max_length 100, max_brush_width 24, max_angle 360
      (GMCNN PyTorch test: 8, 20, 100, 20, 360; GMCNN TF training: 8, 16, 80, 20, 360)
irregular_mmagic: DeepFill v2 / PConv configs of mmagic | trans_utils.py get_irregular_mask
    | num_vertices (4, 10), max_angle 6, length_range (20, 128), brush_width (10, 45),
      area_ratio_range (0.15, 0.65), max_tries 1000
lama_thin_256, lama_medium_256, lama_thick_256, lama_thin_512, lama_medium_512, lama_thick_512:
    LaMa (Suvorov et al., WACV 2022) | advimman/lama masks.py MixedMaskGenerator +
    configs/data_gen/random_*.yaml + bin/gen_mask_dataset.py
    | the YAML parameters (lama.LAMA_PRESETS); one generator per mask, a box with probability
      0.3 / 1.3 (medium, thick); min_times..max_times + 1 strokes and box sides up to
      bbox_max_size inclusive (official "+1" quirks); masks above max_tamper_area 0.5 redrawn
lama_mixed: LaMa with any parameters | as above | defaults = random_medium_256
irregular_bucket: stand-in for the NVIDIA PartialConv test set | none (documented generator)
    | bucket "0.1-0.2", border False, margin 50 (at 512), widths 10..40 and lengths 20..100
      (at 512), max_segments 5, max_tries 100
noise_blob: Context Encoder random region; Shift-Net random
    | context-encoder train_random.lua; Shift-Net_pytorch util.py create_gMask
    | res 0.06, density 0.25, interpolation "bicubic" (Shift-Net "bilinear"), hole ratio
      strictly in (0.2, 0.3), max_tries 1000, accept_last False
file: NVIDIA set, LaMa/QD-IMD sets, any folder or .flist | edge-connect dataset.py MASK=3/6
    | path, index (file index % count; None = random), threshold 0.5, invert False,
      polarity_warning 0.9

Measured mean (sd) hole ratio at 256², 2,000 masks each (``tests/masks/test_statistics.py``):
center_box, box_gmcnn, box_edgeconnect 0.25; half_edgeconnect 0.5; box_deepfill_v1 0.192
(0.024); box_glcic 0.192 (0.023); box_mmagic 0.213 (0.016); strokes_deepfill_v2 0.153 (0.082);
mask_deepfill_v2_train 0.310 (0.066); strokes_paper 0.592 (0.085); irregular_mmagic 0.345
(0.100); lama_thin_256 0.285 (0.129); lama_medium_256 0.236 (0.131); lama_thick_256 0.260
(0.129); irregular_bucket "0.1-0.2" 0.156 (0.027); noise_blob 0.212 (0.011).  At 512²:
lama_thin_512 0.288, lama_medium_512 0.271, lama_thick_512 0.258, strokes_deepfill_v2 0.091.

Each family's docstring cites the code it follows and lists the quirks kept or dropped.
"""

from __future__ import annotations

from ._common import BUCKETS, bucket_of, hole_ratio
from ._registry import FAMILIES, MaskSpec, family_params, make_mask, mask_for_index, to_tensor
from .frozen import load_frozen, read_manifest, write_frozen

__all__ = [
    "FAMILIES",
    "BUCKETS",
    "MaskSpec",
    "bucket_of",
    "family_params",
    "hole_ratio",
    "load_frozen",
    "make_mask",
    "mask_for_index",
    "read_manifest",
    "to_tensor",
    "write_frozen",
]
