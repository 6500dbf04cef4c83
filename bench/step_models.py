"""The three training steps of bench/step.py (issue #11), defined identically in torch and lazygrad.

  mlp   64-128-10 MLP, batch 64, SGD (lr 0.01)
  cnn   conv3x3 stem + 2 residual blocks (16 channels, BatchNorm), 3x32x32 input, batch 32, SGD momentum 0.9
  lm    2-layer GPT (examples/char_transformer.py's model: pre-norm blocks, causal attention, tanh GELU, tied head),
        width 128, 4 heads, context 64, batch 8, vocab 256, AdamW (lr 1e-3, weight decay 0.01)

Apples to apples: the lazygrad model is built first (seeded), and every copy (lazygrad or torch) loads its
parameters and buffers from that one snapshot; both read the same numpy batches and use the same optimizer
settings. `check(name)` runs a few steps of both and asserts the losses (and the parameters) agree to fp32
tolerance; tests/test_step_models.py runs it for the MLP and CNN at tiny sizes.

A step is `loss = model(x).cross_entropy(y); opt.zero_grad(); loss.backward(); opt.step()` in either framework
(what a user writes); it returns the loss and the caller reads it back (item()). In lazygrad, opt.step() realizes
the update, the gradients and the model's output; item() then realizes the loss from the realized logits (a small
second schedule). Marking the loss with nn.module.realize_with_next_step to get one schedule was measured slower
(MLP: 18 kernels vs 15, 6.7 vs 6.0 ms on main), so the bench keeps the plain step.

  python bench/step_models.py                 # check all three at their bench sizes (slow: the LM)
  python bench/step_models.py --tiny mlp cnn  # the test's check
"""
from __future__ import annotations
import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Callable
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "examples")]   # this checkout's lazygrad and examples, not installed ones
from lazygrad import Tensor, nn, optim   # noqa: E402
from char_transformer import GPT   # noqa: E402

WORKLOADS = ("mlp", "cnn", "lm")

# bench sizes (issue #11's table) and tiny ones for the test
SIZES = {
  "mlp": {"full": dict(inp=64, hidden=128, classes=10, batch=64), "tiny": dict(inp=8, hidden=16, classes=4, batch=4)},
  "cnn": {"full": dict(ch=16, hw=32, batch=32, classes=10), "tiny": dict(ch=4, hw=6, batch=2, classes=3)},
  "lm": {"full": dict(layers=2, width=128, heads=4, context=64, batch=8, vocab=256),
         "tiny": dict(layers=1, width=16, heads=2, context=8, batch=2, vocab=11)},
}
DESCRIPTIONS = {
  "mlp": "MLP 64-128-10, batch 64, SGD",
  "cnn": "CNN: conv3x3 stem + 2 residual blocks (16 ch, BatchNorm), 3x32x32, batch 32, SGD momentum",
  "lm": "2-layer transformer LM, d128, 4 heads, T 64, batch 8, vocab 256, AdamW",
}
SGD_LR, MOMENTUM, ADAMW = 0.01, 0.9, dict(lr=1e-3, weight_decay=0.01)


# ---- lazygrad models
class LgBlock(nn.Module):
  """Residual block: relu(bn2(conv2(relu(bn1(conv1(x))))) + x), channels kept."""
  def __init__(self, ch: int):
    super().__init__()
    self.conv1, self.bn1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)
    self.conv2, self.bn2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)

  def forward(self, x: Tensor) -> Tensor:
    """The block's output, same shape as x."""
    return (self.bn2(self.conv2(self.bn1(self.conv1(x)).relu())) + x).relu()


def lg_model(name: str, s: dict) -> nn.Module:
  """The lazygrad model of workload `name` at sizes `s` (parameters from the current seed)."""
  if name == "mlp": return nn.Sequential(nn.Linear(s["inp"], s["hidden"]), nn.ReLU(), nn.Linear(s["hidden"], s["classes"]))
  if name == "cnn":
    ch = s["ch"]
    return nn.Sequential(nn.Conv2d(3, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(), LgBlock(ch), LgBlock(ch),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, s["classes"]))
  return GPT(s["vocab"], s["context"], s["width"], s["layers"], s["heads"], dropout=0.0)


