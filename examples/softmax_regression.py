#!/usr/bin/env python3
"""Softmax regression (one linear layer, 64 -> 10) on scikit-learn's 8x8 digits, trained with plain SGD.

The model is logits = x @ W.T + b; the loss is cross-entropy, i.e. the mean of
-log softmax(logits)[label]. Data, split, initialisation and the SGD loop are the
ones of mnist_mlp.py (imported from it), so the two examples differ only in the model.

  python examples/softmax_regression.py
  python examples/softmax_regression.py --steps 3   # smoke test
"""
from __future__ import annotations
import os
import sys
from lazygrad import Tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # mnist_mlp sits next to this file
from mnist_mlp import build_parser, linear_params, load_digits_split, train   # noqa: E402


class SoftmaxRegression:
  def __init__(self, n_in: int, n_classes: int):
    self.w, self.b = linear_params(n_in, n_classes)   # w: (n_classes, n_in), as torch's Linear

  def parameters(self) -> list[Tensor]: return [self.w, self.b]

  def __call__(self, x: Tensor) -> Tensor:
    return x @ self.w.T + self.b


def main(argv=None) -> float:
  args = build_parser(__doc__.splitlines()[0], epochs=10, lr=0.1, batch_size=32).parse_args(argv)
  Tensor.manual_seed(args.seed)
  x_tr, y_tr, x_te, y_te = load_digits_split()
  return train(SoftmaxRegression(64, 10), args, x_tr, y_tr, x_te, y_te)


if __name__ == "__main__":
  main()
