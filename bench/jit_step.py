#!/usr/bin/env python3
"""lazygrad.jit on three training steps (issue #11's workloads): ms/step eager vs jitted (steps alternating in one
process, median), kernels per step, replay time outside the kernels, and the temporaries' bytes with and without
the memory plan.

  python bench/jit_step.py [--steps 20] [--only mlp,cnn,lm]
"""
from __future__ import annotations
import argparse
import os
import statistics
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np   # noqa: E402
import lazygrad   # noqa: E402
from lazygrad import Tensor, nn, optim, GlobalCounters   # noqa: E402


class Block(nn.Module):
  """conv-BN-relu-conv-BN plus the input, relu."""
  def __init__(self, c):
    super().__init__()
    self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
    self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
  def forward(self, x):
    return (self.b2(self.c2(self.b1(self.c1(x)).relu())) + x).relu()


class CNN(nn.Module):
  def __init__(self):
    super().__init__()
    self.stem, self.bn = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
    self.blocks = nn.Sequential(Block(16), Block(16))
    self.head = nn.Linear(16, 10)
  def forward(self, x):
    return self.head(self.blocks(self.bn(self.stem(x)).relu()).mean((2, 3)))


class LM(nn.Module):
  def __init__(self, vocab=256, d=128, heads=4, T=64, layers=2):
    super().__init__()
    self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(T, d)
    self.layers = nn.ModuleList([nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True) for _ in range(layers)])
    self.head = nn.Linear(d, vocab)
  def forward(self, x):
    h = self.tok(x) + self.pos(Tensor.arange(x.shape[1]))
    for layer in self.layers: h = layer(h)
    return self.head(h)


def workloads():
  rng = np.random.default_rng(0)
  def mlp():
    m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    return m, optim.SGD(m.parameters(), lr=0.1), lambda: (rng.standard_normal((64, 64)).astype(np.float32), rng.integers(0, 10, 64))
  def cnn():
    m = CNN()
    batch = lambda: (rng.standard_normal((32, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 32))   # noqa: E731
    return m, optim.SGD(m.parameters(), lr=0.05, momentum=0.9), batch
  def lm():
    m = LM()
    def batch():
      x = rng.integers(0, 256, (8, 64))
      return x, np.roll(x, -1, 1)
    return m, optim.AdamW(m.parameters(), lr=1e-3), batch
  return {"mlp": ("MLP 64-128-10, batch 64, SGD", mlp), "cnn": ("CNN stem + 2 res blocks 16ch BN, 3x32x32, batch 32, SGD momentum", cnn),
          "lm": ("2-layer transformer d128 h4 T64 b8 vocab 256, AdamW", lm)}


def step_fn(model, opt):
  def step(x, y):
    opt.zero_grad()
    out = model(x)
    loss = out.reshape(-1, out.shape[-1]).cross_entropy(y.reshape(-1))
    loss.backward()
    opt.step()
    return loss
  return step


def measure(name, make, steps):
  Tensor.manual_seed(0)
  m_e, o_e, batch = make()
  Tensor.manual_seed(0)
  m_j, o_j, _ = make()
  eager, jitted = step_fn(m_e, o_e), lazygrad.jit(step_fn(m_j, o_j))
  times = {"eager": [], "jit": []}
  kernels = {}
  for i in range(steps + 4):   # 4 warm-up calls: the jit's warm-up and two recordings, one replay
    x, y = batch()
    for kind, fn in (("eager", eager), ("jit", jitted)):
      k0, t0 = GlobalCounters.kernel_count, time.perf_counter()
      fn(Tensor(x), Tensor(y)).item()
      if i >= 4: times[kind].append(time.perf_counter() - t0)
      kernels[kind] = GlobalCounters.kernel_count - k0
  s = jitted.stats
  e, j = statistics.median(times["eager"]) * 1e3, statistics.median(times["jit"]) * 1e3
  over = (s.replay_s - s.kernel_s) / max(s.replays, 1) * 1e3
  print(f"| {name} | {e:.2f} | {j:.2f} | {e / j:.2f}x | {kernels['eager']} / {kernels['jit']} | {over:.3f} ms "
        f"({over / j * 100:.1f}%) | {s.unplanned_bytes / 1024:.0f} KiB -> {s.planned_bytes / 1024:.0f} KiB "
        f"(bound {s.min_bytes / 1024:.0f} KiB) |", flush=True)


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--steps", type=int, default=20)
  ap.add_argument("--only", default="mlp,cnn,lm")
  args = ap.parse_args()
  print(f"device {lazygrad.Tensor([0]).device}, {args.steps} steps after warm-up, median")
  print("| workload | eager ms | jit ms | speed-up | kernels/step eager / jit | replay outside kernels | temporaries unplanned -> planned |")
  print("|---|---|---|---|---|---|---|")
  w = workloads()
  for key in args.only.split(","): measure(w[key][0], w[key][1], args.steps)


if __name__ == "__main__":
  main()
