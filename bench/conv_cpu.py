#!/usr/bin/env python3
"""Convolution on the cpu (numpy) device: the issue-11 CNN's training step and per-conv micro-benchmarks,
lazygrad vs torch eager, alternating in one process, one thread each.

  OPENBLAS_NUM_THREADS=1 python bench/conv_cpu.py step              # the CNN step, ms and kernels/step
  OPENBLAS_NUM_THREADS=1 python bench/conv_cpu.py step --kernels 15  # also its 15 costliest kernels (replayed)
  OPENBLAS_NUM_THREADS=1 python bench/conv_cpu.py micro             # conv3x3 s1/s2 forward, wgrad, dgrad

The CNN: conv3x3 stem (3 -> 16) + BatchNorm + ReLU, two residual blocks (16 ch, BatchNorm), global average
pool, Linear(16, 10); 3x32x32 inputs, batch 32, SGD momentum 0.9. The micro-benchmarks time lazygrad's
kernels alone (each captured kernel replayed on its inputs: no graph building or scheduling), against the
matching torch op (F.conv2d, aten.convolution_backward for one gradient at a time). All times are process
CPU time (the machine may be shared; both sides run one thread).
"""
from __future__ import annotations
import argparse
import collections
import math
import os
import statistics
import sys
import time
import numpy as np

os.environ.setdefault("LAZYGRAD_DEVICE", "cpu")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


# ---- the CNN, in both frameworks

def lg_cnn(width: int = 16):
  """The lazygrad model."""
  from lazygrad import nn

  class Block(nn.Module):
    """conv-bn-relu-conv-bn + identity, relu."""
    def __init__(self, c):
      super().__init__()
      self.conv1, self.bn1 = nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)
      self.conv2, self.bn2 = nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)
    def forward(self, x): return (self.bn2(self.conv2(self.bn1(self.conv1(x)).relu())) + x).relu()

  return nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(), Block(width), Block(width),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def torch_cnn(width: int = 16):
  """The same model in torch."""
  import torch.nn as tnn

  class Block(tnn.Module):
    def __init__(self, c):
      super().__init__()
      self.conv1, self.bn1 = tnn.Conv2d(c, c, 3, 1, 1, bias=False), tnn.BatchNorm2d(c)
      self.conv2, self.bn2 = tnn.Conv2d(c, c, 3, 1, 1, bias=False), tnn.BatchNorm2d(c)
    def forward(self, x): return (self.bn2(self.conv2(self.bn1(self.conv1(x)).relu())) + x).relu()

  return tnn.Sequential(tnn.Conv2d(3, width, 3, 1, 1, bias=False), tnn.BatchNorm2d(width), tnn.ReLU(), Block(width), Block(width),
                        tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(width, 10))


# ---- capturing and replaying lazygrad's kernels

def capture(fn) -> list:
  """Run fn; return [(ScheduleItem, input arrays)] of every kernel it launched, inputs copied before the run."""
  import lazygrad.runtime.executor as R
  captured, orig = [], R.run_schedule
  def hook(sched):
    for it in sched.items: captured.append((it, [n.buffer.data.copy() if n.realized else None for n in it.inputs]))
    return orig(sched)
  R.run_schedule = hook
  try: fn()
  finally: R.run_schedule = orig
  return captured


def replay(captured, reps: int = 3, only=None) -> list[tuple[str, float]]:
  """(kernel name, best-of-reps seconds) of each captured kernel, run alone on its captured inputs; `only`: a
  predicate on the name, the kernels to time (the others run once, for their outputs)."""
  from lazygrad.runtime import get_device
  dev, outs, times = get_device("cpu"), {}, []
  for it, ins in captured:
    fn = dev.compile(it.kernel)
    arrs = [a if a is not None else outs[id(n)] for n, a in zip(it.inputs, ins)]
    out = np.empty(math.prod(it.out.shape), dtype=it.out.dtype.np)
    best = math.inf
    with np.errstate(all="ignore"):
      fn([out] + arrs, it.var_values)
      for _ in range(reps if only is None or only(it.kernel.name) else 0):
        t = time.process_time()   # CPU time: the machine may be shared, and kernels are single-threaded
        fn([out] + arrs, it.var_values)
        best = min(best, time.process_time() - t)
    outs[id(it.out)] = out
    if best < math.inf: times.append((it.kernel.name, best))
  return times


# ---- the step

