"""ta_intmath.h and the kernels (ta_kernels.c) against their numpy twins in intmath.py.

A small C program (firmware/test/intmath_main.c) answers one operation per line; hypothesis draws
the inputs, within each helper's written contract, with the edges (saturation, ties, zero rows,
odd sizes that leave kernel tails) drawn deliberately.
"""
from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinyagent.codegen.generate import KERNELS, ROW_GROUP, weight_layout
from tinyagent.integer import intmath as im

from c_harness import CFLAGS, FIRMWARE, build_program

I32 = st.integers(-(2**31), 2**31 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
MULT = st.integers(0, 2**31 - 1)  # multipliers: 0 <= m < 2^31
SHIFT = st.integers(1, 62)
BATCH = 40  # cases per C round trip
FAST = settings(max_examples=30, deadline=None)


class Calc:
    def __init__(self, exe):
        self.proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, *args) -> str:
        self.proc.stdin.write(" ".join(str(a) for a in args) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"intmath_main died on {args[:4]}"
        return line.strip()

    def ints(self, *args) -> list[int]:
        return [int(v) for v in self.ask(*args).split()]


@pytest.fixture(scope="module", params=["native", "split", "m0"])
def calc(request, tmp_path_factory):
    """The helpers as this host builds them, with ta_mulhs in the four-multiply form the Cortex-M0+
    builds (TA_MULHS_SPLIT), and with that form and ta_kernels_m0.c's C loops (its prepared input
    order and weight layout; the assembly runs on rp2040js, tests/test_rp2040.py): all must be the
    reference's."""
    flags = CFLAGS + (("-DTA_MULHS_SPLIT",) if request.param != "native" else ())
    kernels = "m0" if request.param == "m0" else "portable"
    exe = build_program([FIRMWARE / "test" / "intmath_main.c", FIRMWARE / KERNELS[kernels]], [FIRMWARE],
                        tmp_path_factory.mktemp("intmath") / "intmath", flags=flags)
    c = Calc(exe)
    c.row_group = ROW_GROUP[kernels]
    yield c
    c.proc.stdin.close()
    assert c.proc.wait(timeout=10) == 0


@FAST
@given(st.lists(st.tuples(I32, MULT, SHIFT), min_size=1, max_size=BATCH))
def test_mul_shift_requant(calc, cases):
    for x, m, sh in cases + [(-(2**31), 2**31 - 1, 1), (2**31 - 1, 2**31 - 1, 62), (-1, 1, 1)]:
        want = int(im.mul_shift(np.int32(x), m, sh))
        assert calc.ints("mul_shift", x, m, sh) == [want], (x, m, sh)
        assert calc.ints("requant", x, m, sh) == [int(im.requant_i8(np.int32(x), m, sh))], (x, m, sh)


EDGES32 = [-(2**31), -(2**31) + 1, -65536, -65535, -32769, -32768, -1, 0, 1, 32767, 32768, 65535, 65536,
           2**31 - 1]


@FAST
@given(st.lists(st.tuples(I32, I32), min_size=1, max_size=BATCH))
def test_mulhs_is_the_high_word(calc, cases):
    for x, m in cases + [(a, b) for a in EDGES32 for b in EDGES32]:
        assert calc.ints("mulhs", x, m) == [(x * m) >> 32], (x, m)


@FAST
@given(st.lists(st.tuples(I32, MULT, SHIFT), min_size=1, max_size=BATCH),
       st.sampled_from([(-128, 127), (-32768, 32767), (-(2**31), 2**31 - 1), (0, 255)]))
def test_mul_shift_clamp_without_64_bits(calc, cases, bounds):
    """Every shift 1..62 in 32-bit arithmetic: the clamped mul_shift exactly, at the int32 edges of
    the product, at each bound and one past it, and at rounding ties."""
    lo, hi = bounds
    edges = [(x, m, sh) for x in EDGES32 for m in (0, 1, 2**30, 2**31 - 1) for sh in (1, 2, 16, 31, 32, 33, 62)]
    for sh in (1, 7, 31, 32):  # a product of exactly (bound + 1/2) * 2^sh (a tie), and one below it
        for b in (lo, hi):
            tie = (2 * b + 1) << (sh - 1)
            edges += [(x, 1, sh) for x in (tie, tie - 1) if -(2**31) <= x < 2**31]
    for x, m, sh in cases + edges:
        want = min(hi, max(lo, int(im.mul_shift(np.int32(x), m, sh))))
        assert calc.ints("clamp", x, m, sh, lo, hi) == [want], (x, m, sh, lo, hi)


@FAST
@given(st.lists(st.tuples(st.integers(-(2**15), 2**15 - 1), I32, MULT, SHIFT), min_size=1, max_size=BATCH))
def test_residual_add(calc, cases):
    for x, acc, m, sh in cases:
        want = int(im.residual_add(np.int16(x), np.int32(acc), m, sh))
        assert calc.ints("residual", x, acc, m, sh) == [want], (x, acc, m, sh)


@FAST
@given(st.lists(I64, min_size=1, max_size=BATCH), st.integers(0, 63))
def test_saturate_and_shift(calc, values, sh):
    for v in values + [2**31, -(2**31) - 1, 128, -129, 32768, -32769]:
        assert calc.ints("sat8", v) == [int(im.sat(np.int64(v), -128, 127, np.int8))]
        assert calc.ints("sat16", v) == [int(im.sat(np.int64(v), -(2**15), 2**15 - 1, np.int16))]
        assert calc.ints("sat32", v) == [int(im.sat(np.int64(v), -(2**31), 2**31 - 1, np.int32))]
        assert calc.ints("asr", v, sh) == [v >> sh]  # Python's >> is floor, as the contract's


@FAST
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=BATCH))
def test_isqrt64(calc, values):
    edges = [0, 1, 2, 3, 4, 2**64 - 1, (2**32 - 1) ** 2, (2**32 - 1) ** 2 - 1, 2**62, 2**62 - 1]
    for n in values + edges + [v * v for v in values if v < 2**32]:
        assert calc.ints("isqrt", n) == [im.isqrt64(n)], n


