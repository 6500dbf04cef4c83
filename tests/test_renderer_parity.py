"""Renderer parity: each Kernel of a schedule, run by the numpy renderer (the cpu device's compile) and by the
Triton renderer (the test device's compile: interp here, cuda on a GPU machine) on the same input arrays, must
give the same output. Kernels are compared one at a time (each gets the numpy renderer's outputs of the kernels
before it as inputs), so a difference points at one kernel and shows its Triton source. Skipped on cpu."""
import math
import numpy as np
import pytest
from lazygrad import Tensor, dtypes, schedule
from lazygrad.runtime import get_device


@pytest.fixture(autouse=True)
def _triton_only(device):
  if device == "cpu": pytest.skip("parity of the numpy and Triton renderers: runs on the Triton test device")


def _src(dev, kernel) -> str:
  try: return dev.compile(kernel).program.source
  except Exception as e: return f"<no source: {e}>"


def check_parity(*outs: Tensor, rtol=1e-5, atol=1e-6, expect=None):
  """Run every kernel realizing `outs` through both renderers on the same inputs; return the kernel names."""
  items = schedule(*outs)
  assert items, "nothing to run"
  cpu, dev = get_device("cpu"), get_device(items[0].out.device)
  produced: dict[int, np.ndarray] = {}
  for it in items:
    k = it.kernel
    ins = [np.ascontiguousarray(n.buffer.numpy()).reshape(-1) if n.realized else produced[id(n)] for n in it.inputs]
    size, odt = math.prod(it.out.shape), it.out.dtype
    # the output buffer starts from the same contents on both sides (an in-place assign reads it)
    init = ins_of_target(it, size, odt)
    ref = init.copy()
    with np.errstate(all="ignore"): cpu.compile(k)([ref] + [a.copy() for a in ins], it.var_values)
    bufs = [dev.from_numpy(init, odt)] + [dev.from_numpy(a, dt) for a, dt in zip(ins, k.buf_dtypes[1:])]
    if math.prod(k.shape) or size: dev.compile(k)([b.data for b in bufs], it.var_values)
    dev.synchronize()
    got = bufs[0].numpy()
    tol = (max(rtol, 1e-2), max(atol, 1e-2)) if odt.itemsize < 4 and odt.is_float else (rtol, atol)
    if odt.is_float:
      ok = np.allclose(got.astype(np.float64), ref.astype(np.float64), rtol=tol[0], atol=tol[1], equal_nan=True)
    else: ok = np.array_equal(got, ref)
    assert ok, (f"kernel {k.name} {k.shape}: Triton and numpy renderers differ (max |diff| "
                f"{np.nanmax(np.abs(got.astype(np.float64) - ref.astype(np.float64))) if size else 0})\n{_src(dev, k)}")
    produced[id(it.out)] = ref
  names = [it.kernel.name for it in items]
  if expect is not None: assert any(expect in n for n in names), f"expected a kernel named *{expect}*, got {names}"
  return names


def ins_of_target(it, size, odt) -> np.ndarray:
  if it.in_place:
    src = it.out.srcs[0]
    return np.ascontiguousarray(src.buffer.numpy()).reshape(-1).copy()
  return np.full(size, 7, dtype=odt.np)   # anything not written shows up as a difference


def arr(shape, seed, low=-2.0, high=2.0, dtype=np.float32):
  return np.random.default_rng(seed).uniform(low, high, size=shape).astype(dtype)


def T(shape, seed, **kw) -> Tensor: return Tensor(arr(shape, seed, **kw)).realize()


# ============================================================ elementwise: masks and multi-view loads

