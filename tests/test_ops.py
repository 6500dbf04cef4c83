"""Every Tensor method of API.md against torch: forward values, result dtypes and gradients."""
import math
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lazygrad import Tensor, dtypes
from helpers import helper_test_op, compare

rng = np.random.default_rng(0)


def arr(shape, low=-2.0, high=2.0, dtype=np.float32, seed=None):
  r = np.random.default_rng(seed) if seed is not None else rng
  return r.uniform(low, high, size=shape).astype(dtype)


def away_from_zero(shape, lo=0.5, hi=2.0, seed=None):
  """floats with |x| in [lo, hi] and random signs (safe denominators, no ties at 0)."""
  r = np.random.default_rng(seed) if seed is not None else rng
  return (r.uniform(lo, hi, size=shape) * r.choice([-1.0, 1.0], size=shape)).astype(np.float32)


def T(a):
  """the same numpy array on both sides: (torch tensor, lazygrad Tensor) factory by framework."""
  return lambda fw: torch.tensor(a) if fw is torch else Tensor(a)


# ============================================================ construction

@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 0, 4), (1, 1, 5)])
@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
def test_zeros_ones_empty(name, shape):
  for args in ((shape,), shape):
    if name == "empty":
      t = Tensor.empty(*args)
      assert t.shape == shape and t.dtype == dtypes.float32
      continue
    out = getattr(Tensor, name)(*args)
    ref = getattr(torch, name)(*args) if args else getattr(torch, name)(())
    assert out.shape == tuple(ref.shape) and out.dtype == dtypes.float32
    compare(out.numpy(), ref.numpy(), 0, 0)


@pytest.mark.parametrize("dtype", [dtypes.int32, dtypes.int64, dtypes.float16, dtypes.bool, dtypes.uint8])
def test_zeros_ones_dtype(dtype):
  tdt = getattr(torch, dtype.name)
  for name in ("zeros", "ones"):
    out, ref = getattr(Tensor, name)(2, 3, dtype=dtype), getattr(torch, name)(2, 3, dtype=tdt)
    assert out.dtype == dtype
    compare(out.numpy(), ref.numpy(), 0, 0)


@pytest.mark.parametrize("value,dtype", [(3.5, None), (2, None), (True, None), (-1, dtypes.float16), (7, dtypes.int32), (1.5, dtypes.float32)])
def test_full(value, dtype):
  out = Tensor.full((2, 3), value, dtype=dtype)
  ref = torch.full((2, 3), value, dtype=getattr(torch, dtype.name) if dtype else None)
  assert out.dtype == dtypes.from_any(ref.dtype)
  compare(out.numpy(), ref.numpy(), 0, 0)
  assert Tensor.full((), value).shape == ()


@pytest.mark.parametrize("args,kw", [((5,), {}), ((2, 10, 3), {}), ((0, 1, 0.1), {}), ((10, 0, -2), {}), ((-3, 3), {}),
                                     ((1.5, 4.0), {}), ((5,), {"dtype": dtypes.float32}), ((4,), {"dtype": dtypes.int32}), ((3, 3), {})])
def test_arange(args, kw):
  out = Tensor.arange(*args, **kw)
  ref = torch.arange(*args, **({"dtype": getattr(torch, kw["dtype"].name)} if kw else {}))
  assert out.dtype == dtypes.from_any(ref.dtype)
  compare(out.numpy(), ref.numpy(), 1e-6, 1e-6)


@pytest.mark.parametrize("n,m", [(1, None), (4, None), (3, 5), (5, 2), (0, None)])
def test_eye(n, m):
  out = Tensor.eye(n, m) if m is not None else Tensor.eye(n)
  ref = torch.eye(n, m) if m is not None else torch.eye(n)
  assert out.dtype == dtypes.float32
  compare(out.numpy(), ref.numpy(), 0, 0)


def test_rand_stats():
  Tensor.manual_seed(1)
  a = Tensor.rand(4000).numpy()
  assert a.dtype == np.float32 and a.shape == (4000,)
  assert a.min() >= 0 and a.max() < 1
  assert abs(a.mean() - 0.5) < 0.03 and abs(a.std() - math.sqrt(1 / 12)) < 0.02
  assert len(np.unique(a)) > 3900
  b = Tensor.rand(2, 3, 4)
  assert b.shape == (2, 3, 4) and Tensor.rand((2, 3)).shape == (2, 3)


def test_randn_stats():
  Tensor.manual_seed(2)
  a = Tensor.randn(20000).numpy()
  assert np.isfinite(a).all()
  assert abs(a.mean()) < 0.03 and abs(a.std() - 1) < 0.03
  assert abs((np.abs(a) < 1).mean() - 0.6827) < 0.02
  assert Tensor.randn(3, 2, dtype=dtypes.float16).dtype == dtypes.float16


def test_manual_seed_reproducible():
  Tensor.manual_seed(42); a = Tensor.rand(50).numpy(); b = Tensor.rand(50).numpy()
  Tensor.manual_seed(42); c = Tensor.rand(50).numpy()
  np.testing.assert_array_equal(a, c)
  assert not np.array_equal(a, b)


@pytest.mark.parametrize("low,high", [(0, 2), (3, 10), (-5, 5)])
def test_randint(low, high):
  Tensor.manual_seed(3)
  t = Tensor.randint(low, high, (3000,))
  assert t.dtype == dtypes.int64 and t.shape == (3000,)
  a = t.numpy()
  assert a.min() >= low and a.max() < high
  assert set(np.unique(a).tolist()) == set(range(low, high))
  assert Tensor.randint(5, size=(2, 2)).numpy().max() < 5


def test_uniform():
  Tensor.manual_seed(4)
  a = Tensor.uniform(3000, low=-3.0, high=1.0).numpy()
  assert a.min() >= -3 and a.max() < 1 and abs(a.mean() + 1) < 0.1


@pytest.mark.parametrize("dtype", [dtypes.float32, dtypes.float16, dtypes.int32])
def test_like(dtype):
  x = Tensor.ones(2, 3, dtype=dtype)
  tx = torch.ones(2, 3, dtype=getattr(torch, dtype.name))
  for name in ("zeros_like", "ones_like"):
    out, ref = getattr(x, name)(), getattr(torch, name)(tx)
    assert out.shape == (2, 3) and out.dtype == dtype
    compare(out.numpy(), ref.numpy(), 0, 0)
  out = x.full_like(7)
  assert out.dtype == dtype and (out.numpy() == 7).all()
  if dtype.is_float:
    for name in ("rand_like", "randn_like"):
      r = getattr(x, name)()
      assert r.shape == (2, 3) and r.dtype == dtype
  assert x.zeros_like(dtype=dtypes.int8).dtype == dtypes.int8


@pytest.mark.parametrize("np_dtype", [np.float32, np.float16, np.int32, np.int64, np.uint8, np.int8, np.bool_])
def test_from_numpy_roundtrip(np_dtype):
  a = (np.arange(12).reshape(3, 4) % 3).astype(np_dtype)
  t = Tensor.from_numpy(a)
  assert t.dtype == dtypes.from_np(np_dtype) and t.shape == (3, 4)
  out = t.numpy()
  assert out.dtype == a.dtype
  np.testing.assert_array_equal(out, a)
  assert t.tolist() == a.tolist()
  np.testing.assert_array_equal(t.torch().numpy(), torch.from_numpy(a).numpy())


def test_from_numpy_noncontiguous():
  a = np.arange(24, dtype=np.float32).reshape(4, 6)[::2, ::-3]
  np.testing.assert_array_equal(Tensor.from_numpy(a).numpy(), a)
  np.testing.assert_array_equal(Tensor(a.T).numpy(), a.T)


def test_python_data_dtypes():
  assert Tensor(3).dtype == dtypes.int64 and Tensor(3).shape == ()
  assert Tensor(2.5).dtype == dtypes.float32
  assert Tensor(True).dtype == dtypes.bool
  assert Tensor([[1, 2], [3, 4]]).dtype == dtypes.int64
  assert Tensor([1.0, 2]).dtype == dtypes.float32
  assert Tensor([1, 2], dtype=dtypes.float16).dtype == dtypes.float16
  t = Tensor(torch.arange(6).reshape(2, 3))
  assert t.dtype == dtypes.int64 and t.tolist() == [[0, 1, 2], [3, 4, 5]]
  u = Tensor(Tensor([1.5, 2.5]), dtype=dtypes.int32)
  assert u.dtype == dtypes.int32 and u.tolist() == [1, 2]
  assert Tensor.from_torch(torch.ones(2, dtype=torch.float16)).dtype == dtypes.float16


def test_tolist_item():
  assert Tensor([[1.5, 2.0], [3.0, 4.0]]).tolist() == [[1.5, 2.0], [3.0, 4.0]]
  assert Tensor(5).tolist() == 5
  assert Tensor([]).tolist() == []
  x = Tensor([[2.5]])
  assert x.item() == 2.5 and isinstance(x.item(), float)
  assert isinstance(Tensor([3]).item(), int) and Tensor([3]).item() == 3
  assert Tensor(True).item() is True
  assert (Tensor.arange(6).reshape(2, 3)[1, 2]).item() == 5
  assert float(Tensor(1.5)) == 1.5 and int(Tensor(7)) == 7 and bool(Tensor(1))
  with pytest.raises(ValueError): Tensor([1, 2]).item()


def test_properties():
  x = Tensor.zeros(2, 3, 4)
  assert x.ndim == 3 and x.numel() == 24 and x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
  assert x.T.shape == (4, 3, 2) and isinstance(x.device, str)
  assert not x.requires_grad and x.grad is None


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
  # an int condition is truthiness
  assert Tensor([0, 3, -1]).where(Tensor([1.0, 1.0, 1.0]), 0.0).tolist() == [0.0, 1.0, 1.0]
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


# ============================================================ dtype promotion

PROMO_CASES = [
  # (a, b) numpy arrays or Python scalars or ('0d', value, dtype)
  ("int64+float_scalar", np.array([1, 2, 3]), 1.5),
  ("int32+int_scalar", np.array([1, 2, 3], dtype=np.int32), 7),
  ("int8+int_scalar", np.array([1, -2, 3], dtype=np.int8), 100),
  ("uint8+int_scalar", np.array([1, 2, 250], dtype=np.uint8), 3),
  ("int32+int64", np.array([1, 2, 3], dtype=np.int32), np.array([4, 5, 6], dtype=np.int64)),
  ("uint8+int8", np.array([1, 2, 200], dtype=np.uint8), np.array([-1, 5, 100], dtype=np.int8)),
  ("uint8+int32", np.array([1, 2, 200], dtype=np.uint8), np.array([-1, 5, 100], dtype=np.int32)),
  ("int8+int16", np.array([1, 2, 3], dtype=np.int8), np.array([1000, 5, 100], dtype=np.int16)),
  ("float16+float32", np.array([1.5, 2, 3], dtype=np.float16), np.array([0.1, 0.2, 0.3], dtype=np.float32)),
  ("float16+float_scalar", np.array([1.5, 2, 3], dtype=np.float16), 0.1),
  ("float16+int64", np.array([1.5, 2, 3], dtype=np.float16), np.array([1, 2, 3])),
  ("int32+float16", np.array([1, 2, 3], dtype=np.int32), np.array([0.5, 0.25, 0.125], dtype=np.float16)),
  ("bool+bool", np.array([True, False, True]), np.array([True, True, False])),
  ("bool+int_scalar", np.array([True, False, True]), 2),
  ("bool+float_scalar", np.array([True, False, True]), 0.5),
  ("bool+int32", np.array([True, False, True]), np.array([4, 5, 6], dtype=np.int32)),
  ("uint8+bool", np.array([1, 2, 3], dtype=np.uint8), np.array([True, False, True])),
  ("float32+bool_scalar", np.array([1.5, 2.5], dtype=np.float32), True),
  ("int32+0d_int64", np.array([1, 2, 3], dtype=np.int32), ("0d", 5, np.int64)),
  ("int32+0d_float64", np.array([1, 2, 3], dtype=np.int32), ("0d", 0.5, np.float32)),
  ("float16+0d_float32", np.array([1.5, 2, 3], dtype=np.float16), ("0d", 0.5, np.float32)),
  ("0d_float32+0d_float16", ("0d", 1.5, np.float32), ("0d", 0.5, np.float16)),
  ("0d_int64+uint8", ("0d", 7, np.int64), np.array([1, 2, 3], dtype=np.uint8)),
  ("0d_int8+0d_int32", ("0d", 7, np.int8), ("0d", 5, np.int32)),
  ("int64+0d_bool", np.array([1, 2, 3]), ("0d", True, np.bool_)),
]


