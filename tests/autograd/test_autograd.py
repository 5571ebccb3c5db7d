"""The autograd engine: finite-difference gradient checks under fp64, bit-exact
agreement with a plain NumPy float32 forward/backward under fp32, and the precision
rules of the low-precision policies."""

from __future__ import annotations

import numpy as np
import pytest

import lowprec
from lowprec import autograd as ag
from lowprec.amp.policy import as_policy
from lowprec.autograd import Tensor
from lowprec.nn import MLP
from lowprec.rounding._rne import round_rne, round_rne_into

FP64 = as_policy("fp64")
FP64_ALL = FP64.replace(
    name="fp64_all", fp32_ops={"softmax", "cross_entropy", "layer_norm", "reduction"}
)


def bits(x):
    x = np.asarray(x)
    return x.view(np.uint32 if x.dtype == np.float32 else np.uint64)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(bits(a), bits(b))


# -- rounding fast paths ---------------------------------------------------------


def _probes(fmt):
    """Every finite value of fmt (both signs), its midpoints, and one float32 step
    either side of each value and midpoint; plus specials and random floats."""
    codes = np.arange(1 << fmt.bits, dtype=np.int64)
    vals = np.asarray(lowprec.decode(codes, fmt), dtype=np.float64)
    vals = np.unique(vals[np.isfinite(vals)])
    mids = (vals[:-1] + vals[1:]) / 2  # exact in float64
    centre = np.concatenate([vals, mids, [fmt.max + (fmt.max - vals[-2]) / 2]])
    centre = centre.astype(np.float32)  # exact: fp16/bf16 midpoints fit float32
    up = np.nextafter(centre, np.float32(np.inf))
    down = np.nextafter(centre, np.float32(-np.inf))
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(10_000).astype(np.float32) * np.float32(1e3)
    tiny = rng.standard_normal(10_000).astype(np.float32) * np.float32(1e-6)
    special = np.array(
        [0.0, -0.0, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45], dtype=np.float32
    )
    return np.concatenate([centre, up, down, noise, tiny, special])


KERNEL_FORMATS = [
    lowprec.fp16,
    lowprec.bf16,
    lowprec.tf32,
    lowprec.fp8_e5m2,
    lowprec.fp8_e4m3,
]


@pytest.mark.parametrize("fmt", KERNEL_FORMATS, ids=lambda f: f.name)
def test_round_rne_fast_paths_equal_lowprec_round(fmt):
    x = _probes(fmt)
    same_bits(round_rne(x, fmt), lowprec.round(x, fmt))
    nan = np.array([np.nan, -np.nan], dtype=np.float32)
    nan_payload = np.array([0x7F800001, 0xFFFFFFFF], dtype=np.uint32).view(np.float32)
    assert np.isnan(round_rne(np.concatenate([nan, nan_payload]), fmt)).all()


@pytest.mark.parametrize("fmt", KERNEL_FORMATS, ids=lambda f: f.name)
def test_round_rne_on_a_sweep_of_all_float32_bit_patterns(fmt):
    # every 4093rd bit pattern (a prime stride: all low-bit residues occur), so
    # every binade, the target's subnormals and float32's own, inf and NaN
    codes = np.arange(0, 1 << 32, 4093, dtype=np.uint64).astype(np.uint32)
    x = codes.view(np.float32)
    got, want = round_rne(x, fmt), np.asarray(lowprec.round(x, fmt))
    nan = np.isnan(x)
    assert np.isnan(got[nan]).all()
    same_bits(got[~nan], want[~nan])


@pytest.mark.parametrize("fmt", KERNEL_FORMATS, ids=lambda f: f.name)
def test_round_rne_from_float64_equals_lowprec_round(fmt):
    x32 = _probes(fmt)
    x = x32.astype(np.float64)
    rng = np.random.default_rng(2)
    # float64 values between float32 neighbours, where a plain float32 cast would
    # round first: both sides of every midpoint by less than a float32 step
    x = x[np.isfinite(x)]
    nudge = rng.uniform(-1, 1, x.size) * np.abs(x) * 2.0**-30
    extra = np.array(
        [
            1e300,
            -1e300,
            1e-300,
            -1e-300,
            3.3947e38,
            1 + 2**-11 + 2**-40,
            np.inf,
            -np.inf,
        ]
    )
    x = np.concatenate([x, x + nudge, extra])
    same_bits(round_rne(x, fmt), lowprec.round(x, fmt))


