#!/usr/bin/env python3
"""Python time per training step outside the kernels, on the cpu device (process CPU time: steadier than wall
time on a shared machine): one step of an MLP (mnist_mlp's, SGD),
the digits CNN (conv/BatchNorm/pool, SGD momentum) and a small char transformer (AdamW, clipping; lm_cpu: the
example's cpu config, on request), profiled
with cProfile after warm-up. Prints per workload the step time, the schedule-cache key time, and the top
functions of the package by own time (kernels excluded: the generated numpy functions and kernels/numpy/lib).

  OPENBLAS_NUM_THREADS=1 python bench/python_overhead.py                 # all three, top 10
  OPENBLAS_NUM_THREADS=1 python bench/python_overhead.py --only mlp --top 20
"""
from __future__ import annotations
import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))
from lazygrad import Tensor, nn, optim   # noqa: E402
from lazygrad.scheduler import cache as schedule_cache   # noqa: E402
from lazygrad.runtime import executor   # noqa: E402


def mlp_step():
  import mnist_mlp
  model = mnist_mlp.MLP([64, 128, 10])
  params = model.parameters()
  Tensor.realize(*params)
  rng = np.random.default_rng(0)
  def step():
    x = Tensor(rng.standard_normal((64, 64)).astype(np.float32))
    y = Tensor(rng.integers(0, 10, 64))
    return mnist_mlp.sgd_step(model, params, x, y, 0.1)
  return step


def cnn_step():
  import digits_cnn
  model = digits_cnn.make_model()
  params = list(model.parameters())
  Tensor.realize(*params, *model.buffers())
  opt = optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
  rng = np.random.default_rng(0)
  def step():
    x = Tensor(rng.standard_normal((32, 1, 8, 8)).astype(np.float32))
    y = Tensor(rng.integers(0, 10, 32))
    loss = model(x).cross_entropy(y)
    opt.zero_grad(); loss.backward(); opt.step()
    return loss
  return step


def lm_step(vocab: int = 256, layers: int = 2, batch: int = 8):
  import char_transformer
  model = char_transformer.GPT(vocab, 64, 128, layers, 4)
  params = list(model.parameters())
  Tensor.realize(*params)
  opt = optim.AdamW(char_transformer.param_groups(model, 0.1), lr=1e-3)
  rng = np.random.default_rng(0)
  def step():
    x = Tensor(rng.integers(0, vocab, (batch, 64)))
    y = Tensor(rng.integers(0, vocab, (batch, 64)))
    _, loss = model(x, y)
    opt.zero_grad(); loss.backward(); nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    return loss
  return step


WORKLOADS = {"mlp": mlp_step, "cnn": cnn_step, "lm": lm_step,
             "lm_cpu": lambda: lm_step(84, 4, 32)}   # char_transformer.py's cpu config (4 layers, batch 32, vocab 84)


def kernel_code(fn_key) -> bool:
  """Functions that are kernels or kernel helpers (not the Python overhead this bench is about)."""
  path = fn_key[0]
  return path.startswith("<") or "/kernels/" in path


class timed:
  """Wraps module.name, summing the CPU time of its calls in .total (and per step: step() closes one); undo() puts
  the original back. The median over steps leaves out the steps where a full garbage collection happened to
  start inside the function (a few per ten transformer steps, tens of ms each)."""
  def __init__(self, module, name: str):
    self.module, self.name, self.orig, self.total, self.steps = module, name, getattr(module, name), 0.0, []
    def wrapper(*a, **k):
      t = time.process_time()
      try: return self.orig(*a, **k)
      finally: self.total += time.process_time() - t
    setattr(module, name, wrapper)
  def step(self): self.steps.append(self.total - sum(self.steps))
  def median_ms(self) -> float: return statistics.median(self.steps) * 1e3 if self.steps else 0.0
  def undo(self): setattr(self.module, self.name, self.orig)


def measure(name: str, steps: int, top: int) -> None:
  step = WORKLOADS[name]()
  for _ in range(3): step().item()
  key_time, sched_time = timed(schedule_cache, "graph_key"), timed(executor, "create_schedule")
  times = []
  for _ in range(steps):
    t = time.process_time()
    step().item()
    times.append(time.process_time() - t)
    key_time.step(); sched_time.step()
  key_time.undo(); sched_time.undo()
  prof = cProfile.Profile()
  prof.enable()
  for _ in range(steps): step().item()
  prof.disable()
  st = pstats.Stats(prof)
  rows = [(v[2] / steps, v[3] / steps, v[1] / steps, k) for k, v in st.stats.items()
          if "lazygrad" in k[0] and not kernel_code(k)]
  rows.sort(key=lambda r: -r[0])
  print(f"== {name}: {statistics.median(times) * 1e3:.2f} ms/step (median; mean {statistics.mean(times) * 1e3:.2f}); per step, median: "
        f"graph key {key_time.median_ms():.3f} ms, create_schedule {sched_time.median_ms():.3f} ms; under cProfile, package Python "
        f"outside kernels {sum(r[0] for r in rows) * 1e3:.2f} ms")
  for tot, cum, calls, k in rows[:top]:
    print(f"  {tot * 1e3:8.3f} ms own {cum * 1e3:8.3f} ms cum {calls:8.0f} calls  {os.path.relpath(k[0], ROOT)}:{k[1]} {k[2]}")


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--only", choices=sorted(WORKLOADS), action="append")
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--top", type=int, default=10)
  args = ap.parse_args()
  for name in args.only or ["mlp", "cnn", "lm"]: measure(name, args.steps, args.top)


if __name__ == "__main__":
  main()