@FAST
@given(st.integers(1, 130).flatmap(lambda d: st.tuples(
    st.lists(st.integers(-(2**15), 2**15 - 1), min_size=d, max_size=d),
    st.integers(0, 2**31 - 1),
    st.sampled_from([0, 1, 2**15 - 1, 7]))))
def test_rmsnorm(calc, case):
    x, k, small = case
    rows = [x, [0] * len(x), [small] + [0] * (len(x) - 1), [-(2**15)] * len(x)]
    for row in rows:
        want = im.rmsnorm(np.array(row, dtype=np.int16), k).tolist()
        assert calc.ints("rmsnorm", k, len(row), *row) == want, (row, k)


@FAST
@given(st.sampled_from([4, 8, 16, 32]),
       st.integers(1, 70).flatmap(lambda n: st.lists(st.integers(-(2**30) + 1, 2**30 - 1), min_size=n, max_size=n)),
       st.integers(0, 2**31 - 1), st.integers(1, 62))
def test_softmax_q15(calc, steps, scores, m, sh):
    table = im.exp_table(steps)
    assert calc.ask("exp", *table.tolist()) == "ok"
    near = [s % 64 for s in scores]  # scores within a few steps of each other: many distinct e_j
    for row in (scores, near, [scores[0]] * len(scores)):
        want = im.softmax_q15(np.array(row, dtype=np.int32), m, sh, table).tolist()
        assert calc.ints("softmax", m, sh, len(row), *row) == want, (row, m, sh)


@FAST
@given(st.sampled_from([4, 8, 16, 32]),
       st.integers(1, 40).flatmap(lambda n: st.lists(st.integers(-(2**30) + 1, 2**30 - 1), min_size=n, max_size=n)),
       st.integers(0, 2**31 - 1), st.integers(1, 62), st.integers(0, 39))
def test_softmax_q15_says_when_one_position_holds_all_the_weight(calc, steps, scores, m, sh, at):
    """Its return value (the engine then skips the search for a 32768 that is not there) is 1 exactly
    when a probability is 32768, and then every other one is 0. Rows with one score far above the rest
    (z capped at 255, whose exp entry is 0 at few steps) make it happen."""
    table = im.exp_table(steps)
    assert calc.ask("exp", *table.tolist()) == "ok"
    far = [2**30 - 1 if i == at % len(scores) else -(2**30) + 1 for i in range(len(scores))]
    for row in (scores, far, [scores[0]] * len(scores)):
        whole, *p = calc.ints("softmax_whole", m, sh, len(row), *row)
        assert p == im.softmax_q15(np.array(row, dtype=np.int32), m, sh, table).tolist()
        assert whole == int(32768 in p), (row, m, sh, p)
        if whole:
            assert sorted(p)[-2:] == ([0, 32768] if len(p) > 1 else [32768])


