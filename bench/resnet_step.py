#!/usr/bin/env python3
"""One training step of examples/resnet.py's model (SGD momentum, nesterov, weight decay):
lazygrad vs torch eager on the same layout, and lazygrad's kernels by time.

  OPENBLAS_NUM_THREADS=1 python bench/resnet_step.py            # small ResNet, batch 128
  python bench/resnet_step.py --blocks 2,2,2,2 --width 64 --batch-size 32   # ResNet-18 layout
  python bench/resnet_step.py --kernels 15                      # also the 15 costliest kernels

Steady state: two steps warm up (the first schedules and compiles; the second is the
first with momentum buffers, a new graph), then the mean of --steps steps, wall and
process CPU time. torch gets --torch-threads threads (default 1, the steadiest on a
shared machine; lazygrad's numpy kernels are single-threaded apart from BLAS).
--kernels N replays each kernel of one captured step in isolation (process CPU time,
3 runs) and prints the N costliest by name.
"""
from __future__ import annotations
import argparse
import collections
import math
import os
import sys
import time
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))


def timed(step, n: int) -> tuple[float, float]:
  step(0); step(1)
  w, c = time.perf_counter(), time.process_time()
  for i in range(2, n + 2): step(i)
  return (time.perf_counter() - w) / n * 1e3, (time.process_time() - c) / n * 1e3


def torch_model(blocks, width):
  import torch
  import torch.nn as tnn

  class Block(tnn.Module):
    def __init__(self, cin, cout, stride):
      super().__init__()
      self.conv1, self.bn1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False), tnn.BatchNorm2d(cout)
      self.conv2, self.bn2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False), tnn.BatchNorm2d(cout)
      self.shortcut = (tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))
                       if stride != 1 or cin != cout else tnn.Identity())
    def forward(self, x): return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))

  layers, cin = [tnn.Conv2d(1, width, 3, 1, 1, bias=False), tnn.BatchNorm2d(width), tnn.ReLU()], width
  for i, n in enumerate(blocks):
    cout = width * 2 ** i
    for j in range(n):
      layers.append(Block(cin if j == 0 else cout, cout, (1 if i == 0 else 2) if j == 0 else 1))
      cin = cout
  return tnn.Sequential(*layers, tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(cin, 10))


def kernel_profile(step, top: int) -> None:
  import lazygrad.runtime.executor as R
  from lazygrad.runtime import get_device
  captured, orig = [], R.run_schedule
  def hook(sched):
    for it in sched.items: captured.append((it, [n.buffer.data.copy() if n.realized else None for n in it.inputs]))
    return orig(sched)
  R.run_schedule = hook
  try: step(99)
  finally: R.run_schedule = orig
  dev, outs, agg = get_device("cpu"), {}, collections.defaultdict(lambda: [0.0, 0])
  for it, ins in captured:
    fn = dev.compile(it.kernel)
    arrs = [a if a is not None else outs[id(n)] for n, a in zip(it.inputs, ins)]
    out = np.empty(math.prod(it.out.shape), dtype=it.out.dtype.np)
    with np.errstate(all="ignore"):
      fn([out] + arrs, it.var_values)
      c = time.process_time()
      for _ in range(3): fn([out] + arrs, it.var_values)
    outs[id(it.out)] = out
    agg[it.kernel.name][0] += (time.process_time() - c) / 3
    agg[it.kernel.name][1] += 1
  total = sum(v[0] for v in agg.values())
  print(f"\n{len(captured)} kernels, {total * 1e3:.1f} ms of CPU when replayed one by one; the costliest:")
  for name, (dt, n) in sorted(agg.items(), key=lambda kv: -kv[1][0])[:top]:
    print(f"  {dt * 1e3:8.1f} ms  {n:3d}x  {name}")


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--blocks", default="1,1,1")
  ap.add_argument("--width", type=int, default=16)
  ap.add_argument("--batch-size", type=int, default=128)
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--torch-threads", type=int, default=1)
  ap.add_argument("--kernels", type=int, default=0, help="also list the N costliest lazygrad kernels of one step")
  args = ap.parse_args()
  os.environ.setdefault("LAZYGRAD_DEVICE", "cpu")
  blocks, B = tuple(int(b) for b in args.blocks.split(",")), args.batch_size
  rng = np.random.default_rng(0)
  xs = [rng.standard_normal((B, 1, 32, 32)).astype(np.float32) for _ in range(args.steps + 2)]
  ys = [rng.integers(0, 10, B) for _ in range(args.steps + 2)]

  from lazygrad import Tensor, optim, GlobalCounters
  from resnet import build_model
  Tensor.manual_seed(0)
  model = build_model(blocks, args.width)
  params = list(model.parameters())
  Tensor.realize(*params, *model.buffers())
  opt = optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
  def lg_step(i):
    i %= len(xs)
    loss = model(Tensor(xs[i])).cross_entropy(Tensor(ys[i]))
    opt.zero_grad(); loss.backward(); opt.step(); loss.item()
  before = GlobalCounters.kernel_count
  lg = timed(lg_step, args.steps)
  kernels = (GlobalCounters.kernel_count - before) / (args.steps + 2)
  print(f"ResNet blocks {blocks}, width {args.width}, batch {B}, 32x32x1 input; {sum(p.numel() for p in params)} parameters")
  print(f"lazygrad cpu: {lg[0]:8.1f} ms wall, {lg[1]:8.1f} ms CPU per step ({kernels:.0f} kernels)")
  try:
    import torch
  except ImportError:
    print("torch not installed: no comparison")
  else:
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    tm = torch_model(blocks, args.width)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    def torch_step(i):
      loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(xs[i])), torch.from_numpy(ys[i]))
      topt.zero_grad(); loss.backward(); topt.step(); loss.item()
    tt = timed(torch_step, args.steps)
    print(f"torch eager ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''}): "
          f"{tt[0]:8.1f} ms wall, {tt[1]:8.1f} ms CPU per step   (lazygrad / torch: {lg[1] / tt[1]:.1f}x CPU)")
  if args.kernels: kernel_profile(lg_step, args.kernels)


if __name__ == "__main__":
  main()