def _mk(v, fw):
  if isinstance(v, tuple): return (torch.tensor(np.array(v[1], dtype=v[2])) if fw is torch else Tensor(np.array(v[1], dtype=v[2])))
  if isinstance(v, np.ndarray): return torch.tensor(v) if fw is torch else Tensor(v)
  return v


@pytest.mark.parametrize("op", ["add", "mul", "sub", "div", "maximum", "where", "radd", "eq"])
@pytest.mark.parametrize("name,a,b", PROMO_CASES, ids=[p[0] for p in PROMO_CASES])
def test_promotion(name, a, b, op):
  fns = {"add": lambda x, y: x + y, "radd": lambda x, y: y + x, "mul": lambda x, y: x * y, "sub": lambda x, y: x - y,
         "div": lambda x, y: x / y, "eq": lambda x, y: x == y}
  ta, tb, la, lb = _mk(a, torch), _mk(b, torch), _mk(a, Tensor), _mk(b, Tensor)
  if op == "sub" and any(v.dtype == torch.bool for v in (ta, tb) if isinstance(v, torch.Tensor)) or \
     op == "sub" and isinstance(b, bool): pytest.skip("torch refuses bool subtraction")
  if op == "maximum":
    if not isinstance(tb, torch.Tensor): pytest.skip("maximum takes tensors")
    tr, lr = torch.maximum(ta, tb), la.maximum(lb)
  elif op == "where":
    n = max([len(v) for v in (a, b) if isinstance(v, np.ndarray)], default=0)
    cond = np.array([True, False, True, False][:n]) if n else np.array(True)
    tr, lr = torch.where(torch.tensor(cond), ta, tb), Tensor(cond).where(la, lb)
  else:
    tr, lr = fns[op](ta, tb), fns[op](la, lb)
  assert lr.dtype == dtypes.from_any(tr.dtype), f"{name} {op}: {lr.dtype} != torch {tr.dtype}"
  compare(lr.numpy(), tr.numpy(), 1e-3, 1e-3, f"{name} {op}")


def test_promotion_matmul_cat():
  a16, a32 = np.ones((2, 3), dtype=np.float16), np.ones((3, 2), dtype=np.float32)
  assert (Tensor(a16) @ Tensor(a32)).dtype == dtypes.float32
  assert Tensor.cat([Tensor(np.ones(2, dtype=np.int32)), Tensor(np.ones(2, dtype=np.float16))]).dtype == dtypes.float16
  assert Tensor.cat([Tensor(np.ones(2, dtype=np.uint8)), Tensor(np.ones(2, dtype=np.int8))]).dtype == dtypes.int16
  assert (Tensor([1, 2]) @ Tensor([3, 4])).dtype == dtypes.int64 and (Tensor([1, 2]) @ Tensor([3, 4])).item() == 11


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "int8", "uint8", "bool"])
def test_cast(dtype):
  a = np.array([-2.7, -1.0, 0.0, 0.4, 1.5, 3.9, 100.2], dtype=np.float32)
  helper_test_op(None, lambda x: x.to(getattr(torch, dtype)), lambda x: x.cast(getattr(dtypes, dtype)), inputs=[a] if dtype != "uint8" else [np.abs(a)],
                 grad=dtype.startswith("float"), rtol=1e-2, atol=1e-2)
  # the named shortcuts
  t, l = torch.tensor(a), Tensor(a)
  for m in ("float", "half", "int", "long", "bool"):
    r, o = getattr(t, m)(), getattr(l, m)()
    assert o.dtype == dtypes.from_any(r.dtype)
    compare(o.numpy(), r.numpy(), 1e-3, 1e-3, m)


# ============================================================ reductions

RED_DIMS = [None, 0, 1, -1, (0, 2), (-1, -2), (0, 1, 2)]


def _dimkw(dim):
  return {} if dim is None else {"dim": dim}


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", RED_DIMS, ids=str)
@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin", "var", "std", "logsumexp"])
def test_reduce(op, dim, keepdim):
  kw = _dimkw(dim)
  tdim = (0, 1, 2) if dim is None else dim   # torch takes keepdim only with a dim
  tf = (lambda x: torch.logsumexp(x, dim=tdim, keepdim=keepdim)) if op == "logsumexp" else (lambda x: getattr(x, op)(dim=tdim, keepdim=keepdim))
  lf = lambda x: getattr(x, op)(**kw, keepdim=keepdim)
  helper_test_op([(3, 4, 5)], tf, lf)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1, None])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min(op, dim, keepdim):
  if dim is None:
    helper_test_op([(3, 4, 5)], lambda x: getattr(x, op)())
    return
  helper_test_op([(3, 4, 5)], lambda x: getattr(x, op)(dim, keepdim=keepdim))
  a = arr((3, 4, 5))
  tv, ti = getattr(torch.tensor(a), op)(dim, keepdim=keepdim)
  out = getattr(Tensor(a), op)(dim, keepdim=keepdim)
  lv, li = out
  assert out.values is lv and out.indices is li
  assert li.dtype == dtypes.int64
  compare(li.numpy(), ti.numpy(), 0, 0)
  compare(lv.numpy(), tv.numpy(), 0, 0)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "int8"])
@pytest.mark.parametrize("op", ["max", "min", "amax", "amin", "sum", "prod", "argmax", "argmin", "cumsum"])
def test_reduce_int(op, dtype):
  a = np.random.default_rng(13).integers(0 if dtype == "uint8" else -5, 6, size=(3, 4)).astype(dtype)
  helper_test_op(None, lambda x: getattr(x, op)(1), inputs=[a])
  if op != "cumsum": helper_test_op(None, lambda x: getattr(x, op)(), inputs=[a])


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "prod", "var", "logsumexp", "softmax", "log_softmax", "cumsum"])
def test_reduce_float16(op):
  tf = (lambda x: torch.logsumexp(x, 1)) if op == "logsumexp" else (lambda x: getattr(x, op)(1))
  helper_test_op([(3, 6)], tf, lambda x: getattr(x, op)(1), dtype="float16", rtol=2e-2, atol=2e-2, grad_rtol=5e-2, grad_atol=5e-2)


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_reduce_bool(dim):
  a = np.random.default_rng(14).random((4, 5)) < 0.5
  a[0] = True; a[1] = False
  for op in ("any", "all", "sum", "amax"):
    if op == "amax" and dim is None: continue
    helper_test_op(None, lambda x: getattr(x, op)(**_dimkw(dim)), inputs=[a])


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_any_all_numeric(dim):
  a = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [3.0, 4.0, -1.0]], dtype=np.float32)
  helper_test_op(None, lambda x: x.any(**_dimkw(dim)), inputs=[a], grad=False)
  helper_test_op(None, lambda x: x.all(**_dimkw(dim)), inputs=[a], grad=False)
  helper_test_op(None, lambda x: x.all(**_dimkw(dim)), inputs=[a.astype(np.int32)])


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin(op, dim, keepdim):
  if dim is None and keepdim: keepdim = False
  helper_test_op([(4, 5)], lambda x: getattr(x, op)(**_dimkw(dim), keepdim=keepdim))
  # ties: the first index wins
  a = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [0, -1, 5, 5]], dtype=np.float32)
  helper_test_op(None, lambda x: getattr(x, op)(**_dimkw(dim), keepdim=keepdim), inputs=[a])


def test_argmax_nan():
  a = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 0.0]], dtype=np.float32)
  helper_test_op(None, lambda x: x.argmax(1), inputs=[a])
  helper_test_op(None, lambda x: x.amax(1), inputs=[a], grad=False)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_prod(dim, keepdim):
  if dim is None and keepdim: pytest.skip("torch's prod takes no keepdim without dim")
  helper_test_op([(3, 5)], lambda x: x.prod(**_dimkw(dim), keepdim=keepdim) if dim is not None else x.prod(), low=0.5, high=1.5)
  # exact zeros: gradient is the product of the others
  a = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 1.5], [1.0, -2.0, 0.5]], dtype=np.float32)
  helper_test_op(None, lambda x: x.prod(**_dimkw(dim), keepdim=keepdim) if dim is not None else x.prod(), inputs=[a])


@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("dim", [None, 0, (0, 1), -1])
def test_var_std_correction(dim, correction):
  helper_test_op([(4, 6)], lambda x: x.var(**_dimkw(dim), correction=correction))
  helper_test_op([(4, 6)], lambda x: x.std(**_dimkw(dim), correction=correction))


def test_var_unbiased_kw():
  helper_test_op([(4, 6)], lambda x: x.var(1, unbiased=False))
  helper_test_op([(4, 6)], lambda x: x.std(0, unbiased=True, keepdim=True))


def test_reduce_axis_alias():
  a = arr((3, 4))
  for op in ("sum", "mean", "amax"):
    compare(getattr(Tensor(a), op)(axis=1).numpy(), getattr(torch.tensor(a), op)(dim=1).numpy(), 1e-6, 1e-6)


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_cumsum(dim):
  helper_test_op([(3, 4, 5)], lambda x: x.cumsum(dim))
  helper_test_op([(3, 4, 5)], lambda x: x.permute(2, 0, 1).cumsum(dim))


def test_cumsum_edge():
  helper_test_op([(1,)], lambda x: x.cumsum(0))
  helper_test_op([(0, 3)], lambda x: x.cumsum(0))
  helper_test_op([(0, 3)], lambda x: x.cumsum(1))
  helper_test_op(None, lambda x: x.cumsum(0), inputs=[np.array([True, False, True])])


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax(op, dim):
  helper_test_op([(3, 4, 5)], lambda x: getattr(x, op)(dim))
  helper_test_op([(5, 4)], lambda x: getattr(x, op)(min(dim, 1)), low=-10, high=10)


def test_softmax_int_and_dtype():
  a = np.arange(6, dtype=np.int64).reshape(2, 3)
  helper_test_op(None, lambda x: x.float().softmax(1), inputs=[a])
  helper_test_op([(2, 5)], lambda x: x.softmax(-1, dtype=torch.float32) if isinstance(x, torch.Tensor) else x.softmax(-1, dtype=dtypes.float32),
                 dtype="float16", rtol=1e-2, atol=1e-2)


def test_softmax_neg_inf():
  a = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, 2.0]], dtype=np.float32)
  helper_test_op(None, lambda x: x.softmax(1), inputs=[a])
  helper_test_op(None, lambda x: torch.logsumexp(x, 1), lambda x: x.logsumexp(1), inputs=[a])