@pytest.mark.parametrize("steps", [4, 8, 16, 32])
def test_softmax_q15_reads_every_exp_entry(calc, steps):
    """Each table entry, the cap at the last one and the index rounding, every time: a row [s, s - d]
    whose one other score is d below the maximum, with the multiplier set so that z is exactly d
    (m = 2^30, sh = 30) or d - 1/2 rounded up (sh = 31, 2d - 1), for d = 0..300, against the contract
    written out with math.exp (EXP[z] = round(32768 * e^(-z/steps)), z capped at 255)."""
    table = im.exp_table(steps)
    assert calc.ask("exp", *table.tolist()) == "ok"
    for d in range(301):
        e = math.floor(32768 * math.exp(-min(d, im.EXP_ENTRIES - 1) / steps) + 0.5)
        inv = (1 << 30) // (32768 + e)
        want = [(32768 * inv + (1 << 14)) >> 15, (e * inv + (1 << 14)) >> 15]
        for m, sh, gap in ((2**30, 30, d), (2**30, 31, max(2 * d - 1, 0))):
            row = [1000, 1000 - gap]
            assert im.softmax_q15(np.array(row, dtype=np.int32), m, sh, table).tolist() == want, (row, sh)
            assert calc.ints("softmax", m, sh, 2, *row) == want, (row, m, sh, steps)
            assert calc.ints("softmax", m, sh, 2, *row[::-1]) == want[::-1], (row, m, sh, steps)


@FAST
@given(st.lists(st.integers(-3, 3) | I32, min_size=1, max_size=80))
def test_argmax_and_fnv1a(calc, values):
    arr = np.array(values, dtype=np.int32)
    assert calc.ints("argmax", len(values), *values) == [int(np.argmax(arr))]  # lowest index wins a tie
    assert calc.ask("fnv", len(values), *values) == f"{im.fnv1a32_i32(arr):08x}"


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 13), st.integers(1, 70), st.integers(0, 5), st.data())
def test_matvec_int8_and_q15(calc, rows, cols, pad, data):
    stride = cols + pad  # a KV-cache slice is a strided matrix
    w = data.draw(st.lists(st.integers(-128, 127), min_size=rows * stride, max_size=rows * stride))
    x = data.draw(st.lists(st.integers(-128, 127), min_size=cols, max_size=cols))
    p = data.draw(st.lists(st.integers(0, 32767), min_size=cols, max_size=cols))
    W = np.array(w, dtype=np.int64).reshape(rows, stride)[:, :cols]
    assert calc.ints("matvec", rows, cols, stride, *w, *x) == (W @ np.array(x)).tolist()
    assert calc.ints("matvec_q15", rows, cols, stride, *w, *p) == (W @ np.array(p)).tolist()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 11), st.sampled_from([1, 3, 4, 8, 12, 20, 24]), st.data())
def test_model_weights_in_the_kernels_layout(calc, rows, cols, data):
    """ta_matvec_w and ta_weight_row read weight_layout's order for the kernel file (groups of three
    rows for m0, with groups of one and two at the end and row-major at other column counts)."""
    w = np.array(data.draw(st.lists(st.integers(-128, 127), min_size=rows * cols, max_size=rows * cols)),
                 dtype=np.int8).reshape(rows, cols)
    x = data.draw(st.lists(st.integers(-128, 127), min_size=cols, max_size=cols))
    got = calc.ints("linear", rows, cols, *weight_layout(w, calc.row_group).reshape(-1).tolist(), *x)
    assert got[:rows] == (w.astype(np.int64) @ np.array(x)).tolist()
    assert got[rows:] == w.reshape(-1).tolist()


def test_matvec_extremes(calc):
    """Every product at its largest, over the longest rows the engine uses."""
    rows, cols = 5, 1024
    for wv, xv in ((-128, -128), (127, -128), (-128, 127)):
        want = [wv * xv * cols] * rows
        assert calc.ints("matvec", rows, cols, cols, *([wv] * rows * cols), *([xv] * cols)) == want
    assert calc.ints("matvec_q15", 1, 2, 2, -128, -128, 32767, 32767) == [-128 * 32767 * 2]
    assert math.isqrt(2**64 - 1) == 2**32 - 1  # the isqrt edge above relies on it


def test_requant_at_rounding_ties_and_saturation_edges(calc):
    """Every shift, with x*m placed on, just below and just above each half-way point from -130.5 to
    130.5 (where round-half-up and saturation decide), against the Python contract."""
    cases = []
    for sh in range(1, 63):
        for m in (2**30, 2**31 - 1, 1_518_500_250):
            for k in range(-131, 131, 7):
                centre = (2 * k + 1) * (1 << (sh - 1)) // m  # x with x*m near (k + 1/2) * 2^sh
                for x in (centre - 1, centre, centre + 1):
                    if -(2**31) <= x < 2**31:
                        cases.append((x, m, sh))
    for x, m, sh in cases:
        assert calc.ints("requant", x, m, sh) == [int(im.requant_i8(np.int32(x), m, sh))], (x, m, sh)
        assert calc.ints("residual", 100, x, m, sh) == [int(im.residual_add(np.int16(100), np.int32(x), m, sh))]
