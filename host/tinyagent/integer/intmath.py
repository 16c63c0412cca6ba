"""The integer helpers of docs/integer-contract.md, in numpy. firmware/ta_intmath.h mirrors each one.

Every function takes and returns integer arrays (or Python ints); none touches a float. The host-side
constructors at the bottom (quantize_multiplier, exp_table, gelu_table) use floats once, at export.
"""
from __future__ import annotations

import math

import numpy as np

I8_MIN, I8_MAX = -128, 127
I16_MIN, I16_MAX = -32768, 32767
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

EXP_Q = 15  # softmax exp table and probabilities are Q15: 32768 == 1.0
EXP_ENTRIES = 256  # the exp table covers 0 .. 255 steps below the row maximum


def _check_int(a: np.ndarray) -> None:
    assert np.issubdtype(a.dtype, np.integer), f"integer contract violated: {a.dtype}"


def sat(x: np.ndarray, lo: int, hi: int, dtype) -> np.ndarray:
    _check_int(x)
    return np.clip(x, lo, hi).astype(dtype)


def mul_shift(x: np.ndarray, m: np.ndarray | int, sh: np.ndarray | int) -> np.ndarray:
    """round(x * m / 2^sh), rounding half up: (x*m + 2^(sh-1)) >> sh in int64.

    Contract: x fits int32, 0 <= m < 2^31, 1 <= sh <= 62. Result int64 (callers saturate).
    """
    x = np.asarray(x)
    _check_int(x)
    m = np.asarray(m, dtype=np.int64)
    sh = np.asarray(sh, dtype=np.int64)
    return (x.astype(np.int64) * m + (np.int64(1) << (sh - 1))) >> sh


def isqrt64(n: int) -> int:
    """floor(sqrt(n)) for 0 <= n < 2^64."""
    return math.isqrt(int(n))


def rmsnorm(x: np.ndarray, kd: int) -> np.ndarray:
    """int16 rows (..., d) -> int8 rows: x * Kd / sqrt(sum x^2), where Kd = sqrt(d) / s_out in Q16.

    r = isqrt64(sum x^2); r == 0 gives zeros; M = (kd << 15) // r; y = sat8((x*M + 2^30) >> 31).
    """
    _check_int(x)
    x64 = x.astype(np.int64)
    ss = (x64 * x64).sum(axis=-1)
    flat_ss = np.atleast_1d(ss).reshape(-1)
    r = np.array([isqrt64(v) for v in flat_ss], dtype=np.int64).reshape(np.shape(ss))
    m = np.where(r > 0, (np.int64(kd) << 15) // np.maximum(r, 1), 0)
    y = (x64 * m[..., None] + (np.int64(1) << 30)) >> 31
    return sat(y, I8_MIN, I8_MAX, np.int8)


def matvec(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """int8 weights (out, in) @ int8 x (..., in) -> int32 accumulators (..., out)."""
    _check_int(w)
    _check_int(x)
    return (x.astype(np.int32) @ w.astype(np.int32).T).astype(np.int32)


def requant_i8(acc: np.ndarray, m: np.ndarray, sh: np.ndarray) -> np.ndarray:
    return sat(mul_shift(acc, m, sh), I8_MIN, I8_MAX, np.int8)


def residual_add(x: np.ndarray, acc: np.ndarray, m: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """x (int16) + sat16(requantised acc), saturated to int16."""
    y = sat(mul_shift(acc, m, sh), I16_MIN, I16_MAX, np.int16)
    return sat(x.astype(np.int32) + y.astype(np.int32), I16_MIN, I16_MAX, np.int16)


def softmax_q15(scores: np.ndarray, m: int, sh: int, exp_table: np.ndarray) -> np.ndarray:
    """int32 scores (..., T) -> Q15 probabilities (..., T) as int32 (0..32768).

    z = min(mul_shift(max - s, m, sh), 255); e = EXP[z]; inv = 2^30 // sum(e);
    p = (e * inv + 2^14) >> 15. The row maximum has e = 32768, so sum >= 2^15 and e*inv <= 2^30.
    """
    _check_int(scores)
    s = scores.astype(np.int64)
    diff = s.max(axis=-1, keepdims=True) - s
    z = np.minimum(mul_shift(diff, m, sh), EXP_ENTRIES - 1)
    e = exp_table.astype(np.int64)[z]
    inv = (np.int64(1) << 30) // e.sum(axis=-1, keepdims=True)
    return ((e * inv + (1 << 14)) >> 15).astype(np.int32)


def fnv1a32_i32(values: np.ndarray) -> int:
    """FNV-1a over the little-endian bytes of int32 values: the device's logit checksum."""
    h = 0x811C9DC5
    for b in np.ascontiguousarray(values, dtype="<i4").tobytes():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


# ---------------------------------------------------------------------------------------------------
# Host-side constructors (floats allowed: they run once, at export)
# ---------------------------------------------------------------------------------------------------

def quantize_multiplier(real: float) -> tuple[int, int]:
    """real >= 0 -> (m, sh) with real ~= m / 2^sh, 2^30 <= m < 2^31 and 1 <= sh <= 62."""
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"multiplier {real} must be finite and >= 0")
    if real == 0:
        return 0, 1
    mant, exp = math.frexp(real)  # real = mant * 2^exp, 0.5 <= mant < 1
    m = int(round(mant * (1 << 31)))
    if m == 1 << 31:
        m //= 2
        exp += 1
    sh = 31 - exp
    if sh > 62:  # too small to matter: denormalise into the allowed shift range
        m >>= sh - 62
        sh = 62
    if sh < 1:
        raise ValueError(f"multiplier {real} is too large (must be < 2^30)")
    return m, sh


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals).reshape(-1)]
    return (np.array([p[0] for p in pairs], dtype=np.int32),
            np.array([p[1] for p in pairs], dtype=np.int8))


def exp_table(steps_per_nat: int) -> np.ndarray:
    i = np.arange(EXP_ENTRIES, dtype=np.float64)
    return np.floor((1 << EXP_Q) * np.exp(-i / steps_per_nat) + 0.5).astype(np.uint16)


def gelu_table(s_in: float, s_out: float) -> np.ndarray:
    """int8 -> int8: entry i is sat8(round_half_up(gelu((i - 128) * s_in) / s_out))."""
    h = (np.arange(256, dtype=np.float64) - 128) * s_in
    g = 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))
    return np.clip(np.floor(g / s_out + 0.5), I8_MIN, I8_MAX).astype(np.int8)