@pytest.mark.parametrize("op", ["sum", "mean", "prod", "amax", "logsumexp", "any", "all", "var"])
def test_reduce_zero_size(op):
  # reduce over a non-empty dim of a zero-size tensor
  tf = (lambda x: torch.logsumexp(x, 1)) if op == "logsumexp" else (lambda x: getattr(x, op)(1))
  helper_test_op([(0, 3)], tf, lambda x: getattr(x, op)(1))
  # reduce over the empty dim
  if op in ("amax", "logsumexp", "var"): return
  tf = (lambda x: getattr(x, op)(0))
  helper_test_op([(0, 3)], tf, lambda x: getattr(x, op)(0))
  if op in ("sum", "prod", "any", "all"): helper_test_op([(0, 3)], lambda x: getattr(x, op)())


def test_reduce_0d():
  helper_test_op([()], lambda x: x.sum())
  helper_test_op([()], lambda x: x.sum(0))
  helper_test_op([()], lambda x: x.mean(-1, keepdim=True))
  helper_test_op([()], lambda x: x.amax())
  helper_test_op([()], lambda x: x.softmax(0))
  helper_test_op([()], lambda x: x.argmax())
  helper_test_op([()], lambda x: x.prod())
  helper_test_op([()], lambda x: x.cumsum(0))


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "var", "softmax", "logsumexp", "argmax", "cumsum"])
def test_reduce_noncontiguous(op):
  tf = (lambda x: torch.logsumexp(x, 0)) if op == "logsumexp" else (lambda x: getattr(x, op)(0))
  lf = lambda x: getattr(x, op)(0)
  helper_test_op([(6, 4)], lambda x: tf(x.T.flip(0)[:, 1::2]), lambda x: lf(x.T[::-1, 1::2]))
  helper_test_op([(4,)], lambda x: tf(x.unsqueeze(1).expand(4, 3) * 1.5), lambda x: lf(x.unsqueeze(1).expand(4, 3) * 1.5))


def test_reduce_dim_errors():
  x = Tensor.ones(2, 3)
  with pytest.raises((ValueError, IndexError)): x.sum(2)
  with pytest.raises((ValueError, IndexError)): x.sum(-3)


# ============================================================ movement

MOVEMENT = [
  ("reshape", lambda x: x.reshape(6, 4)), ("reshape_tuple", lambda x: x.reshape((4, -1))), ("reshape_-1", lambda x: x.reshape(-1)),
  ("reshape_1s", lambda x: x.reshape(1, 2, 1, 12, 1)), ("view", lambda x: x.view(3, 8)), ("view_tuple", lambda x: x.view((2, 12))),
  ("permute", lambda x: x.permute(2, 0, 1)), ("permute_tuple", lambda x: x.permute((1, 2, 0))), ("permute_neg", lambda x: x.permute(-1, -3, -2)),
  ("transpose", lambda x: x.transpose(0, 2)), ("transpose_neg", lambda x: x.transpose(-1, 0)), ("transpose_same", lambda x: x.transpose(1, 1)),
  ("T", lambda x: x.T), ("mT", lambda x: x.mT),
  ("expand", lambda x: x[:, :1].expand(2, 5, 4)), ("expand_-1", lambda x: x[:, :1].expand(-1, 3, -1)),
  ("expand_new", lambda x: x.expand(2, 2, 3, 4)), ("expand_tuple", lambda x: x[:1].expand((3, 3, 4))),
  ("flatten", lambda x: x.flatten()), ("flatten_1", lambda x: x.flatten(1)), ("flatten_0_1", lambda x: x.flatten(0, 1)),
  ("flatten_neg", lambda x: x.flatten(-2, -1)), ("flatten_kw", lambda x: x.flatten(start_dim=1, end_dim=2)),
  ("unflatten", lambda x: x.unflatten(2, (2, 2))), ("unflatten_-1", lambda x: x.unflatten(-1, (2, -1))),
  ("unsqueeze0", lambda x: x.unsqueeze(0)), ("unsqueeze_end", lambda x: x.unsqueeze(3)), ("unsqueeze_neg", lambda x: x.unsqueeze(-1)),
  ("unsqueeze_neg2", lambda x: x.unsqueeze(-2)),
  ("squeeze", lambda x: x.reshape(2, 1, 3, 1, 4).squeeze()), ("squeeze_dim", lambda x: x.reshape(2, 1, 3, 1, 4).squeeze(1)),
  ("squeeze_noop", lambda x: x.squeeze(0)), ("squeeze_neg", lambda x: x.reshape(2, 3, 4, 1).squeeze(-1)),
  ("squeeze_tuple", lambda x: x.reshape(1, 2, 1, 3, 4).squeeze((0, 2))),
  ("contiguous", lambda x: x.permute(1, 0, 2).contiguous()),
  ("flip0", lambda x: x.flip(0)), ("flip_multi", lambda x: x.flip(0, 2)), ("flip_tuple", lambda x: x.flip((1, -1))),
  ("flip_list", lambda x: x.flip([2])),
  ("repeat", lambda x: x.repeat(2, 1, 3)), ("repeat_more", lambda x: x.repeat(2, 1, 1, 2)), ("repeat_tuple", lambda x: x.repeat((1, 2, 1))),
  ("pad_last", lambda x: F.pad(x, (1, 2)) if isinstance(x, torch.Tensor) else x.pad((1, 2))),
  ("pad_two", lambda x: F.pad(x, (1, 0, 0, 2)) if isinstance(x, torch.Tensor) else x.pad((1, 0, 0, 2))),
  ("pad_all", lambda x: F.pad(x, (1, 1, 2, 2, 1, 0)) if isinstance(x, torch.Tensor) else x.pad((1, 1, 2, 2, 1, 0))),
  ("pad_value", lambda x: F.pad(x, (2, 1, 1, 0), value=-3.5) if isinstance(x, torch.Tensor) else x.pad((2, 1, 1, 0), value=-3.5)),
  ("pad_neg", lambda x: F.pad(x, (-1, -1)) if isinstance(x, torch.Tensor) else x.pad((-1, -1))),
  ("pad_mixed", lambda x: F.pad(x, (-1, 2, 1, -2)) if isinstance(x, torch.Tensor) else x.pad((-1, 2, 1, -2))),
  ("pad_mixed_value", lambda x: F.pad(x, (2, -3, -1, 1), value=7.0) if isinstance(x, torch.Tensor) else x.pad((2, -3, -1, 1), value=7.0)),
  ("pad_zero", lambda x: F.pad(x, (0, 0, 0, 0)) if isinstance(x, torch.Tensor) else x.pad((0, 0, 0, 0))),
  ("pad_crop_all", lambda x: F.pad(x, (-2, -2)) if isinstance(x, torch.Tensor) else x.pad((-2, -2))),
  ("chain", lambda x: x.permute(2, 1, 0).reshape(4, 6)[1:, ::2].flip(1).unsqueeze(1).expand(3, 2, 3)),
]


@pytest.mark.parametrize("name,fn", MOVEMENT, ids=[m[0] for m in MOVEMENT])
def test_movement(name, fn):
  helper_test_op([(2, 3, 4)], fn)