def same_bits_or_nan(a, b):
    a, b = np.asarray(a), np.asarray(b)
    nan = np.isnan(a)
    np.testing.assert_array_equal(nan, np.isnan(b))
    same_bits(a[~nan], b[~nan])


@pytest.mark.parametrize("fmt", KERNEL_FORMATS, ids=lambda f: f.name)
def test_round_rne_of_a_sum_is_correctly_rounded(fmt):
    rng = np.random.default_rng(3)
    codes = np.arange(1 << fmt.bits, dtype=np.int64)
    vals = np.asarray(lowprec.decode(codes, fmt), dtype=F)
    vals = vals[~np.isnan(vals)]
    # operands of the format: lowprec.add is the exact sum rounded once
    a, b = rng.choice(vals, 20_000), rng.choice(vals, 20_000)
    same_bits_or_nan(round_rne(a, fmt, plus=b), lowprec.add(a, b, fmt))
    # float32 operands near midpoints: compare where float64 holds the exact sum
    a = _probes(fmt)
    a = a[np.abs(a) < 1e37]  # (keeps b finite)
    # b within 2**-28 of a's size: the float64 sum of two float32 values is exact
    b = rng.standard_normal(a.size) * np.abs(a) * 2.0 ** rng.integers(-28, 1, a.size)
    b = b.astype(F)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact = a64 + b64
    bb = exact - a64
    ok = (a64 - (exact - bb)) + (b64 - bb) == 0  # TwoSum: no rounding error
    assert ok.mean() > 0.95
    expected = np.asarray(lowprec.round(exact[ok], fmt)).astype(F)
    same_bits(round_rne(a[ok], fmt, plus=b[ok]), expected)
    # float64 data take the same route through float32 rounded to odd
    same_bits(round_rne(a64[ok], fmt, plus=b64[ok]), expected.astype(np.float64))


def test_round_rne_identity_and_other_formats():
    x = np.array([0.1, 1e-30], dtype=np.float32)
    assert round_rne(x, lowprec.fp32) is x
    y = np.array([0.1, 1e-300])
    assert round_rne(y, lowprec.fp64) is y
    same_bits(round_rne(y, lowprec.fp16), lowprec.round(y, lowprec.fp16))
    same_bits(round_rne(x, lowprec.fp8_e4m3fn), lowprec.round(x, lowprec.fp8_e4m3fn))
    z = np.array([0.1, 1e-300, 1e-45, 3.4028235e38, 3.4028236e38, 1e39, -1e-46])
    same_bits(round_rne(z, lowprec.fp32), lowprec.round(z, lowprec.fp32))


@pytest.mark.parametrize(
    "fmt",
    [lowprec.fp16, lowprec.bf16, lowprec.fp32, lowprec.fp8_e4m3fn],
    ids=lambda f: f.name,
)
def test_round_rne_into_equals_round_rne(fmt):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((8, 6)) * 2.0 ** rng.integers(-30, 20, (8, 6))).astype(F)
    y = (rng.standard_normal((8, 6)) * 2.0**-12).astype(F)
    for plus in (None, y):
        want = round_rne(x, fmt, plus=plus)
        out = np.empty_like(x)
        round_rne_into(out, x, fmt, plus=plus)  # into another array
        same_bits(out, want)
        w = x.copy()
        round_rne_into(w, w, fmt, plus=plus)  # in place
        same_bits(w, want)
        t = np.zeros((6, 8), F).T  # not C-contiguous: the general path
        round_rne_into(t, x, fmt, plus=plus)
        same_bits(t, want)


# -- finite-difference gradient checks (fp64) ------------------------------------


