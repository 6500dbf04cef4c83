"""Gradients at inf, nan, 0 and -0 vs torch: masks in gradient rules and compositions are wheres, so the branch not
taken gets an exact 0 (never 0 * inf = nan). Regression tests for the fixed cases, then a sweep of every
differentiable unary and binary op over the special values, with the deliberate differences listed in KNOWN."""
import math
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lazygrad import Tensor

INF, NAN = float("inf"), float("nan")


def _run(fn_t, fn_l, *vals):
  """Values and gradients (of out.sum()) of torch and lazygrad on float32 inputs."""
  ts = [torch.tensor(np.asarray(v, dtype=np.float32), requires_grad=True) for v in vals]
  out_t = fn_t(*ts)
  out_t.sum().backward()
  ls = [Tensor(np.asarray(v, dtype=np.float32), requires_grad=True) for v in vals]
  out_l = fn_l(*ls)
  out_l.sum().backward()
  tg = [t.grad.numpy() if t.grad is not None else np.zeros(t.shape, np.float32) for t in ts]
  lg = [x.grad.numpy() if x.grad is not None else np.zeros(x.shape, np.float32) for x in ls]
  return out_t.detach().numpy(), out_l.numpy(), tg, lg


def _check(fn_t, fn_l, *vals, rtol=1e-4, atol=1e-5):
  vt, vl, tg, lg = _run(fn_t, fn_l, *vals)
  np.testing.assert_allclose(vl, vt, rtol=rtol, atol=atol, equal_nan=True, err_msg="value")
  for i, (a, b) in enumerate(zip(lg, tg)): np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"grad {i}")


# ---- regressions: each failed before the fix (nan or 0 where torch has a finite, nonzero or zero gradient)

@pytest.mark.parametrize("target", [[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.5, 0.5]])
def test_bce_of_saturated_sigmoid(target):
  # sigmoid(20) rounds to 1 and sigmoid(-100) to 0: log(1 - p) is -inf, clamped at -100 by maximum (was [nan, nan])
  tt = torch.tensor(target)
  _check(lambda z: F.binary_cross_entropy(z.sigmoid(), tt, reduction="none"),
         lambda z: z.sigmoid().binary_cross_entropy(Tensor(target), reduction="none"), [20.0, -100.0, 100.0, -20.0], atol=1e-6)


def test_maximum_minimum_branch_not_taken_gets_zero():
  # sqrt'(0) is inf: the input not taken must get 0, not 0 * inf (was nan)
  _check(lambda x, y: x.maximum(y).sqrt(), lambda x, y: x.maximum(y).sqrt(), [-1.0, 2.0, 0.0], [0.0, 1.0, 0.0])
  _check(lambda x, y: x.minimum(y).sqrt(), lambda x, y: x.minimum(y).sqrt(), [0.0, 2.0, 4.0], [1.0, 1.0, 0.0])
  _check(lambda x, y: x.maximum(y).log(), lambda x, y: x.maximum(y).log(), [-1.0, 0.0], [0.0, 3.0])


def test_maximum_with_nan_gives_both_the_gradient():
  # torch: where neither is smaller (nan, or a tie: half each) both get the gradient (was 0)
  _check(lambda x, y: x.maximum(y), lambda x, y: x.maximum(y), [NAN, 1.0, 1.0, NAN], [0.0, NAN, 1.0, NAN])
  _check(lambda x, y: x.minimum(y), lambda x, y: x.minimum(y), [NAN, 1.0, 1.0, NAN], [0.0, NAN, 1.0, NAN])


def test_max_reduce_with_nan_and_inf():
  # torch.max(): the gradient goes to the nan (was nan everywhere); an inf max is an ordinary max
  _check(lambda x: x.max(), lambda x: x.max(), [NAN, 1.0, 3.0])
  _check(lambda x: x.max(), lambda x: x.max(), [INF, 1.0, INF])
  # with dim, torch.max gives the gradient to one index and torch.amax is nan for a nan row (split evenly here, as amax
  # does at ties: the deliberate difference), so one nan per row
  _check(lambda x: x.max(0)[0], lambda x: x.max(0)[0], [[NAN, 1.0], [2.0, -INF], [1.0, -INF]])
  # an inf gradient into a max: the elements not hit get 0, not 0 * inf (deliberate: torch.amax multiplies by its mask
  # and gives nan there; torch.max(dim) gives 0, as here)
  _check(lambda x: x.max(0)[0].sqrt(), lambda x: x.amax(0).sqrt(), [[0.0, 1.0], [-1.0, 4.0]])