@pytest.mark.parametrize("name,fn", [m for m in MOVEMENT if m[0] in ("permute", "flip_multi", "repeat", "pad_value", "pad_mixed", "expand_new", "flatten")],
                         ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("dtype", ["int32", "float16", "bool"])
def test_movement_dtypes(name, fn, dtype):
  if dtype == "bool" and "pad_" in name: pytest.skip("torch pads bools only with a bool value")
  helper_test_op([(2, 3, 4)], fn, dtype=dtype, low=-5, high=5)


def test_movement_zero_size():
  helper_test_op([(0, 3)], lambda x: x.reshape(3, 0))
  helper_test_op([(0, 3)], lambda x: x.permute(1, 0))
  helper_test_op([(0, 3)], lambda x: F.pad(x, (1, 1, 1, 1)) if isinstance(x, torch.Tensor) else x.pad((1, 1, 1, 1)))
  helper_test_op([(2, 3)], lambda x: x.repeat(0, 1))
  helper_test_op([(2, 1)], lambda x: x.expand(2, 0))
  helper_test_op([(0, 3)], lambda x: x.flip(0))
  helper_test_op([(0,)], lambda x: x.unsqueeze(0).reshape(1, 0, 1))


def test_movement_0d():
  helper_test_op([()], lambda x: x.reshape(1, 1))
  helper_test_op([()], lambda x: x.expand(3, 2))
  helper_test_op([()], lambda x: x.unsqueeze(0))
  helper_test_op([()], lambda x: x.flatten())
  helper_test_op([(1, 1)], lambda x: x.reshape(()))
  helper_test_op([(1,)], lambda x: x.squeeze())


def test_movement_errors():
  x = Tensor.ones(2, 3)
  with pytest.raises(ValueError): x.reshape(4, 2)
  with pytest.raises(ValueError): x.permute(0, 0)
  with pytest.raises(ValueError): x.expand(3, 3)
  with pytest.raises(ValueError): x.pad((1, 2, 3))


# ============================================================ indexing

def _idx_cases():
  # each: name, fn(x, mk) where mk(list or array) makes an index tensor of the framework
  return [
    ("int", lambda x, mk: x[1]), ("neg_int", lambda x, mk: x[-1]), ("int_int", lambda x, mk: x[2, -3]),
    ("int3", lambda x, mk: x[1, 2, 3]), ("slice", lambda x, mk: x[1:3]), ("slice_open", lambda x, mk: x[:, 2:]),
    ("slice_neg", lambda x, mk: x[-3:-1, :-2]), ("slice_step", lambda x, mk: x[::2, 1::3]), ("slice_step3", lambda x, mk: x[:, :, 1:6:3]),
    ("slice_step_big", lambda x, mk: x[::10]), ("slice_empty", lambda x, mk: x[3:1]), ("slice_oob", lambda x, mk: x[2:100, -100:2]),
    ("neg_step", lambda x, mk: x[::-1]), ("neg_step2", lambda x, mk: x[:, ::-2]), ("neg_step_bounds", lambda x, mk: x[3:0:-2, 4:1:-1]),
    ("neg_step_all", lambda x, mk: x[::-1, ::-3, ::-4]), ("neg_step_neg_start", lambda x, mk: x[-1:-4:-2]),
    ("neg_step_int", lambda x, mk: x[2, ::-2, mk([1, 0])]),
    ("none", lambda x, mk: x[None]), ("none_mid", lambda x, mk: x[:, None, 1]), ("none_end", lambda x, mk: x[..., None]),
    ("ellipsis", lambda x, mk: x[..., 1]), ("ellipsis_mid", lambda x, mk: x[1, ..., 2:4]), ("ellipsis_only", lambda x, mk: x[...]),
    ("ellipsis_none", lambda x, mk: x[None, ..., None, 0]),
    ("tensor", lambda x, mk: x[mk([0, 2, 2, 1])]), ("tensor_neg", lambda x, mk: x[mk([-1, 0])]),
    ("tensor_2d", lambda x, mk: x[mk([[0, 1], [3, 3]])]), ("tensor_dim1", lambda x, mk: x[:, mk([4, 0])]),
    ("tensor_two", lambda x, mk: x[mk([0, 1, 2]), mk([1, 2, 0])]), ("tensor_bcast", lambda x, mk: x[mk([[0], [3]]), mk([1, 4, 2])]),
    ("tensor_sep", lambda x, mk: x[mk([0, 1]), :, mk([5, 0])]), ("tensor_int", lambda x, mk: x[1, mk([2, 0]), 3]),
    ("tensor_adj", lambda x, mk: x[:, mk([1, 2]), mk([0, 5])]), ("tensor_slice", lambda x, mk: x[mk([2, 0]), 1:4:2]),
    ("tensor_ellipsis", lambda x, mk: x[..., mk([0, 0, 5])]), ("tensor_none", lambda x, mk: x[None, mk([1, 0])]),
    ("list", lambda x, mk: x[[0, 3, 1]]), ("list_neg", lambda x, mk: x[:, [-1, -5]]), ("list_two", lambda x, mk: x[[0, 1], [2, 3]]),
    ("tensor_0d", lambda x, mk: x[mk(2)]),
    ("bool_mask", lambda x, mk: x[mk(np.array([True, False, True, False]))]),
    ("bool_mask_2d", lambda x, mk: x[mk(np.arange(20).reshape(4, 5) % 3 == 0)]),
    ("bool_mask_full", lambda x, mk: x[x > 0.5]), ("bool_mask_dim1", lambda x, mk: x[:, mk(np.array([True, False, False, True, True]))]),
    ("bool_mask_none", lambda x, mk: x[mk(np.zeros(4, dtype=bool))]),
  ]


IDX = _idx_cases()
# torch has no negative slice steps: the same elements, read from a flipped tensor
TORCH_NEG_STEP = {
  "neg_step": lambda x, mk: x.flip(0), "neg_step2": lambda x, mk: x.flip(1)[:, ::2],
  "neg_step_bounds": lambda x, mk: x.flip(0, 1)[0:3:2, 0:3], "neg_step_all": lambda x, mk: x.flip(0, 1, 2)[:, ::3, ::4],
  "neg_step_neg_start": lambda x, mk: x.flip(0)[0:3:2], "neg_step_int": lambda x, mk: x[2].flip(0)[::2, mk([1, 0])],
}


@pytest.mark.parametrize("name,fn", IDX, ids=[i[0] for i in IDX])
def test_indexing(name, fn):
  mk_t = lambda v: torch.tensor(v)
  mk_l = lambda v: Tensor(np.asarray(v))
  tfn = TORCH_NEG_STEP.get(name, fn)
  helper_test_op([(4, 5, 6)], lambda x: tfn(x, mk_t), lambda x: fn(x, mk_l))


@pytest.mark.parametrize("name,fn", [i for i in IDX if i[0] in ("int", "slice_step", "neg_step2", "tensor_two", "bool_mask_2d", "ellipsis_none")],
                         ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("dtype", ["int32", "float16", "bool"])
def test_indexing_dtypes(name, fn, dtype):
  if name == "bool_mask_full" and dtype == "bool": pytest.skip()
  tfn = TORCH_NEG_STEP.get(name, fn)
  helper_test_op([(4, 5, 6)], lambda x: tfn(x, lambda v: torch.tensor(v)), lambda x: fn(x, lambda v: Tensor(np.asarray(v))), dtype=dtype, low=-3, high=3)


def test_indexing_noncontiguous():
  helper_test_op([(4, 6)], lambda x: x.T.flip(0)[::2, [0, 3]], lambda x: x.T[::-2, [0, 3]])
  helper_test_op([(4, 6)], lambda x: x.T.expand(2, 6, 4)[1, 1:5:2, -1])
  helper_test_op([(3,)], lambda x: x.unsqueeze(0).expand(4, 3)[torch.tensor([0, 3, 3])] if isinstance(x, torch.Tensor)
                 else x.unsqueeze(0).expand(4, 3)[Tensor([0, 3, 3])])


def test_indexing_int_dtypes_of_index():
  a = arr((5, 3))
  for dt in (np.int32, np.int64, np.int8, np.uint8):
    idx = np.array([4, 0, 2], dtype=dt)
    compare(Tensor(a)[Tensor(idx)].numpy(), torch.tensor(a)[torch.tensor(idx).long()].numpy(), 0, 0)


def test_index_repeated_grad():
  # repeated indices accumulate gradient
  helper_test_op([(5,)], lambda x: x[torch.tensor([1, 1, 1, 3])] if isinstance(x, torch.Tensor) else x[Tensor([1, 1, 1, 3])])


def test_indexing_errors():
  x = Tensor.ones(3, 4)
  with pytest.raises(IndexError): x[3]
  with pytest.raises(IndexError): x[-4]
  with pytest.raises(IndexError): x[0, 0, 0]


def test_iter_len():
  a = arr((3, 2))
  x = Tensor(a)
  assert len(x) == 3
  for row, ref in zip(x, a): np.testing.assert_array_equal(row.numpy(), ref)


# ============================================================ joining, splitting, gather/scatter

@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim):
  shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
  shapes = [tuple(s if i != dim % 3 else n for i, s in enumerate(sh)) for sh, n in zip(shapes, (1, 3, 2))]
  helper_test_op(shapes, lambda a, b, c: torch.cat([a, b, c], dim), lambda a, b, c: Tensor.cat([a, b, c], dim))
  helper_test_op(shapes, lambda a, b, c: torch.cat((a, b * 2, c.exp()), dim=dim), lambda a, b, c: Tensor.cat((a, b * 2, c.exp()), dim=dim))


def test_cat_edge():
  helper_test_op([(2, 3)], lambda a: torch.cat([a]), lambda a: Tensor.cat([a]))
  helper_test_op([(2, 3), (0, 3)], lambda a, b: torch.cat([a, b]), lambda a, b: Tensor.cat([a, b]))
  helper_test_op([(2, 3), (2, 3)], lambda a, b: torch.cat([a.T, b.flip(1).T], 1), lambda a, b: Tensor.cat([a.T, b[:, ::-1].T], 1))
  helper_test_op([(2, 3)], lambda a: torch.cat([a, a], 0), lambda a: Tensor.cat([a, a], 0))
  with pytest.raises(ValueError): Tensor.cat([Tensor.ones(2, 3), Tensor.ones(3, 3)], 1)


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_stack(dim):
  helper_test_op([(2, 3), (2, 3), (2, 3)], lambda a, b, c: torch.stack([a, b, c], dim), lambda a, b, c: Tensor.stack([a, b, c], dim))


def test_stack_edge():
  helper_test_op([()], lambda a: torch.stack([a, a * 2]), lambda a: Tensor.stack([a, a * 2]))
  helper_test_op([(0, 2)], lambda a: torch.stack([a, a], 1), lambda a: Tensor.stack([a, a], 1))
  with pytest.raises(ValueError): Tensor.stack([Tensor.ones(2), Tensor.ones(3)])


def _join(parts, dim, fw):
  return (torch.cat if fw is torch else Tensor.cat)([p * (i + 1) for i, p in enumerate(parts)], dim)


@pytest.mark.parametrize("args", [(2, 0), (3, 0), (1, 1), (4, 1), (10, 0), ([1, 4], 0), ([2, 0, 3], 1), ([5], 0), (2, -1)], ids=str)
def test_split(args):
  size, dim = args
  shape = (5, 5)
  tl = lambda x: list(torch.split(x, size, dim))
  ll = lambda x: x.split(size, dim)
  t_parts, l_parts = tl(torch.tensor(arr(shape))), ll(Tensor(arr(shape)))
  assert [tuple(p.shape) for p in t_parts] == [p.shape for p in l_parts]
  helper_test_op([shape], lambda x: _join(tl(x), dim, torch), lambda x: _join(ll(x), dim, Tensor))


@pytest.mark.parametrize("args", [(2, 0), (3, 0), (5, 1), (6, 1), (1, 0), (4, -1)], ids=str)
def test_chunk(args):
  n, dim = args
  shape = (5, 7)
  t_parts, l_parts = torch.chunk(torch.tensor(arr(shape)), n, dim), Tensor(arr(shape)).chunk(n, dim)
  assert [tuple(p.shape) for p in t_parts] == [p.shape for p in l_parts]
  helper_test_op([shape], lambda x: _join(list(torch.chunk(x, n, dim)), dim, torch), lambda x: _join(x.chunk(n, dim), dim, Tensor))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather(dim):
  x_shape = (4, 5)
  idx_shape = {0: (3, 5), 1: (4, 3), -1: (2, 6)}[dim]
  if dim == -1: x_shape = (4, 7)
  idx = np.random.default_rng(15).integers(0, x_shape[dim], size=idx_shape)
  helper_test_op([x_shape], lambda x: x.gather(dim, torch.tensor(idx)), lambda x: x.gather(dim, Tensor(idx)))


def test_gather_3d_and_dtypes():
  idx = np.random.default_rng(16).integers(0, 4, size=(2, 3, 4))
  helper_test_op([(2, 4, 5)], lambda x: x.gather(1, torch.tensor(idx)), lambda x: x.gather(1, Tensor(idx)))
  helper_test_op([(2, 4, 5)], lambda x: x.gather(1, torch.tensor(idx)), lambda x: x.gather(1, Tensor(idx)), dtype="int32", low=-9, high=9)
  helper_test_op([(2, 4, 5)], lambda x: torch.gather(x.permute(0, 2, 1), 2, torch.tensor(idx).permute(0, 2, 1)[:, :3]),
                 lambda x: x.permute(0, 2, 1).gather(2, Tensor(idx).permute(0, 2, 1)[:, :3]))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_add(dim):
  idx = np.random.default_rng(17).integers(0, 4, size=(3, 4)) if dim == 0 else np.random.default_rng(17).integers(0, 5, size=(4, 3))
  src_shape = (3, 4) if dim == 0 else (4, 3)
  helper_test_op([(4, 5), src_shape], lambda x, s: x.scatter_add(dim, torch.tensor(idx), s), lambda x, s: x.scatter_add(dim, Tensor(idx), s))


def test_scatter_add_larger_src_and_int():
  idx = np.array([[0, 1, 0], [2, 2, 1]])
  # (torch's own backward rejects a src larger than index: values only)
  helper_test_op([(3, 4), (3, 5)], lambda x, s: x.scatter_add(0, torch.tensor(idx), s), lambda x, s: x.scatter_add(0, Tensor(idx), s), grad=False)
  xi = np.zeros((3, 4), dtype=np.int64); si = np.arange(15).reshape(3, 5)
  helper_test_op(None, lambda x, s: x.scatter_add(1, torch.tensor(idx), s) if isinstance(x, torch.Tensor) else x.scatter_add(1, Tensor(idx), s),
                 inputs=[xi, si])


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((3, 4), ())], ids=str)
def test_masked_fill(shapes):
  m = np.asarray(np.random.default_rng(18).random(shapes[1]) < 0.5)
  helper_test_op([shapes[0]], lambda x: x.masked_fill(torch.tensor(m), -2.5), lambda x: x.masked_fill(Tensor(m), -2.5))
  helper_test_op([shapes[0]], lambda x: x.masked_fill(torch.tensor(m), float("-inf")).exp(), lambda x: x.masked_fill(Tensor(m), float("-inf")).exp())
  helper_test_op([shapes[0]], lambda x: x.masked_fill(torch.tensor(m), 3), lambda x: x.masked_fill(Tensor(m), 3), dtype="int32", low=-5, high=5)


@pytest.mark.parametrize("nc", [-1, 5, 7])
def test_one_hot(nc):
  a = np.array([[0, 3, 1], [4, 4, 2]])
  helper_test_op(None, lambda x: F.one_hot(x, nc) if isinstance(x, torch.Tensor) else x.one_hot(nc), inputs=[a])
  helper_test_op(None, lambda x: F.one_hot(x, nc) if isinstance(x, torch.Tensor) else x.one_hot(nc), inputs=[a[0]])