def numeric_grad(f, arrays, r, h=1e-6):
    """Central differences of sum(f(arrays) * r) with respect to each array."""
    grads = []
    for arr in arrays:
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            plus = np.sum(f(arrays).data * r)
            arr[idx] = old - h
            minus = np.sum(f(arrays).data * r)
            arr[idx] = old
            g[idx] = (plus - minus) / (2 * h)
        grads.append(g)
    return grads


def check_grad(fn, *arrays, policy=FP64, rtol=1e-6, atol=1e-8, seed=0):
    arrays = [np.array(a, dtype=np.float64) for a in arrays]

    def f(arrs):
        return fn(*[Tensor(a, policy=policy, requires_grad=True) for a in arrs])

    tensors = [Tensor(a, policy=policy, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    r = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(r)
    expected = numeric_grad(f, arrays, r)
    for t, e in zip(tensors, expected, strict=True):
        assert t.grad is not None and t.grad.dtype == np.float64
        np.testing.assert_allclose(t.grad, e, rtol=rtol, atol=atol)
        np.testing.assert_array_equal(t.raw_grad, t.grad)  # fp64: no rounding


def away_from_zero(shape, seed):
    x = np.random.default_rng(seed).uniform(0.2, 2.0, shape)
    signs = np.random.default_rng(seed + 1).choice([-1.0, 1.0], shape)
    return x * signs


A = away_from_zero((3, 4), 1)
B = away_from_zero((3, 4), 2)
ROW = away_from_zero((4,), 3)
COL = away_from_zero((3, 1), 4)


@pytest.mark.parametrize("policy", [FP64, FP64_ALL], ids=["fp64", "fp64_all_ops"])
@pytest.mark.parametrize(
    ("name", "fn", "args"),
    [
        ("add", lambda a, b: a + b, (A, B)),
        ("add_row", lambda a, b: a + b, (A, ROW)),
        ("add_col", lambda a, b: b + a, (A, COL)),
        ("sub", lambda a, b: a - b, (A, COL)),
        ("mul", lambda a, b: a * b, (A, ROW)),
        ("div", lambda a, b: a / b, (A, COL)),
        ("scalars", lambda a: (2.0 - a) * 3.0 + 1.0 - a / 4.0 + 1.0 / a, (A,)),
        ("neg", lambda a: -a, (A,)),
        ("matmul", lambda a, b: a @ b, (A, B.T)),
        ("sum", lambda a: a.sum(), (A,)),
        ("sum_axis", lambda a: a.sum(axis=0), (A,)),
        ("sum_keep", lambda a: a.sum(axis=1, keepdims=True), (A,)),
        ("mean", lambda a: a.mean(), (A,)),
        ("mean_axis", lambda a: a.mean(axis=-1), (A,)),
        ("relu", lambda a: a.relu(), (A,)),
        ("gelu", lambda a: a.gelu(), (A,)),
        ("tanh", lambda a: a.tanh(), (A,)),
        ("log_softmax", lambda a: a.log_softmax(), (A,)),
        ("log_softmax0", lambda a: a.log_softmax(axis=0), (A,)),
        ("cross_entropy", lambda a: ag.cross_entropy(a, np.array([0, 3, 1])), (A,)),
        ("layer_norm", lambda a: ag.layer_norm(a), (A,)),
        ("layer_norm_affine", lambda a, w, b: ag.layer_norm(a, w, b), (A, ROW, ROW)),
        (
            "reshape",
            lambda a: (
                a.reshape(2, 6)
                * ag.Tensor(np.arange(12.0).reshape(2, 6), policy=a.policy)
            ),
            (A,),
        ),
        ("transpose", lambda a, b: a.T @ b, (A, B)),
        ("transpose_axes", lambda a: a.reshape(3, 2, 2).transpose(2, 0, 1), (A,)),
        ("reuse", lambda a: a * a + a, (A,)),
    ],
)
def test_op_gradients_match_finite_differences(policy, name, fn, args):
    check_grad(fn, *args, policy=policy)


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
def test_mlp_gradient_matches_finite_differences(activation, layer_norm):
    model = MLP(
        [4, 5, 6, 3], policy=FP64, activation=activation, layer_norm=layer_norm, seed=3
    )
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 4))
    y = rng.integers(0, 3, 7)

    def loss():
        return ag.cross_entropy(model(x), y)

    loss().backward()
    h = 1e-6
    for name, p in model.named_parameters():
        numeric = np.zeros_like(p.data)
        for idx in np.ndindex(p.shape):
            old = p.data[idx]
            p.data[idx] = old + h
            plus = loss().item()
            p.data[idx] = old - h
            minus = loss().item()
            p.data[idx] = old
            numeric[idx] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-5, atol=1e-8, err_msg=name)