def test_erf_gradient_at_zero_and_inf():
  # erf'(0) = 2 / sqrt(pi) (was 0: sign(x) has no gradient); erf'(+-inf) = 0 (was nan)
  _check(lambda x: x.erf(), lambda x: x.erf(), [0.0, -0.0, 1.0, -2.5, 12.0, INF, -INF], rtol=1e-4, atol=2e-5)
  _check(lambda x: F.gelu(x), lambda x: x.gelu(), [0.0, -0.0, 1.0, 12.0, -12.0], rtol=1e-4, atol=2e-5)


def test_clamp_with_nan():
  # torch: a nan input gets no gradient (was 1); a nan bound propagates
  _check(lambda x: x.clamp(-1, 1), lambda x: x.clamp(-1, 1), [NAN, 1.0, -1.0, 2.0, INF, -INF, 0.5])
  _check(lambda x: x.clamp(min=NAN), lambda x: x.clamp(min=NAN), [1.0, -2.0])
  _check(lambda x: x.clamp(max=NAN), lambda x: x.clamp(max=NAN), [1.0, -2.0])
  _check(lambda x, lo: x.clamp(min=lo, max=torch.tensor(3.0)), lambda x, lo: x.clamp(min=lo, max=Tensor(3.0)),
         [1.0, NAN, 5.0, 2.0], [NAN, 0.0, 0.0, 2.5])


def test_masked_log_gradient_stays_finite():
  # deliberate difference: a zero gradient into log/log2 stays 0 at x = 0 (torch: 0 / 0 = nan), so the where trick works
  x = Tensor([0.0, 2.0], requires_grad=True)
  (x > 0).where(x.log(), 0).sum().backward()
  np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.5])
  # pow at base 0: torch's fused rule gives 0, the exp2/log2 composition did 0 / 0 = nan
  _check(lambda x: x ** 2.5, lambda x: x ** 2.5, [0.0, 4.0])


# ---- the sweep: every special value through every differentiable op, torch as the oracle

SPECIAL = [0.0, -0.0, 1.5, -1.5, INF, -INF, NAN]

UNARY = {
  "neg": lambda x: -x, "exp": lambda x: x.exp(), "exp2": lambda x: x.exp2(), "log": lambda x: x.log(), "log2": lambda x: x.log2(),
  "log10": lambda x: x.log10(), "log1p": lambda x: x.log1p(), "expm1": lambda x: x.expm1(), "sqrt": lambda x: x.sqrt(),
  "rsqrt": lambda x: x.rsqrt(), "reciprocal": lambda x: x.reciprocal(), "sin": lambda x: x.sin(), "cos": lambda x: x.cos(),
  "tan": lambda x: x.tan(), "square": lambda x: x.square(), "abs": lambda x: x.abs(), "sign": lambda x: x.sign(),
  "relu": lambda x: x.relu(), "sigmoid": lambda x: x.sigmoid(), "tanh": lambda x: x.tanh(), "erf": lambda x: x.erf(),
  "frac": lambda x: x.frac(), "clamp": lambda x: x.clamp(-1, 1), "clamp_min": lambda x: x.clamp(min=0), "pow2": lambda x: x ** 2,
  "pow_half": lambda x: x ** 0.5, "pow_2.5": lambda x: x ** 2.5, "pow_-1": lambda x: x ** -1, "rpow2": lambda x: 2 ** x,
  "max": lambda x: x.max(), "sum": lambda x: x.sum(), "mean": lambda x: x.mean(),
}
ACTIVATIONS = {   # (torch, lazygrad)
  "logsigmoid": (F.logsigmoid, lambda x: x.logsigmoid()), "silu": (F.silu, lambda x: x.silu()),
  "softplus": (F.softplus, lambda x: x.softplus()), "leaky_relu": (F.leaky_relu, lambda x: x.leaky_relu()),
  "elu": (F.elu, lambda x: x.elu()), "hardtanh": (F.hardtanh, lambda x: x.hardtanh()),
  "hardsigmoid": (F.hardsigmoid, lambda x: x.hardsigmoid()), "mish": (F.mish, lambda x: x.mish()),
  "gelu": (F.gelu, lambda x: x.gelu()), "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: x.gelu("tanh")),
}
BINARY = {
  "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y,
  "maximum": lambda x, y: x.maximum(y), "minimum": lambda x, y: x.minimum(y), "pow": lambda x, y: x ** y,
  "where": lambda x, y: (x > y).where(x, y) if isinstance(x, Tensor) else torch.where(x > y, x, y),
  "clamp_t": lambda x, y: x.clamp(min=y), "lerp": lambda x, y: x.lerp(y, 0.25),
}