# ---- torch models (the same modules under the same names, so state dicts match key for key)
def torch_model(name: str, s: dict):
  """The torch twin of lg_model(name, s) (initial values are loaded afterwards)."""
  import torch
  import torch.nn as tnn
  import torch.nn.functional as F

  class Block(tnn.Module):
    def __init__(self, ch):
      super().__init__()
      self.conv1, self.bn1 = tnn.Conv2d(ch, ch, 3, padding=1, bias=False), tnn.BatchNorm2d(ch)
      self.conv2, self.bn2 = tnn.Conv2d(ch, ch, 3, padding=1, bias=False), tnn.BatchNorm2d(ch)
    def forward(self, x): return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + x)

  class Attention(tnn.Module):
    def __init__(self, width, heads):
      super().__init__()
      self.heads, self.qkv, self.proj, self.resid_drop = heads, tnn.Linear(width, 3 * width), tnn.Linear(width, width), tnn.Dropout(0.0)
    def forward(self, x):
      B, T, C = x.shape
      q, k, v = [t.reshape(B, T, self.heads, C // self.heads).transpose(1, 2) for t in self.qkv(x).split(C, dim=-1)]
      y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
      return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))

  class GPTBlock(tnn.Module):
    def __init__(self, width, heads):
      super().__init__()
      self.ln1, self.ln2, self.attn = tnn.LayerNorm(width), tnn.LayerNorm(width), Attention(width, heads)
      self.fc1, self.act, self.fc2 = tnn.Linear(width, 4 * width), tnn.GELU(approximate="tanh"), tnn.Linear(4 * width, width)
      self.drop = tnn.Dropout(0.0)
    def forward(self, x):
      x = x + self.attn(self.ln1(x))
      return x + self.drop(self.fc2(self.act(self.fc1(self.ln2(x)))))

  class TorchGPT(tnn.Module):
    def __init__(self):
      super().__init__()
      self.tok_emb, self.pos_emb = tnn.Embedding(s["vocab"], s["width"]), tnn.Embedding(s["context"], s["width"])
      self.drop = tnn.Dropout(0.0)
      self.blocks = tnn.ModuleList([GPTBlock(s["width"], s["heads"]) for _ in range(s["layers"])])
      self.ln_f = tnn.LayerNorm(s["width"])
    def forward(self, idx, targets):
      B, T = idx.shape
      x = self.drop(self.tok_emb(idx) + self.pos_emb.weight[:T])
      for b in self.blocks: x = b(x)
      logits = F.linear(self.ln_f(x), self.tok_emb.weight)
      return logits, F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))

  if name == "mlp": return tnn.Sequential(tnn.Linear(s["inp"], s["hidden"]), tnn.ReLU(), tnn.Linear(s["hidden"], s["classes"]))
  if name == "cnn":
    ch = s["ch"]
    return tnn.Sequential(tnn.Conv2d(3, ch, 3, padding=1, bias=False), tnn.BatchNorm2d(ch), tnn.ReLU(), Block(ch), Block(ch),
                          tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(ch, s["classes"]))
  return TorchGPT()