# ============================================================ linear algebra

MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)),
                 ((5, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (4, 3, 5)), ((1, 3), (3, 1)), ((2, 0), (0, 3)), ((0, 3), (3, 2)),
                 ((4, 2, 3), (1, 3, 2)), ((2, 3), (2, 2, 3, 1))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
  helper_test_op(shapes, lambda a, b: a @ b)
  helper_test_op(shapes, lambda a, b: a.matmul(b))


def test_matmul_noncontiguous():
  helper_test_op([(4, 3), (5, 4)], lambda a, b: a.T @ b.T)
  helper_test_op([(6, 3), (4, 8)], lambda a, b: a[::2] @ b.flip(1)[1:, ::2], lambda a, b: a[::2] @ b[1:, ::-2])
  helper_test_op([(3,), (3, 4)], lambda a, b: a.unsqueeze(0).expand(5, 3) @ b)
  helper_test_op([(2, 3, 4), (2, 5, 4)], lambda a, b: a @ b.transpose(-1, -2))


@pytest.mark.parametrize("dtype", ["int32", "int64", "float16"])
def test_matmul_dtypes(dtype):
  helper_test_op([(3, 4), (4, 2)], lambda a, b: a @ b, dtype=dtype, low=-3, high=3, rtol=1e-2, atol=1e-2, grad_rtol=2e-2, grad_atol=2e-2)
  helper_test_op([(4,), (4,)], lambda a, b: a @ b, dtype=dtype, low=-3, high=3, rtol=1e-2, atol=1e-2, grad_rtol=2e-2, grad_atol=2e-2)


def test_matmul_errors():
  with pytest.raises(ValueError): Tensor.ones(2, 3) @ Tensor.ones(2, 3)
  with pytest.raises(ValueError): Tensor.ones(3) @ Tensor.ones(4)


def test_dot():
  helper_test_op([(5,), (5,)], lambda a, b: a.dot(b))
  helper_test_op([(6,), (3,)], lambda a, b: a[::2].dot(b.flip(0)))
  helper_test_op([(0,), (0,)], lambda a, b: a.dot(b))
  helper_test_op([(4,), (4,)], lambda a, b: a.dot(b), dtype="int32", low=-5, high=5)
  with pytest.raises(ValueError): Tensor.ones(2, 2).dot(Tensor.ones(2))


@pytest.mark.parametrize("x_shape", [(5,), (3, 5), (2, 3, 5), (0, 5)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(x_shape, bias):
  shapes = [x_shape, (4, 5)] + ([(4,)] if bias else [])
  helper_test_op(shapes, lambda x, w, *b: F.linear(x, w, *b), lambda x, w, *b: x.linear(w, *b))


# ============================================================ convolution and pooling

CONV_CASES = [
  # x shape, w shape, kwargs
  ((2, 3, 7, 7), (4, 3, 3, 3), {}),
  ((1, 2, 6, 5), (3, 2, 1, 1), {}),
  ((2, 3, 7, 7), (4, 3, 3, 3), {"stride": 2}),
  ((2, 3, 8, 7), (4, 3, 3, 2), {"stride": (2, 3)}),
  ((2, 3, 7, 7), (4, 3, 3, 3), {"padding": 1}),
  ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": (2, 0)}),
  ((1, 2, 9, 9), (3, 2, 3, 3), {"dilation": 2}),
  ((1, 2, 9, 8), (3, 2, 2, 3), {"dilation": (2, 1), "padding": 1, "stride": 2}),
  ((2, 4, 6, 6), (6, 2, 3, 3), {"groups": 2}),
  ((2, 4, 6, 6), (4, 1, 3, 3), {"groups": 4, "padding": 1}),
  ((1, 6, 7, 7), (3, 2, 3, 3), {"groups": 3, "stride": 2, "padding": 1, "dilation": 2}),
  ((1, 1, 5, 5), (1, 1, 5, 5), {}),
  ((1, 2, 4, 4), (2, 2, 3, 3), {"stride": 3}),
  ((2, 3, 5, 5), (4, 3, 3, 3), {"padding": "same"}),
  ((2, 3, 5, 5), (4, 3, 2, 2), {"padding": "valid"}),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs,ws,kw", CONV_CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CONV_CASES])
def test_conv2d(xs, ws, kw, bias):
  shapes = [xs, ws] + ([(ws[0],)] if bias else [])
  helper_test_op(shapes, lambda x, w, *b: F.conv2d(x, w, *b, **kw), lambda x, w, *b: x.conv2d(w, *b, **kw), rtol=1e-4, atol=1e-4,
                 grad_rtol=1e-3, grad_atol=1e-3)


def test_conv2d_noncontiguous_and_kw():
  helper_test_op([(3, 2, 6, 6), (4, 3, 3, 3), (4,)], lambda x, w, b: F.conv2d(x.permute(1, 0, 3, 2), w, bias=b, padding=1),
                 lambda x, w, b: x.permute(1, 0, 3, 2).conv2d(w, bias=b, padding=1), atol=1e-4, grad_atol=1e-3)
  helper_test_op([(2, 3, 6, 6), (4, 3, 3, 3)], lambda x, w: F.conv2d(x.flip(2), w), lambda x, w: x[:, :, ::-1].conv2d(w), atol=1e-4, grad_atol=1e-3)


def test_conv2d_errors():
  with pytest.raises(ValueError): Tensor.ones(1, 3, 5, 5).conv2d(Tensor.ones(2, 2, 3, 3))
  with pytest.raises(ValueError): Tensor.ones(1, 3, 2, 2).conv2d(Tensor.ones(2, 3, 3, 3))


POOL_CASES = [
  ((2, 3, 6, 6), {"kernel_size": 2}),
  ((2, 3, 7, 7), {"kernel_size": 3}),
  ((2, 3, 7, 7), {"kernel_size": 3, "stride": 2}),
  ((1, 2, 8, 7), {"kernel_size": (2, 3), "stride": (2, 1)}),
  ((1, 2, 6, 6), {"kernel_size": 3, "stride": 1, "padding": 1}),
  ((1, 2, 7, 6), {"kernel_size": (3, 2), "stride": 2, "padding": (1, 0)}),
  ((3, 5, 5), {"kernel_size": 2, "stride": 1}),
  ((1, 1, 4, 4), {"kernel_size": 4}),
  ((1, 1, 5, 5), {"kernel_size": 2, "stride": 3}),
]


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("xs,kw", POOL_CASES, ids=[f"{c[0]}-{c[1]}" for c in POOL_CASES])
def test_pool2d(op, xs, kw):
  helper_test_op([xs], lambda x: getattr(F, op)(x, **kw), lambda x: getattr(x, op)(**kw))


def test_pool2d_extra():
  helper_test_op([(1, 2, 6, 6)], lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                 lambda x: x.avg_pool2d(3, 2, 1, count_include_pad=False))
  helper_test_op([(1, 2, 7, 7)], lambda x: F.max_pool2d(x, 2, 1, dilation=2), lambda x: x.max_pool2d(2, 1, dilation=2))
  helper_test_op([(2, 1, 6, 6)], lambda x: F.max_pool2d(x.permute(1, 0, 3, 2).flip(-1), 2), lambda x: x.permute(1, 0, 3, 2)[..., ::-1].max_pool2d(2))
  # all-negative input with padding: padded cells must not win
  helper_test_op([(1, 1, 4, 4)], lambda x: F.max_pool2d(x, 3, 1, 1), lambda x: x.max_pool2d(3, 1, 1), low=-3, high=-1)


# ============================================================ normalisation

@pytest.mark.parametrize("shape,norm", [((2, 5), (5,)), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 4)), ((4, 6), 6)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(shape, norm, affine):
  ns = (norm,) if isinstance(norm, int) else norm
  shapes = [shape] + ([ns, ns] if affine else [])
  helper_test_op(shapes, lambda x, *wb: F.layer_norm(x, ns, *wb), lambda x, *wb: x.layer_norm(norm, *wb), atol=1e-4, grad_atol=1e-3)


def test_layer_norm_eps_and_weight_only():
  helper_test_op([(3, 4), (4,)], lambda x, w: F.layer_norm(x, (4,), w, eps=1e-2), lambda x, w: x.layer_norm(4, w, eps=1e-2), atol=1e-4, grad_atol=1e-3)
  helper_test_op([(3, 4)], lambda x: F.layer_norm(x * 0.0 + 1.0, (4,)), lambda x: (x * 0.0 + 1.0).layer_norm(4), atol=1e-4, grad_atol=1e-3)


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5), (2, 3, 4, 4)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train(shape, affine):
  c = shape[1]
  rm0, rv0 = arr((c,), -0.5, 0.5), arr((c,), 0.5, 1.5)
  trm, trv = torch.tensor(rm0), torch.tensor(rv0)
  lrm, lrv = Tensor(rm0.copy()), Tensor(rv0.copy())
  shapes = [shape] + ([(c,), (c,)] if affine else [])
  helper_test_op(shapes, lambda x, *wb: F.batch_norm(x, trm, trv, *wb, training=True, momentum=0.2),
                 lambda x, *wb: x.batch_norm(lrm, lrv, *wb, training=True, momentum=0.2), atol=1e-4, grad_atol=1e-3)
  compare(lrm.numpy(), trm.numpy(), 1e-5, 1e-6, "running_mean")
  compare(lrv.numpy(), trv.numpy(), 1e-5, 1e-6, "running_var")


def test_batch_norm_train_no_running_stats():
  helper_test_op([(4, 3, 2)], lambda x: F.batch_norm(x, None, None, training=True), lambda x: x.batch_norm(None, None, training=True),
                 atol=1e-4, grad_atol=1e-3)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 4)], ids=str)
def test_batch_norm_eval(shape):
  c = shape[1]
  rm, rv = arr((c,), -0.5, 0.5), arr((c,), 0.5, 1.5)
  helper_test_op([shape, (c,), (c,)], lambda x, w, b: F.batch_norm(x, torch.tensor(rm), torch.tensor(rv), w, b, training=False, eps=1e-3),
                 lambda x, w, b: x.batch_norm(Tensor(rm), Tensor(rv), w, b, training=False, eps=1e-3), atol=1e-5, grad_atol=1e-4)


def test_rms_norm():
  helper_test_op([(3, 6), (6,)], lambda x, w: F.rms_norm(x, (6,), w), lambda x, w: x.rms_norm(6, w), atol=1e-5, grad_atol=1e-4)
  helper_test_op([(2, 3, 6)], lambda x: F.rms_norm(x, (3, 6), eps=1e-3), lambda x: x.rms_norm((3, 6), eps=1e-3), atol=1e-5, grad_atol=1e-4)


# ============================================================ attention, embedding, dropout

@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 5, 4), (2, 5, 6)), ((2, 2, 4, 8), (2, 2, 4, 8), (2, 2, 4, 8)), ((1, 3, 4), (1, 3, 4), (1, 3, 2))], ids=str)
@pytest.mark.parametrize("mask", ["none", "causal", "bool", "float", "bool_bcast"])
def test_sdpa(shapes, mask):
  L, S = shapes[0][-2], shapes[1][-2]
  if mask == "causal":
    kw_t = kw_l = {"is_causal": True}
  elif mask == "none":
    kw_t = kw_l = {}
  else:
    r = np.random.default_rng(19)
    if mask == "float": m = r.uniform(-1, 1, size=(L, S)).astype(np.float32)
    elif mask == "bool":
      m = r.random((L, S)) < 0.7; m[:, 0] = True     # no fully-masked rows
    else:
      m = r.random((shapes[0][0],) + (1,) * (len(shapes[0]) - 2) + (S,)) < 0.7; m[..., 0] = True
    kw_t, kw_l = {"attn_mask": torch.tensor(m)}, {"attn_mask": Tensor(m)}
  helper_test_op(shapes, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw_t),
                 lambda q, k, v: q.scaled_dot_product_attention(k, v, **kw_l), atol=1e-5, grad_atol=1e-4)


