#!/usr/bin/env python3
"""Kernels per MLP training step: tinygrad vs lazygrad (the number the fusion issue compares).

The step (identical in both): a 784 -> 128 -> ReLU -> 10 MLP with biases, batch 32,
cross-entropy loss (mean over the batch), gradients by backward(), plain SGD (lr 0.01, no
momentum), and ONE realize of the loss together with every updated parameter. Inputs and
parameters are realized beforehand; the count of the third step is reported (the first
steps in tinygrad also copy the lr tensor and compile). Only kernel counts matter here,
so tinygrad runs on whatever CPU-side device works: CPU (needs clang), CPU:LLVM, else the
pure-Python PYTHON device (slow, same schedule).

  pip install tinygrad        # not a lazygrad dependency
  python bench/tinygrad_mlp_kernels.py
"""
from __future__ import annotations
import os
import subprocess
import sys
import time
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
STEPS, BATCH, SIZES, LR = 3, 32, (784, 128, 10), 0.01


def data(step: int):
  rng = np.random.default_rng(step)
  return rng.standard_normal((BATCH, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], BATCH).astype(np.int32)


def init_params():
  rng = np.random.default_rng(0)
  out = []
  for i, o in zip(SIZES, SIZES[1:]):
    bound = 1 / np.sqrt(i)
    out += [rng.uniform(-bound, bound, (o, i)).astype(np.float32), rng.uniform(-bound, bound, (o,)).astype(np.float32)]
  return out


def tinygrad_counts():
  # tinygrad picks its default device at import: probe each candidate in a child process first
  device = os.environ.get("DEV")
  if device is None:
    for dev in ("CPU", "CPU:LLVM", "PYTHON"):
      probe = subprocess.run([sys.executable, "-c", "from tinygrad import Tensor; print((Tensor([1.0, 2.0]) + 1).tolist())"],
                             env={**os.environ, "DEV": dev}, capture_output=True, text=True, timeout=300)
      if probe.returncode == 0:
        device = dev
        break
      print(f"tinygrad device {dev}: unavailable ({(probe.stderr.strip().splitlines() or ['?'])[-1][:100]})")
    os.environ["DEV"] = device or "PYTHON"
  from tinygrad import Tensor, nn
  from tinygrad.helpers import GlobalCounters, Context
  device = Tensor([0.0]).device
  w1, b1, w2, b2 = [Tensor(p, device=device).realize() for p in init_params()]
  params = [w1, b1, w2, b2]
  for p in params: p.requires_grad = True
  opt = nn.optim.SGD(params, lr=LR)
  counts, loss = [], None
  with Context(TRAINING=1):
    for step in range(STEPS):
      xn, yn = data(step)
      x, y = Tensor(xn, device=device).realize(), Tensor(yn, device=device).realize()
      opt.zero_grad()
      loss = x.linear(w1.T, b1).relu().linear(w2.T, b2).sparse_categorical_crossentropy(y)
      loss.backward()
      GlobalCounters.reset()
      t = time.perf_counter()
      Tensor.realize(loss, *opt.schedule_step())
      counts.append((GlobalCounters.kernel_count, time.perf_counter() - t))
  return device, counts, float(loss.numpy())


def lazygrad_counts():
  from lazygrad import Tensor, GlobalCounters, no_grad
  params = [Tensor(p, requires_grad=True).realize() for p in init_params()]
  w1, b1, w2, b2 = params
  counts, loss = [], None
  for step in range(STEPS):
    xn, yn = data(step)
    x, y = Tensor(xn).realize(), Tensor(yn.astype(np.int64)).realize()
    loss = x.linear(w1, b1).relu().linear(w2, b2).cross_entropy(y)
    loss.backward()
    with no_grad():
      for p in params: p.assign(p - LR * p.grad)
    GlobalCounters.reset()
    t = time.perf_counter()
    loss.realize(*params)
    counts.append((GlobalCounters.kernel_count, time.perf_counter() - t))
    for p in params: p.grad = None
  return lazygrad_optim_count(), counts, float(loss.numpy())


def lazygrad_optim_count() -> int:
  """The same step through lazygrad.nn / lazygrad.optim (optimizer.step() realizes the
  parameters, their .grad and the model output; the loss is not a target there)."""
  from lazygrad import Tensor, GlobalCounters, nn, optim
  model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
  Tensor.realize(*model.parameters())
  opt = optim.SGD(model.parameters(), lr=LR)
  for step in range(STEPS):
    xn, yn = data(step)
    x, y = Tensor(xn).realize(), Tensor(yn.astype(np.int64)).realize()
    opt.zero_grad()
    model(x).cross_entropy(y).backward()
    GlobalCounters.reset()
    opt.step()
  return GlobalCounters.kernel_count


if __name__ == "__main__":
  dev, tg, tg_loss = tinygrad_counts()
  from importlib.metadata import version
  lg_optim, lg, lg_loss = lazygrad_counts()
  print(f"tinygrad {version('tinygrad')} on {dev}: kernels per step {[c for c, _ in tg]} "
        f"(realize {tg[-1][1] * 1e3:.1f} ms), final loss {tg_loss:.5f}")
  print(f"lazygrad cpu: kernels per step {[c for c, _ in lg]} (realize {lg[-1][1] * 1e3:.1f} ms), final loss {lg_loss:.5f}")
  print(f"lazygrad via nn.Linear + optim.SGD (step() realizes params, grads, logits; not the loss): {lg_optim} kernels")
  print(f"steady-state step: lazygrad {lg[-1][0]} vs tinygrad {tg[-1][0]} kernels")
