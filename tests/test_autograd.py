"""Autograd vs torch: accumulation, no_grad, detach, grad of grad, Hessian-vector products,
gradients through views, and lazygrad.gradcheck (which must also catch a wrong rule)."""
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor, dtypes
from lazygrad.ops import Ops
from lazygrad.autograd import gradient
from lazygrad.tensor import _GradMode
from helpers import helper_test_op


def _rng(seed=0): return np.random.default_rng(seed)
def _arr(*shape, seed=0, low=-1.5, high=1.5): return _rng(seed).uniform(low, high, size=shape).astype(np.float32)
def _close(a, b, rtol=1e-5, atol=1e-5):
  np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=rtol, atol=atol)


# ---- accumulation

def test_grad_accumulates_over_two_backward_calls():
  xa, wa = _arr(3, 4, seed=1), _arr(4, 2, seed=2)
  tw = torch.tensor(wa, requires_grad=True)
  lw = Tensor(wa, requires_grad=True)
  tx, lx = torch.tensor(xa), Tensor(xa)
  (tx @ tw).relu().sum().backward()
  ((tx @ tw) ** 2).mean().backward()
  (lx @ lw).relu().sum().backward()
  ((lx @ lw) ** 2).mean().backward()
  _close(lw.grad.numpy(), tw.grad.numpy())


def test_grad_accumulates_same_loss_twice_and_resets():
  w = Tensor([1.0, -2.0, 3.0], requires_grad=True)
  for _ in range(2): (w * w).sum().backward()
  _close(w.grad.numpy(), 4 * np.array([1.0, -2.0, 3.0]))
  w.grad = None
  (w * 3).sum().backward()
  _close(w.grad.numpy(), [3.0, 3.0, 3.0])


def test_backward_reaches_every_leaf_and_skips_others():
  a = Tensor([1.0, 2.0], requires_grad=True)
  b = Tensor([3.0, 4.0], requires_grad=True)
  c = Tensor([5.0, 6.0], requires_grad=True)     # not in the graph
  d = Tensor([7.0, 8.0])                          # no grad needed
  (a * b + d).sum().backward()
  _close(a.grad.numpy(), [3.0, 4.0])
  _close(b.grad.numpy(), [1.0, 2.0])
  assert c.grad is None and d.grad is None


def test_grad_is_lazy_and_detached():
  w = Tensor([1.0, 2.0], requires_grad=True)
  (w.exp()).sum().backward()
  assert not w.grad.requires_grad
  _close(w.grad.numpy(), np.exp([1.0, 2.0]), rtol=1e-6)


def test_backward_with_gradient_argument():
  xa, ga = _arr(2, 3, seed=3), _arr(2, 3, seed=4)
  tx = torch.tensor(xa, requires_grad=True)
  lx = Tensor(xa, requires_grad=True)
  tx.sin().backward(torch.tensor(ga))
  lx.sin().backward(Tensor(ga))
  _close(lx.grad.numpy(), tx.grad.numpy())


def test_shared_subexpression_gradients_add_up():
  xa = _arr(5, seed=5)
  tx, lx = torch.tensor(xa, requires_grad=True), Tensor(xa, requires_grad=True)
  def f(x):
    y = x * 2
    return (y * y + y.exp() + y).sum()
  f(tx).backward(); f(lx).backward()
  _close(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-5)


# ---- no_grad and detach

def test_no_grad_context():
  w = Tensor([1.0, 2.0], requires_grad=True)
  with Tensor.no_grad():
    y = w * 2
    assert not _GradMode.enabled
  assert _GradMode.enabled
  assert not y.requires_grad
  z = w * 2
  assert z.requires_grad
  with pytest.raises(RuntimeError): y.sum().backward()


def test_no_grad_restores_on_exception_and_nests():
  with pytest.raises(ZeroDivisionError):
    with lazygrad.no_grad():
      1 / 0
  assert _GradMode.enabled
  with lazygrad.no_grad():
    with lazygrad.no_grad(): pass
    assert not _GradMode.enabled
  assert _GradMode.enabled


def test_no_grad_decorator():
  w = Tensor([1.0, 2.0], requires_grad=True)

  @Tensor.no_grad()
  def step(t):
    """doc"""
    return t * 3

  @lazygrad.no_grad
  def bare(t): return t + 1

  y, z = step(w), bare(w)
  assert not y.requires_grad and not z.requires_grad
  assert step.__name__ == "step" and step.__doc__ == "doc"
  assert _GradMode.enabled
  assert (w * 3).requires_grad
  _close(y.numpy(), [3.0, 6.0])


