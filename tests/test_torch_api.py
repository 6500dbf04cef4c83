"""torch's module-level API on lazygrad (lazygrad/functions.py): the same calls give the same values, dtypes and
gradients as torch's; dtype names, grad-mode managers, constructors and the functional forms of Tensor methods."""
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor, dtypes
from helpers import helper_test_op, compare


def test_dtype_names_and_aliases():
  for name in ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
               "half", "float", "double", "short", "int", "long"):
    assert getattr(lazygrad, name) == dtypes.from_any(getattr(torch, name)), name
  assert isinstance(lazygrad.float32, lazygrad.dtype)


def test_tensor_copies_and_from_numpy_shares():
  a = np.arange(6, dtype=np.float32).reshape(2, 3)
  t, shared = lazygrad.tensor(a), lazygrad.from_numpy(a)
  a[0, 0] = 100.0
  assert t.numpy()[0, 0] == 0.0
  if shared.device == "cpu": assert shared.numpy()[0, 0] == 100.0   # shared memory on the numpy device, as torch's
  for data in ([1, 2, 3], [[1.5, 2.0]], 3, True, [True, False]):
    assert lazygrad.tensor(data).dtype == dtypes.from_any(torch.tensor(data).dtype)
  t = lazygrad.tensor([1.0, 2.0], dtype=lazygrad.float16, requires_grad=True)
  assert t.dtype == lazygrad.half and t.requires_grad
  with pytest.raises(TypeError): lazygrad.from_numpy([1, 2])
  assert lazygrad.is_tensor(t) and not lazygrad.is_tensor(a) and lazygrad.is_floating_point(t) and lazygrad.numel(t) == 2


@pytest.mark.parametrize("call", [
  lambda m: m.zeros(2, 3), lambda m: m.ones((2, 3), dtype=m.int32), lambda m: m.full((2, 2), 7), lambda m: m.full((2,), 1.5),
  lambda m: m.arange(5), lambda m: m.arange(1, 2, 0.25), lambda m: m.eye(3, 2), lambda m: m.linspace(-1, 1, 7),
  lambda m: m.linspace(0, 10, 1), lambda m: m.linspace(3, 5, 0), lambda m: m.logspace(0, 2, 5), lambda m: m.logspace(0, 3, 4, base=2),
  lambda m: m.zeros_like(m.ones(2, dtype=m.int64)), lambda m: m.ones_like(m.zeros(3), dtype=m.float16),
  lambda m: m.full_like(m.zeros(2, 2), 3), lambda m: m.empty_like(m.ones(2)).shape,
  lambda m: m.cat([m.ones(2, 2), m.zeros(1, 2)]), lambda m: m.concat([m.ones(2), m.arange(3)], dim=0),
  lambda m: m.stack([m.ones(2), m.zeros(2)], dim=1), lambda m: m.hstack([m.ones(2), m.zeros(3)]),
  lambda m: m.hstack([m.ones(2, 1), m.zeros(2, 2)]), lambda m: m.vstack([m.ones(2), m.zeros(2)]),
  lambda m: m.where(m.arange(4) > 1, m.ones(4), 0.5),
], ids=lambda f: "")
def test_constructors_match_torch(call):
  ours, theirs = call(lazygrad), call(torch)
  if isinstance(theirs, torch.Size): assert tuple(ours) == tuple(theirs); return
  assert ours.dtype == dtypes.from_any(theirs.dtype)
  compare(ours.numpy(), theirs.numpy(), 1e-6, 1e-6, "value")


def test_random_constructors_and_seed():
  lazygrad.manual_seed(5)
  a = lazygrad.rand(3, 4).numpy()
  b = lazygrad.randn(3, 4)
  lazygrad.manual_seed(5)
  np.testing.assert_array_equal(lazygrad.rand(3, 4).numpy(), a)
  assert b.shape == (3, 4) and lazygrad.rand_like(b).shape == (3, 4) and lazygrad.randn_like(b).dtype == lazygrad.float32
  r = lazygrad.randint(2, 5, (100,)).numpy()
  assert r.min() >= 2 and r.max() < 5 and lazygrad.randint_like(lazygrad.zeros(3, dtype=lazygrad.int64), 4).dtype == lazygrad.int64
  assert sorted(lazygrad.randperm(6).tolist()) == list(range(6))


def test_grad_modes():
  x = lazygrad.ones(2, requires_grad=True)
  with lazygrad.no_grad():
    assert not lazygrad.is_grad_enabled() and not (x * 2).requires_grad
    with lazygrad.enable_grad(): assert (x * 2).requires_grad
    assert not (x * 2).requires_grad
  with lazygrad.inference_mode(): assert not (x * 2).requires_grad
  with lazygrad.set_grad_enabled(False): assert not (x * 2).requires_grad
  assert (x * 2).requires_grad
  lazygrad.set_grad_enabled(False)
  assert not lazygrad.is_grad_enabled()
  lazygrad.set_grad_enabled(True)

  @lazygrad.enable_grad()
  def f(): return (x * 2).requires_grad
  @lazygrad.inference_mode()
  def g(): return (x * 2).requires_grad
  with lazygrad.no_grad(): assert f()
  assert not g() and lazygrad.is_grad_enabled()


UNARY = ["abs", "exp", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "floor", "ceil", "square", "neg", "log1p", "expm1", "erf"]