# -- fp32: bit for bit a plain NumPy float32 forward and backward -----------------

F = np.float32


def ref_mlp(x, y, params, activation, layer_norm):
    """Forward and backward of the MLP in plain NumPy float32, in the engine's
    order of operations; returns (loss, {name: grad})."""
    c, k = F(np.sqrt(2.0 / np.pi)), F(0.044715)
    half, one, three, eps = F(0.5), F(1.0), F(3.0), F(1e-5)
    n_lin = sum(1 for n in params if n.endswith("weight") and params[n].ndim == 2)
    tape = []
    h = x
    idx = 0
    for i in range(n_lin):
        w, b = params[f"layers.{idx}.weight"], params[f"layers.{idx}.bias"]
        z = h @ w + b
        tape.append(("linear", idx, h, w))
        idx += 1
        if i == n_lin - 1:
            h = z
            break
        if layer_norm:
            lw, lb = params[f"layers.{idx}.weight"], params[f"layers.{idx}.bias"]
            n = F(z.shape[1])
            mu = z.sum(axis=-1, keepdims=True) / n
            xc = z - mu
            var = (xc * xc).sum(axis=-1, keepdims=True) / n
            rstd = one / np.sqrt(var + eps)
            xhat = xc * rstd
            z = xhat * lw + lb
            tape.append(("ln", idx, xhat, rstd, lw))
            idx += 1
        if activation == "relu":
            tape.append(("relu", z))
            h = np.where(z > 0, z, F(0))
        elif activation == "tanh":
            h = np.tanh(z)
            tape.append(("tanh", h))
        else:
            t = np.tanh(c * (z + k * (z * z * z)))
            h = half * z * (one + t)
            tape.append(("gelu", z, t))
        idx += 1
    rows = np.arange(len(y))
    count = F(len(y))
    zl = h - h.max(axis=1, keepdims=True)
    logp = zl - np.log(np.exp(zl).sum(axis=1, keepdims=True))
    loss = -logp[rows, y].sum() / count
    p = np.exp(logp)
    p[rows, y] -= F(1)
    g = p * (np.ones((), F) / count)
    grads = {}
    for entry in reversed(tape):
        kind = entry[0]
        if kind == "linear":
            _, i, hin, w = entry
            grads[f"layers.{i}.bias"] = g.sum(axis=0)
            grads[f"layers.{i}.weight"] = hin.T @ g
            g = g @ w.T
        elif kind == "ln":
            _, i, xhat, rstd, lw = entry
            n = F(xhat.shape[1])
            grads[f"layers.{i}.weight"] = (g * xhat).sum(axis=0)
            grads[f"layers.{i}.bias"] = g.sum(axis=0)
            gx = g * lw
            mean_g = gx.sum(axis=-1, keepdims=True) / n
            mean_gx = (gx * xhat).sum(axis=-1, keepdims=True) / n
            g = rstd * (gx - mean_g - xhat * mean_gx)
        elif kind == "relu":
            g = np.where(entry[1] > 0, g, F(0))
        elif kind == "tanh":
            g = g * (one - entry[1] * entry[1])
        else:
            _, z, t = entry
            d = half * (one + t) + half * z * (one - t * t) * c * (
                one + three * k * (z * z)
            )
            g = g * d
    return loss, grads


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
def test_fp32_policy_is_plain_numpy_float32_bit_for_bit(activation, layer_norm):
    model = MLP(
        [16, 12, 10, 5],
        policy="fp32",
        activation=activation,
        layer_norm=layer_norm,
        seed=11,
    )
    rng = np.random.default_rng(12)
    x = rng.standard_normal((9, 16)).astype(F)
    y = rng.integers(0, 5, 9)
    loss = ag.cross_entropy(model(x), y)
    loss.backward()
    params = {n: p.data.copy() for n, p in model.named_parameters()}
    ref_loss, ref_grads = ref_mlp(x, y, params, activation, layer_norm)
    same_bits(loss.data, np.asarray(ref_loss))
    assert set(ref_grads) == set(params)
    for name, p in model.named_parameters():
        same_bits(p.grad, ref_grads[name])
        same_bits(p.raw_grad, ref_grads[name])