def test_sdpa_scale_and_noncontiguous():
  helper_test_op([(2, 4, 3), (2, 4, 3), (2, 4, 3)], lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3),
                 lambda q, k, v: q.scaled_dot_product_attention(k, v, scale=0.3), atol=1e-5, grad_atol=1e-4)
  helper_test_op([(4, 2, 3), (4, 2, 3), (4, 2, 3)],
                 lambda q, k, v: F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=True),
                 lambda q, k, v: q.transpose(0, 1).scaled_dot_product_attention(k.transpose(0, 1), v.transpose(0, 1), is_causal=True),
                 atol=1e-5, grad_atol=1e-4)


@pytest.mark.parametrize("idx_shape", [(5,), (2, 3), (), (0,)], ids=str)
def test_embedding(idx_shape):
  idx = np.random.default_rng(20).integers(0, 6, size=idx_shape)
  helper_test_op([(6, 4)], lambda w: F.embedding(torch.tensor(idx), w), lambda w: Tensor(idx).embedding(w))


def test_embedding_repeated_and_int32():
  idx = np.array([[1, 1, 0], [1, 5, 5]], dtype=np.int32)
  helper_test_op([(6, 3)], lambda w: F.embedding(torch.tensor(idx).long(), w), lambda w: Tensor(idx).embedding(w))


def test_dropout():
  Tensor.manual_seed(5)
  x = Tensor.ones(100, 100)
  out = x.dropout(0.3).numpy()
  kept = out != 0
  assert abs(kept.mean() - 0.7) < 0.03
  np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
  np.testing.assert_array_equal(x.dropout(0.3, training=False).numpy(), x.numpy())
  np.testing.assert_array_equal(x.dropout(0.0).numpy(), x.numpy())
  assert (x.dropout(1.0).numpy() == 0).all()
  # gradient is the same mask, scaled
  w = Tensor.ones(50, 50, requires_grad=True)
  y = w.dropout(0.5)
  y.sum().backward()
  np.testing.assert_array_equal(w.grad.numpy(), y.numpy())


# ============================================================ losses

@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4, 5), (5,), (2, 5, 3)], ids=str)
def test_cross_entropy_indices(shape, reduction, smoothing):
  tshape = shape[:1] + shape[2:] if len(shape) > 1 else ()
  tgt = np.random.default_rng(21).integers(0, 5, size=tshape)
  helper_test_op([shape], lambda x: F.cross_entropy(x, torch.tensor(tgt), reduction=reduction, label_smoothing=smoothing),
                 lambda x: x.cross_entropy(Tensor(tgt), reduction=reduction, label_smoothing=smoothing), atol=1e-5, grad_atol=1e-4)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(4, 5), (5,), (2, 5, 3)], ids=str)
def test_cross_entropy_probs(shape, smoothing):
  cdim = 1 if len(shape) > 1 else 0
  p = np.random.default_rng(22).random(shape).astype(np.float32)
  p = p / p.sum(cdim, keepdims=True)
  helper_test_op([shape], lambda x: F.cross_entropy(x, torch.tensor(p), label_smoothing=smoothing),
                 lambda x: x.cross_entropy(Tensor(p), label_smoothing=smoothing), atol=1e-5, grad_atol=1e-4)
  # the probabilities get a gradient too
  helper_test_op([shape, shape], lambda x, q: F.cross_entropy(x, q.softmax(cdim), label_smoothing=smoothing),
                 lambda x, q: x.cross_entropy(q.softmax(cdim), label_smoothing=smoothing), atol=1e-5, grad_atol=1e-4)


def test_cross_entropy_ignore_index_and_weight():
  tgt = np.array([0, 2, -100, 4, 1])
  w = np.array([0.5, 1.0, 2.0, 1.5, 0.2], dtype=np.float32)
  for smoothing in (0.0, 0.1):
    for reduction in ("mean", "sum", "none"):
      helper_test_op([(5, 5)], lambda x: F.cross_entropy(x, torch.tensor(tgt), weight=torch.tensor(w), reduction=reduction, label_smoothing=smoothing),
                     lambda x: x.cross_entropy(Tensor(tgt), weight=Tensor(w), reduction=reduction, label_smoothing=smoothing),
                     atol=1e-5, grad_atol=1e-4)
  tgt2 = np.array([0, 2, 2, 4, 1])
  helper_test_op([(5, 5)], lambda x: F.cross_entropy(x, torch.tensor(tgt2), ignore_index=2),
                 lambda x: x.cross_entropy(Tensor(tgt2), ignore_index=2), atol=1e-5, grad_atol=1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4, 5), (5,), (2, 5, 3)], ids=str)
def test_nll_loss(shape, reduction):
  tshape = shape[:1] + shape[2:] if len(shape) > 1 else ()
  tgt = np.random.default_rng(23).integers(0, 5, size=tshape)
  helper_test_op([shape], lambda x: F.nll_loss(x.log_softmax(1 if len(shape) > 1 else 0), torch.tensor(tgt), reduction=reduction),
                 lambda x: x.log_softmax(1 if len(shape) > 1 else 0).nll_loss(Tensor(tgt), reduction=reduction), atol=1e-5, grad_atol=1e-4)


def test_nll_loss_weight_ignore():
  tgt = np.array([0, 2, 1, 1, 3])
  w = np.array([0.5, 1.0, 2.0, 1.5], dtype=np.float32)
  helper_test_op([(5, 4)], lambda x: F.nll_loss(x, torch.tensor(tgt), weight=torch.tensor(w)), lambda x: x.nll_loss(Tensor(tgt), weight=Tensor(w)))
  helper_test_op([(5, 4)], lambda x: F.nll_loss(x, torch.tensor(tgt), ignore_index=1), lambda x: x.nll_loss(Tensor(tgt), ignore_index=1))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy(reduction, weighted):
  t = np.random.default_rng(24).random((3, 4)).astype(np.float32)
  w = np.random.default_rng(25).random((3, 4)).astype(np.float32)
  kw_t = {"weight": torch.tensor(w)} if weighted else {}
  kw_l = {"weight": Tensor(w)} if weighted else {}
  helper_test_op([(3, 4)], lambda x: F.binary_cross_entropy(x, torch.tensor(t), reduction=reduction, **kw_t),
                 lambda x: x.binary_cross_entropy(Tensor(t), reduction=reduction, **kw_l), low=0.05, high=0.95, atol=1e-5, grad_atol=1e-4)
  # the target gets a gradient too
  helper_test_op([(3, 4), (3, 4)], lambda x, y: F.binary_cross_entropy(x, y, reduction=reduction), lambda x, y: x.binary_cross_entropy(y, reduction=reduction),
                 low=0.05, high=0.95, atol=1e-5, grad_atol=1e-4)


def test_binary_cross_entropy_extremes():
  x = np.array([0.0, 1.0, 0.5, 1e-30, 1.0 - 1e-7], dtype=np.float32)
  t = np.array([1.0, 0.0, 0.5, 1.0, 0.0], dtype=np.float32)
  helper_test_op(None, lambda x: F.binary_cross_entropy(x, torch.tensor(t), reduction="none"),
                 lambda x: x.binary_cross_entropy(Tensor(t), reduction="none"), inputs=[x], grad=False, atol=1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extra", ["none", "weight", "pos_weight"])
def test_bce_with_logits(reduction, extra):
  t = np.random.default_rng(26).random((3, 4)).astype(np.float32)
  w = np.random.default_rng(27).random((4,)).astype(np.float32) + 0.5
  kw_t = {extra: torch.tensor(w)} if extra != "none" else {}
  kw_l = {extra: Tensor(w)} if extra != "none" else {}
  helper_test_op([(3, 4)], lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(t), reduction=reduction, **kw_t),
                 lambda x: x.binary_cross_entropy_with_logits(Tensor(t), reduction=reduction, **kw_l), low=-4, high=4, atol=1e-5, grad_atol=1e-4)
  helper_test_op([(3, 4), (3, 4)], lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid(), reduction=reduction, **kw_t),
                 lambda x, y: x.binary_cross_entropy_with_logits(y.sigmoid(), reduction=reduction, **kw_l), low=-4, high=4, atol=1e-5, grad_atol=1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(3, 4), (5,), (), (0, 2)], ids=str)
def test_mse_loss(shape, reduction):
  if shape == (0, 2) and reduction == "mean": pytest.skip("mean of nothing is nan with a torch warning")
  helper_test_op([shape, shape], lambda x, y: F.mse_loss(x, y, reduction=reduction), lambda x, y: x.mse_loss(y, reduction=reduction))


def test_loss_noncontiguous():
  tgt = np.array([1, 0, 3])
  helper_test_op([(4, 3)], lambda x: F.cross_entropy(x.T, torch.tensor(tgt)), lambda x: x.T.cross_entropy(Tensor(tgt)), atol=1e-5, grad_atol=1e-4)
  helper_test_op([(4, 3), (3, 4)], lambda x, y: F.mse_loss(x.T[:, ::2], y[:, 1::2]), lambda x, y: x.T[:, ::2].mse_loss(y[:, 1::2]))
  helper_test_op([(4, 3), (3, 4)], lambda x, y: F.binary_cross_entropy_with_logits(x.T, y.sigmoid()),
                 lambda x, y: x.T.binary_cross_entropy_with_logits(y.sigmoid()), atol=1e-5, grad_atol=1e-4)


# ============================================================ numerical stability at +-1e4

BIG = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4, -3.0, 1e4], [1e4, 9999.0, -1e4, 1.0]], dtype=np.float32)


def _finite_check(tf, lf, inputs, **kw):
  out = helper_test_op(None, tf, lf, inputs=inputs, atol=1e-4, rtol=1e-4, grad_atol=1e-4, grad_rtol=1e-3, **kw)
  assert np.isfinite(out.numpy()).all()
  return out


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_stable_softmax_family(dim):
  _finite_check(lambda x: x.softmax(dim), None, [BIG])
  _finite_check(lambda x: x.log_softmax(dim), None, [BIG])
  _finite_check(lambda x: torch.logsumexp(x, dim), lambda x: x.logsumexp(dim), [BIG])
  _finite_check(lambda x: torch.logsumexp(x, (0, 1)), lambda x: x.logsumexp(), [BIG])


def test_stable_grads_finite():
  for lf in (lambda x: x.softmax(1), lambda x: x.log_softmax(1), lambda x: x.logsumexp(1), lambda x: x.sigmoid(),
             lambda x: x.softplus(), lambda x: x.silu(), lambda x: x.tanh(), lambda x: x.gelu(), lambda x: x.elu()):
    x = Tensor(BIG, requires_grad=True)
    lf(x).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus", "silu", "gelu", "gelu_tanh", "elu", "logsigmoid"])