@pytest.mark.parametrize("name", [n for n in UNARY if hasattr(Tensor, n)])
def test_forwarded_unary(name, device):
  if device == "interp": pytest.skip("the Tensor methods behind these run on interp in their own tests; cpu checks the forwarding")
  low = 0.1 if name in ("sqrt", "log1p") else -2.0
  helper_test_op([(3, 4)], getattr(torch, name), getattr(lazygrad, name), low=low)


@pytest.mark.parametrize("call", [
  lambda m, a, b: m.add(a, b, alpha=2), lambda m, a, b: m.sub(a, b), lambda m, a, b: m.mul(a, 3), lambda m, a, b: m.div(a, b + 5),
  lambda m, a, b: m.maximum(a, b), lambda m, a, b: m.max(a, b), lambda m, a, b: m.min(a, 1, keepdim=True)[0],
  lambda m, a, b: m.max(a), lambda m, a, b: m.sum(a, 1), lambda m, a, b: m.mean(a, dim=(0, 1)), lambda m, a, b: m.prod(b, 0),
  lambda m, a, b: m.logsumexp(a, 1), lambda m, a, b: m.matmul(a, b.T), lambda m, a, b: m.transpose(a, 0, 1),
  lambda m, a, b: m.reshape(a, (-1,)), lambda m, a, b: m.flatten(a), lambda m, a, b: m.softmax(a, 1), lambda m, a, b: m.clamp(a, -0.5, 0.5),
  lambda m, a, b: m.where(a > b, a, b), lambda m, a, b: m.cumsum(a, 1), lambda m, a, b: m.tril(a), lambda m, a, b: m.lerp(a, b, 0.3),
  lambda m, a, b: m.std(a, 0), lambda m, a, b: m.amax(a, 1), lambda m, a, b: m.pow(a, 2), lambda m, a, b: m.outer(a[0], b[1]),
], ids=lambda f: "")
def test_forwarded_functions(call, device):
  if device == "interp": pytest.skip("the Tensor methods behind these run on interp in their own tests; cpu checks the forwarding")
  helper_test_op([(3, 4), (3, 4)], lambda a, b: call(torch, a, b), lambda a, b: call(lazygrad, a, b))


def test_forwarded_errors_name_the_function():
  with pytest.raises(TypeError, match="exp: expected a Tensor"): lazygrad.exp([1.0])
  with pytest.raises(ValueError, match="one-argument"): lazygrad.where(lazygrad.ones(2) > 0)


def test_tensor_to_cuda_cpu_and_casts():
  x = lazygrad.arange(4)
  assert x.to(lazygrad.float16).dtype == lazygrad.float16 and x.float().dtype == lazygrad.float32
  assert x.to(x.device, lazygrad.float64).dtype == lazygrad.float64 and x.to(lazygrad.ones(1, dtype=lazygrad.int8)).dtype == lazygrad.int8
  assert x.cpu().device == "cpu" and x.double().dtype == lazygrad.float64 and x.bfloat16().dtype == lazygrad.bfloat16
  if not torch.cuda.is_available():
    with pytest.raises(RuntimeError, match="cuda"): x.cuda()
  else: assert x.cuda().device == "cuda"


@pytest.mark.parametrize("call", [
  lambda m, a, b: m.absolute(a), lambda m, a, b: m.multiply(a, b), lambda m, a, b: m.subtract(a, b, alpha=2),
  lambda m, a, b: m.greater_equal(a, b).float(), lambda m, a, b: m.moveaxis(a, 0, 1), lambda m, a, b: m.clamp_min(a, 0.1),
  lambda m, a, b: m.clamp_max(a, 0.1), lambda m, a, b: m.broadcast_tensors(a[:1], b)[0], lambda m, a, b: m.atleast_3d(a[0]),
  lambda m, a, b: m.atleast_2d(a[0, 0]), lambda m, a, b: m.meshgrid(a[0], b[:, 0], indexing="xy")[0] * m.meshgrid(a[0], b[:, 0],
                                                                                                                     indexing="xy")[1],
  lambda m, a, b: m.meshgrid(a[0], b[:, 0], indexing="ij")[1], lambda m, a, b: m.column_stack([a[0], b[0]]),
  lambda m, a, b: m.dstack([a, b]), lambda m, a, b: m.row_stack([a, b]), lambda m, a, b: m.ravel(a.T),
  lambda m, a, b: m.conv1d(a.unsqueeze(0), b.unsqueeze(0)[:, :, :2]), lambda m, a, b: m.selu(a), lambda m, a, b: m.pdist(a),
  lambda m, a, b: m.cosine_similarity(a, b), lambda m, a, b: m.layer_norm(a, (4,)), lambda m, a, b: m.max_pool1d(a.unsqueeze(0), 2),
], ids=lambda f: "")
def test_aliases_and_functional_forms(call, device):
  if device == "interp": pytest.skip("the methods and F functions behind these run on interp in their own tests; cpu checks the forwarding")
  helper_test_op([(3, 4), (3, 4)], lambda a, b: call(torch, a, b), lambda a, b: call(lazygrad, a, b))


def test_broadcast_shapes():
  assert lazygrad.broadcast_shapes((2, 1), (3,), 1) == tuple(torch.broadcast_shapes((2, 1), (3,), 1)) == (2, 3)