# -- low-precision policies --------------------------------------------------------


def representable(x, fmt):
    x = np.asarray(x)
    return np.array_equal(bits(lowprec.round(x, fmt)), bits(x))


@pytest.mark.parametrize("name", ["fp16_mixed", "fp16_pure", "bf16_mixed"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_forward_values_and_gradients_are_in_their_formats(name, layer_norm):
    policy = as_policy(name)
    fmt = policy.activations
    model = MLP(
        [10, 8, 4], policy=policy, activation="gelu", layer_norm=layer_norm, seed=2
    )
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 10))
    h = model.layers[0](x)
    seen = [h]
    for m in model.layers.modules[1:]:
        h = m(h)
        seen.append(h)
    loss = ag.cross_entropy(h, rng.integers(0, 4, 6))
    loss.backward()
    for t in seen:
        expected = fmt
        if layer_norm and "layer_norm" in policy.fp32_ops and t is seen[1]:
            expected = lowprec.fp32  # kept in fp32 as autocast does
        elif layer_norm and "layer_norm" in policy.fp32_ops and t is seen[2]:
            expected = lowprec.fp32  # gelu of an fp32 tensor: promotion
        assert t.fmt == expected
        assert representable(t.data, fmt) == (expected == fmt)
        # the gradient of an fp32 tensor is fp32, as in PyTorch
        gfmt = policy.gradients if expected == fmt else lowprec.fp32
        assert t.grad is not None and representable(t.grad, gfmt)
        assert representable(t.grad, policy.gradients) == (gfmt == fmt)
    assert loss.fmt == (lowprec.fp32 if "cross_entropy" in policy.fp32_ops else fmt)
    for _, p in model.named_parameters():
        assert p.fmt == policy.params and representable(p.data, policy.params)
        assert representable(p.grad, policy.gradients)
        same_bits(p.grad, round_rne(p.raw_grad, policy.gradients))


@pytest.mark.parametrize("name", ["fp16_mixed", "bf16_pure"])
def test_blas_path_equals_lowprec_matmul_unspecified(name):
    rng = np.random.default_rng(4)
    a = Tensor(rng.standard_normal((13, 40)), policy=name)
    b = Tensor(rng.standard_normal((40, 7)), policy=name, requires_grad=True)
    c = a @ b
    preset = as_policy(name).matmul
    expected = lowprec.matmul(a.data, b.data, preset, order="unspecified")
    same_bits(c.data, expected.astype(np.float32))
    g = round_rne(rng.standard_normal((13, 7)).astype(F), as_policy(name).gradients)
    c.backward(g)
    raw = lowprec.matmul(a.data.T, g, preset, order="unspecified", output="fp32")
    same_bits(b.raw_grad, raw.astype(np.float32))


def test_fp16_pure_matmul_accumulates_in_fp16():
    a = Tensor(np.ones((1, 4096)), policy="fp16_pure")
    b = Tensor(np.ones((4096, 2)), policy="fp16_pure")
    assert (a @ b).data.tolist() == [[2048.0, 2048.0]]  # the fp16 running sum stalls
    a = Tensor(np.ones((1, 4096)), policy="fp16_mixed")
    b = Tensor(np.ones((4096, 2)), policy="fp16_mixed")
    assert (a @ b).data.tolist() == [[4096.0, 4096.0]]


