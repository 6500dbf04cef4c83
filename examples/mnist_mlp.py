#!/usr/bin/env python3
"""A two-layer MLP (64 -> 128 -> 10) on scikit-learn's 8x8 digits, trained with plain SGD.

Everything is written with lazygrad tensors (no nn/optim package): parameters are
leaf Tensors with requires_grad=True, and one SGD step is

    loss = model(x).cross_entropy(y); loss.backward()
    with no_grad(): w.assign(w - lr * w.grad) for every parameter
    loss.realize(*params)        # forward + backward + update in ONE schedule
    w.grad = None

The digits (1797 images, 10 classes) ship inside scikit-learn, so this runs offline.
The train/test split is fixed (same 360 test images for every --seed); --seed picks the
initialisation and the shuffling. The loop around the step (batches, per-epoch test
accuracy, timing) is examples/common.py's fit().

  python examples/mnist_mlp.py                     # full run: ~97.8% test accuracy in a few seconds
  python examples/mnist_mlp.py --steps 3           # smoke test
"""
from __future__ import annotations
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # examples/common.py
from common import fit, make_parser, parse_args, report_fit   # noqa: E402
import lazygrad   # noqa: E402
from lazygrad import Tensor, no_grad   # noqa: E402
from lazygrad.data import DatasetNotFoundError, load_digits   # noqa: E402


def linear_params(fan_in: int, fan_out: int) -> tuple[Tensor, Tensor]:
  """torch.nn.Linear's default init: kaiming_uniform(a=sqrt(5)) for the weight, which is
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
  bound = 1 / math.sqrt(fan_in)
  w = Tensor.uniform(fan_out, fan_in, low=-bound, high=bound, requires_grad=True)
  b = Tensor.uniform(fan_out, low=-bound, high=bound, requires_grad=True)
  return w, b


class MLP:
  def __init__(self, sizes: list[int]):
    self.layers = [linear_params(i, o) for i, o in zip(sizes, sizes[1:])]

  def parameters(self) -> list[Tensor]: return [p for layer in self.layers for p in layer]

  def __call__(self, x: Tensor) -> Tensor:
    for i, (w, b) in enumerate(self.layers):
      x = x.linear(w, b)
      if i < len(self.layers) - 1: x = x.relu()
    return x


def sgd_step(model, params: list[Tensor], x: Tensor, y: Tensor, lr: float) -> Tensor:
  """One step of plain SGD, written out: the update is an assign, realized with the loss."""
  loss = model(x).cross_entropy(y)
  loss.backward()
  with no_grad():
    for p in params: p.assign(p - lr * p.grad)
  loss.realize(*params)   # forward, backward and every update: one schedule
  for p in params: p.grad = None
  return loss


def main(argv=None) -> float:
  args = parse_args(make_parser(__doc__.splitlines()[0], epochs=20, lr=0.2, batch_size=32), argv)
  try: train_set, test_set = load_digits(seed=0)   # split seed fixed: the test set never depends on --seed
  except DatasetNotFoundError as e: sys.exit(str(e))
  model = MLP([64, 128, 10])
  params = model.parameters()
  Tensor.realize(*params)
  print(f"MLP 64-128-10 on {args.device}: {len(train_set)} train / {len(test_set)} test digits, "
        f"{sum(p.numel() for p in params)} parameters, batch {args.batch_size}, SGD lr {args.lr}, {args.epochs} epochs")
  r = fit(model, train_set.arrays, test_set.arrays, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, steps=args.steps,
          step_fn=lazygrad.jit(lambda x, y: sgd_step(model, params, x, y, args.lr)))   # replayed from the 4th step
  return report_fit(r, args, "mnist_mlp", "MLP on digits", f"mnist_mlp, {r.steps} SGD steps")


if __name__ == "__main__":
  main()
