#!/usr/bin/env python3
"""Fusion benchmark: kernel counts and wall time of the fusion issue's targets and of an
MLP training step, lazygrad (fused, and NOFUSE=1: one kernel per op) vs numpy eager
(the same computation written op by op in numpy) vs torch eager, plus the Python time
the scheduler spends on the first vs a second identical training step.

  OMP_NUM_THREADS=1 python bench/fusion.py              # default device (cpu here)
  OMP_NUM_THREADS=1 python bench/fusion.py --repeats 30 --sizes 64x128,1024x1024

Large numpy temporaries come from glibc malloc, whose mmap threshold moves with the
process's allocation history: the same kernel then runs with or without page faults on
its temporaries (cross_entropy on 1024x1024 measured 3.8 or 13.4 ms depending on which
benchmarks ran before it). The script pins the thresholds with mallopt (as
MALLOC_MMAP_THRESHOLD_=1GiB MALLOC_TRIM_THRESHOLD_=1GiB would); --default-malloc keeps
glibc's adaptive behaviour.

Times are the best of --repeats after a warm-up; a lazygrad time is building the lazy
graph + realize (scheduling, lowering, kernels); inputs are realized beforehand. Ratios
are lazygrad (fused) / other: below 1 means lazygrad is faster. Prints tables; asserts
nothing.
"""
from __future__ import annotations
import argparse
import contextlib
import os
import platform
import sys
import time
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lazygrad.runtime.executor as lg_realize       # noqa: E402
import lazygrad.scheduler as lg_scheduler            # noqa: E402
from lazygrad import Tensor, GlobalCounters, no_grad  # noqa: E402

try:
  import torch
  import torch.nn.functional as F
except ImportError:   # torch columns left empty
  torch = F = None


def pin_malloc_thresholds() -> str:
  """Fixed glibc mmap/trim thresholds (1 GiB): big temporaries are reused from the heap
  instead of being mmapped (and page-faulted) afresh depending on earlier frees."""
  try:
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
    return "glibc malloc thresholds pinned at 1 GiB" if ok else "mallopt failed: adaptive malloc"
  except OSError:
    return "not glibc: malloc left as is"


def best_of(fn, repeats: int) -> float:
  fn()   # warm-up: compile caches, schedule cache, BLAS threads
  times = []
  for _ in range(repeats):
    t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
  return min(times)


@contextlib.contextmanager
def nofuse():
  """NOFUSE=1 with a schedule cache of its own (fused and unfused schedules of the same
  graph structure must not be served to each other)."""
  saved_env, saved_cache = os.environ.get("NOFUSE"), getattr(lg_scheduler, "_schedule_cache", None)
  os.environ["NOFUSE"] = "1"
  lg_scheduler._schedule_cache = {}
  try: yield
  finally:
    if saved_env is None: del os.environ["NOFUSE"]
    else: os.environ["NOFUSE"] = saved_env
    lg_scheduler._schedule_cache = saved_cache if saved_cache is not None else {}


# ---------------------------------------------------------------- the targets, three ways

def np_softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)

def np_layer_norm(x, w, b, eps=1e-5):
  mu = x.mean(-1, keepdims=True)
  d = x - mu
  return d / np.sqrt((d * d).mean(-1, keepdims=True) + eps) * w + b

def np_cross_entropy(x, y):
  m = x.max(-1, keepdims=True)
  lse = np.log(np.exp(x - m).sum(-1)) + m[:, 0]
  return (lse - x[np.arange(len(y)), y]).mean()


def targets(n: int, m: int):
  """(name, input arrays, lazygrad fn, numpy fn, torch fn)."""
  rng = np.random.default_rng(0)
  r = lambda *s: rng.standard_normal(s).astype(np.float32)
  abc = [r(n, m), r(n, m), r(n, m)]
  x = r(n, m)
  y = rng.integers(0, m, n)
  return [
    ("((a+b)*c).relu()", abc, lambda a, b, c: ((a + b) * c).relu(),
     lambda a, b, c: np.maximum((a + b) * c, 0), lambda a, b, c: ((a + b) * c).relu()),
    ("((a+b)*c).relu().sum()", abc, lambda a, b, c: ((a + b) * c).relu().sum(),
     lambda a, b, c: np.maximum((a + b) * c, 0).sum(), lambda a, b, c: ((a + b) * c).relu().sum()),
    ("x - x.mean(-1, keepdim)", [x], lambda x: x - x.mean(-1, keepdim=True),
     lambda x: x - x.mean(-1, keepdims=True), lambda x: x - x.mean(-1, keepdim=True)),
    ("softmax(x, -1)", [x], lambda x: x.softmax(-1), np_softmax, lambda x: torch.softmax(x, -1)),
    ("layer_norm(x, w, b)", [x, r(m), r(m)], lambda x, w, b: x.layer_norm((m,), w, b), np_layer_norm,
     lambda x, w, b: F.layer_norm(x, (m,), w, b)),
    ("cross_entropy(x, y)", [x, y], lambda x, y: x.cross_entropy(y), np_cross_entropy, lambda x, y: F.cross_entropy(x, y)),
  ]


