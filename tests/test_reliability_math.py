"""Exact integer pow, correctly rounded division, half-float results of the Triton renderer and signed zero constants,
vs torch on every test device."""
import numpy as np
import pytest
import torch
from lazygrad import Tensor, dtypes, grad, gradcheck
from helpers import INTERP_BF16, compile_for_hopper, helper_test_op, hopper_job


def _same(lazy: Tensor, ref: torch.Tensor):
  out = lazy.numpy()
  assert lazy.dtype == dtypes.from_any(ref.dtype), f"dtype {lazy.dtype} != torch {ref.dtype}"
  np.testing.assert_array_equal(out, ref.numpy())
  # the sign of zero too
  if out.dtype.kind == 'f': np.testing.assert_array_equal(np.signbit(out), np.signbit(ref.numpy()))


# ---- 1. pow

@pytest.mark.parametrize("n", [0, 1, 2, 3, 15, 39, 40, 63, 64, 100])
def test_int_pow_int_scalar_exact(n):
  x = [3, -3, 2, -2, 0, 1, -1, 7, 10]
  _same(Tensor(x) ** n, torch.tensor(x) ** n)


@pytest.mark.parametrize("dt", ["int8", "uint8", "int16", "int32"])
def test_int_pow_narrow_wraps(dt):
  x = np.array([3, 2, 5, 1, 0, 7], dtype=dt)
  _same(Tensor(x) ** 5, torch.tensor(x) ** 5)
  _same(Tensor(x) ** 13, torch.tensor(x) ** 13)


def test_int_pow_int_tensor_exact():
  b, e = [3, 2, -3, 0, 1, -1, 3, 2, 1, -1, 0, -5], [40, 63, 5, 0, 7, 3, 15, -1, -2, -3, -1, 27]
  _same(Tensor(b) ** Tensor(e), torch.tensor(b) ** torch.tensor(e))
  _same(2 ** Tensor([3, 10, 62, 63, 64]), 2 ** torch.tensor([3, 10, 62, 63, 64]))
  b8, e8 = np.array([3, -2, 5], dtype=np.int8), np.array([5, 7, 3], dtype=np.int8)
  _same(Tensor(b8) ** Tensor(e8), torch.tensor(b8) ** torch.tensor(e8))


def test_int_pow_negative_scalar_raises():
  with pytest.raises(ValueError, match="negative integer powers"): Tensor([2]) ** -1
  _same(Tensor([2, 4]) ** -1.0, torch.tensor([2, 4]) ** -1.0)


def test_float_pow_exact():
  _same(Tensor([3.0, -3.0, 2.0]) ** 15, torch.tensor([3.0, -3.0, 2.0]) ** 15)
  _same(Tensor([10.0, 7.0]) ** 3, torch.tensor([10.0, 7.0]) ** 3)
  _same(Tensor([10.0, 7.0]) ** 2, torch.tensor([10.0, 7.0]) ** 2)
  _same(10 ** Tensor([3.0, 2.0, 5.0, 0.0]), 10 ** torch.tensor([3.0, 2.0, 5.0, 0.0]))
  _same((10 ** Tensor([3.0])).int(), (10 ** torch.tensor([3.0])).int())
  _same(Tensor([2.0, 3.0, -2.0]) ** Tensor([10.0, 4.0, 3.0]), torch.tensor([2.0, 3.0, -2.0]) ** torch.tensor([10.0, 4.0, 3.0]))
  np.testing.assert_allclose((Tensor([3.0]) ** -15).numpy(), (torch.tensor([3.0]) ** -15).numpy(), rtol=1e-7)


def test_float_pow_grads():
  helper_test_op([(3, 4)], lambda x: x ** 15, low=0.5, high=1.2)
  helper_test_op([(3, 4)], lambda x: x ** -11, low=0.5, high=1.2)
  helper_test_op([(3, 4), (3, 4)], lambda x, y: x.abs() ** y, low=0.5, high=2.0)
  x = np.array([2.0, 3.0, 10.0], dtype=np.float32)
  helper_test_op(None, lambda a, b: a ** b, inputs=[x, np.array([3.0, 2.0, 3.0], dtype=np.float32)])


# ---- 2. division

def test_div_correctly_rounded():
  _same(Tensor([21.0]) / 7, torch.tensor([21.0]) / 7)
  ints = np.arange(1, 2000)
  _same(Tensor(ints) / Tensor(ints), torch.tensor(ints) / torch.tensor(ints))
  a, b = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
  _same(Tensor(a) / Tensor(b), torch.tensor(a) / torch.tensor(b))
  _same(7 / Tensor(b), 7 / torch.tensor(b))
  _same(Tensor([1e-3]) / 1e-39, torch.tensor([1e-3]) / 1e-39)
  h = a.astype(np.float16), b.astype(np.float16)
  _same(Tensor(h[0]) / Tensor(h[1]), torch.tensor(h[0]) / torch.tensor(h[1]))


