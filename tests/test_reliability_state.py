"""Reliability of state: sort/argsort/topk edge values, movedim and cumprod forms, thread-local grad mode, atomic
load_state_dict with torch's dtype casts, bounded compile caches and a corrupt Triton source cache. Values vs torch."""
import os
import threading
import numpy as np
import pytest
import torch
from lazygrad import Tensor, nn, no_grad
from lazygrad.autograd.gradient import RULES
from lazygrad.kernels.triton import loader
from lazygrad.ops import Ops
from lazygrad.runtime import CPUDevice, get_device, executor
from lazygrad.runtime.compiled import KernelCache
from lazygrad.tensor import _GradMode
from helpers import helper_test_op

I64 = np.iinfo(np.int64)


def _check_sort(a, descending):
  tv, ti = torch.tensor(a).sort(descending=descending, stable=True)
  out = Tensor(a).sort(descending=descending)
  np.testing.assert_array_equal(out.values.numpy(), tv.numpy())   # nan == nan here
  np.testing.assert_array_equal(out.indices.numpy(), ti.numpy())
  np.testing.assert_array_equal(Tensor(a).argsort(descending=descending).numpy(), ti.numpy())


# ---- sort, argsort, topk

@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("a", [
  np.array([I64.min, 5, I64.max, 0, I64.min, -1], dtype=np.int64),
  np.array([-(2**31), 2**31 - 1, 0, -(2**31)], dtype=np.int32),
  np.array([0, 255, 128, 1, 255, 0], dtype=np.uint8),
  np.array([-128, 127, -128, 0, 1], dtype=np.int8),
  np.array([True, False, False, True, True]),
  np.array([np.nan, 1.0, np.nan, -np.inf, np.inf, 1.0, -0.5], dtype=np.float32),
  np.array([np.nan, -np.inf, np.finfo(np.float64).max, np.nan, 3.0, 3.0], dtype=np.float64),
], ids=["int64_extremes", "int32_extremes", "uint8", "int8_min", "bool", "f32_nans_ties", "f64_nans"])
def test_sort_edge_dtypes_and_nan(a, descending):
  _check_sort(a, descending)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_2d_nan_along_each_dim(descending):
  a = np.array([[1.0, np.nan, 2.0], [np.nan, np.nan, -1.0], [0.0, 3.0, np.nan]], dtype=np.float32)
  for dim in (0, 1):
    tv, ti = torch.tensor(a).sort(dim=dim, descending=descending, stable=True)
    out = Tensor(a).T.T.sort(dim, descending=descending)
    np.testing.assert_array_equal(out.values.numpy(), tv.numpy())
    np.testing.assert_array_equal(out.indices.numpy(), ti.numpy())


def test_sort_argsort_topk_0d():
  for a in (np.float32(2.5), np.int64(I64.min), np.bool_(True)):
    tv, ti = torch.tensor(a).sort(descending=True)
    out = Tensor(a).sort(descending=True)
    assert out.values.shape == () and out.indices.shape == () and out.values.item() == tv.item() and out.indices.item() == ti.item()
    assert Tensor(a).argsort().shape == () and Tensor(a).argsort().item() == 0
  out = Tensor(np.float32(-1.5)).topk(1)
  assert out.values.shape == () and out.values.item() == -1.5 and out.indices.item() == 0
  with pytest.raises(ValueError): Tensor(np.float32(1.0)).topk(2)


@pytest.mark.parametrize("largest", [True, False])
def test_topk_nan_and_ties(largest):
  a = np.array([[1.0, np.nan, 2.0, 2.0, -np.inf, 1.0], [0.0, 0.0, 0.0, 0.0, 5.0, 0.0]], dtype=np.float32)
  for k in (1, 2, 3, 6):
    tv = torch.tensor(a).topk(k, 1, largest=largest).values.numpy()
    out = Tensor(a).topk(k, 1, largest=largest)
    np.testing.assert_array_equal(out.values.numpy(), tv)     # nan is the largest value, as torch
    # torch leaves the order of tied indices to its kernel; lazygrad's is the stable one (lowest index first)
    idx = out.indices.numpy()
    np.testing.assert_array_equal(np.take_along_axis(a, idx, 1), tv)
    np.testing.assert_array_equal(idx, torch.tensor(a).argsort(dim=1, descending=largest, stable=True)[:, :k].numpy())
  helper_test_op(None, lambda x: x.topk(2, 0, largest=largest), inputs=[np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]], dtype=np.float32)])


def test_topk_integer_extremes():
  a = np.array([I64.min, 3, I64.max, I64.min, 0], dtype=np.int64)
  for largest in (True, False):
    tv = torch.tensor(a).topk(3, largest=largest).values.numpy()
    np.testing.assert_array_equal(Tensor(a).topk(3, largest=largest).values.numpy(), tv)


# ---- movedim with tuples, cumprod over an empty dim