def test_fp16_pure_backward_matches_lowprec_matmul():
    rng = np.random.default_rng(6)
    a = Tensor(rng.standard_normal((5, 30)), policy="fp16_pure", requires_grad=True)
    b = Tensor(rng.standard_normal((30, 4)), policy="fp16_pure", requires_grad=True)
    c = a @ b
    same_bits(c.data, lowprec.matmul(a.data, b.data, "fp16_fp16acc").astype(F))
    g = round_rne(rng.standard_normal((5, 4)).astype(F), lowprec.fp16)
    c.backward(g)
    same_bits(a.grad, lowprec.matmul(g, b.data.T, "fp16_fp16acc").astype(F))
    same_bits(b.grad, lowprec.matmul(a.data.T, g, "fp16_fp16acc").astype(F))


def test_raw_grad_keeps_what_the_gradient_format_flushes():
    w = Tensor(np.full((3, 2), 0.5), policy="fp16_mixed", requires_grad=True)
    x = Tensor(np.full((4, 3), 1e-3), policy="fp16_mixed")
    y = x @ w
    y.backward(np.full((4, 2), 2e-6))  # 4 * 1e-3 * 2e-6 = 8e-9 per entry
    assert np.all(w.raw_grad > 0) and np.all(w.raw_grad < 2**-25)
    assert np.all(w.grad == 0)  # below half the smallest fp16 subnormal


@pytest.mark.parametrize("name", ["bf16_mixed", "bf16_pure"])
def test_loss_scale_by_power_of_two_scales_gradients_exactly(name):
    # bf16 has fp32's exponent range, so neither run underflows or overflows
    model = MLP([8, 16, 4], policy=name, layer_norm=True, seed=1)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((10, 8)), rng.integers(0, 4, 10)
    ag.cross_entropy(model(x), y).backward()
    plain = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    loss = ag.cross_entropy(model(x), y)
    assert loss.fmt == lowprec.fp32
    scaled = loss * 65536.0
    assert scaled.fmt == lowprec.fp32
    scaled.backward()
    for g, p in zip(plain, model.parameters(), strict=True):
        same_bits(p.grad / F(65536), g)


def test_fp32_loss_times_scale_stays_fp32_under_fp16():
    model = MLP([8, 16, 4], policy="fp16_mixed", seed=1)
    loss = ag.cross_entropy(model(np.ones((3, 8))), np.array([0, 1, 2]))
    scaled = loss * 2.0**17  # beyond fp16's max, fine in fp32
    assert scaled.fmt == lowprec.fp32 and np.isfinite(scaled.data)
    scaled.backward()
    assert loss.grad.tolist() == 2.0**17  # the gradient of an fp32 tensor is fp32
    assert all(np.isfinite(p.grad).all() for p in model.parameters())


def test_gradients_accumulate_rounded():
    policy = "bf16_pure"
    x = Tensor([1.0], policy=policy, requires_grad=True)
    # d/dx (x*a + x*b) = a + b with a, b bf16 values whose sum needs rounding
    a, b = 1.0, 2.0**-8 + 2.0**-15
    z = x * Tensor([a], policy=policy) + x * Tensor([b], policy=policy)
    z.backward(np.ones(1))
    b_rounded = float(lowprec.round(np.float32(b), "bf16"))
    expected = float(lowprec.round(np.float32(a + b_rounded), "bf16"))
    assert x.grad.tolist() == [expected]
    assert x.raw_grad.tolist() == [np.float32(a) + np.float32(b_rounded)]
    # a second backward accumulates into the leaf, not into intermediates
    z.backward(np.ones(1))

    def rnd(v):
        return float(lowprec.round(np.float32(v), "bf16"))

    # each contribution is added and rounded in turn (in graph order)
    either = {rnd(rnd(expected + a) + b_rounded), rnd(rnd(expected + b_rounded) + a)}
    assert either == {2.0, 2.015625}
    assert x.grad.tolist()[0] in either
    assert x.raw_grad.tolist() == [2 * (np.float32(a) + np.float32(b_rounded))]


