"""The generated Triton kernels: they compile for Hopper without a GPU, agree with the
numpy device (random numbers bit for bit), and are cached by structure."""
import numpy as np
import pytest
from helpers import compile_for_hopper
from lazygrad import Tensor, schedule, no_grad, GlobalCounters
from lazygrad.kernels.triton import render_triton, signature
from lazygrad.runtime import get_device


def _mlp_step():
  Tensor.manual_seed(0)
  x, y = Tensor.randn(32, 64).realize(), Tensor(np.arange(32) % 10)
  w1 = Tensor.randn(64, 32).realize().requires_grad_()
  w2 = Tensor.randn(32, 10).realize().requires_grad_()
  loss = (x @ w1).relu().matmul(w2).cross_entropy(y)
  loss.backward()
  with no_grad():
    for p in (w1, w2): p.assign(p - 0.1 * p.grad)
  return [loss, w1, w2]


def _representative():
  """Graphs covering every kind of kernel the renderer produces."""
  Tensor.manual_seed(0)
  a, b = Tensor.randn(16, 33).realize(), Tensor.randn(33).realize()
  img, w = Tensor.randn(2, 3, 8, 8).realize(), Tensor.randn(4, 3, 3, 3).realize()
  return [
    [((a + b) * a).relu()],                              # elementwise + broadcast
    [((a + b) * a).relu().sum()],                        # elementwise prologue into a reduce
    [a.softmax(-1)], [a.layer_norm(33)], [a.cross_entropy(Tensor(np.arange(16) % 33))],
    [a.T[::2].contiguous()], [a.pad((1, 2, 0, 1), value=3.0)], [a.flip(0).cumsum(1)],  # views, masks, multi-view
    [a.half().exp().sum(0)], [(a > 0).any(1)], [(a.long() // 3 % 5).max(0)[0]],         # fp16, bool, int
    [Tensor.rand(8, 8).dropout(0.5)],                    # philox
    [img.conv2d(w, padding=1, stride=2)], [img.max_pool2d(2)],
    _mlp_step(),
  ]


def test_kernels_compile_for_hopper(device):
  if device != "interp": pytest.skip("compiled once, from the interp run")
  jobs, seen = [], set()
  dev = get_device("interp")
  for ts in _representative():
    for it in schedule(*ts):
      src = render_triton(it.kernel)
      if src in seen: continue
      seen.add(src)
      jobs.append({"source": src, "name": it.kernel.name, "signature": signature(it.kernel),
                   "constexprs": dev.program(it.kernel).configs[0].constexprs})
  assert len(jobs) >= 25
  results = compile_for_hopper(jobs)
  assert all("cubin" in x["asm"] and "ptx" in x["asm"] for x in results)


def test_rand_matches_numpy_device_bit_for_bit(device):
  if device == "cpu": pytest.skip("compares a triton device with cpu")
  Tensor.manual_seed(1234)
  here = Tensor.rand(3, 1000).numpy()
  Tensor.manual_seed(1234)
  there = Tensor.rand(3, 1000, device="cpu").numpy()
  np.testing.assert_array_equal(here, there)
  assert 0 <= here.min() and here.max() < 1 and abs(here.mean() - 0.5) < 0.02


def test_second_realize_compiles_nothing(device):
  cache = get_device(device)._fns   # every device caches what it compiled by kernel structure
  def run(seed):
    x = Tensor(np.random.default_rng(seed).standard_normal((8, 16)).astype(np.float32))
    return (x.softmax(-1) * 2 + 1).sum(0).numpy()
  run(0)
  before = len(cache)
  run(1)
  assert len(cache) == before


def test_kernel_counts_do_not_depend_on_the_device(device):
  counts = []
  for dev in ("cpu", device):
    GlobalCounters.reset()
    Tensor.manual_seed(0)
    a = Tensor.randn(4, 8, device=dev).realize()
    GlobalCounters.reset()
    a.softmax(-1).realize()
    counts.append(GlobalCounters.kernel_count)
  assert counts[0] == counts[1]


def test_generated_source_reads_like_triton(device):
  a = Tensor.randn(16, 33).realize()
  src = render_triton(schedule(a.softmax(-1))[-1].kernel)
  assert "@triton.jit" not in src and "make_block_ptr" not in src   # jitted at load; pointer arithmetic only
  assert "tl.program_id(0)" in src and "tl.store(" in src