# (op, input) -> why lazygrad deliberately differs from torch there. Inputs where torch's own gradient is nan
# (ill-defined: log(-1), 0 * inf, ...) are not compared by the sweep; nan values must be nan in both.
KNOWN = {
  ("pow_2.5", INF): "pow is exp2(y * log2|x|) (tensor_math.pow, owned by the pow/div change): nan gradient at inf (torch inf)",
  ("pow_2.5", -INF): "the same at -inf (the value is inf, as torch)",
  ("gelu", INF): "0.5 x (1 + erf(x / sqrt 2)) is inf at inf, torch's kernel gives nan",
}


def _known_pow(x, y):
  """pow's composition differs from torch's fused rule where x is 0, +-inf or nan, y is +-inf, or y == 0 (the where that
  makes x ** 0 = 1 gives d/dy = ln|x|, torch ln x: nan for x < 0)."""
  return not math.isfinite(x) or x == 0 or not math.isfinite(y) or (y == 0 and x < 0)


def _unary_cases():
  for name, fn in UNARY.items(): yield name, fn, fn
  for name, (tf, lf) in ACTIVATIONS.items(): yield name, tf, lf


def _mismatches(vt, vl, tg, lg, keys, rtol, atol):
  bad = []
  for i, key in enumerate(keys):
    val_ok = (np.isnan(vt[i]) and np.isnan(vl[i])) or np.isclose(vl[i], vt[i], rtol=rtol, atol=atol)
    grad_ok = np.isnan(tg[i]) or (np.isinf(tg[i]) and lg[i] == tg[i]) or (np.isfinite(tg[i]) and np.isclose(lg[i], tg[i], rtol=rtol, atol=atol))
    if not val_ok: bad.append((key, "value", float(vl[i]), float(vt[i])))
    if not grad_ok: bad.append((key, "grad", float(lg[i]), float(tg[i])))
  return bad


@pytest.mark.parametrize("name", [n for n, _, _ in _unary_cases()])
def test_sweep_unary_special_values(name):
  tf, lf = next((t, lz) for n, t, lz in _unary_cases() if n == name)
  reduce_op = name in ("max", "sum", "mean")
  bad = []
  for v in SPECIAL if reduce_op else [None]:
    vals = [v, 1.0, -2.0] if reduce_op else SPECIAL
    vt, vl, (tg,), (lg,) = _run(tf, lf, vals)
    if reduce_op:   # one value: compare it and the whole gradient
      if not ((np.isnan(vt) and np.isnan(vl)) or np.isclose(vl, vt)): bad.append((v, "value", float(vl), float(vt)))
      if not np.allclose(lg, tg, equal_nan=True) and not np.isnan(tg).any(): bad.append((v, "grad", lg.tolist(), tg.tolist()))
      continue
    bad += _mismatches(np.atleast_1d(vt), np.atleast_1d(vl), tg, lg, SPECIAL, 2e-4, 2e-5)
  bad = [b for b in bad if (name, b[0]) not in KNOWN]
  assert not bad, f"{name}: (input, what, lazygrad, torch) {bad}"


@pytest.mark.parametrize("name", list(BINARY))
def test_sweep_binary_special_values(name):
  fn = BINARY[name]
  xs = [a for a in SPECIAL for _ in SPECIAL]
  ys = [b for _ in SPECIAL for b in SPECIAL]
  vt, vl, tg, lg = _run(fn, fn, xs, ys)
  keys = list(zip(xs, ys))
  bad = []
  for j in range(2):
    for key, what, a, b in _mismatches(vt, vl, tg[j], lg[j], keys, 2e-4, 2e-5):
      if what == "value" and j == 1: continue
      bad.append((key, what if what == "value" else f"grad {j}", a, b))
  bad = [b for b in bad if (name, b[0]) not in KNOWN and not (name == "pow" and _known_pow(*b[0]))]
  assert not bad, f"{name}: ((x, y), what, lazygrad, torch) {bad}"


def test_known_differences_are_documented():
  assert all(k[0] in {**UNARY, **ACTIVATIONS, **BINARY} and reason for k, reason in KNOWN.items())