def test_div_rounding_modes():
  a, b = [41.0, 82.0, -41.0, 7.0, -7.0, 1.0], [41.0, 41.0, 41.0, 2.0, 2.0, 0.1]
  for mode in ("trunc", "floor"):
    _same(Tensor(a).div(Tensor(b), rounding_mode=mode), torch.tensor(a).div(torch.tensor(b), rounding_mode=mode))
  _same(Tensor(a) // Tensor(b), torch.tensor(a) // torch.tensor(b))


def test_div_grads():
  helper_test_op([(3, 4), (3, 4)], lambda x, y: x / y)
  helper_test_op([(3, 4), (4,)], lambda x, y: x / y.abs().add(0.5))
  helper_test_op([(3, 4)], lambda x: 3 / x.abs().add(0.5))
  # second order through FDIV, and central differences in float64
  x, tx = Tensor([1.5, -2.0, 3.0], requires_grad=True), torch.tensor([1.5, -2.0, 3.0], requires_grad=True)
  (g,) = grad([(2 / x).sum()], [x], create_graph=True)
  (gg,) = grad([(g * g).sum()], [x])
  (tg,) = torch.autograd.grad((2 / tx).sum(), tx, create_graph=True)
  (tgg,) = torch.autograd.grad((tg * tg).sum(), tx)
  np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-5)
  a, b = np.array([1.5, -2.0, 3.0]), np.array([0.7, 1.3, -2.5])
  assert gradcheck(lambda p, q: p / q, [Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)])


# ---- 3. half-float results are rounded inside fused kernels

def test_fp16_softmax_argmax():
  x = np.array([0, 1, 0, 0, 0], dtype=np.float16)
  _same(Tensor(x).softmax(0).argmax(), torch.tensor(x).softmax(0).argmax())
  _same(Tensor(x).softmax(0), torch.tensor(x).softmax(0))


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_half_div_mod_fused(dt, device):
  if device == "interp" and dt == "bfloat16": pytest.skip(INTERP_BF16)
  tdt = getattr(torch, dt)
  a = torch.tensor([1.0, 2.0, 5.0, -7.0, 3.0], dtype=tdt)
  b = torch.tensor([3.0, 3.0, 7.0, 3.0, 0.7], dtype=tdt)
  ta = Tensor(a.float().numpy()).cast(dt)
  tb = Tensor(b.float().numpy()).cast(dt)
  # fused with the casts around it: each op's result is rounded to the dtype, as torch's eager ops are
  for fn in (lambda x, y: x / y, lambda x, y: x % y, lambda x, y: x.reciprocal(), lambda x, y: y / x):
    np.testing.assert_array_equal(fn(ta, tb).float().numpy(), fn(a, b).float().numpy())
    if dt == "float16": np.testing.assert_array_equal((fn(ta, tb) * 3 - 1).float().numpy(), (fn(a, b) * 3 - 1).float().numpy())


# ---- 4. signed zero constants

def test_negative_zero_constant():
  x = [1.0, -2.0, 0.0, 3.0]
  _same(Tensor(x).relu() / -0.0, torch.tensor(x).relu() / -0.0)
  _same(Tensor(x) * 0.0 + Tensor(x) * -0.0, torch.tensor(x) * 0.0 + torch.tensor(x) * -0.0)
  _same(1 / (Tensor(x) * 0 - 0.0), 1 / (torch.tensor(x) * 0 - 0.0))
  _same(Tensor(x).relu() / 0.0, torch.tensor(x).relu() / 0.0)


# ---- the division Triton compiles for sm_90 is IEEE's div.rn (its `/` on fp32 is div.full.f32, 2 ulp)

def test_division_compiles_to_div_rn_for_sm90(tmp_path, device):
  if device != "interp": pytest.skip("compiled once, from the interp run")
  from lazygrad import schedule
  a, b = Tensor(np.ones(256, np.float32)), Tensor(np.ones(256, np.float32))
  h = Tensor(np.ones(256, np.float16))
  jobs = []
  for i, t in enumerate([a / b, a.reciprocal() + b, h / h.flip(0)]):
    (it,) = schedule(t)
    jobs.append(hopper_job(it.kernel, ptx_out=str(tmp_path / f"k{i}.ptx")))
  compile_for_hopper(jobs, str(tmp_path))
  for i in range(len(jobs)):
    ptx = (tmp_path / f"k{i}.ptx").read_text()
    assert "div.rn.f32" in ptx and "div.full.f32" not in ptx and "div.approx" not in ptx, i
