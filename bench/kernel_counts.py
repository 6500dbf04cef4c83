"""Kernels per training step (exact: GlobalCounters.kernel_count) of three small models,
and how many of their kernels are contractions rendered by the matmul template.

  python bench/kernel_counts.py            # default device; LAZYGRAD_DEVICE=interp for the Triton path
  python bench/kernel_counts.py --amp bf16 # the forward under lazygrad.autocast: same kernels, fewer bytes

Each step is forward + backward + the optimizer update, realized by optimizer.step() as one
schedule; the count is taken on the second step (the first one stores SGD momentum)."""
from __future__ import annotations
import argparse
import numpy as np
import lazygrad
from lazygrad import Tensor, nn, optim, GlobalCounters, autocast, dtypes


def mlp():
  return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)), (32, 784), 10


def cnn():
  def block(cin, cout): return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
  layers = block(1, 8) + [nn.MaxPool2d(2)] + block(8, 16) + [nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 2 * 2, 10)]
  return nn.Sequential(*layers), (16, 1, 8, 8), 10


class TinyGPT(nn.Module):
  """Embedding, one pre-norm transformer block, tied output head (the char_transformer layout)."""
  def __init__(self, vocab=32, width=32, heads=2, context=16):
    super().__init__()
    self.emb, self.pos = nn.Embedding(vocab, width), nn.Embedding(context, width)
    self.block = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
    self.ln = nn.LayerNorm(width)

  def __call__(self, idx):
    x = self.emb(idx) + self.pos(Tensor(np.arange(idx.shape[1])))
    causal = Tensor(np.triu(np.full((idx.shape[1],) * 2, -np.inf, dtype=np.float32), 1))
    return self.ln(self.block(x, src_mask=causal)) @ self.emb.weight.T


def transformer():
  return TinyGPT(), "tokens", 32


def step_count(build, amp=None) -> tuple[int, int, int, int]:
  Tensor.manual_seed(0)
  model, in_shape, classes = build()
  params = list(model.parameters())
  opt = optim.SGD(params, lr=0.01, momentum=0.9)
  rng = np.random.default_rng(0)
  counts, mem = [], 0
  region = autocast(dtype=amp or dtypes.bfloat16, enabled=amp is not None)
  for _ in range(2):
    with region:
      if in_shape == "tokens":
        x = Tensor(rng.integers(0, classes, (4, 16)))
        y = Tensor(rng.integers(0, classes, (4 * 16,)))
        out = model(x).reshape(-1, classes)
      else:
        x, y = Tensor(rng.standard_normal(in_shape).astype(np.float32)), Tensor(rng.integers(0, classes, in_shape[0]))
        out = model(x)
      Tensor.realize(x, y)
      loss = out.cross_entropy(y)
    opt.zero_grad()
    loss.backward()
    items = lazygrad.schedule(*params, *[p.grad for p in params], loss) if len(counts) == 1 else None
    GlobalCounters.reset()
    opt.step()
    counts.append(GlobalCounters.kernel_count)
    mem = GlobalCounters.global_mem
  contracting = sum(1 for it in items if getattr(it.kernel, "contraction", None) is not None) if items else -1
  return counts[0], counts[1], contracting, mem


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--amp", choices=("bf16", "fp16"), default=None, help="run the forward under lazygrad.autocast in this dtype")
  amp = {"bf16": dtypes.bfloat16, "fp16": dtypes.float16, None: None}[ap.parse_args().amp]
  print(f"{'model':<12} {'step 1':>7} {'step 2':>7} {'contractions':>13} {'KB moved (step 2)':>18}")
  for name, build in (("mlp", mlp), ("cnn", cnn), ("transformer", transformer)):
    a, b, c, m = step_count(build, amp)
    print(f"{name:<12} {a:>7} {b:>7} {c:>13} {m / 1e3:>18.1f}")


if __name__ == "__main__":
  main()
