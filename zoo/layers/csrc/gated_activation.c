/* Fused gated activation of DeepFill v2 (float32, CPU): out = act(feature) * sigmoid(gate).
 *
 * Part of inpaintbench (zoo/layers/native.py compiles and loads this file; see its docstring).
 * Plain C99, no Python or PyTorch headers.  Built with -O3 -fno-math-errno -fno-trapping-math
 * (and -march=native where the compiler takes it) so that the inner loops vectorise: exp is
 * written out below instead of calling libm, whose expf the compiler does not vectorise.
 */
#include <stdint.h>
#include <string.h>

enum { ACT_ELU = 0, ACT_RELU = 1, ACT_IDENTITY = 2 };

/* exp(x) in float32, within 1.5 ulp of the exact value for x in [-87.3, 88.3] (checked in
 * tests/layers/test_native.py): x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two parts for
 * an exact reduction), exp(r) by the Cephes expf minimax polynomial, 2^n by building the
 * exponent bits.  x is clamped to [-87.33654, 88.37626] first, so n stays in [-126, 127] and
 * the result is a normal float: exp(-inf) gives 1.2e-38 instead of 0 and exp(+inf) 2.4e38
 * instead of inf; a NaN gives NaN (through the polynomial, whatever its n).  No branches, so
 * loops calling it vectorise. */
static inline float exp_f32(float x) {
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.37626f ? 88.37626f : x;
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f); /* round(x / ln2) */
    float r = x - n * 0.693359375f;                               /* ln2, high part */
    r = r - n * -2.12194440e-4f;                                  /* ln2, low part */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* For b < blocks and i < len, with p = b * y_stride + i:
 *     out[b * out_stride + i] = act(y[p]) * sigmoid(y[p + gate_offset])
 * act: ACT_ELU (alpha * (exp(x) - 1) for x <= 0, x above), ACT_RELU or ACT_IDENTITY.  A block
 * is a batch element of a dense NCHW tensor (len = C * H * W) or a pixel of a channels_last
 * one (len = C) (zoo/layers/native.py); y and out must not overlap. */
void gated_activation_f32(const float *restrict y, float *restrict out, int64_t blocks,
                          int64_t len, int64_t y_stride, int64_t gate_offset,
                          int64_t out_stride, int32_t act, float alpha) {
    for (int64_t b = 0; b < blocks; ++b) {
        const float *restrict f = y + b * y_stride;
        const float *restrict g = f + gate_offset;
        float *restrict o = out + b * out_stride;
        if (act == ACT_ELU) {
            for (int64_t i = 0; i < len; ++i) {
                float x = f[i];
                float e = x > 0.0f ? x : alpha * (exp_f32(x) - 1.0f);
                o[i] = e / (1.0f + exp_f32(-g[i]));
            }
        } else if (act == ACT_RELU) {
            for (int64_t i = 0; i < len; ++i) {
                float x = f[i] < 0.0f ? 0.0f : f[i]; /* a NaN stays NaN, as torch.relu */
                o[i] = x / (1.0f + exp_f32(-g[i]));
            }
        } else {
            for (int64_t i = 0; i < len; ++i) o[i] = f[i] / (1.0f + exp_f32(-g[i]));
        }
    }
}

/* exp_f32 over n values (for the accuracy test). */
void exp_f32_array(const float *restrict x, float *restrict out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = exp_f32(x[i]);
}