def step_bench(args) -> None:
  import torch
  from lazygrad import Tensor, optim, GlobalCounters
  torch.set_num_threads(1)
  rng = np.random.default_rng(0)
  B = args.batch_size
  xs = [rng.standard_normal((B, 3, 32, 32)).astype(np.float32) for _ in range(4)]
  ys = [rng.integers(0, 10, B) for _ in range(4)]
  Tensor.manual_seed(0)
  model = lg_cnn(args.width)
  params = list(model.parameters())
  Tensor.realize(*params, *model.buffers())
  opt = optim.SGD(params, lr=0.01, momentum=0.9)
  def lg_step(i):
    loss = model(Tensor(xs[i % 4])).cross_entropy(Tensor(ys[i % 4]))
    opt.zero_grad(); loss.backward(); opt.step(); loss.item()
  torch.manual_seed(0)
  tm = torch_cnn(args.width)
  topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
  txs, tys = [torch.from_numpy(x) for x in xs], [torch.from_numpy(y) for y in ys]
  def torch_step(i):
    loss = torch.nn.functional.cross_entropy(tm(txs[i % 4]), tys[i % 4])
    topt.zero_grad(); loss.backward(); topt.step(); loss.item()
  for i in range(3): lg_step(i); torch_step(i)
  lg, tt, kernels = [], [], []
  for i in range(args.steps):
    k0 = GlobalCounters.kernel_count
    t = time.process_time(); lg_step(i); lg.append(time.process_time() - t)
    kernels.append(GlobalCounters.kernel_count - k0)
    t = time.process_time(); torch_step(i); tt.append(time.process_time() - t)
  lgm, ttm = statistics.median(lg) * 1e3, statistics.median(tt) * 1e3
  print(f"CNN step, batch {B}, width {args.width}, median of {args.steps}: lazygrad cpu {lgm:.1f} ms "
        f"({statistics.median(kernels):.0f} kernels), torch eager {ttm:.1f} ms, ratio {lgm / ttm:.2f}x")
  if args.kernels:
    times = replay(capture(lambda: lg_step(0)))
    agg = collections.defaultdict(lambda: [0.0, 0])
    for name, dt in times: agg[name][0] += dt; agg[name][1] += 1
    total = sum(dt for _, dt in times)
    print(f"{len(times)} kernels, {total * 1e3:.1f} ms when replayed one by one (best of 3); the costliest:")
    for name, (dt, n) in sorted(agg.items(), key=lambda kv: -kv[1][0])[:args.kernels]:
      print(f"  {dt * 1e3:8.2f} ms  {n:3d}x  {name}")


# ---- per-conv micro-benchmarks

def micro_cases(batch: int):
  """(label, input shape, weight shape, stride): ResNet-ish 3x3 convs at 32x32, padding 1."""
  for c in (16, 32, 64):
    yield f"3x3 s1 {c}->{c}", (batch, c, 32, 32), (c, c, 3, 3), 1
  for c in (16, 32):
    yield f"3x3 s2 {c}->{2 * c}", (batch, c, 32, 32), (2 * c, c, 3, 3), 2


def lg_parts(x, w, g, stride):
  """lazygrad thunks for forward, weight gradient, input gradient (each builds and realizes its graph)."""
  from lazygrad import Tensor
  from lazygrad.tensor_nn import _conv_vjp
  X, W, G = Tensor(x), Tensor(w), Tensor(g)
  Xg, Wg = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
  return {"fwd": lambda: X.conv2d(W, stride=stride, padding=1).realize(),
          "wgrad": lambda: _conv_vjp(X, Wg, G, (stride,) * 2, (1, 1), (1, 1), 1)[1].realize(),
          "dgrad": lambda: _conv_vjp(Xg, W, G, (stride,) * 2, (1, 1), (1, 1), 1)[0].realize()}


def torch_parts(x, w, g, stride):
  """The torch counterparts."""
  import torch
  X, W, G = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(g)
  bw = lambda mask: torch.ops.aten.convolution_backward(G, X, W, None, [stride] * 2, [1, 1], [1, 1], False, [0, 0], 1, mask)
  return {"fwd": lambda: torch.nn.functional.conv2d(X, W, stride=stride, padding=1),
          "wgrad": lambda: bw([False, True, False]), "dgrad": lambda: bw([True, False, False])}


def micro_bench(args) -> None:
  import torch
  torch.set_num_threads(1)
  rng = np.random.default_rng(0)
  print(f"{'conv':16s} {'part':6s} {'lazygrad':>9s} {'torch':>9s} {'ratio':>6s}  kernels (ms, slowest first)")
  for label, xs, ws, s in micro_cases(args.batch_size):
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    o = (xs[2] + 2 - 3) // s + 1
    g = rng.standard_normal((xs[0], ws[0], o, o)).astype(np.float32)
    lgp, tp = lg_parts(x, w, g, s), torch_parts(x, w, g, s)
    for part in ("fwd", "wgrad", "dgrad"):
      cap = capture(lgp[part])
      lg_t, t_t, ks = [], [], None
      for _ in range(args.reps):   # alternating, so machine noise hits both alike
        ks = replay(cap, 1); lg_t.append(sum(dt for _, dt in ks))
        t = time.process_time(); tp[part](); t_t.append(time.process_time() - t)
      a, b = min(lg_t) * 1e3, min(t_t) * 1e3
      detail = ", ".join(f"{n} {dt * 1e3:.2f}" for n, dt in sorted(ks, key=lambda kv: -kv[1]))
      print(f"{label:16s} {part:6s} {a:8.2f}ms {b:8.2f}ms {a / b:5.2f}x  {detail}")


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("what", choices=("step", "micro", "all"))
  ap.add_argument("--batch-size", type=int, default=32)
  ap.add_argument("--width", type=int, default=16)
  ap.add_argument("--steps", type=int, default=20)
  ap.add_argument("--reps", type=int, default=5)
  ap.add_argument("--kernels", type=int, default=0, help="also list the N costliest lazygrad kernels of one step")
  args = ap.parse_args()
  if args.what in ("step", "all"): step_bench(args)
  if args.what in ("micro", "all"): micro_bench(args)


if __name__ == "__main__":
  main()