def bench_targets(sizes, repeats: int):
  print(f"\n{'target':<26} {'size':>10} {'kernels':>7} {'NOFUSE':>6} {'lazygrad ms':>11} {'NOFUSE ms':>9} {'numpy ms':>9} "
        f"{'torch ms':>9} {'/numpy':>7} {'/torch':>7}")
  for n, m in sizes:
    for name, arrays, lg_fn, np_fn, t_fn in targets(n, m):
      ins = [Tensor(a) for a in arrays]
      Tensor.realize(*ins)
      def lg_run():
        GlobalCounters.reset()
        return lg_fn(*ins).realize()
      t_lg = best_of(lg_run, repeats)
      k_lg = GlobalCounters.kernel_count
      with nofuse():
        t_nf = best_of(lg_run, repeats)
        k_nf = GlobalCounters.kernel_count
      t_np = best_of(lambda: np_fn(*arrays), repeats)
      if torch is not None:
        tt = [torch.from_numpy(a) for a in arrays]
        with torch.no_grad(): t_t = best_of(lambda: t_fn(*tt), repeats)
      else: t_t = float("nan")
      err = np.abs(lg_run().numpy() - np.asarray(np_fn(*arrays))).max()
      print(f"{name:<26} {f'{n}x{m}':>10} {k_lg:>7} {k_nf:>6} {t_lg * 1e3:>11.3f} {t_nf * 1e3:>9.3f} {t_np * 1e3:>9.3f} "
            f"{t_t * 1e3:>9.3f} {t_lg / t_np:>7.2f} {t_lg / t_t:>7.2f}" + (f"   max abs err {err:.1e}" if err > 1e-3 else ""))


# ---------------------------------------------------------------- MLP training step

SIZES, BATCH, LR = (784, 128, 10), 32, 0.01


def mlp_init():
  rng = np.random.default_rng(0)
  out = []
  for i, o in zip(SIZES, SIZES[1:]):
    bound = 1 / np.sqrt(i)
    out += [rng.uniform(-bound, bound, (o, i)).astype(np.float32), rng.uniform(-bound, bound, (o,)).astype(np.float32)]
  return out


def mlp_batch(step: int):
  rng = np.random.default_rng(step)
  return rng.standard_normal((BATCH, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], BATCH)


class LazyMLP:
  """Plain tensors; forward + backward + SGD update realized in one schedule with the loss."""
  def __init__(self):
    self.params = [Tensor(p, requires_grad=True).realize() for p in mlp_init()]
    self.batches = [tuple(Tensor(a).realize() for a in mlp_batch(s)) for s in range(4)]
    self.i = 0

  def build(self):
    x, y = self.batches[self.i % len(self.batches)]
    self.i += 1
    w1, b1, w2, b2 = self.params
    loss = x.linear(w1, b1).relu().linear(w2, b2).cross_entropy(y)
    loss.backward()
    with no_grad():
      for p in self.params: p.assign(p - LR * p.grad)
    return loss

  def realize(self, loss):
    loss.realize(*self.params)
    for p in self.params: p.grad = None
    return loss

  def step(self):
    return self.realize(self.build())


