#!/usr/bin/env python3
"""A two-layer MLP (64 -> 128 -> 10) on scikit-learn's 8x8 digits, trained with plain SGD.

Everything is written with lazygrad tensors (no nn/optim package): parameters are
leaf Tensors with requires_grad=True, and one SGD step is

    loss = model(x).cross_entropy(y); loss.backward()
    with no_grad(): w.assign(w - lr * w.grad) for every parameter
    loss.realize(*params)        # forward + backward + update in ONE schedule
    w.grad = None

The digits (1797 images, 10 classes) ship inside scikit-learn, so this runs offline.
The train/test split is fixed (same test set for every --seed); --seed picks the
initialisation and the shuffling.

  python examples/mnist_mlp.py                     # full run, reaches >= 97% test accuracy
  python examples/mnist_mlp.py --steps 3           # smoke test
"""
from __future__ import annotations
import argparse
import math
import sys
import time
import numpy as np
from lazygrad import Tensor, no_grad, GlobalCounters

SPLIT_SEED = 0     # the test set never depends on --seed


def load_digits_split(test_size: float = 0.2):
  """(x_train, y_train, x_test, y_test): images flattened to 64 floats, standardised
  with the training set's per-pixel mean and std; labels int64."""
  try:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
  except ImportError:
    sys.exit("this example needs scikit-learn for its dataset: pip install scikit-learn")
  x, y = load_digits(return_X_y=True)
  x_tr, x_te, y_tr, y_te = train_test_split(x.astype(np.float32), y.astype(np.int64), test_size=test_size,
                                            random_state=SPLIT_SEED, stratify=y)
  mean, std = x_tr.mean(0), x_tr.std(0) + 1.0   # +1: some border pixels are always 0
  return (x_tr - mean) / std, y_tr, (x_te - mean) / std, y_te


def linear_params(fan_in: int, fan_out: int) -> tuple[Tensor, Tensor]:
  """torch.nn.Linear's default init: kaiming_uniform(a=sqrt(5)) for the weight, which is
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
  bound = 1 / math.sqrt(fan_in)
  w = Tensor.uniform(fan_out, fan_in, low=-bound, high=bound, requires_grad=True)
  b = Tensor.uniform(fan_out, low=-bound, high=bound, requires_grad=True)
  return w, b


def progress(iterable, total: int, desc: str):
  """A progress bar on a terminal (tqdm when installed, else a plain counter); nothing in a log."""
  try:
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None)   # None: off when not a tty
  except ImportError:
    def plain():
      for i, item in enumerate(iterable):
        if sys.stderr.isatty(): print(f"\r{desc}: {i + 1}/{total}", end="", file=sys.stderr, flush=True)
        yield item
      if sys.stderr.isatty(): print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
    return plain()


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
  loss = model(x).cross_entropy(y)
  loss.backward()
  with no_grad():
    for p in params: p.assign(p - lr * p.grad)
  loss.realize(*params)   # forward, backward and every update: one schedule
  for p in params: p.grad = None
  return loss


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
  with no_grad():
    pred = model(Tensor(x)).argmax(1).numpy()
  return float((pred == y).mean())


def build_parser(description: str, epochs: int, lr: float, batch_size: int) -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(description=description)
  ap.add_argument("--epochs", type=int, default=epochs, help=f"passes over the training set (default {epochs})")
  ap.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed (default 0)")
  ap.add_argument("--steps", type=int, default=None, help="stop after this many optimizer steps (smoke tests)")
  ap.add_argument("--lr", type=float, default=lr, help=f"SGD learning rate (default {lr})")
  ap.add_argument("--batch-size", type=int, default=batch_size, help=f"minibatch size (default {batch_size})")
  return ap


def train(model, args, x_tr, y_tr, x_te, y_te) -> float:
  """The loop both digit examples share; returns the final test accuracy."""
  params = model.parameters()
  Tensor.realize(*params)
  rng = np.random.default_rng(args.seed)
  steps_per_epoch = len(x_tr) // args.batch_size
  step, kernels, step_time, acc = 0, 0, 0.0, accuracy(model, x_te, y_te)
  print(f"{len(x_tr)} train / {len(x_te)} test digits, {sum(p.numel() for p in params)} parameters, "
        f"batch {args.batch_size}, lr {args.lr}")
  t_start = time.perf_counter()
  for epoch in range(1, args.epochs + 1):
    perm = rng.permutation(len(x_tr))
    losses, t_epoch = [], time.perf_counter()
    for i in progress(range(steps_per_epoch), steps_per_epoch, f"epoch {epoch}"):
      if args.steps is not None and step >= args.steps: break
      idx = perm[i * args.batch_size:(i + 1) * args.batch_size]
      before, t_step = GlobalCounters.kernel_count, time.perf_counter()
      loss = sgd_step(model, params, Tensor(x_tr[idx]), Tensor(y_tr[idx]), args.lr)
      kernels, step_time = kernels + GlobalCounters.kernel_count - before, step_time + time.perf_counter() - t_step
      losses.append(loss.item())
      step += 1
    acc = accuracy(model, x_te, y_te)
    print(f"epoch {epoch:3d}  loss {np.mean(losses) if losses else float('nan'):.4f}  test accuracy {acc * 100:.2f}%  "
          f"({time.perf_counter() - t_epoch:.2f} s)")
    if args.steps is not None and step >= args.steps: break
  total = time.perf_counter() - t_start
  print(f"{step} steps, {kernels / max(step, 1):.1f} kernels per step, {step_time / max(step, 1) * 1e3:.2f} ms per step")
  print(f"final test accuracy {acc * 100:.2f}%, total time {total:.2f} s")
  return acc


def main(argv=None) -> float:
  args = build_parser(__doc__.splitlines()[0], epochs=20, lr=0.2, batch_size=32).parse_args(argv)
  Tensor.manual_seed(args.seed)
  x_tr, y_tr, x_te, y_te = load_digits_split()
  model = MLP([64, 128, 10])
  return train(model, args, x_tr, y_tr, x_te, y_te)


if __name__ == "__main__":
  main()