# ---- data
def make_batches(name: str, s: dict, n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
  """n fixed (input, target) batches as numpy arrays; both frameworks read these."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    if name == "mlp": x, y = rng.standard_normal((s["batch"], s["inp"])), rng.integers(0, s["classes"], s["batch"])
    elif name == "cnn": x, y = rng.standard_normal((s["batch"], 3, s["hw"], s["hw"])), rng.integers(0, s["classes"], s["batch"])
    else:
      tokens = rng.integers(0, s["vocab"], (s["batch"], s["context"] + 1))
      x, y = tokens[:, :-1], tokens[:, 1:]
    out.append((x.astype(np.float32) if x.dtype.kind == "f" else x.astype(np.int64), y.astype(np.int64)))
  return out


# ---- one workload: the init snapshot and factories of ready-to-step copies
@dataclass
class Copy:
  """A model, its optimizer, its batches (in the framework's tensors) and `step(x, y) -> loss`."""
  model: object
  opt: object
  batches: list
  step: Callable
  extra: dict = field(default_factory=dict)


@dataclass
class Workload:
  """Workload `name` at sizes `s`: the initial state (numpy) every copy starts from, and the batches."""
  name: str
  s: dict
  init: dict
  data: list

  def lazygrad(self) -> Copy:
    """A fresh lazygrad copy (model, AdamW or SGD, realized batches, step function)."""
    model = lg_model(self.name, self.s)
    model.load_state_dict(self.init)
    params = list(model.parameters())
    if self.name == "lm": opt = optim.AdamW(params, **ADAMW)
    else: opt = optim.SGD(params, lr=SGD_LR, momentum=MOMENTUM if self.name == "cnn" else 0.0)
    batches = [(Tensor(x), Tensor(y)) for x, y in self.data]
    Tensor.realize(*[t for b in batches for t in b])

    def step(x, y):
      loss = model(x, y)[1] if self.name == "lm" else model(x).cross_entropy(y)
      opt.zero_grad()
      loss.backward()
      opt.step()
      return loss
    return Copy(model, opt, batches, step)

  def torch(self) -> Copy:
    """A fresh torch copy with the same initial values, optimizer settings and batches."""
    import torch
    import torch.nn.functional as F
    model = torch_model(self.name, self.s)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in self.init.items()}, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
      raise RuntimeError(f"{self.name}: torch and lazygrad models differ: missing {missing}, unexpected {unexpected}")
    if self.name == "lm": opt = torch.optim.AdamW(model.parameters(), **ADAMW)
    else: opt = torch.optim.SGD(model.parameters(), lr=SGD_LR, momentum=MOMENTUM if self.name == "cnn" else 0.0)
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in self.data]

    def step(x, y):
      loss = model(x, y)[1] if self.name == "lm" else F.cross_entropy(model(x), y)
      opt.zero_grad()
      loss.backward()
      opt.step()
      return loss
    return Copy(model, opt, batches, step)


def build(name: str, size: str = "full", batches: int = 4, seed: int = 0) -> Workload:
  """Workload `name` at SIZES[name][size]: the lazygrad model built under manual_seed(seed), its state as numpy."""
  if name not in SIZES: raise ValueError(f"unknown workload {name!r}: expected one of {', '.join(WORKLOADS)}")
  s = SIZES[name][size]
  Tensor.manual_seed(seed)
  model = lg_model(name, s)
  init = {k: np.array(v.numpy(), copy=True) for k, v in model.state_dict().items()}
  return Workload(name, s, init, make_batches(name, s, batches, seed))


def compare(name: str, lg: Copy, th: Copy, steps: int = 3, rtol: float = 1e-4) -> list[tuple[float, float]]:
  """Step the lazygrad copy `lg` and the torch copy `th` `steps` times on the same batches; raise AssertionError
  unless every loss and, at the end, every parameter and buffer agree to rtol. Returns the (lazygrad, torch) losses."""
  losses = []
  for i in range(steps):
    (lx, ly), (tx, ty) = lg.batches[i % len(lg.batches)], th.batches[i % len(th.batches)]
    a, b = lg.step(lx, ly).item(), th.step(tx, ty).item()
    losses.append((a, b))
    if not np.isclose(a, b, rtol=rtol, atol=rtol): raise AssertionError(f"{name}: step {i} loss lazygrad {a} vs torch {b}")
  tstate = th.model.state_dict()
  for k, v in lg.model.state_dict().items():
    want = tstate[k].detach().numpy()
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    if not np.allclose(v.numpy(), want, rtol=rtol, atol=rtol * scale):
      raise AssertionError(f"{name}: after {steps} steps {k} differs by {np.abs(v.numpy() - want).max():.3g}")
  return losses


def check(name: str, size: str = "full", steps: int = 3, rtol: float = 1e-4) -> list[tuple[float, float]]:
  """compare() a fresh lazygrad and torch copy of workload `name` at SIZES[name][size]."""
  w = build(name, size)
  return compare(name, w.lazygrad(), w.torch(), steps, rtol)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("workloads", nargs="*", default=list(WORKLOADS))
  ap.add_argument("--tiny", action="store_true", help="the test's sizes")
  ap.add_argument("--steps", type=int, default=3)
  args = ap.parse_args()
  for name in args.workloads:
    losses = check(name, "tiny" if args.tiny else "full", args.steps)
    print(f"{name}: losses agree over {args.steps} steps: " + ", ".join(f"{a:.6f} / {b:.6f}" for a, b in losses))


if __name__ == "__main__":
  main()