class NumpyMLP:
  def __init__(self):
    self.params = mlp_init()
    self.batches = [mlp_batch(s) for s in range(4)]
    self.i = 0

  def step(self):
    x, y = self.batches[self.i % len(self.batches)]
    self.i += 1
    w1, b1, w2, b2 = self.params
    h_pre = x @ w1.T + b1
    h = np.maximum(h_pre, 0)
    z = h @ w2.T + b2
    m = z.max(-1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(-1, keepdims=True)
    loss = (np.log(s[:, 0]) + m[:, 0] - z[np.arange(len(y)), y]).mean()
    dz = e / s
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    dw2, db2 = dz.T @ h, dz.sum(0)
    dh = (dz @ w2) * (h_pre > 0)
    dw1, db1 = dh.T @ x, dh.sum(0)
    self.params = [p - LR * g for p, g in zip(self.params, (dw1, db1, dw2, db2))]
    return loss


class TorchMLP:
  def __init__(self):
    self.params = [torch.tensor(p, requires_grad=True) for p in mlp_init()]
    self.opt = torch.optim.SGD(self.params, lr=LR)
    self.batches = [tuple(torch.from_numpy(a) for a in mlp_batch(s)) for s in range(4)]
    self.i = 0

  def step(self):
    x, y = self.batches[self.i % len(self.batches)]
    self.i += 1
    w1, b1, w2, b2 = self.params
    self.opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(F.linear(F.linear(x, w1, b1).relu(), w2, b2), y)
    loss.backward()
    self.opt.step()
    return loss


def bench_mlp(repeats: int):
  print(f"\nMLP training step: {SIZES[0]}-{SIZES[1]}-{SIZES[2]}, batch {BATCH}, SGD lr {LR}: forward + backward + update "
        "(lazygrad: one realize of the loss and the 4 parameters)")
  lm = LazyMLP()
  GlobalCounters.reset(); lm.step(); k_lg = GlobalCounters.kernel_count
  t_lg = best_of(lm.step, repeats)
  with nofuse():
    lm_nf = LazyMLP()
    GlobalCounters.reset(); lm_nf.step(); k_nf = GlobalCounters.kernel_count
    t_nf = best_of(lm_nf.step, repeats)
  t_np = best_of(NumpyMLP().step, repeats)
  t_t = best_of(TorchMLP().step, repeats) if torch is not None else float("nan")
  # same losses after the same steps (a check that the three compute the same thing)
  a, b = LazyMLP(), NumpyMLP()
  for _ in range(3): la, lb = float(a.step().numpy()), float(b.step())
  print(f"{'':<26} {'kernels':>7} {'ms/step':>9} {'lazygrad /':>10}")
  print(f"{'lazygrad (fused)':<26} {k_lg:>7} {t_lg * 1e3:>9.3f} {1.0:>10.2f}")
  print(f"{'lazygrad NOFUSE=1':<26} {k_nf:>7} {t_nf * 1e3:>9.3f} {t_lg / t_nf:>10.2f}")
  print(f"{'numpy eager':<26} {'':>7} {t_np * 1e3:>9.3f} {t_lg / t_np:>10.2f}")
  print(f"{'torch eager':<26} {'':>7} {t_t * 1e3:>9.3f} {t_lg / t_t:>10.2f}")
  print(f"(loss after 3 steps: lazygrad {la:.6f}, numpy {lb:.6f})")


def bench_schedule_time(repeats: int):
  """Python time in create_schedule for the first step (schedule cache empty) vs the
  next identical steps (same graph structure, new nodes: a cache hit)."""
  times: list[float] = []
  inner = lg_realize.create_schedule
  def timed(targets):
    t = time.perf_counter(); s = inner(targets); times.append(time.perf_counter() - t); return s
  lm = LazyMLP()   # realizes parameters and batches: not timed
  saved = getattr(lg_scheduler, "_schedule_cache", None)
  lg_scheduler._schedule_cache = {}
  lg_realize.create_schedule = timed
  try:
    build, real = [], []
    for _ in range(repeats + 1):
      t0 = time.perf_counter(); loss = lm.build(); t1 = time.perf_counter(); lm.realize(loss); t2 = time.perf_counter()
      build.append(t1 - t0); real.append(t2 - t1)
  finally:
    lg_realize.create_schedule = inner
    lg_scheduler._schedule_cache = saved if saved is not None else {}
  first, rest = times[0], min(times[1:])
  print("\nScheduling (create_schedule) of one MLP training step, Python time:")
  print(f"  first step (schedule cache empty): {first * 1e3:8.3f} ms   "
        f"(whole realize {real[0] * 1e3:.2f} ms; kernels already compiled by the MLP bench above)")
  print(f"  identical later step (cache hit):  {rest * 1e3:8.3f} ms   (whole realize {min(real[1:]) * 1e3:.2f} ms; "
        f"building the graph {min(build[1:]) * 1e3:.2f} ms)")
  print(f"  first / cached: {first / rest:.1f}x")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--repeats", type=int, default=20)
  ap.add_argument("--sizes", default="64x128,1024x1024", help="comma-separated NxM row-major sizes of the targets")
  ap.add_argument("--default-malloc", action="store_true", help="keep glibc's adaptive mmap threshold (noisier)")
  args = ap.parse_args()
  malloc = "adaptive glibc malloc" if args.default_malloc else pin_malloc_thresholds()
  sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
  dev = os.environ.get("LAZYGRAD_DEVICE", "cpu")
  print(f"lazygrad device {dev}; Python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch.__version__ if torch else 'n/a'} ({torch.get_num_threads() if torch else 0} threads), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs; {malloc}")
  bench_targets(sizes, args.repeats)
  bench_mlp(args.repeats)
  bench_schedule_time(args.repeats)


if __name__ == "__main__":
  main()
