"""Kernels and bytes of one training step's forward + backward, read from the schedule (exact,
nothing is run): the ResNet and char-transformer examples' models on a device's schedule.

  python bench/step_traffic.py                          # cpu schedule (numpy device)
  LAZYGRAD_DEVICE=interp python bench/step_traffic.py   # the Triton (GPU) schedule, as cuda would run it

Bytes are what each kernel reads and writes (its output buffer plus every input buffer, whole),
summed over the schedule, the same count as GlobalCounters.global_mem; "largest" is the
biggest buffer the step stores (taps, columns or T x T scores show up there). Template kernels
are the contractions (mm_/bmm_/dot_) and the attention kernels (attn_). Run on two commits to
compare: the script only uses APIs both have."""
from __future__ import annotations
import os
import sys
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "examples")]   # this checkout's lazygrad, not an installed one
from lazygrad import Tensor   # noqa: E402
from lazygrad.scheduler import create_schedule   # noqa: E402
import resnet   # noqa: E402
import char_transformer   # noqa: E402


def _nbytes(node) -> int:
  if node.buffer is not None: return node.buffer.nbytes
  return int(np.prod(node.shape)) * node.dtype.itemsize


def traffic(loss: Tensor, params) -> dict:
  """Kernels, bytes moved and the largest stored buffer of loss's forward + backward."""
  loss.backward()
  items = create_schedule([loss.node] + [p.grad.node for p in params if p.grad is not None]).items
  sizes = [_nbytes(it.out) for it in items]
  return {"kernels": len(items), "bytes": sum(_nbytes(it.out) + sum(_nbytes(n) for n in it.inputs) for it in items),
          "largest": max(sizes), "templates": sum(it.name.startswith(("mm_", "bmm_", "dot_", "attn")) for it in items)}


def resnet_step(batch: int = 32) -> dict:
  Tensor.manual_seed(0)
  model = resnet.build_model(*resnet.ARCHS["small"])
  x = Tensor(np.random.default_rng(0).standard_normal((batch, 1, 28, 28)).astype(np.float32))
  y = Tensor(np.random.default_rng(1).integers(0, 10, batch))
  return traffic(model(x).cross_entropy(y), model.parameters())


def transformer_step() -> dict:
  Tensor.manual_seed(0)
  cfg = char_transformer.CONFIGS["cpu"]
  model = char_transformer.GPT(65, cfg["context"], cfg["width"], cfg["layers"], cfg["heads"])
  rng = np.random.default_rng(0)
  idx = Tensor(rng.integers(0, 65, (cfg["batch_size"], cfg["context"])))
  tgt = Tensor(rng.integers(0, 65, (cfg["batch_size"], cfg["context"])))
  return traffic(model(idx, tgt)[1], model.parameters())


def main():
  dev = Tensor([0.0]).device
  print(f"forward + backward of one step, {dev} schedule")
  print(f"{'model':<40} {'kernels':>8} {'templates':>9} {'MB moved':>10} {'largest MB':>10}")
  for name, fn in (("resnet small, batch 32, 1x28x28", resnet_step), ("char transformer cpu config (4x128, T64, B32)", transformer_step)):
    r = fn()
    print(f"{name:<40} {r['kernels']:>8} {r['templates']:>9} {r['bytes'] / 1e6:>10.1f} {r['largest'] / 1e6:>10.2f}")


if __name__ == "__main__":
  main()