def test_tensor_rounds_float64_data_once():
    v = 1 + 2.0**-11 + 2.0**-40  # float32 would make it a tie and round down
    assert Tensor([v], policy="fp16_mixed").data.tolist() == [1 + 2.0**-10]
    arr = np.array([0.5], dtype=F)
    t = Tensor(arr, policy="fp32")
    arr[0] = 7
    assert t.data.tolist() == [0.5]  # copied
    assert Tensor([1, 2], policy="fp64").data.dtype == np.float64
    assert Tensor([0.1], "bf16", policy="fp32").data.tolist() == [
        float(lowprec.round(np.float32(0.1), "bf16"))
    ]


def test_no_graph_without_requires_grad():
    x = Tensor(np.ones((2, 2)), policy="fp32")
    y = (x * 2.0 + 1.0).sum()
    assert not y.requires_grad
    with pytest.raises(ValueError, match="requires_grad"):
        y.backward()


def test_constants_do_not_promote_and_arrays_defer():
    x = Tensor([1.0, 2.0], policy="fp16_mixed")
    assert (x * 1e6).fmt == lowprec.fp16  # a constant does not widen
    assert np.isinf((x * 1e6).data).all()  # overflow to inf, not an error
    y = np.array([2.0, 3.0]) * x
    assert isinstance(y, Tensor) and y.data.tolist() == [2.0, 6.0]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda t: t(np.ones((2, 3))) @ t(np.ones((2, 3))),
            ValueError,
            r"\(2, 3\) and \(2, 3\)",
        ),
        (lambda t: t(np.ones(3)) @ t(np.ones((3, 1))), ValueError, "2-D"),
        (
            lambda t: t(np.ones((2, 3))) + t(np.ones((4,))),
            ValueError,
            r"\(2, 3\) and \(4,\)",
        ),
        (lambda t: t(np.ones((2, 3))) * np.ones((5, 1, 2)), ValueError, "broadcast"),
        (
            lambda t: ag.cross_entropy(t(np.ones((2, 3))), np.array([0, 3])),
            ValueError,
            r"\[0, 3\)",
        ),
        (
            lambda t: ag.cross_entropy(t(np.ones((2, 3))), np.array([0, 1, 2])),
            ValueError,
            r"shape \(2,\)",
        ),
        (
            lambda t: ag.cross_entropy(t(np.ones((2, 3))), np.array([0.0, 1.0])),
            TypeError,
            "integers",
        ),
        (lambda t: ag.cross_entropy(t(np.ones(3)), np.array([0])), ValueError, "2-D"),
        (lambda t: t(np.ones((2, 3))).reshape(4, 2), ValueError, r"\(4, 2\)"),
        (lambda t: t(np.ones((2, 3))).sum(axis=2), ValueError, "axis"),
        (lambda t: t(np.ones((2, 3))).backward(), ValueError, "requires_grad"),
        (
            lambda t: ag.layer_norm(t(np.ones((2, 3))), t(np.ones(2))),
            ValueError,
            r"\(3,\)",
        ),
        (
            lambda t: t(np.ones(2)) + Tensor(np.ones(2), policy="fp32"),
            ValueError,
            "different policies",
        ),
        (lambda t: t(np.ones(2)) + "a", TypeError, "operands"),
        (lambda t: Tensor([1.0], policy="fp8_mixed"), ValueError, "unknown name"),
        (lambda t: Tensor([1.0], "fp64", policy="fp16_mixed"), ValueError, "fit"),
        (lambda t: t(np.ones((2, 2))).item(), ValueError, "one-element"),
    ],
)
def test_bad_input_raises_clearly(make, error, message):
    def t(a):
        return Tensor(a, policy="fp16_mixed")

    with pytest.raises(error, match=message):
        make(t)


def test_backward_needs_grad_for_non_scalars():
    x = Tensor(np.ones((2, 2)), policy="fp32", requires_grad=True)
    with pytest.raises(ValueError, match="grad must be given"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2.0).backward(np.ones(3))
