#!/usr/bin/env python3
"""Softmax regression (one linear layer, 64 -> 10) on scikit-learn's 8x8 digits, trained with plain SGD.

The model is logits = x @ W.T + b; the loss is cross-entropy, i.e. the mean of
-log softmax(logits)[label]. The data, the split, the initialisation (torch's Linear) and the
loop are mnist_mlp.py's; here the step is the nn/optim one (plain SGD, no momentum) run by
examples/common.py's fit(), so the two examples differ in the model and in how the step is written.

  python examples/softmax_regression.py             # ~95.3% test accuracy
  python examples/softmax_regression.py --steps 3   # smoke test
"""
from __future__ import annotations
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # examples/common.py
from common import fit, make_parser, parse_args, report_fit   # noqa: E402
from lazygrad import Tensor, nn, optim   # noqa: E402
from lazygrad.data import DatasetNotFoundError, load_digits   # noqa: E402


class SoftmaxRegression(nn.Module):
  def __init__(self, n_in: int, n_classes: int):
    super().__init__()
    self.linear = nn.Linear(n_in, n_classes)   # weight (n_classes, n_in), bias (n_classes,)

  def forward(self, x: Tensor) -> Tensor:
    return x @ self.linear.weight.T + self.linear.bias   # the logits


def main(argv=None) -> float:
  args = parse_args(make_parser(__doc__.splitlines()[0], epochs=10, lr=0.1, batch_size=32), argv)
  try: train_set, test_set = load_digits(seed=0)   # split seed fixed: the test set never depends on --seed
  except DatasetNotFoundError as e: sys.exit(str(e))
  model = SoftmaxRegression(64, 10)
  params = list(model.parameters())
  Tensor.realize(*params)
  print(f"softmax regression 64->10 on {args.device}: {len(train_set)} train / {len(test_set)} test digits, "
        f"{sum(p.numel() for p in params)} parameters, batch {args.batch_size}, SGD lr {args.lr}, {args.epochs} epochs")
  r = fit(model, train_set.arrays, test_set.arrays, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, steps=args.steps,
          opt=optim.SGD(params, lr=args.lr))
  return report_fit(r, args, "softmax_regression", "softmax regression on digits", f"softmax_regression, {r.steps} SGD steps")


if __name__ == "__main__":
  main()
