"""CPU milliseconds of the gather-heavy pieces of a step (issue #11's GATHER bullet): embedding forward + backward
(vocab 256 and 32000, 8x64 tokens, d=128), cross_entropy forward + backward (batch 512, 10 and 32000 classes), and one
forward + backward of the char-transformer example's model (cpu config, vocab 65), gradients realized. Median of
`--reps` runs after two warm-ups; run it on two commits to compare (only APIs both have are used).

  python bench/gather.py [--reps 7]"""
from __future__ import annotations
import argparse
import os
import sys
import time
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "examples")]   # this checkout's lazygrad, not an installed one
import lazygrad   # noqa: E402
from lazygrad import Tensor   # noqa: E402
import lazygrad.nn.functional as F   # noqa: E402
import char_transformer   # noqa: E402


def _median_ms(fn, reps: int) -> float:
  for _ in range(2): fn()
  times = []
  for _ in range(reps):
    t = time.perf_counter(); fn(); times.append((time.perf_counter() - t) * 1e3)
  return float(np.median(times))


def embedding_case(vocab: int):
  rng = np.random.default_rng(0)
  w = Tensor(rng.standard_normal((vocab, 128)).astype(np.float32), requires_grad=True)
  ids = Tensor(rng.integers(0, vocab, (8, 64)))
  def step():
    w.grad = None
    out = F.embedding(ids, w)
    (out * out).sum().backward()
    lazygrad.Tensor.realize(out, w.grad)
  return step


def cross_entropy_case(classes: int):
  rng = np.random.default_rng(0)
  x = Tensor(rng.standard_normal((512, classes)).astype(np.float32), requires_grad=True)
  y = Tensor(rng.integers(0, classes, 512))
  def step():
    x.grad = None
    loss = x.cross_entropy(y)
    loss.backward()
    lazygrad.Tensor.realize(loss, x.grad)
  return step


def transformer_case():
  Tensor.manual_seed(0)
  cfg = char_transformer.CONFIGS["cpu"]
  model = char_transformer.GPT(65, cfg["context"], cfg["width"], cfg["layers"], cfg["heads"])
  params = model.parameters()
  rng = np.random.default_rng(0)
  idx = Tensor(rng.integers(0, 65, (cfg["batch_size"], cfg["context"])))
  tgt = Tensor(rng.integers(0, 65, (cfg["batch_size"], cfg["context"])))
  def step():
    for p in params: p.grad = None
    loss = model(idx, tgt)[1]
    loss.backward()
    lazygrad.Tensor.realize(loss, *[p.grad for p in params if p.grad is not None])
  return step


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--reps", type=int, default=7)
  ap.add_argument("--only", default="", help="run the cases whose name contains this")
  args = ap.parse_args()
  cases = [("embedding fwd+bwd vocab 256, 8x64, d128", lambda: embedding_case(256)),
           ("embedding fwd+bwd vocab 32000, 8x64, d128", lambda: embedding_case(32000)),
           ("cross_entropy fwd+bwd 512 x 10", lambda: cross_entropy_case(10)),
           ("cross_entropy fwd+bwd 512 x 32000", lambda: cross_entropy_case(32000)),
           ("char transformer fwd+bwd (cpu config)", transformer_case)]
  for name, make in cases:
    if args.only in name: print(f"{name:<45} {_median_ms(make(), args.reps):9.2f} ms")


if __name__ == "__main__":
  main()