@pytest.mark.parametrize("src,dst", [((0, 1), (2, 0)), ((0, 3), (3, 0)), ([1, 2], [-1, 0]), ((-1,), (1,)), ((), ()), (2, -4)], ids=str)
def test_movedim_tuples(src, dst):
  helper_test_op([(2, 3, 4, 5)], lambda x: x.movedim(src, dst))


def test_movedim_errors_and_0d():
  x = Tensor.ones(2, 3, 4)
  for src, dst in (((0, 1), (2,)), ((0, 0), (1, 2)), ((0, 1), (2, 2)), ((3,), (0,))):
    with pytest.raises(ValueError): x.movedim(src, dst)
  assert Tensor(np.float32(1)).movedim(0, -1).shape == ()


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64", "bool"])
def test_cumprod_empty_dim_dtype(dtype):
  for shape, dim in (((0, 3), 0), ((2, 0), 1), ((0,), 0)):
    a = np.zeros(shape, dtype=dtype)
    t, out = torch.tensor(a).cumprod(dim), Tensor(a).cumprod(dim)
    assert out.shape == tuple(t.shape) and out.numpy().dtype == t.numpy().dtype, (out.shape, out.dtype, t.dtype)


# ---- grad mode is per thread

def test_grad_mode_is_thread_local():
  w = Tensor(np.ones(3, np.float32), requires_grad=True)
  inside, release, seen = threading.Event(), threading.Event(), {}
  def other():
    with no_grad():
      inside.set()
      release.wait(10)
      seen["other"] = (w * 2).requires_grad
  th = threading.Thread(target=other)
  th.start()
  assert inside.wait(10)
  try:
    assert _GradMode.enabled and (w * 2).requires_grad      # the other thread's no_grad does not reach this one
  finally:
    release.set(); th.join(10)
  assert seen["other"] is False and _GradMode.enabled
  # and the other way round: no_grad here leaves a new thread's grad mode on (torch: every thread starts enabled)
  with no_grad():
    th = threading.Thread(target=lambda: seen.__setitem__("fresh", (w * 2).requires_grad))
    th.start(); th.join(10)
  assert seen["fresh"] is True


def test_backward_in_another_thread_keeps_grad_mode_here(monkeypatch):
  w = Tensor(np.ones((4, 4), np.float32), requires_grad=True)
  started, release = threading.Event(), threading.Event()
  real = RULES[Ops.MUL]
  def paused_rule(*args):   # the backward thread stops inside its rules, where its grad mode is off
    if threading.current_thread() is not threading.main_thread():
      started.set(); release.wait(10)
    return real(*args)
  monkeypatch.setitem(RULES, Ops.MUL, paused_rule)
  loss = (w * w).sum()
  th = threading.Thread(target=loss.backward)
  th.start()
  try:
    assert started.wait(10)
    assert _GradMode.enabled and (w + 1).requires_grad
  finally:
    release.set(); th.join(10)
  np.testing.assert_allclose(w.grad.numpy(), 2 * np.ones((4, 4)))


# ---- load_state_dict: atomic, and casts like torch

class _Net(nn.Module):
  def __init__(self):
    super().__init__()
    self.fc, self.bn = nn.Linear(3, 4), nn.BatchNorm1d(4)
  def forward(self, x): return self.bn(self.fc(x))


def _values(m): return {k: v.numpy().copy() for k, v in m.state_dict().items()}


def test_load_state_dict_failed_realize_leaves_model_unchanged(monkeypatch):
  Tensor.manual_seed(0)
  m, src = _Net(), _Net()
  before, nodes = _values(m), {k: v.node for k, v in m.state_dict().items()}
  sd = {k: v.numpy() + 1 for k, v in src.state_dict().items()}
  def fail(nodes): raise RuntimeError("device lost")
  monkeypatch.setattr(executor, "realize_nodes", fail)
  with pytest.raises(RuntimeError, match="device lost"): m.load_state_dict(sd)
  monkeypatch.undo()
  # nothing pending: the same realized nodes, the same values
  for k, v in m.state_dict().items(): assert v.node is nodes[k] and v.node.realized, k
  for k, v in _values(m).items(): np.testing.assert_array_equal(v, before[k], err_msg=k)
  m.load_state_dict(sd)   # and the next load works
  for k, v in _values(m).items(): np.testing.assert_array_equal(v, sd[k].astype(v.dtype), err_msg=k)


