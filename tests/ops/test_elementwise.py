"""Elementwise ops vs torch: binary (broadcast, non-contiguous, int, scalars), unary (float, fp16, int), where, comparisons, logic."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lazygrad import Tensor, dtypes
from helpers import helper_test_op, compare
from .common import arr, away_from_zero


# ============================================================ elementwise binary

BIN_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (3,)), ((5,), ()), ((1,), (5, 1)),
              ((0, 3), (3,)), ((2, 0), (1, 0)), ((4, 1, 1), (1, 3, 2))]

BINARY_OPS = {
  "add": (lambda a, b: a + b, None),
  "sub": (lambda a, b: a - b, None),
  "mul": (lambda a, b: a * b, None),
  "div": (lambda a, b: a / b, None),
  "maximum": (lambda a, b: torch.maximum(a, b), lambda a, b: a.maximum(b)),
  "minimum": (lambda a, b: torch.minimum(a, b), lambda a, b: a.minimum(b)),
  "pow": (lambda a, b: a.abs() ** b, None),
  "rsub": (lambda a, b: b.sub(a), lambda a, b: b.sub(a)),
  "mod": (lambda a, b: a % b, None),
}


@pytest.mark.parametrize("shapes", BIN_SHAPES, ids=str)
@pytest.mark.parametrize("op", list(BINARY_OPS))
def test_binary_broadcast(op, shapes):
  tf, lf = BINARY_OPS[op]
  a = arr(shapes[0], seed=1)
  b = away_from_zero(shapes[1], seed=2)
  helper_test_op(None, tf, lf, inputs=[a, b])


@pytest.mark.parametrize("op", list(BINARY_OPS))
def test_binary_noncontiguous(op):
  tf, lf = BINARY_OPS[op]
  lf = lf or tf
  a, b = arr((4, 6), seed=1), away_from_zero((6, 3), seed=2)
  # permuted x stepped slice, and a flipped expand of a column
  tpre = lambda x, y: (x.T[::2], y.flip(0)[::2, :1].expand(3, 4))
  lpre = lambda x, y: (x.T[::2], y[::-2, :1].expand(3, 4))
  helper_test_op(None, lambda x, y: tf(*tpre(x, y)), lambda x, y: lf(*lpre(x, y)), inputs=[a, b])


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((), (3,))], ids=str)
def test_floordiv(shapes):
  a, b = arr(shapes[0], -5, 5, seed=3), away_from_zero(shapes[1], seed=4)
  helper_test_op(None, lambda a, b: a // b, inputs=[a, b], grad=False)


@pytest.mark.parametrize("dtype", ["int32", "int64", "int8"])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "floordiv", "mod", "div", "maximum", "minimum", "neg", "trunc_div"])
def test_binary_int(op, dtype):
  a = np.random.default_rng(5).integers(-9, 10, size=(4, 5)).astype(dtype)
  b = np.random.default_rng(6).integers(1, 5, size=(5,)).astype(dtype) * np.array([1, -1, 1, -1, 1], dtype=dtype)
  fns = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "floordiv": lambda a, b: a // b,
         "mod": lambda a, b: a % b, "div": lambda a, b: a / b, "maximum": lambda a, b: a.maximum(b) if isinstance(a, Tensor) else torch.maximum(a, b),
         "minimum": lambda a, b: a.minimum(b) if isinstance(a, Tensor) else torch.minimum(a, b), "neg": lambda a, b: -a,
         "trunc_div": lambda a, b: a.div(b, rounding_mode="trunc")}
  helper_test_op(None, fns[op], inputs=[a, b])


def test_int_pow():
  a = np.arange(-4, 5, dtype=np.int64)
  helper_test_op(None, lambda a: a ** 2, inputs=[a])
  helper_test_op(None, lambda a: a ** 3, inputs=[a])
  helper_test_op(None, lambda a: a * 0 + 2 ** a.abs(), inputs=[a])


SCALAR_OPS = [
  ("add", lambda x: x + 2), ("radd", lambda x: 2.5 + x), ("sub", lambda x: x - 1.5), ("rsub", lambda x: 3 - x),
  ("mul", lambda x: x * -1.5), ("rmul", lambda x: 2 * x), ("div", lambda x: x / 4), ("rdiv", lambda x: 3 / x),
  ("pow2", lambda x: x ** 2), ("pow3", lambda x: x ** 3), ("pow0", lambda x: x ** 0), ("pow-1", lambda x: x ** -1),
  ("pow-2", lambda x: x ** -2), ("pow_half", lambda x: x.abs() ** 0.5), ("pow2.5", lambda x: x.abs() ** 2.5),
  ("pow_float_int", lambda x: x ** 2.0), ("rpow", lambda x: 2 ** x), ("rpow_e", lambda x: 1.5 ** x),
  ("floordiv", lambda x: x // 0.7), ("mod", lambda x: x % 0.7), ("rmod", lambda x: 3 % x), ("neg", lambda x: -x),
  ("max", lambda x: x.maximum(0.5) if isinstance(x, Tensor) else torch.clamp(x, min=0.5)),
]


@pytest.mark.parametrize("name,fn", SCALAR_OPS, ids=[s[0] for s in SCALAR_OPS])
def test_scalar_ops(name, fn):
  helper_test_op(None, fn, inputs=[away_from_zero((3, 5), seed=7)], grad=name not in ("floordiv", "rmod"))   # torch has no derivative for these


def test_pow_negative_base_tensor_exponent():
  base = np.array([-2.0, -2.0, -1.5, 0.0, 0.0, 3.0, 2.0, -3.0], dtype=np.float32)
  exp = np.array([2.0, 3.0, 0.5, 2.0, 0.0, -1.0, 0.0, 0.0], dtype=np.float32)
  helper_test_op(None, lambda a, b: a ** b, inputs=[base, exp], grad=False)


# ============================================================ elementwise unary

UNARY = [
  # name, torch fn, lazy fn (None: same), low, high
  ("neg", lambda x: -x, None, -2, 2),
  ("abs", torch.abs, lambda x: x.abs(), -2, 2),
  ("sign", torch.sign, lambda x: x.sign(), -2, 2),
  ("exp", torch.exp, lambda x: x.exp(), -3, 3),
  ("exp2", torch.exp2, lambda x: x.exp2(), -3, 3),
  ("log", torch.log, lambda x: x.log(), 0.1, 4),
  ("log2", torch.log2, lambda x: x.log2(), 0.1, 4),
  ("sqrt", torch.sqrt, lambda x: x.sqrt(), 0.1, 4),
  ("rsqrt", torch.rsqrt, lambda x: x.rsqrt(), 0.2, 4),
  ("sin", torch.sin, lambda x: x.sin(), -6, 6),
  ("cos", torch.cos, lambda x: x.cos(), -6, 6),
  ("tan", torch.tan, lambda x: x.tan(), -1.3, 1.3),
  ("reciprocal", torch.reciprocal, lambda x: x.reciprocal(), 0.3, 3),
  ("square", torch.square, lambda x: x.square(), -2, 2),
  ("relu", torch.relu, lambda x: x.relu(), -2, 2),
  ("sigmoid", torch.sigmoid, lambda x: x.sigmoid(), -6, 6),
  ("tanh", torch.tanh, lambda x: x.tanh(), -4, 4),
  ("gelu", F.gelu, lambda x: x.gelu(), -4, 4),
  ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), lambda x: x.gelu(approximate="tanh"), -4, 4),
  ("silu", F.silu, lambda x: x.silu(), -4, 4),
  ("softplus", F.softplus, lambda x: x.softplus(), -4, 4),
  ("softplus_beta", lambda x: F.softplus(x, beta=2.0, threshold=3.0), lambda x: x.softplus(beta=2.0, threshold=3.0), -4, 4),
  ("leaky_relu", F.leaky_relu, lambda x: x.leaky_relu(), -2, 2),
  ("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: x.leaky_relu(0.2), -2, 2),
  ("leaky_relu_kw", lambda x: F.leaky_relu(x, negative_slope=0.3), lambda x: x.leaky_relu(negative_slope=0.3), -2, 2),
  ("elu", F.elu, lambda x: x.elu(), -3, 3),
  ("elu_alpha", lambda x: F.elu(x, alpha=0.5), lambda x: x.elu(alpha=0.5), -3, 3),
  ("hardtanh", F.hardtanh, lambda x: x.hardtanh(), -2, 2),
  ("hardtanh_args", lambda x: F.hardtanh(x, -0.5, 1.5), lambda x: x.hardtanh(-0.5, 1.5), -2, 2),
  ("clamp", lambda x: x.clamp(-0.5, 0.7), None, -2, 2),
  ("clamp_min", lambda x: x.clamp(min=-0.5), None, -2, 2),
  ("clamp_max", lambda x: x.clamp(max=0.3), None, -2, 2),
  ("clamp_int_bounds", lambda x: x.clamp(-1, 1), None, -2, 2),
]


@pytest.mark.parametrize("name,tf,lf,low,high", UNARY, ids=[u[0] for u in UNARY])
def test_unary(name, tf, lf, low, high):
  helper_test_op([(4, 9)], tf, lf, low=low, high=high)


@pytest.mark.parametrize("name,tf,lf,low,high", UNARY, ids=[u[0] for u in UNARY])
def test_unary_noncontiguous(name, tf, lf, low, high):
  lf = lf or tf
  # permuted, then a stepped slice, then an expand: the op sees a strided view
  helper_test_op([(6, 5)], lambda x: tf(x.permute(1, 0)[:, ::2].unsqueeze(0).expand(2, 5, 3)),
                 lambda x: lf(x.permute(1, 0)[:, ::2].unsqueeze(0).expand(2, 5, 3)), low=low, high=high)


@pytest.mark.parametrize("name,tf,lf,low,high", [u for u in UNARY if u[0] not in ("tan", "reciprocal", "sign", "clamp_int_bounds")],
                         ids=[u[0] for u in UNARY if u[0] not in ("tan", "reciprocal", "sign", "clamp_int_bounds")])
def test_unary_float16(name, tf, lf, low, high):
  helper_test_op([(3, 7)], tf, lf, dtype="float16", low=low, high=high, rtol=2e-2, atol=2e-2, grad_rtol=5e-2, grad_atol=5e-2)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sin", "cos", "sigmoid", "tanh", "reciprocal", "exp2", "log2", "rsqrt"])
def test_unary_int_promotes_to_float(name):
  a = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
  helper_test_op(None, lambda x: getattr(x, name)(), inputs=[a], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["abs", "sign", "relu", "square", "neg"])
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_unary_int(name, dtype):
  a = np.arange(-4, 5).astype(dtype).reshape(3, 3)
  fn = (lambda x: -x) if name == "neg" else (lambda x: getattr(x, name)())
  helper_test_op(None, fn, inputs=[a])


# floor/ceil/round/trunc: lazygrad gives no gradient by design (torch gives zeros), so values only
@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_rounding(name, dtype):
  a = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -2.7, -0.2, 0.0, 0.3, 1.7, 3.49, -3.51, 1e6 + 0.5, -7.0, 2049.0],
               dtype=np.float32)
  a = (a[np.abs(a) < 60000] if dtype == "float16" else a).astype(dtype)
  helper_test_op(None, lambda x: getattr(x, name)(), inputs=[a], grad=False)


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc"])
def test_rounding_int(name):
  helper_test_op(None, lambda x: getattr(x, name)(), inputs=[np.arange(-3, 4, dtype=np.int64)])


def test_round_decimals():
  a = np.array([1.234, -2.345, 0.051, 12.5], dtype=np.float32)
  helper_test_op(None, lambda x: x.round(decimals=1), inputs=[a], grad=False, atol=1e-5)


def test_relu_grad_at_zero():
  a = np.array([-1.0, 0.0, 1.0, 0.0], dtype=np.float32)
  helper_test_op(None, torch.relu, lambda x: x.relu(), inputs=[a])
  helper_test_op(None, torch.abs, lambda x: x.abs(), inputs=[a])


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 4), (4,), ()), ((2, 1), (1, 3), (2, 3))], ids=str)
def test_lerp(shapes):
  helper_test_op(shapes, lambda a, b, w: torch.lerp(a, b, w), lambda a, b, w: a.lerp(b, w), low=0, high=1)
  helper_test_op(shapes[:2], lambda a, b: torch.lerp(a, b, 0.3), lambda a, b: a.lerp(b, 0.3))


def test_clamp_tensor_bounds():
  helper_test_op([(3, 4), (4,), (3, 1)], lambda x, lo, hi: torch.clamp(x, lo, lo + hi.abs() + 0.1),
                 lambda x, lo, hi: x.clamp(lo, lo + hi.abs() + 0.1))


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_clamp_int(dtype):
  a = np.arange(-5, 6).astype(dtype)
  helper_test_op(None, lambda x: x.clamp(-2, 3), inputs=[a])
  helper_test_op(None, lambda x: x.clamp(min=0), inputs=[a])


# ============================================================ where, comparisons, logic

@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), ()), ((4,), (2, 1), (1, 4)), ((0, 2), (2,), (1,))], ids=str)
def test_where(shapes):
  c = np.random.default_rng(8).random(shapes[0]) < 0.5
  helper_test_op(None, lambda a, b: torch.where(torch.tensor(c), a, b), lambda a, b: Tensor.where(Tensor(c), a, b),
                 inputs=[arr(shapes[1]), arr(shapes[2])])
  helper_test_op(None, lambda a, b: torch.where(torch.tensor(c), a, b), lambda a, b: Tensor(c).where(a, b),
                 inputs=[arr(shapes[1]), arr(shapes[2])])


def test_where_scalars_and_dtypes():
  c = np.array([True, False, True])
  helper_test_op(None, lambda a: torch.where(torch.tensor(c), a, 0.5), lambda a: Tensor(c).where(a, 0.5), inputs=[arr((3,))])
  helper_test_op(None, lambda a: torch.where(torch.tensor(c), -1.0, a), lambda a: Tensor(c).where(-1.0, a), inputs=[arr((2, 3))])
  out = Tensor(c).where(1, 2)
  assert out.dtype == dtypes.int64 and out.tolist() == [1, 2, 1]
  out = Tensor(c).where(1.0, 2)
  assert out.dtype == dtypes.float32 and out.tolist() == [1.0, 2.0, 1.0]
  # a non-bool condition raises, as torch (an instance of torch's class)
  with pytest.raises(RuntimeError, match="boolean"): Tensor([0, 3, -1]).where(Tensor([1.0, 1.0, 1.0]), 0.0)
  # dtypes promote as torch.where
  i, f = Tensor([1, 2, 3], dtype=dtypes.int32), Tensor([0.5, 0.5, 0.5], dtype=dtypes.float16)
  assert Tensor(c).where(i, f).dtype == dtypes.float16


CMP_OPS = [("lt", lambda a, b: a < b), ("le", lambda a, b: a <= b), ("gt", lambda a, b: a > b), ("ge", lambda a, b: a >= b),
           ("eq", lambda a, b: a == b), ("ne", lambda a, b: a != b),
           ("eq_m", lambda a, b: a.eq(b)), ("ne_m", lambda a, b: a.ne(b)), ("lt_m", lambda a, b: a.lt(b)),
           ("le_m", lambda a, b: a.le(b)), ("gt_m", lambda a, b: a.gt(b)), ("ge_m", lambda a, b: a.ge(b))]


@pytest.mark.parametrize("dtype", ["float32", "int32", "float16", "uint8"])
@pytest.mark.parametrize("name,fn", CMP_OPS, ids=[c[0] for c in CMP_OPS])
def test_comparisons(name, fn, dtype):
  # small integers make ties
  a = np.random.default_rng(9).integers(0, 4, size=(3, 4)).astype(dtype)
  b = np.random.default_rng(10).integers(0, 4, size=(4,)).astype(dtype)
  helper_test_op(None, fn, inputs=[a, b])
  helper_test_op(None, lambda a: fn(a, 2), inputs=[a])
  helper_test_op(None, lambda a: fn(a, 1.5), inputs=[a])


def test_comparison_mixed_dtypes():
  a, b = np.array([1, 2, 3], dtype=np.int32), np.array([1.5, 2.0, 2.5], dtype=np.float32)
  for fn in (lambda x, y: x < y, lambda x, y: x == y, lambda x, y: x >= y):
    compare(fn(Tensor(a), Tensor(b)).numpy(), fn(torch.tensor(a), torch.tensor(b)).numpy(), 0, 0)
  # -1 vs uint8 255: compare in the promoted type
  u = np.array([0, 255, 3], dtype=np.uint8)
  compare((Tensor(u) > -1).numpy(), (torch.tensor(u) > -1).numpy(), 0, 0)


LOGIC_OPS = [("and", lambda a, b: a.logical_and(b), lambda a, b: torch.logical_and(a, b)),
             ("or", lambda a, b: a.logical_or(b), lambda a, b: torch.logical_or(a, b)),
             ("not", lambda a, b: a.logical_not(), lambda a, b: torch.logical_not(a)),
             ("xor", lambda a, b: a.logical_xor(b), lambda a, b: torch.logical_xor(a, b)),
             ("&", lambda a, b: a & b, None), ("|", lambda a, b: a | b, None), ("^", lambda a, b: a ^ b, None), ("~", lambda a, b: ~a, None)]


@pytest.mark.parametrize("dtype", ["bool", "int32"])
@pytest.mark.parametrize("name,lf,tf", LOGIC_OPS, ids=[c[0] for c in LOGIC_OPS])
def test_logical(name, lf, tf, dtype):
  a = np.random.default_rng(11).integers(0, 3, size=(3, 4)).astype(dtype)
  b = np.random.default_rng(12).integers(0, 3, size=(4,)).astype(dtype)
  helper_test_op(None, tf or lf, lf, inputs=[a, b])


def test_logical_float():
  a, b = np.array([0.0, 1.5, -2.0, 0.0]), np.array([0.0, 0.0, 3.0, 1.0])
  a, b = a.astype(np.float32), b.astype(np.float32)
  helper_test_op(None, torch.logical_and, lambda a, b: a.logical_and(b), inputs=[a, b], grad=False)
  helper_test_op(None, torch.logical_or, lambda a, b: a.logical_or(b), inputs=[a, b], grad=False)
  helper_test_op(None, torch.logical_not, lambda a: a.logical_not(), inputs=[a], grad=False)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_isnan_isinf(dtype):
  a = np.array([0.0, np.nan, np.inf, -np.inf, 1.0, -2.5, np.nan], dtype=dtype)
  helper_test_op(None, torch.isnan, lambda x: x.isnan(), inputs=[a], grad=False)
  helper_test_op(None, torch.isinf, lambda x: x.isinf(), inputs=[a], grad=False)
  helper_test_op(None, lambda x: x * 2 + 1, inputs=[a], grad=False)


def test_isnan_int():
  a = np.array([1, 2, 3], dtype=np.int32)
  helper_test_op(None, torch.isnan, lambda x: x.isnan(), inputs=[a])
  helper_test_op(None, torch.isinf, lambda x: x.isinf(), inputs=[a])


def test_nan_propagation():
  a = np.array([np.nan, 1.0, -1.0, np.nan], dtype=np.float32)
  b = np.array([0.0, np.nan, 2.0, np.nan], dtype=np.float32)
  helper_test_op(None, torch.maximum, lambda x, y: x.maximum(y), inputs=[a, b], grad=False)
  helper_test_op(None, torch.minimum, lambda x, y: x.minimum(y), inputs=[a, b], grad=False)
  helper_test_op(None, torch.relu, lambda x: x.relu(), inputs=[a], grad=False)
  helper_test_op(None, lambda x: x.clamp(-0.5, 0.5), inputs=[a], grad=False)
  helper_test_op(None, lambda x: x.sum(), inputs=[a], grad=False)
  helper_test_op(None, lambda x: x.amax(), inputs=[a], grad=False)
