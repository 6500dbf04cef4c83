#!/usr/bin/env python3
"""Matmul and MLP-training-step benchmarks of lazygrad against numpy (and torch, if installed).

  python bench/matmul.py                 # default device (cuda if present, else cpu)
  LAZYGRAD_DEVICE=cpu python bench/matmul.py --repeats 10
  OMP_NUM_THREADS=1 python bench/matmul.py       # one BLAS thread: steadier on a shared machine

Matmul: a = Tensor.randn(n, n), b = Tensor.randn(n, n) are realized first; then the
time of (a @ b).realize() (scheduling + kernel, best of --repeats) is compared with
numpy.matmul on the same arrays. lazygrad's matmul is a broadcast multiply and a SUM,
(n, n, 1) * (1, n, n) summed over the last axis: the check below makes sure the
n x n x n product is never materialised (tracemalloc's peak stays near the n x n
output, not n^3 floats).

MLP step: one SGD step of examples/mnist_mlp.py (64 -> 128 -> 10, batch 32), split into
graph building (forward, backward, update), scheduling and kernel time, against the
same step in torch eager. Prints tables and asserts nothing.
"""
from __future__ import annotations
import argparse
import gc
import os
import platform
import time
import tracemalloc
import numpy as np
from lazygrad import Tensor, GlobalCounters, no_grad


def blas_threads() -> str:
  try:
    from threadpoolctl import threadpool_info
    return ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info() if i["user_api"] == "blas") or "no BLAS info"
  except ImportError:
    return "BLAS threads unknown"


def best_of(fn, repeats: int) -> float:
  fn()   # warm-up: compile caches, BLAS threads
  times = []
  for _ in range(repeats):
    t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
  return min(times)


def bench_matmul(sizes, repeats: int) -> None:
  print(f"{'n':>6} {'lazygrad ms':>12} {'numpy ms':>10} {'ratio':>7} {'lazygrad GFLOP/s':>17} {'kernels':>8}")
  for n in sizes:
    Tensor.manual_seed(0)
    a, b = Tensor.randn(n, n), Tensor.randn(n, n)
    Tensor.realize(a, b)
    an, bn = a.numpy(), b.numpy()
    def run():
      GlobalCounters.reset()
      return (a @ b).realize()
    t_lg = best_of(run, repeats)
    kernels = GlobalCounters.kernel_count
    t_np = best_of(lambda: np.matmul(an, bn), repeats)
    err = np.abs(run().numpy() - an @ bn).max()
    print(f"{n:>6} {t_lg * 1e3:>12.2f} {t_np * 1e3:>10.2f} {t_lg / t_np:>7.2f} {2 * n ** 3 / t_lg / 1e9:>17.1f} {kernels:>8}"
          + (f"   max abs err {err:.2e}" if err > 1e-2 else ""))


def check_no_cube(n: int) -> None:
  Tensor.manual_seed(0)
  a, b = Tensor.randn(n, n), Tensor.randn(n, n)
  Tensor.realize(a, b)
  gc.collect()
  tracemalloc.start()
  c = (a @ b).realize()
  _, peak = tracemalloc.get_traced_memory()
  tracemalloc.stop()
  out_bytes = n * n * c.dtype.itemsize
  cube_bytes = n ** 3 * c.dtype.itemsize
  verdict = "OK: no n^3 intermediate" if peak < cube_bytes / 8 else "PROBLEM: an n^3-sized intermediate was allocated"
  print(f"tracemalloc peak during ({n}x{n}) @ ({n}x{n}): {peak / 2 ** 20:.1f} MiB "
        f"(output {out_bytes / 2 ** 20:.1f} MiB, an n^3 product would be {cube_bytes / 2 ** 30:.1f} GiB) -> {verdict}")


def bench_mlp_step(repeats: int, batch: int = 32) -> None:
  rng = np.random.default_rng(0)
  x_np, y_np = rng.standard_normal((batch, 64)).astype(np.float32), rng.integers(0, 10, batch)
  Tensor.manual_seed(0)
  shapes = [(128, 64), (128,), (10, 128), (10,)]
  params = [Tensor.uniform(*s, low=-0.1, high=0.1, requires_grad=True) for s in shapes]
  Tensor.realize(*params)
  w1, b1, w2, b2 = params
  lr = 0.01
  parts = {"graph": [], "schedule+run": [], "kernels": []}

  def step():
    t0 = time.perf_counter()
    x, y = Tensor(x_np), Tensor(y_np)
    loss = x.linear(w1, b1).relu().linear(w2, b2).cross_entropy(y)
    loss.backward()
    with no_grad():
      for p in params: p.assign(p - lr * p.grad)
    t1 = time.perf_counter()
    GlobalCounters.reset()
    loss.realize(*params)
    t2 = time.perf_counter()
    for p in params: p.grad = None
    parts["graph"].append(t1 - t0); parts["schedule+run"].append(t2 - t1); parts["kernels"].append(GlobalCounters.time_sum_s)

  for _ in range(3): step()
  for v in parts.values(): v.clear()
  steps = max(repeats, 20) * 5
  t = time.perf_counter()
  for _ in range(steps): step()
  t_lg = (time.perf_counter() - t) / steps
  kernels = GlobalCounters.kernel_count
  med = {k: float(np.median(v)) for k, v in parts.items()}
  print(f"lazygrad SGD step (64-128-10, batch {batch}): {t_lg * 1e3:.2f} ms/step, {kernels} kernels/step")
  print(f"  median: graph build {med['graph'] * 1e3:.2f} ms, realize {med['schedule+run'] * 1e3:.2f} ms "
        f"(of which kernels {med['kernels'] * 1e3:.2f} ms, scheduling/launch overhead {(med['schedule+run'] - med['kernels']) * 1e3:.2f} ms)")
  try:
    import torch
  except ImportError:
    print("  (torch not installed: no torch comparison)"); return
  torch.manual_seed(0)
  tp = [torch.empty(*s).uniform_(-0.1, 0.1).requires_grad_() for s in shapes]
  xt, yt = torch.from_numpy(x_np), torch.from_numpy(y_np)
  F = torch.nn.functional
  def torch_step():
    loss = F.cross_entropy(F.linear(F.linear(xt, tp[0], tp[1]).relu(), tp[2], tp[3]), yt)
    loss.backward()
    with torch.no_grad():
      for p in tp: p -= lr * p.grad; p.grad = None
  for _ in range(3): torch_step()
  t = time.perf_counter()
  for _ in range(steps): torch_step()
  t_t = (time.perf_counter() - t) / steps
  print(f"torch eager same step: {t_t * 1e3:.3f} ms/step (lazygrad / torch = {t_lg / t_t:.1f}x)")


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
  args = ap.parse_args(argv)
  dev = Tensor([0.0]).device
  print(f"lazygrad device {dev}; numpy {np.__version__} ({blas_threads()}); {platform.machine()}, "
        f"{os.cpu_count()} cpus; python {platform.python_version()}")
  bench_matmul(args.sizes, args.repeats)
  check_no_cube(max(args.sizes))
  bench_mlp_step(args.repeats)


if __name__ == "__main__":
  main()