def test_elementwise_masks_and_views():
  x, y = T((5, 6), 1), T((6,), 2)
  check_parity((x.pad((1, 2, 0, 1)) * 2 + 1).exp())                                   # pad: masked loads, pad value 0
  check_parity(x.pad((1, 1), value=-3.5) + y.pad((1, 1)))                              # two masks, pad value from a mask
  check_parity(x.T.reshape(30) * 1.5 - y.repeat(5))                                   # carry: a two-view load
  check_parity(x[::2, ::-3] + x[:3, 1::3].flip(0))                                     # stepped, flipped slices
  check_parity(Tensor.cat([x, x.exp(), (x * y)[:, :3].pad((0, 3))], 0))               # cat: several windows of computed values
  check_parity((x > 0).where(x, y.sin()).maximum(-0.5).sqrt().isnan())                # bool output


def test_elementwise_dtypes():
  a, b = Tensor(np.arange(-12, 12, dtype=np.int32).reshape(4, 6)), Tensor(np.array([3, -2, 5, -7, 1, 4], dtype=np.int32))
  check_parity(a // b, a % b, (a * b) ^ (a & 7), a.maximum(b) - (a < b).cast(dtypes.int32))   # truncating vs floor div/mod
  h = Tensor(arr((4, 6), 3, dtype=np.float16))
  check_parity((h * 3).exp2() + h.cast(dtypes.float32).sigmoid().cast(dtypes.float16), rtol=1e-2, atol=1e-2)
  d = Tensor(arr((3, 4), 4, dtype=np.float64))
  check_parity((d * d).log1p() / d.abs().maximum(1e-3), rtol=1e-12, atol=1e-12)
  u = Tensor(np.array([0, 1, 200, 255], dtype=np.uint8))
  check_parity(u + 100, ~u, u.cast(dtypes.float32) / 3)


# ============================================================ row kernels

def test_row_kernels():
  x = T((7, 33), 5)
  check_parity(x.softmax(1), expect="softmax")
  check_parity(x.layer_norm(33), expect="norm")
  check_parity(x.sum(0), x.amax(1), x.amin(0))
  check_parity(x.T.logsumexp(0), x.var(1), x.argmax(1))
  check_parity(x.cumsum(1))
  nan = Tensor(np.array([[1.0, np.nan, 3.0], [-np.inf, -1.0, np.inf], [-0.0, 0.0, -1.0]], dtype=np.float32))
  check_parity(nan.amax(1), nan.amin(0), nan.sum(1))
  check_parity(Tensor(arr((5, 40), 6, dtype=np.float16)).mean(1), rtol=1e-2, atol=1e-2)
  check_parity(Tensor(np.arange(24, dtype=np.int64).reshape(4, 6)).sum(1), Tensor(np.arange(24, dtype=np.int32).reshape(4, 6) - 12).amax(0))


# ============================================================ contractions

def test_contractions():
  a, w, b = T((9, 12), 7), T((10, 12), 8), T((10,), 9)
  check_parity((a @ w.T + b).relu(), expect="mm")                                       # bias + relu epilogue
  check_parity(T((3, 5, 8), 10) @ T((3, 8, 4), 11), expect="bmm")
  check_parity((a.T.exp() * 0.5).T @ w.T[:, :7], rtol=1e-4, atol=1e-5)                  # costly prologue, sliced operand
  h, hw = Tensor(arr((8, 16), 12, dtype=np.float16)), Tensor(arr((16, 8), 13, dtype=np.float16))
  check_parity(h @ hw, rtol=1e-2, atol=1e-2)
  check_parity(T((2, 3, 6, 6), 14).conv2d(T((4, 3, 3, 3), 15), padding=1), rtol=1e-4, atol=1e-5)
  i, j = Tensor(np.arange(12, dtype=np.int64).reshape(3, 4) - 5), Tensor(np.arange(8, dtype=np.int64).reshape(4, 2))
  check_parity(i @ j)


# ============================================================ random numbers

def test_rand():
  Tensor.manual_seed(11)
  check_parity(Tensor.rand(5, 7), Tensor.rand(3, 3) * 2 - 1)                           # Philox on both sides: the same bits
  check_parity(Tensor.randn(4, 9), rtol=1e-5, atol=1e-5)                               # Box-Muller
  check_parity(T((6, 8), 16).dropout(0.3), Tensor.randint(0, 10, (12,)))