def test_stable_unary(name):
  tfs = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "softplus": F.softplus, "silu": F.silu, "gelu": F.gelu, "elu": F.elu,
         "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "logsigmoid": F.logsigmoid}
  lfs = {"gelu_tanh": lambda x: x.gelu(approximate="tanh")}
  _finite_check(tfs[name], lfs.get(name, lambda x: getattr(x, name)()), [BIG])


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_stable_cross_entropy(smoothing):
  tgt = np.array([1, 3, 2, 0])
  _finite_check(lambda x: F.cross_entropy(x, torch.tensor(tgt), label_smoothing=smoothing),
                lambda x: x.cross_entropy(Tensor(tgt), label_smoothing=smoothing), [BIG])
  p = np.full((4, 4), 0.25, dtype=np.float32)
  _finite_check(lambda x: F.cross_entropy(x, torch.tensor(p), label_smoothing=smoothing),
                lambda x: x.cross_entropy(Tensor(p), label_smoothing=smoothing), [BIG])
  _finite_check(lambda x: F.cross_entropy(x, torch.tensor(tgt), reduction="none"), lambda x: x.cross_entropy(Tensor(tgt), reduction="none"), [BIG])


def test_stable_bce_with_logits():
  t = np.array([[1.0, 0.0, 0.5, 1.0]] * 4, dtype=np.float32)
  _finite_check(lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(t), reduction="none"),
                lambda x: x.binary_cross_entropy_with_logits(Tensor(t), reduction="none"), [BIG])
  _finite_check(lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(t), pos_weight=torch.tensor([2.0, 1.0, 0.5, 3.0])),
                lambda x: x.binary_cross_entropy_with_logits(Tensor(t), pos_weight=Tensor([2.0, 1.0, 0.5, 3.0])), [BIG])


def test_stable_float16_softmax():
  a = np.array([[30000.0, -30000.0, 0.0], [-30000.0, -30000.0, 1.0]], dtype=np.float16)
  out = helper_test_op(None, lambda x: x.softmax(1), inputs=[a], rtol=1e-2, atol=1e-2)
  assert np.isfinite(out.numpy()).all()
  out = helper_test_op(None, lambda x: x.log_softmax(1), inputs=[a], rtol=1e-2, atol=1e-2)
  assert np.isfinite(out.numpy()).all()


# ============================================================ autograd through composed expressions

def test_grad_shared_input_and_broadcast():
  helper_test_op([(3, 4), (4,)], lambda a, b: (a * b + a.exp() * b.sin() - a / (b.abs() + 1)).sum(0))
  helper_test_op([(3, 1), (1, 4)], lambda a, b: (a @ b).relu() * a + b)
  helper_test_op([(2, 3)], lambda x: x[:, None, :] * x[None, :, :] + x.sum())


def test_grad_accumulates():
  x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
  (x * 2).sum().backward()
  (x * x).sum().backward()
  np.testing.assert_allclose(x.grad.numpy(), 2 + 2 * np.array([1.0, 2.0, 3.0]))


# ============================================================ edge cases: ties, boundaries, mixed dtypes

def test_maximum_minimum_ties_split_gradient():
  a = np.array([1.0, 2.0, 3.0, -1.0], dtype=np.float32)
  b = np.array([1.0, 0.0, 3.0, -1.0], dtype=np.float32)
  helper_test_op(None, torch.maximum, lambda x, y: x.maximum(y), inputs=[a, b])
  helper_test_op(None, torch.minimum, lambda x, y: x.minimum(y), inputs=[a, b])


def test_clamp_hardtanh_boundaries():
  a = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0, -2.0], dtype=np.float32)
  helper_test_op(None, lambda x: x.clamp(-0.5, 0.5), inputs=[a])
  helper_test_op(None, lambda x: x.clamp(min=0.0), inputs=[a])
  helper_test_op(None, F.hardtanh, lambda x: x.hardtanh(), inputs=[a])
  helper_test_op(None, lambda x: F.hardtanh(x, -0.5, 0.5), lambda x: x.hardtanh(-0.5, 0.5), inputs=[a])


def test_activation_grads_at_zero():
  a = np.array([-1.0, 0.0, 1.0], dtype=np.float32)
  for tf, lf in ((F.leaky_relu, lambda x: x.leaky_relu()), (F.elu, lambda x: x.elu()), (torch.sigmoid, lambda x: x.sigmoid()),
                 (F.softplus, lambda x: x.softplus()), (F.silu, lambda x: x.silu()), (F.gelu, lambda x: x.gelu()),
                 (torch.tanh, lambda x: x.tanh()), (torch.sign, lambda x: x.sign()), (F.logsigmoid, lambda x: x.logsigmoid())):
    helper_test_op(None, tf, lf, inputs=[a])


def test_mixed_dtype_grads():
  a = np.array([[1.5, -2.0], [0.5, 3.0]], dtype=np.float32)
  b = np.array([[2, 3], [-1, 4]], dtype=np.int32)
  for fn in (lambda x, y: (x * y).sum(), lambda x, y: (x / y).sum(), lambda x, y: (y - x).exp().sum(),
             lambda x, y: (x ** y).sum(), lambda x, y: x.maximum(y).sum()):
    tx = torch.tensor(a, requires_grad=True)
    lx = Tensor(a, requires_grad=True)
    tout, lout = fn(tx, torch.tensor(b)), fn(lx, Tensor(b))
    assert lout.dtype == dtypes.from_any(tout.dtype)
    compare(lout.numpy(), tout.detach().numpy(), 1e-5, 1e-5)
    tout.backward(); lout.backward()
    compare(lx.grad.numpy(), tx.grad.numpy(), 1e-5, 1e-5, "grad")


def test_float16_float32_mixed_grads():
  a16 = np.array([1.5, -2.0, 0.25], dtype=np.float16)
  b32 = np.array([0.5, 3.0, -1.0], dtype=np.float32)
  ta, tb = torch.tensor(a16, requires_grad=True), torch.tensor(b32, requires_grad=True)
  la, lb = Tensor(a16, requires_grad=True), Tensor(b32, requires_grad=True)
  tout, lout = (ta * tb + ta.float().exp()).sum(), (la * lb + la.float().exp()).sum()
  assert lout.dtype == dtypes.float32
  tout.backward(); lout.backward()
  assert la.grad.dtype == dtypes.float16 and lb.grad.dtype == dtypes.float32
  compare(la.grad.numpy(), ta.grad.numpy(), 1e-2, 1e-2)
  compare(lb.grad.numpy(), tb.grad.numpy(), 1e-5, 1e-5)


def test_sum_mean_dtype_kw():
  helper_test_op(None, lambda x: x.sum(1, dtype=torch.float32) if isinstance(x, torch.Tensor) else x.sum(1, dtype=dtypes.float32),
                 inputs=[np.arange(6, dtype=np.int32).reshape(2, 3)])
  helper_test_op([(2, 3)], lambda x: x.sum(dtype=torch.float32) if isinstance(x, torch.Tensor) else x.sum(dtype=dtypes.float32), dtype="float16")
  helper_test_op([(2, 3)], lambda x: x.mean(0, dtype=torch.float32) if isinstance(x, torch.Tensor) else x.mean(0, dtype=dtypes.float32), dtype="float16")


def test_softmax_zero_size_and_one():
  helper_test_op([(0, 3)], lambda x: x.softmax(1))
  helper_test_op([(0, 3)], lambda x: x.log_softmax(-1))
  helper_test_op([(3, 1)], lambda x: x.softmax(1))
  helper_test_op([(3, 1)], lambda x: x.log_softmax(1))


def test_var_std_degenerate():
  helper_test_op([(1, 3)], lambda x: x.var(0), grad=False)
  helper_test_op([(1, 3)], lambda x: x.std(0, correction=0))
  helper_test_op([(3, 4)], lambda x: (x * 0 + 1).std(1), grad=False)


@pytest.mark.parametrize("dtype", ["float16"])
def test_nn_float16(dtype):
  kw = dict(dtype=dtype, rtol=2e-2, atol=2e-2, grad_rtol=5e-2, grad_atol=5e-2)
  helper_test_op([(2, 5), (5,), (5,)], lambda x, w, b: F.layer_norm(x, (5,), w, b), lambda x, w, b: x.layer_norm(5, w, b), **kw)
  helper_test_op([(2, 3, 5, 5), (4, 3, 3, 3)], lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: x.conv2d(w, padding=1), **kw)
  helper_test_op([(2, 5)], lambda x: F.cross_entropy(x, torch.tensor([1, 4])), lambda x: x.cross_entropy(Tensor([1, 4])), **kw)
  helper_test_op([(1, 2, 4, 4)], lambda x: F.max_pool2d(x, 2), lambda x: x.max_pool2d(2), **kw)
  helper_test_op([(1, 2, 4, 4)], lambda x: F.avg_pool2d(x, 2), lambda x: x.avg_pool2d(2), **kw)


def test_bce_broadcast_weight():
  t = np.random.default_rng(28).random((3, 4)).astype(np.float32)
  w = np.array([0.5, 1.0, 2.0, 0.1], dtype=np.float32)
  helper_test_op([(3, 4)], lambda x: F.binary_cross_entropy(x, torch.tensor(t), weight=torch.tensor(w)),
                 lambda x: x.binary_cross_entropy(Tensor(t), weight=Tensor(w)), low=0.1, high=0.9, atol=1e-5, grad_atol=1e-4)
  helper_test_op([(3, 4)], lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(t), weight=torch.tensor(w)),
                 lambda x: x.binary_cross_entropy_with_logits(Tensor(t), weight=Tensor(w)), atol=1e-5, grad_atol=1e-4)


def test_cross_entropy_probs_weight():
  p = np.random.default_rng(29).random((3, 4)).astype(np.float32)
  w = np.array([0.5, 1.0, 2.0, 0.1], dtype=np.float32)
  for reduction in ("mean", "sum", "none"):
    helper_test_op([(3, 4)], lambda x: F.cross_entropy(x, torch.tensor(p), weight=torch.tensor(w), reduction=reduction, label_smoothing=0.1),
                   lambda x: x.cross_entropy(Tensor(p), weight=Tensor(w), reduction=reduction, label_smoothing=0.1), atol=1e-5, grad_atol=1e-4)


def test_masked_fill_tensor_value_and_where_grads():
  m = np.array([[True, False, True], [False, False, True]])
  helper_test_op([(2, 3), ()], lambda x, v: x.masked_fill(torch.tensor(m), v), lambda x, v: x.masked_fill(Tensor(m), v))
  helper_test_op([(2, 3)], lambda x: x.masked_fill(torch.tensor(m[0]), 1.5), lambda x: x.masked_fill(Tensor(m[0]), 1.5))


def test_one_hot_0d_and_int_ops_on_result():
  helper_test_op(None, lambda x: F.one_hot(x, 4) if isinstance(x, torch.Tensor) else x.one_hot(4), inputs=[np.array(2)])
  helper_test_op(None, lambda x: (F.one_hot(x, 3) if isinstance(x, torch.Tensor) else x.one_hot(3)).sum(0), inputs=[np.array([0, 2, 2, 1])])


def test_repeat_0d_and_expand_grads():
  helper_test_op([()], lambda x: x.repeat(2, 3))
  helper_test_op([(3, 1)], lambda x: x.expand(3, 4) * x.T.expand(3, 3).sum(1, keepdim=True))


def test_sdpa_float_mask_broadcast():
  m = np.random.default_rng(30).uniform(-1, 1, size=(2, 1, 3, 4)).astype(np.float32)
  helper_test_op([(2, 2, 3, 5), (2, 2, 4, 5), (2, 2, 4, 6)], lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor(m)),
                 lambda q, k, v: q.scaled_dot_product_attention(k, v, attn_mask=Tensor(m)), atol=1e-5, grad_atol=1e-4)
  # causal with L != S: torch aligns the mask top-left
  helper_test_op([(1, 2, 5), (1, 4, 5), (1, 4, 3)], lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                 lambda q, k, v: q.scaled_dot_product_attention(k, v, is_causal=True), atol=1e-5, grad_atol=1e-4)