def test_no_grad_update_like_an_optimizer():
  xa, wa = _arr(4, 3, seed=6), _arr(3, seed=7)
  w = Tensor(wa, requires_grad=True)
  tw = torch.tensor(wa, requires_grad=True)
  for _ in range(3):
    ((Tensor(xa) @ w) ** 2).sum().backward()
    ((torch.tensor(xa) @ tw) ** 2).sum().backward()
    with Tensor.no_grad():
      w.assign(w - 0.01 * w.grad)
      w.grad = None
    with torch.no_grad():
      tw -= 0.01 * tw.grad
      tw.grad = None
    w.realize()
  assert w.requires_grad
  _close(w.numpy(), tw.detach().numpy(), rtol=1e-5)


def test_detach():
  xa = _arr(4, seed=8)
  tx, lx = torch.tensor(xa, requires_grad=True), Tensor(xa, requires_grad=True)
  def f(x, detach):
    y = x.exp()
    y = y.detach() if detach else y
    return (y * x).sum()
  f(tx, True).backward(); f(lx, True).backward()
  _close(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
  d = (lx * 2).detach()
  assert not d.requires_grad and (lx * 2).requires_grad


def test_detach_of_realized_tensor_shares_its_buffer():
  x = Tensor([1.0, 2.0, 3.0], requires_grad=True).realize()
  d = x.detach()
  assert d.node.buffer is x.node.buffer
  assert not d.requires_grad and x.requires_grad


# ---- grad of grad

@pytest.mark.parametrize("name,fn", [
  ("cube", lambda x: x ** 3),
  ("sin", lambda x: x.sin()),
  ("tanh", lambda x: x.tanh()),
  ("exp_log", lambda x: (x.exp() + 1).log()),
  ("sigmoid", lambda x: x.sigmoid()),
  ("sqrt", lambda x: (x * x + 1).sqrt()),
  ("recip", lambda x: 1 / (x * x + 2)),
  ("softmax", lambda x: x.softmax(-1) * torch_or_lazy_const(x, [1.0, -2.0, 3.0, 0.5])),
  ("log_softmax", lambda x: x.log_softmax(-1) ** 2),
  ("gelu", lambda x: x.gelu(approximate="tanh") if isinstance(x, Tensor) else torch.nn.functional.gelu(x, approximate="tanh")),
])
def test_grad_of_grad_vs_torch(name, fn):
  xa = np.array([0.5, -1.2, 2.0, 0.3], dtype=np.float32)
  tx = torch.tensor(xa, requires_grad=True)
  tg, = torch.autograd.grad(fn(tx).sum(), tx, create_graph=True)
  tgg, = torch.autograd.grad((tg * tg).sum(), tx)
  lx = Tensor(xa, requires_grad=True)
  lg, = lazygrad.grad(fn(lx).sum(), lx, create_graph=True)
  assert lg.requires_grad
  lgg, = lazygrad.grad((lg * lg).sum(), lx)
  _close(lg.numpy(), tg.detach().numpy(), rtol=1e-4, atol=1e-5)
  _close(lgg.numpy(), tgg.numpy(), rtol=1e-4, atol=1e-4)


def torch_or_lazy_const(like, vals):
  return Tensor(vals) if isinstance(like, Tensor) else torch.tensor(vals)


def test_third_derivative_of_cube():
  x = Tensor([0.5, -1.0, 2.0], requires_grad=True)
  g1, = lazygrad.grad((x ** 3).sum(), x, create_graph=True)
  g2, = lazygrad.grad(g1.sum(), x, create_graph=True)
  g3, = lazygrad.grad(g2.sum(), x)
  _close(g1.numpy(), 3 * np.array([0.5, -1.0, 2.0]) ** 2)
  _close(g2.numpy(), 6 * np.array([0.5, -1.0, 2.0]))
  _close(g3.numpy(), [6.0, 6.0, 6.0])


def test_grad_without_create_graph_is_detached_and_leaves_dot_grad_alone():
  x = Tensor([1.0, 2.0], requires_grad=True)
  g, = lazygrad.grad((x ** 2).sum(), x)
  assert not g.requires_grad
  assert x.grad is None
  _close(g.numpy(), [2.0, 4.0])


def test_grad_multiple_outputs_inputs_and_grad_outputs():
  xa, ya = _arr(3, seed=9), _arr(3, seed=10)
  tx, ty = torch.tensor(xa, requires_grad=True), torch.tensor(ya, requires_grad=True)
  lx, ly = Tensor(xa, requires_grad=True), Tensor(ya, requires_grad=True)
  go = np.array([1.0, -1.0, 0.5], dtype=np.float32)
  t = torch.autograd.grad([tx * ty, (tx.exp() * ty).sum()], [tx, ty], [torch.tensor(go), torch.tensor(2.0)])
  l = lazygrad.grad([lx * ly, (lx.exp() * ly).sum()], [lx, ly], [Tensor(go), Tensor(2.0)])
  for a, b in zip(l, t): _close(a.numpy(), b.numpy(), rtol=1e-5)


def test_grad_allow_unused():
  x, u = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
  gx, gu = lazygrad.grad((x * 3).sum(), [x, u], allow_unused=True)
  assert gu is None
  _close(gx.numpy(), [3.0])


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_create_graph_then_differentiate_grad():
  xa = np.array([0.3, -0.7, 1.1], dtype=np.float32)
  tx, lx = torch.tensor(xa, requires_grad=True), Tensor(xa, requires_grad=True)
  (tx.sin() * tx).sum().backward(create_graph=True)
  (lx.sin() * lx).sum().backward(create_graph=True)
  assert lx.grad.requires_grad
  tgg, = torch.autograd.grad(tx.grad.sum(), tx)
  lgg, = lazygrad.grad(lx.grad.sum(), lx)
  _close(lgg.numpy(), tgg.numpy(), rtol=1e-5)


def _mlp_data():
  r = _rng(11)
  f = lambda *s: r.standard_normal(s).astype(np.float32) * 0.5
  return dict(x=f(6, 3), y=f(6, 2), w1=f(5, 3), b1=f(5), w2=f(2, 5), b2=f(2))


def _mlp_loss(lib, x, y, w1, b1, w2, b2):
  if lib == "torch":
    h = torch.tanh(x @ w1.T + b1)
    return ((h @ w2.T + b2).softmax(-1) - y).pow(2).mean() + (x @ w1.T).relu().sum() * 0.01
  h = x.linear(w1, b1).tanh()
  return ((h.linear(w2, b2)).softmax(-1) - y).pow(2).mean() + x.linear(w1).relu().sum() * 0.01


def test_hessian_vector_product_of_mlp_loss_vs_torch():
  d = _mlp_data()
  names = ["w1", "b1", "w2", "b2"]
  r = _rng(12)
  vs = [r.standard_normal(d[n].shape).astype(np.float32) for n in names]
  tparams = tuple(torch.tensor(d[n]) for n in names)
  tx, ty = torch.tensor(d["x"]), torch.tensor(d["y"])
  tloss, thvp = torch.autograd.functional.hvp(lambda *p: _mlp_loss("torch", tx, ty, *p), tparams, tuple(torch.tensor(v) for v in vs))
  lparams = [Tensor(d[n], requires_grad=True) for n in names]
  lloss = _mlp_loss("lazy", Tensor(d["x"]), Tensor(d["y"]), *lparams)
  grads = lazygrad.grad(lloss, lparams, create_graph=True)
  gv = sum(((g * Tensor(v)).sum() for g, v in zip(grads, vs)), Tensor(0.0))
  lhvp = lazygrad.grad(gv, lparams)
  _close(lloss.numpy(), tloss.numpy(), rtol=1e-5)
  for _, a, b in zip(names, lhvp, thvp): _close(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5)


def test_hessian_of_quadratic_form_is_exact():
  # f(x) = x^T A x: Hessian-vector product is (A + A^T) v
  A = _arr(4, 4, seed=13)
  v = _arr(4, seed=14)
  x = Tensor(_arr(4, seed=15), requires_grad=True)
  g, = lazygrad.grad((x @ Tensor(A) @ x), x, create_graph=True)
  hv, = lazygrad.grad((g * Tensor(v)).sum(), x)
  _close(hv.numpy(), (A + A.T) @ v, rtol=1e-5)


# ---- gradients through views (torch as the oracle, via helper_test_op)

@pytest.mark.parametrize("name,shape,fn", [
  ("slice", (4, 6), lambda x: x[1:3, ::2] * 2),
  ("int_index", (3, 4, 5), lambda x: x[1, :, -1] * x[2, :, 0]),
  ("none_ellipsis", (3, 4), lambda x: x[None, ..., 1:] * 3),
  ("permute", (2, 3, 4), lambda x: x.permute(2, 0, 1).sin()),
  ("transpose_matmul", (3, 4), lambda x: x.T @ x),
  ("reshape", (2, 3, 4), lambda x: x.reshape(6, 4).cos()),
  ("flip", (3, 4), lambda x: x.flip(0) * torch_or_lazy_range(x, 12).reshape(3, 4) if isinstance(x, Tensor)
   else x.flip(0) * torch.arange(12.0).reshape(3, 4)),
  ("expand", (3, 1), lambda x: x.expand(3, 4) * (x.expand(3, 4) + 1)),
  ("unsqueeze_expand", (4,), lambda x: x.unsqueeze(0).expand(3, 4).exp()),
  ("repeat", (2, 3), lambda x: x.repeat(2, 3) ** 2),
  ("flatten_unflatten", (2, 3, 4), lambda x: x.flatten(1).unflatten(1, (4, 3)).tanh()),
  ("chain", (4, 5), lambda x: x.T[1:, ::2].flip(1).reshape(8).sigmoid()),
  ("split_cat", (4, 6), lambda x: torch.cat([c * (i + 1) for i, c in enumerate(x.split(2, 1))], 0) if not isinstance(x, Tensor)
   else Tensor.cat([c * (i + 1) for i, c in enumerate(x.split(2, 1))], 0)),
  ("stack", (3, 4), lambda x: (torch if not isinstance(x, Tensor) else Tensor).stack([x, x * 2, x.exp()], 1)),
  ("advanced_index_repeated", (5, 3), lambda x: x[torch_or_lazy_idx(x, [0, 2, 2, 4, 0])] * 2),
  ("gather", (3, 4), lambda x: x.gather(1, torch_or_lazy_idx(x, [[0, 0, 3], [1, 2, 1], [3, 3, 3]]))),
  ("narrow_chunk", (6, 4), lambda x: x.narrow(0, 1, 4).chunk(2, 0)[1] * 3),
])
def test_gradients_through_views(name, shape, fn):
  helper_test_op([shape], fn)


@pytest.mark.parametrize("name,shape,torch_fn,lazy_fn", [
  ("pad", (3, 4), lambda x: torch.nn.functional.pad(x, (1, 2, 0, 1)).exp(), lambda x: x.pad((1, 2, 0, 1)).exp()),
  ("pad_value", (3, 4), lambda x: torch.nn.functional.pad(x, (2, 0), value=1.5) ** 2, lambda x: x.pad((2, 0), value=1.5) ** 2),
  ("pad_negative", (3, 5), lambda x: torch.nn.functional.pad(x, (-1, 2, 1, -1)).sin(), lambda x: x.pad((-1, 2, 1, -1)).sin()),
  ("neg_step_slice", (4, 6), lambda x: x.flip(0, 1)[:, 0:5:2].exp(), lambda x: x[::-1, 5:0:-2].exp()),
  ("masked_fill", (3, 4), lambda x: x.masked_fill(x > 0, 0.5) * x, lambda x: x.masked_fill(x > 0, 0.5) * x),
])
def test_gradients_through_pads(name, shape, torch_fn, lazy_fn):
  helper_test_op([shape], torch_fn, lazy_fn)


def torch_or_lazy_range(like, n):
  return Tensor.arange(n).float() if isinstance(like, Tensor) else torch.arange(float(n))


def torch_or_lazy_idx(like, idx):
  return Tensor(idx) if isinstance(like, Tensor) else torch.tensor(idx)


def test_gradient_through_realized_view():
  xa = _arr(3, 4, seed=16)
  x = Tensor(xa, requires_grad=True).realize()
  v = x.T[1:].realize()          # a realized view still carries the gradient path
  (v * v).sum().backward()
  ref = np.zeros_like(xa); ref[:, 1:] = 2 * xa[:, 1:]
  _close(x.grad.numpy(), ref)


# ---- gradcheck (float64 central differences)

def _quick_gelu(x): return x.quick_gelu()
def _gated(x, w): return (x @ w).silu() * (x @ w).sigmoid()
def _logsumexp_mix(x, y): return (x.sin() * y.exp()).sum(-1).logsumexp(0)
def _normalize(x): return x / (x * x).sum(-1, keepdim=True).sqrt()
def _softmax_attention(q, k): return q.scaled_dot_product_attention(k, k * 2, is_causal=True)
def _layer_norm(x, w): return x.layer_norm(3, w, None) * x
def _conv(x, w): return x.conv2d(w, padding=1, stride=2).relu()
def _cumsum_var(x): return x.cumsum(1).var(0) + x.std(1).sum()
def _erf_softplus(x): return x.erf() * x.softplus() + x.mish()
def _pool(x): return x.max_pool2d(2) + x.avg_pool2d(2, stride=1).sum((-2, -1), keepdim=True)
def _where_clamp(x, y): return (x > y).where(x * y, x - y).clamp(-1.0, 1.0) + x.maximum(y)
def _cross_entropy(x): return x.cross_entropy(Tensor([1, 0, 2]), label_smoothing=0.1)
def _prod_pow(x): return x.prod(1, keepdim=True) + (x.abs() + 0.5) ** 1.7


GRADCHECK_CASES = [
  ("quick_gelu", _quick_gelu, [(3, 4)]),
  ("gated", _gated, [(2, 3), (3, 4)]),
  ("logsumexp_mix", _logsumexp_mix, [(3, 2), (3, 2)]),
  ("normalize", _normalize, [(2, 4)]),
  ("causal_attention", _softmax_attention, [(1, 3, 2), (1, 3, 2)]),
  ("layer_norm", _layer_norm, [(2, 3), (3,)]),
  ("conv", _conv, [(1, 2, 4, 4), (2, 2, 3, 3)]),
  ("cumsum_var", _cumsum_var, [(3, 3)]),
  ("erf_softplus_mish", _erf_softplus, [(5,)]),
  ("pool", _pool, [(1, 1, 4, 4)]),
  ("where_clamp", _where_clamp, [(6,), (6,)]),
  ("cross_entropy", _cross_entropy, [(3, 4)]),
  ("prod_pow", _prod_pow, [(2, 3)]),
]


@pytest.mark.parametrize("name,fn,shapes", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_gradcheck(name, fn, shapes):
  r = _rng(len(name))
  inputs = [r.uniform(-1.0, 1.0, size=s) for s in shapes]
  if name == "pool": inputs = [r.permutation(16).reshape(1, 1, 4, 4) * 0.1]          # no ties in max
  if name == "where_clamp": inputs = [np.array([-2.0, -0.6, -0.1, 0.2, 0.45, 1.3]), np.array([0.3, -1.1, 0.4, -0.35, 0.15, 0.9])]
  if name == "conv": inputs = [x + np.sign(x) * 0.05 for x in inputs]
  assert lazygrad.gradcheck(fn, inputs)


def test_gradcheck_checks_in_float64():
  seen = []
  def f(x):
    seen.append(x.dtype)
    return (x * 1e-3).exp()
  assert lazygrad.gradcheck(f, [np.array([0.1, 0.2])])
  assert all(d == dtypes.float64 for d in seen)


def test_gradcheck_fails_for_a_wrong_rule(monkeypatch):
  x = [np.array([0.3, -0.8, 1.4])]
  assert lazygrad.gradcheck(lambda t: t.sin() * t, x)
  # d sin(x) = cos(x); a rule that says sin(x) must be caught
  monkeypatch.setitem(gradient.RULES, Ops.SIN, lambda out, g, a: (g * a.sin(),))
  with pytest.raises(AssertionError, match="gradcheck"):
    lazygrad.gradcheck(lambda t: t.sin() * t, x)
  monkeypatch.undo()
  assert gradient.RULES[Ops.SIN](None, Tensor(1.0), Tensor(0.0))[0].item() == pytest.approx(1.0)
  assert lazygrad.gradcheck(lambda t: t.sin() * t, x)


def test_gradcheck_fails_for_a_wrong_reduce_rule(monkeypatch):
  orig = gradient.RULES[Ops.REDUCE]
  # forget to divide the max gradient among ties / send it everywhere: a sum rule for max
  monkeypatch.setitem(gradient.RULES, Ops.REDUCE, lambda out, g, x: (g.expand(x.shape),))
  with pytest.raises(AssertionError):
    lazygrad.gradcheck(lambda t: t.amax(1), [np.array([[0.1, 0.5, -0.2], [0.9, 0.3, 0.4]])])
  monkeypatch.setitem(gradient.RULES, Ops.REDUCE, orig)
  assert lazygrad.gradcheck(lambda t: t.amax(1), [np.array([[0.1, 0.5, -0.2], [0.9, 0.3, 0.4]])])
