"""Row kernels (softmax, log_softmax, layer_norm, var/mean, max, cross-entropy) against torch,
on every device: persistent Triton kernels (whole rows in one tile, no loops) for short
and medium rows, and on the interpreter the looped path (PERSISTENT_MAX_R lowered) with its
online softmax and Welford passes. Plus the shape of the generated source: one load per
input, no int64 index math where int32 fits, NaN-propagating max in one reduction."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lazygrad import Tensor, schedule
from lazygrad.kernels.triton import render as tr
from lazygrad.kernels.triton import render_triton
from lazygrad.runtime import get_device


def _rows(n: int, r: int, seed: int = 0, scale: float = 3.0) -> np.ndarray:
  return (np.random.default_rng(seed).standard_normal((n, r)) * scale).astype(np.float32)


def _with_specials(x: np.ndarray) -> np.ndarray:
  """NaN in row 1, row 2 all -inf, row 3 -inf at the start (the first chunk of a looped kernel), row 4 large."""
  x = x.copy()
  x[1, x.shape[1] // 2] = np.nan
  x[2, :] = -np.inf
  x[3, : x.shape[1] // 2] = -np.inf
  x[4] *= 100
  return x


def _close(got, ref, rtol=1e-4, atol=1e-5):
  np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(ref, np.float64), rtol=rtol, atol=atol, equal_nan=True)


def _check_rows(x: np.ndarray, specials: bool):
  a, t = Tensor(x), torch.tensor(x)
  _close(a.softmax(-1).numpy(), t.softmax(-1).numpy())
  _close(a.log_softmax(-1).numpy(), t.log_softmax(-1).numpy())
  _close(a.max(-1)[0].numpy(), t.amax(-1).numpy(), 0, 0)   # NaN rows stay NaN, -inf rows -inf
  if specials: return   # (var of an inf row is nan in both; nothing more to learn)
  r = x.shape[1]
  w, b = _rows(1, r, 1)[0], _rows(1, r, 2)[0]
  _close(a.layer_norm(r, Tensor(w), Tensor(b)).numpy(), F.layer_norm(t, (r,), torch.tensor(w), torch.tensor(b)).numpy(), 1e-4, 1e-4)
  _close(a.var(-1).numpy(), t.var(-1).numpy(), 1e-4, 1e-4)
  _close(a.mean(-1).numpy(), t.mean(-1).numpy())
  y = np.arange(x.shape[0]) % r
  _close(a.cross_entropy(Tensor(y)).numpy(), F.cross_entropy(t, torch.tensor(y)).numpy())


@pytest.mark.parametrize("r", [33, 2000])
def test_row_ops_match_torch(device, r):
  _check_rows(_rows(6, r), specials=False)
  _check_rows(_with_specials(_rows(6, r, 3)), specials=True)


def test_var_of_offset_data(device):
  x = _rows(4, 300, 5) + 1000.0   # a mean far from 0: a naive sum-of-squares var cancels badly
  _close(Tensor(x).var(-1).numpy(), torch.tensor(x, dtype=torch.float64).var(-1).numpy(), 1e-3, 1e-3)


@pytest.mark.parametrize("r", [33, 4096])
def test_fp16_softmax(device, r):
  x = _rows(4, r, 7, 2.0).astype(np.float16)
  got = Tensor(x).softmax(-1).numpy()
  assert got.dtype == np.float16
  _close(got, torch.tensor(x, dtype=torch.float32).softmax(-1).numpy(), 1e-2, 1e-4)


@pytest.fixture
def looped(device, monkeypatch):
  """Interp only: every reduction longer than 64 loops, in chunks of 32 (so lanes see several chunks)."""
  if device != "interp": pytest.skip("the looped Triton path: interp only")
  monkeypatch.setattr(tr, "PERSISTENT_MAX_R", 64)
  orig = tr.reduce_configs
  def small_chunks(k, interp):
    cfg = orig(k, interp)[0]
    if tr.is_persistent(k): return (cfg,)
    return (tr.LaunchConfig({**cfg.constexprs, "BLOCK_R": 32}, cfg.grid, cfg.num_warps),)
  monkeypatch.setattr(tr, "reduce_configs", small_chunks)
  monkeypatch.setattr(get_device("interp"), "_fns", {})   # programs compiled earlier keep their blocks: compile afresh


def test_looped_row_ops_match_torch(looped):
  _check_rows(_rows(6, 300, 11), specials=False)
  _check_rows(_with_specials(_rows(6, 300, 12)), specials=True)
  x = _rows(4, 300, 13, 2.0).astype(np.float16)
  _close(Tensor(x).softmax(-1).numpy(), torch.tensor(x, dtype=torch.float32).softmax(-1).numpy(), 1e-2, 1e-4)


def test_looped_online_softmax_and_welford_in_one_statistics_pass(looped):
  x = Tensor(_rows(4, 300))
  def src(t): return render_triton(schedule(t)[-1].kernel)
  for t in (x.softmax(-1), x.log_softmax(-1), x.layer_norm(300)):
    s = src(t)
    assert s.count("for r0 in range") == 2, s   # statistics, then the output
    assert s.count("tl.load(in1_ptr") == 2, s
  assert "prev0" in src(x.softmax(-1))          # the running max of the online softmax
  assert "m21" in src(x.layer_norm(300))        # Welford's M2 of the variance
  ce = [it.kernel for it in schedule(x.cross_entropy(Tensor(np.arange(4)))) if "tl.max(" in render_triton(it.kernel)]
  # max + sum(exp) in one pass; the loss is per row (the target's logit is gathered): no second pass
  assert len(ce) == 1 and render_triton(ce[0]).count("for r0 in range") == 1
  assert src(x.var(-1)).count("for r0 in range") == 1


# ---------------------------------------------------------------- the generated source

def _source(t) -> str:
  return render_triton(schedule(t)[-1].kernel)


def test_persistent_softmax_loads_its_input_once(device):
  for dt in ("float32", "float16"):
    s = _source(Tensor(_rows(8, 4096).astype(dt)).softmax(-1))
    assert s.count("tl.load(in1_ptr") == 1, s
    assert "for " not in s and "tl.static_assert(BLOCK_R >= 4096)" in s


def test_max_propagates_nan_in_one_reduction(device):
  for dt, key in (("float32", "tl.int32"), ("float16", "tl.int32"), ("float64", "tl.int64")):
    s = _source(Tensor(_rows(8, 33).astype(dt)).softmax(-1))
    assert s.count("tl.max(") == 1 and s.count("tl.sum(") == 1 and "tl.reduce(" not in s, s   # the max, and the sum of exp
    assert f".to({key}, bitcast=True)" in s
  s = _source(Tensor(_rows(8, 33)).int().max(-1)[0])   # ints have no NaN: plain tl.max
  assert "tl.max(" in s and "bitcast" not in s


def test_max_of_specials(device):
  x = np.array([[1.0, -np.inf, np.nan, 3.0], [-0.0, 0.0, -1.0, -2.0], [-np.inf] * 4, [-5.0, -3.0, -4.0, np.inf],
                [-np.nan, 1.0, 2.0, 3.0], [1e-45, -1e-45, 0.0, -0.0]], dtype=np.float32)
  for dt in ("float32", "float16", "float64"):
    got, ref = Tensor(x.astype(dt)).max(-1)[0].numpy(), torch.tensor(x.astype(dt)).amax(-1).numpy()
    np.testing.assert_array_equal(got, ref)


def test_index_math_is_int32_unless_needed(device):
  a = Tensor(_rows(16, 33))
  for t in (a.softmax(-1), a.var(-1), (a * 2 + 1).relu(), a.sum(0)):
    assert ".to(tl.int64)" not in _source(t)
  big = (Tensor.ones(50000, 1) * Tensor.ones(1, 50000)).sum(1)   # a 2.5e9-element iteration space (never run)
  k = schedule(big)[-1].kernel
  assert tr.needs_int64(k) and ".to(tl.int64)" in render_triton(k)


def test_launch_configs(device):
  def cfg(shape, interp=False):
    return tr.reduce_configs(schedule(Tensor.ones(*shape).contiguous().softmax(-1))[-1].kernel, interp)[0]
  c = cfg((4096, 4096))
  assert c.constexprs["BLOCK_R"] == 4096 and c.num_warps == 8 and c.constexprs["BLOCK_O"] * 4096 <= 8192
  c = cfg((64, 16384))
  assert c.constexprs["BLOCK_R"] == 16384 and c.num_warps == 16
  c = cfg((4096, 100))
  assert c.constexprs["BLOCK_R"] == 128 and c.num_warps == 4 and c.grid[0] >= 256
  c = cfg((2, 100000))   # looped
  assert c.constexprs["BLOCK_R"] < 100000 and c.grid == (2,)
  assert cfg((2, 100000), interp=True).constexprs["BLOCK_R"] >= 4096