@pytest.mark.parametrize("kind", ["np_float64", "np_float16", "torch_float64", "torch_bfloat16", "lazy_float16", "int32_counter"])
def test_load_state_dict_casts_like_torch(kind):
  tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
  lm = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
  with torch.no_grad():
    for p in tm.parameters(): p.uniform_(-1, 1)
  conv = {"np_float64": lambda v: v.double().numpy(), "np_float16": lambda v: v.half().numpy(), "torch_float64": lambda v: v.double(),
          "torch_bfloat16": lambda v: v.bfloat16(), "lazy_float16": lambda v: Tensor(v.numpy()).cast("float16"),
          "int32_counter": lambda v: v.int().numpy()}[kind]
  sd = {k: conv(v) if v.is_floating_point() != (kind == "int32_counter") else v for k, v in tm.state_dict().items()}
  t2 = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
  t2.load_state_dict({k: torch.as_tensor(v.numpy() if isinstance(v, Tensor) else v) for k, v in sd.items()})   # torch casts
  lm.load_state_dict(sd)
  for k, v in t2.state_dict().items():
    got = lm.state_dict()[k]
    assert str(got.dtype).split(".")[-1] == str(v.dtype).split(".")[-1], (k, got.dtype, v.dtype)
    np.testing.assert_array_equal(got.numpy(), v.numpy(), err_msg=k)
  assert all(p.requires_grad for p in lm.parameters())


def test_load_state_dict_copies_the_checkpoint():
  a, b = nn.Linear(3, 2), nn.Linear(3, 2)
  sd = a.state_dict()
  b.load_state_dict(sd)
  keep = a.weight.numpy().copy()
  with no_grad(): b.weight.assign(b.weight * 0 + 7).realize()   # an in-place update of the model
  np.testing.assert_array_equal(a.weight.numpy(), keep)        # does not write into the checkpoint's tensor
  arr = {k: v.numpy().copy() for k, v in a.state_dict().items()}
  b.load_state_dict(arr)
  arr["weight"][:] = -5
  np.testing.assert_array_equal(b.weight.numpy(), keep)


# ---- bounded compile caches, a corrupt source cache

def test_kernel_cache_is_lru():
  c = KernelCache(3)
  for k in "abc": c[k] = k.upper()
  assert c["a"] == "A" and c.get("b") == "B"     # c is now the least recently used
  c["d"] = "D"
  assert list(c) == ["a", "b", "d"] and "c" not in c and c.get("c") is None
  assert list(c.items()) == [("a", "A"), ("b", "B"), ("d", "D")]
  u = KernelCache(0)
  for i in range(100): u[i] = i
  assert len(u) == 100


def test_device_compile_cache_is_bounded(monkeypatch, device):
  monkeypatch.setenv("LAZYGRAD_KERNEL_CACHE", "3")
  dev = get_device(device)
  monkeypatch.setattr(dev, "_fns", KernelCache())
  assert dev._fns.capacity == 3 and CPUDevice()._fns.capacity == 3
  for n in range(1, 7):
    a = np.arange(n, dtype=np.float32)
    np.testing.assert_allclose((Tensor(a) * 2 + 1).exp().numpy(), np.exp(a * 2 + 1), rtol=1e-6)
    assert len(dev._fns) <= 3
  monkeypatch.delenv("LAZYGRAD_KERNEL_CACHE")
  assert KernelCache().capacity == 4096


def test_source_cache_rewrites_a_corrupt_entry(tmp_path, monkeypatch):
  monkeypatch.setattr(loader, "CACHE_DIR", str(tmp_path))
  src = "def kern(x):\n  return x + 41\n"
  assert loader.load_source(src, "kern")(1) == 42
  (path,) = [p for p in tmp_path.iterdir() if p.suffix == ".py"]
  for bad in ("def kern(x:\n", "", "def kern(x):\n  return x + 4", "\x00\xff garbage"):
    path.write_bytes(bad.encode("latin-1"))
    assert loader.load_source(src, "kern")(1) == 42   # truncated or corrupt: rewritten, not a crash or a wrong function
    assert path.read_text() == src
  assert [p.name for p in tmp_path.iterdir()] == [path.name]   # no temp files left behind


def test_interp_kernel_after_cache_corruption(tmp_path, monkeypatch, device):
  if device != "interp": pytest.skip("the Triton source cache")
  monkeypatch.setattr(loader, "CACHE_DIR", str(tmp_path))
  dev = get_device("interp")
  monkeypatch.setattr(dev, "_fns", KernelCache())
  a = np.linspace(-2, 2, 37, dtype=np.float32)
  np.testing.assert_allclose((Tensor(a) * 3).sigmoid().numpy(), 1 / (1 + np.exp(-3 * a)), rtol=1e-5)
  files = [p for p in tmp_path.iterdir() if p.suffix == ".py"]
  assert files
  for p in files: p.write_text(p.read_text()[: len(p.read_text()) // 2])   # a crash mid-write, as an old cache might hold
  monkeypatch.setattr(dev, "_fns", KernelCache())   # compile afresh in this process
  np.testing.assert_allclose((Tensor(a) * 3).sigmoid().numpy(), 1 / (1 + np.exp(-3 * a)), rtol=1e-5)
  assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
  assert os.path.isdir(tmp_path)
