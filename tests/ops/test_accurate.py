"""The accurate primitives TANH, EXPM1, LOG1P, ERF and what uses them (softplus, gelu, mish, logsigmoid, elu,
BCE-with-logits): values and gradients vs torch, the cancellations they remove (issue 10, item 9), gradients at 0 and
at large |x|, constant folding, the cost rule, and the cuda (libdevice) and interpreter (float64 formula) sources."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import compile_for_hopper, helper_test_op, hopper_job
from test_ulp import ulp_error
import lazygrad
from lazygrad import Tensor, schedule
from lazygrad.kernels.numpy.special import erf64
from lazygrad.kernels.triton import render_triton
from lazygrad.ops import Ops
from lazygrad.scheduler.fusion import Reason

PRIMS = {"tanh": torch.tanh, "expm1": torch.expm1, "log1p": torch.log1p, "erf": torch.erf, "cos": torch.cos}


@pytest.mark.parametrize("name", list(PRIMS))
@pytest.mark.parametrize("shape", [(3, 5), (), (0, 4), (1, 7)])
def test_prim_values_and_grads(name, shape):
  low = -0.9 if name == "log1p" else -3
  # the gradients round (1 - t^2 cancels near |t| = 1): a few float32 ulp of torch's
  helper_test_op([shape], PRIMS[name], lambda x: getattr(x, name)(), low=low, high=3, rtol=2e-7, atol=1e-30, grad_rtol=2e-5, grad_atol=1e-30)


@pytest.mark.parametrize("name", list(PRIMS))
def test_prim_non_contiguous_and_broadcast(name):
  low = -0.9 if name == "log1p" else -3
  helper_test_op([(4, 6)], lambda x: PRIMS[name](x.T[1:, ::2]), lambda x: getattr(x.T[1:, ::2], name)(), low=low, high=3, rtol=2e-7)
  helper_test_op([(4, 1)], lambda x: PRIMS[name](x.expand(4, 3)) * 2, lambda x: getattr(x.expand(4, 3), name)() * 2, low=low, high=3)


@pytest.mark.parametrize("name", list(PRIMS))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_prim_half_floats_round_once(name, dtype, device):
  # computed in float32 (float64 on cpu/interp) and rounded once: torch's value, or 1 ulp from it. Triton's interpreter
  # truncates float32 -> bfloat16 casts (the input's cast too, exp alike): 2 bf16 ulps there
  low = -0.9 if name == "log1p" else -3
  rtol = 1e-3 if dtype == "float16" else 8e-3 if device != "interp" else 3e-2
  x = np.random.default_rng(0).uniform(low, 3, 64).astype(np.float32)
  t = PRIMS[name](torch.tensor(x, dtype=getattr(torch, dtype)))
  out = getattr(Tensor(x).cast(dtype), name)()
  assert out.dtype.name == dtype
  atol = 1e-7 if device != "interp" or dtype == "float16" else 1e-2   # (cos(truncated x) near cos's zeros)
  np.testing.assert_allclose(out.float().numpy(), t.float().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(PRIMS))
def test_prim_int_input_is_float32(name):
  x = np.array([0, 1, 2, 5], np.int32)
  out = getattr(Tensor(x), name)()
  assert out.dtype.name == "float32"
  np.testing.assert_allclose(out.numpy(), PRIMS[name](torch.tensor(x)).numpy(), rtol=1.2e-7, atol=0)   # 1 ulp (np.cos)


def test_issue_cancellations_are_gone():
  # tanh(1e-8) was 0, expm1/log1p(1e-10) were 0, softplus(-20) was 0, fp16 tanh(0.01) was 0.00977
  assert Tensor([1e-8]).tanh().item() == np.float32(1e-8)
  np.testing.assert_allclose(Tensor([3e-6]).tanh().numpy(), torch.tanh(torch.tensor([3e-6])).numpy(), rtol=1e-7)
  assert Tensor([1e-10]).expm1().item() == np.float32(1e-10) and Tensor([1e-10]).log1p().item() == np.float32(1e-10)
  assert Tensor([-20.0]).softplus().item() == pytest.approx(math.exp(-20), rel=1e-6)
  half = Tensor([0.01]).half().tanh().numpy()
  assert half == torch.tensor([0.01]).half().tanh().numpy()
  # cos(pi/2) had the wrong sign (1 - 2 sin^2(x/2) cancels), so tan(pi/2) was inf
  half_pi = np.float32(math.pi / 2)
  assert Tensor([half_pi]).cos().item() == torch.cos(torch.tensor([half_pi])).item() < 0
  assert Tensor([half_pi]).tan().item() == pytest.approx(torch.tan(torch.tensor([half_pi])).item(), rel=1e-6)
  # the gelu tail follows torch's formula with an accurate erf (was up to 25% off)
  x = np.linspace(-5, -2, 31).astype(np.float32)
  exact = F.gelu(torch.tensor(x, dtype=torch.float64)).numpy()
  np.testing.assert_allclose(Tensor(x).gelu().numpy(), exact, rtol=5e-2)   # torch's formula: ~6e-8 |x| absolute
  np.testing.assert_allclose(Tensor(x[x >= -3]).gelu().numpy(), exact[x >= -3], rtol=1e-5)


def _grads(fn, values, dtype=torch.float32):
  t = torch.tensor(values, dtype=dtype, requires_grad=True)
  fn(t).sum().backward()
  x = Tensor(np.array(values, dtype=np.float32 if dtype == torch.float32 else np.float16), requires_grad=True)
  fn(x).sum().backward()
  return x.grad.numpy(), t.grad.numpy()


@pytest.mark.parametrize("name", list(PRIMS))
def test_prim_grads_at_zero_large_and_special(name):
  vals = [0.0, -0.0, 1e-20, 20.0, -20.0, 50.0, -50.0, 1e30, -1e30, math.inf, -math.inf, math.nan]
  if name == "log1p": vals = [0.0, -0.0, 1e-20, 20.0, -0.5, -1.0, -2.0, 1e30, math.inf, -math.inf, math.nan]
  got, want = _grads(lambda x: getattr(x, name)(), vals)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, equal_nan=True)
  np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_named_gradients():
  assert _grads(lambda x: x.erf(), [0.0])[0][0] == pytest.approx(2 / math.sqrt(math.pi), rel=1e-7)
  assert _grads(lambda x: x.tanh(), [20.0])[0][0] == 0.0
  assert _grads(lambda x: x.tanh(), [-20.0])[0][0] == 0.0
  assert _grads(lambda x: x.expm1(), [-math.inf])[0][0] == 0.0
  assert _grads(lambda x: x.log1p(), [-1.0])[0][0] == math.inf


@pytest.mark.parametrize("name", list(PRIMS))
def test_prim_gradcheck_float64_and_second_order(name):
  x = np.random.default_rng(1).uniform(-0.8, 2, (3, 4))
  assert lazygrad.gradcheck(lambda t: getattr(t, name)(), [x])
  # grad of grad: the rules are Tensor ops, so differentiable again
  t = torch.tensor(x, requires_grad=True)
  (g,) = torch.autograd.grad(PRIMS[name](t).sum(), t, create_graph=True)
  (gg,) = torch.autograd.grad(g.sum(), t)
  lt = Tensor(x, requires_grad=True)
  (lg,) = lazygrad.grad([getattr(lt, name)().sum()], [lt], create_graph=True)
  (lgg,) = lazygrad.grad([lg.sum()], [lt])
  np.testing.assert_allclose(lgg.numpy(), gg.numpy(), rtol=1e-9, atol=1e-12)


COMPOSED = {
  "softplus": (F.softplus, lambda x: x.softplus()),
  "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=5.0), lambda x: x.softplus(beta=2.0, threshold=5.0)),
  "logsigmoid": (F.logsigmoid, lambda x: x.logsigmoid()),
  "mish": (F.mish, lambda x: x.mish()),
  "gelu": (F.gelu, lambda x: x.gelu()),
  "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: x.gelu(approximate="tanh")),
  "elu": (F.elu, lambda x: x.elu()),
  "silu": (F.silu, lambda x: x.silu()),
  "sigmoid": (torch.sigmoid, lambda x: x.sigmoid()),
}


@pytest.mark.parametrize("name", list(COMPOSED))
def test_composed_values_and_grads_wide_range(name):
  tf, lf = COMPOSED[name]
  # gradients: torch's backward formulas differ in the tails (sigmoid's y (1 - y) is 0 where y rounds to 1)
  helper_test_op([(6, 7)], tf, lf, low=-30, high=30, rtol=1e-6, atol=1e-30, grad_rtol=1e-5, grad_atol=1e-7)


@pytest.mark.parametrize("name", list(COMPOSED))
def test_composed_half_rounds_once(name):
  tf, lf = COMPOSED[name]
  x = np.random.default_rng(2).uniform(-8, 8, 128).astype(np.float16)
  got = lf(Tensor(x)).numpy()
  want = tf(torch.tensor(x)).numpy()
  assert got.dtype == np.float16
  # gelu's tail: torch's formula cancels in float32 (1 + erf(x / sqrt 2) for x << 0), ~6e-8 |x| absolute in both
  atol = 4e-7 if name.startswith("gelu") else 6e-8
  np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=1e-3, atol=atol)


def test_bce_with_logits_no_cancellation():
  # values against a float64 reference with no cancellation: torch's (1 - y) x - logsigmoid(x) cancels to 0 at x = -30,
  # y = 0 in float32 (the loss is 9.4e-14; in float64 torch is 1% off)
  x = np.array([30.0, -30.0, 0.0, 1e-3, -100.0, 100.0, 5.0, -5.0], np.float32)
  y = np.array([1.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.3, 0.0], np.float32)
  pw = np.array([2.0, 1.0, 0.5, 1.0, 3.0, 1.0, 1.5, 2.0], np.float32)
  for kw in ({}, {"pos_weight": pw}):
    t = torch.tensor(x, requires_grad=True)
    F.binary_cross_entropy_with_logits(t, torch.tensor(y), reduction="none", **{k: torch.tensor(v) for k, v in kw.items()}).sum().backward()
    x64 = x.astype(np.float64)
    log_sig, log_sig_neg = np.minimum(x64, 0) - np.log1p(np.exp(-np.abs(x64))), np.minimum(-x64, 0) - np.log1p(np.exp(-np.abs(x64)))
    exact = -(kw.get("pos_weight", 1) * y * log_sig + (1 - y) * log_sig_neg)
    lt = Tensor(x, requires_grad=True)
    got = lt.binary_cross_entropy_with_logits(Tensor(y), reduction="none", **{k: Tensor(v) for k, v in kw.items()})
    got.sum().backward()
    np.testing.assert_allclose(got.numpy(), exact, rtol=1e-6, atol=3e-45 * 2)   # subnormal results: 2 ulps
    assert got.numpy()[1] > 0
    # the gradient (1 - y) s - pw y (1 - s), s = sigmoid(x): torch's float32 rounds it to 0 at x = 30, y = 1 (-9.4e-14)
    s_, s_neg = 1 / (1 + np.exp(-x64)), 1 / (1 + np.exp(x64))
    exact_grad = (1 - y) * s_ - kw.get("pos_weight", 1) * y * s_neg
    np.testing.assert_allclose(lt.grad.numpy(), exact_grad, rtol=3e-5, atol=1e-44)
    np.testing.assert_allclose(lt.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-12)


def test_constants_fold_through_the_primitives():
  x = Tensor(np.ones(4, np.float32))
  out = x + Tensor.full((4,), 1e-10).log1p() + Tensor.full((4,), 1e-8).tanh() + Tensor.full((4,), 0.5).erf() + Tensor.full((4,), 1e-9).expm1()
  (item,) = schedule(out)
  ops = {e.op for e in item.kernel.body.walk()}
  assert not ops & {Ops.TANH, Ops.EXPM1, Ops.LOG1P, Ops.ERF}, ops
  want = 1 + np.float32(1e-10) + np.float32(1e-8) + np.float32(math.erf(0.5)) + np.float32(1e-9)
  np.testing.assert_allclose(out.numpy(), np.full(4, want, np.float32), rtol=1e-7)


@pytest.mark.parametrize("name", list(PRIMS))
def test_prims_are_costly_for_matmul_operands(name):
  # the cost rule: a tanh (erf, ...) of a matmul operand is computed once, not once per output column
  x, w = Tensor(np.random.default_rng(0).random((16, 32), np.float32)), Tensor(np.ones((32, 8), np.float32))
  items = schedule(getattr(x, name)() @ w)
  assert len(items) == 2 and items[0].reason is Reason.COSTLY_BROADCAST


def test_interp_source_uses_float64_formula_and_cuda_libdevice(device):
  if device != "interp": pytest.skip("source check, once")
  x, h = Tensor(np.ones((8, 8), np.float32)), Tensor(np.ones((8, 8), np.float16))
  for t in (x.tanh() + x.expm1() + x.log1p() + x.erf(), h.tanh() + h.log1p()):
    (item,) = schedule(t)
    interp, cuda = render_triton(item.kernel, interp=True), render_triton(item.kernel)
    assert "libdevice" not in interp and "tl.float64" in interp
    assert "from triton.language.extra import libdevice" in cuda and "tl.float64" not in cuda
    assert all(f"libdevice.{fn}(" in cuda for fn in ("tanh", "log1p"))


def test_accurate_prims_compile_for_sm90(device, tmp_path):
  if device != "interp": pytest.skip("compiled once, from the interp run")
  x, h, w = Tensor(np.ones((64, 64), np.float32)), Tensor(np.ones((64, 64), np.float16)), Tensor(np.ones((64, 64), np.float32))
  outs = [x.tanh() + x.expm1() + x.log1p() + x.erf() + x.cos(), h.tanh() + h.cos() + h.erf() + h.expm1() + h.log1p(), (x @ w).gelu(), (x @ w).tanh()]
  items = schedule(*outs)
  jobs = [hopper_job(it.kernel) for it in items]
  assert all("libdevice." in j["source"] for j in jobs)
  assert sum("tl.dot" in j["source"] for j in jobs) == 2   # the epilogues run on the matmul template's tiles
  compile_for_hopper(jobs, str(tmp_path))


@pytest.mark.parametrize("name", list(PRIMS))
def test_prims_in_matmul_epilogue_and_row_kernels(name):
  # the same expression code runs on the matmul template's tiles and inside row kernels (persistent and looped)
  fn = lambda a, b: getattr((a @ b) * 0.1, name)()
  helper_test_op([(8, 16), (16, 8)], fn, fn, low=-1, high=1, rtol=1e-5, atol=1e-6)
  red = lambda x: getattr(x, name)().sum(-1) + getattr(x, name)().softmax(-1)[:, :1].squeeze(-1)
  helper_test_op([(4, 64)], red, red, low=-0.5, high=2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(PRIMS))
def test_prims_float64_within_a_few_ulp(name):
  # float64 inputs: numpy's float64 functions / fdlibm's erf on cpu, the float64 formulas themselves on interp
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.uniform(-25, 25, 500), 10 ** rng.uniform(-300, 1, 500) * rng.choice([-1, 1], 500)])
  if name == "log1p": x = x[x > -1]
  got = getattr(Tensor(x), name)().numpy()
  assert got.dtype == np.float64
  assert ulp_error(got, PRIMS[name](torch.tensor(x)).numpy(), "float64").max() <= 3


def test_numpy_erf64_within_an_ulp_of_math_erf(device):
  if device != "cpu": pytest.skip("the numpy function itself, once")
  rng = np.random.default_rng(3)
  branch_points = [0.84375, 1.25, 1 / 0.35, 6.0, 2.0 ** -28]
  x = np.concatenate([rng.uniform(-7, 7, 20000), 10 ** rng.uniform(-320, 1, 5000) * rng.choice([-1, 1], 5000),
                      np.nextafter(branch_points, 0), branch_points, np.negative(branch_points)])
  ref = np.array([math.erf(v) for v in x])
  got = erf64(x)
  assert (np.abs(got - ref) <= np.spacing(np.abs(ref))).all()
  special = erf64(np.array([0.0, -0.0, math.inf, -math.inf, math.nan]))
  assert special[:4].tolist() == [0.0, 0.0, 1.0, -1.0] and np.signbit(special[1]) and np.isnan(special[4])
  assert erf64(np.float64(0.5)).shape == () and erf64(np.zeros((2, 0))).shape == (2, 0)