# ============================================================ regressions: values torch gets right that naive compositions do not

def test_float_floordiv_exact():
  a = np.array([1.0, -1.0, 0.3, 7.5, -7.5, 5.0, -5.0, 0.0, 3.0], dtype=np.float32)
  b = np.array([0.1, 0.1, 0.1, 2.0, 2.0, 0.0, 0.0, 0.0, np.inf], dtype=np.float32)
  helper_test_op(None, lambda x, y: x // y, inputs=[a, b], grad=False)
  helper_test_op(None, lambda x: x // 0.1, inputs=[a], grad=False)


def test_int_pow_negative_float_exponent():
  helper_test_op(None, lambda x: x ** -1.0, inputs=[np.array([1, 2, 4], dtype=np.int64)])
  helper_test_op(None, lambda x: x ** -2.0, inputs=[np.array([1, 2, 4], dtype=np.int32)])


def test_cos_large_arguments():
  a = np.array([1e4, -1e4, 12345.678, 1e5, 4096.0, 1.5707964, 3.1415927, 0.0], dtype=np.float32)
  helper_test_op(None, torch.cos, lambda x: x.cos(), inputs=[a], atol=1e-6, rtol=1e-4)
  helper_test_op(None, torch.sin, lambda x: x.sin(), inputs=[a], atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
def test_min_at_int_extremes(dtype):
  info = np.iinfo(dtype)
  a = np.array([[info.min, 5, info.max], [0, info.max, info.min]], dtype=dtype)
  b = np.array([info.max, info.min, 0], dtype=dtype)
  helper_test_op(None, lambda x: x.amin(1), inputs=[a])
  helper_test_op(None, lambda x: x.min(), inputs=[a])
  helper_test_op(None, lambda x: x.argmin(1), inputs=[a])
  helper_test_op(None, lambda x: x.amax(0), inputs=[a])
  helper_test_op(None, lambda x, y: x.minimum(y) if isinstance(x, Tensor) else torch.minimum(x, y), inputs=[a, b])
  helper_test_op(None, lambda x: x.clamp(max=3), inputs=[a])


def test_int_scalar_wraps_into_dtype():
  u = np.array([0, 255, 3], dtype=np.uint8)
  helper_test_op(None, lambda x: x > -1, inputs=[u])
  helper_test_op(None, lambda x: ~x, inputs=[u])
  helper_test_op(None, lambda x: ~x, inputs=[np.array([0, -128, 127], dtype=np.int8)])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_cumsum_non_finite(dtype):
  a = np.array([[1.0, np.inf, 2.0, -np.inf, 3.0], [1.0, -np.inf, 2.0, 1.0, np.nan], [1.0, 2.0, np.nan, 4.0, 5.0]], dtype=dtype)
  helper_test_op(None, lambda x: x.cumsum(1), inputs=[a], grad=False)
  helper_test_op(None, lambda x: x.cumsum(0), inputs=[a], grad=False)


def test_half_mean_var_layer_norm_accumulate_in_float32():
  a = (np.full((2, 100), 1000.0) + np.arange(100)).astype(np.float16)
  kw = dict(rtol=1e-3, atol=1e-3, grad=False)
  helper_test_op(None, lambda x: x.mean(1), inputs=[a], **kw)
  helper_test_op(None, lambda x: x.mean(), inputs=[a], **kw)
  helper_test_op(None, lambda x: x.var(1), inputs=[a], rtol=1e-3, atol=1e-1, grad=False)
  helper_test_op(None, lambda x: x.std(), inputs=[a], rtol=1e-3, atol=1e-3, grad=False)
  helper_test_op(None, lambda x: F.layer_norm(x, (100,)), lambda x: x.layer_norm(100), inputs=[a], rtol=1e-2, atol=2e-3, grad=False)
  helper_test_op([(2, 100), (100,), (100,)], lambda x, w, b: F.layer_norm(x * 100 + 1000, (100,), w, b),
                 lambda x, w, b: (x * 100 + 1000).layer_norm(100, w, b), dtype="float16", rtol=1e-2, atol=1e-2, grad_rtol=5e-2, grad_atol=5e-2)


def test_pad_value_takes_tensor_dtype():
  helper_test_op(None, lambda x: F.pad(x, (1, 2), value=-3.5) if isinstance(x, torch.Tensor) else x.pad((1, 2), value=-3.5),
                 inputs=[np.arange(4, dtype=np.int32)])
  helper_test_op([(3,)], lambda x: F.pad(x, (1, 1), value=2.5) if isinstance(x, torch.Tensor) else x.pad((1, 1), value=2.5), dtype="float16")


def test_relu_propagates_nan():
  a = np.array([np.nan, -1.0, 0.0, 2.0], dtype=np.float32)
  helper_test_op(None, torch.relu, lambda x: x.relu(), inputs=[a], grad=False)
  helper_test_op(None, F.leaky_relu, lambda x: x.leaky_relu(), inputs=[a], grad=False)
  helper_test_op(None, F.elu, lambda x: x.elu(), inputs=[a], grad=False)
  helper_test_op(None, torch.sigmoid, lambda x: x.sigmoid(), inputs=[a], grad=False)


def test_std_zero_variance_gradient():
  helper_test_op(None, lambda x: x.std(1), inputs=[np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]], dtype=np.float32)])
  helper_test_op(None, lambda x: x.std(), inputs=[np.full((2, 2), 3.0, dtype=np.float32)])


def test_amax_ties_split_gradient_as_torch():
  # torch's amax/amin and max()/min() without dim share the gradient among ties (only max(dim) picks one index)
  a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 0.0]], dtype=np.float32)
  for fn in (lambda x: x.amax(1), lambda x: x.amin(1), lambda x: x.amax(), lambda x: x.max(), lambda x: x.min(), lambda x: x.amax((0, 1)),
             lambda x: x.amax(0, keepdim=True)):
    helper_test_op(None, fn, inputs=[a])


# ============================================================ the dtype-pair matrix (values and result dtypes vs torch)

MATRIX_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32"]
MATRIX_OPS = {
  "add": lambda a, b: a + b, "mul": lambda a, b: a * b, "sub": lambda a, b: a - b, "div": lambda a, b: a / b,
  "floordiv": lambda a, b: a // b, "mod": lambda a, b: a % b, "lt": lambda a, b: a < b, "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b,
  "maximum": lambda a, b: a.maximum(b) if isinstance(a, Tensor) else torch.maximum(a, b),
  "minimum": lambda a, b: a.minimum(b) if isinstance(a, Tensor) else torch.minimum(a, b),
  "and": lambda a, b: a & b, "or": lambda a, b: a | b, "xor": lambda a, b: a ^ b, "pow": lambda a, b: a ** b,
  "where": lambda a, b: (Tensor if isinstance(a, Tensor) else torch).where((a > 0) if a.dtype not in (dtypes.bool, torch.bool) else a, a, b),
}


def _matrix_value(dt, zero_d, seed):
  r = np.random.default_rng(seed)
  shape = () if zero_d else (4,)
  if dt == "bool": return np.asarray(r.random(shape) < 0.5)
  if dt.startswith("float"): return np.asarray(r.uniform(-3, 3, shape)).astype(dt)
  if dt == "uint8": return np.asarray(r.integers(1, 6, shape)).astype(dt)
  return np.asarray(r.integers(1, 6, shape) * r.choice([-1, 1], shape)).astype(dt)


@pytest.mark.parametrize("op", list(MATRIX_OPS))
def test_dtype_matrix(op):
  """every pair of dtypes, dimensioned and 0-d, and Python scalars on either side: what torch accepts must match."""
  fn, checked, failures = MATRIX_OPS[op], 0, []
  cases = [(_matrix_value(da, za, 1), _matrix_value(db, zb, 2)) for da in MATRIX_DTYPES for db in MATRIX_DTYPES
           for za, zb in (((False, False), (False, True), (True, False)) if op not in ("pow", "floordiv") else ((False, False),))]   # (slow graphs)
  cases += [(_matrix_value(da, False, 3), s) for da in MATRIX_DTYPES for s in (2, -1, 0.5, True)]
  cases += [(s, _matrix_value(da, False, 3)) for da in MATRIX_DTYPES for s in (2, -1, 0.5, True) if op not in ("maximum", "minimum", "where")]
  for a, b in cases:
    if op == "pow" and all(isinstance(v, np.ndarray) and v.dtype.kind in "iub" for v in (a, b)): b = np.asarray(np.abs(b))
    if op == "pow" and isinstance(a, int) and not isinstance(a, bool) and a < 0: continue   # (-1) ** uint8 wraps in integer arithmetic
    if op == "pow" and isinstance(b, np.ndarray) and b.dtype == np.bool_ and b.ndim == 0: continue   # torch quirk: a 0-d bool exponent gives float
    to_t = lambda v: torch.tensor(v) if isinstance(v, np.ndarray) else v
    to_l = lambda v: Tensor(v) if isinstance(v, np.ndarray) else v
    try: tr = fn(to_t(a), to_t(b))
    except (RuntimeError, TypeError, AttributeError): continue
    desc = f"{op}: {getattr(a, 'dtype', a)}{getattr(a, 'shape', '')} and {getattr(b, 'dtype', b)}{getattr(b, 'shape', '')}"
    try:
      lr = fn(to_l(a), to_l(b))
      assert lr.dtype == dtypes.from_any(tr.dtype), f"dtype {lr.dtype} != torch {tr.dtype}"
      compare(lr.numpy(), tr.numpy(), 1e-2, 1e-2, desc)
    except Exception as e: failures.append(f"{desc}: {str(e).splitlines()[0]}")
    checked += 1
  assert not failures, "\n".join(failures[:20])
  assert checked > 50


def test_numpy_scalar_operands():
  a = np.array([1.0, -2.0, 3.0], dtype=np.float32)
  for s in (np.float32(2.5), np.float64(0.5), np.int64(3), np.int8(-2), np.bool_(True)):
    for fn in (lambda x, y: x * y, lambda x, y: y * x, lambda x, y: x / y, lambda x, y: y - x, lambda x, y: x ** y, lambda x, y: x < y):
      tr, lr = fn(torch.tensor(a), s), fn(Tensor(a), s)
      assert isinstance(lr, Tensor) and lr.dtype == dtypes.from_any(tr.dtype), (s, lr, tr)
      compare(lr.numpy(), tr.numpy(), 1e-6, 1e-6)
  assert Tensor(np.float32(1.5)).dtype == dtypes.float32 and Tensor(np.bool_(True)).dtype == dtypes.bool


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_sdpa_fully_masked_row_is_zero(kind):
  # torch's safe softmax: a query row that may see no key gives zeros (and zero gradients), not nan
  m = np.array([[True, True, False], [False, False, False]])
  if kind == "float": m = np.where(m, 0.0, -np.inf).astype(np.float32)
  helper_test_op([(2, 2, 4), (2, 3, 4), (2, 3, 2)], lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor(m)),
                 lambda q, k, v: q.scaled_dot_product_attention(k, v, attn_mask=Tensor(m)), atol=1e-5, grad_atol=1e-4)


def test_abs_int_min():
  helper_test_op(None, lambda x: x.abs(), inputs=[np.array([-128, -1, 0, 5, 127], dtype=np.int8)])
  helper_test_op(None, lambda x: x.abs(), inputs=[np.array([np.iinfo(np.int64).min, -3], dtype=np.int64)])
