#!/usr/bin/env python3
"""A small CNN on scikit-learn's 8x8 digits, built from lazygrad.nn and trained with lazygrad.optim.

  conv3x3(1->32) BN ReLU  conv3x3(32->32) BN ReLU  maxpool2      8x8 -> 4x4
  conv3x3(32->64) BN ReLU  maxpool2                              4x4 -> 2x2
  flatten (256)  dropout  linear(256->10)

Trained with SGD (momentum 0.9, nesterov, weight decay 5e-4) under a OneCycle learning rate,
with random one-pixel shifts of the training images as augmentation. One training step is

    loss = model(x).cross_entropy(y); opt.zero_grad(); loss.backward(); opt.step()

and opt.step() realizes the forward pass, the backward pass, the BatchNorm running
statistics and every parameter update in one schedule.

The train/test split is fixed (scikit-learn's 1797 digits, 20% stratified test set,
split seed 0: the same 360 test images as mnist_mlp.py); --seed picks initialisation,
shuffling and augmentation. The loop is examples/common.py's fit(); a loss-curve PNG goes to
--out-dir (default examples/out; a temporary directory with --steps).

  python examples/digits_cnn.py                     # full run, >= 98% test accuracy
  python examples/digits_cnn.py --steps 3           # smoke test
"""
from __future__ import annotations
import os
import sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # examples/common.py
from common import fit, make_parser, parse_args, report_fit   # noqa: E402
from lazygrad import Tensor, nn, optim   # noqa: E402
from lazygrad.data import DatasetNotFoundError, load_digits   # noqa: E402


def shift_batch(x: np.ndarray, rng: np.random.Generator, max_shift: int = 1) -> np.ndarray:
  """Each image moved by a random (dy, dx) in [-max_shift, max_shift], zero-filled (on the host)."""
  n, _, h, w = x.shape
  p = max_shift
  padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
  dy, dx = rng.integers(0, 2 * p + 1, n), rng.integers(0, 2 * p + 1, n)
  rows = (dy[:, None] + np.arange(h))[:, None, :, None]
  cols = (dx[:, None] + np.arange(w))[:, None, None, :]
  return padded[np.arange(n)[:, None, None, None], np.arange(x.shape[1])[None, :, None, None], rows, cols]


def make_model():
  def block(cin, cout): return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
  return nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2),
                       *block(32, 64), nn.MaxPool2d(2),
                       nn.Flatten(), nn.Dropout(0.2), nn.Linear(64 * 2 * 2, 10))


def main(argv=None) -> float:
  args = parse_args(make_parser(__doc__.splitlines()[0], epochs=30, lr=0.1, batch_size=64), argv)
  try: train_set, test_set = load_digits(seed=0, flatten=False)   # split seed fixed: the test set never depends on --seed
  except DatasetNotFoundError as e: sys.exit(str(e))
  model = make_model()
  params = list(model.parameters())
  Tensor.realize(*params, *model.buffers())
  steps_per_epoch = len(train_set) // args.batch_size
  opt = optim.SGD(params, lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
  sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps_per_epoch * args.epochs, pct_start=0.25, cycle_momentum=False)
  print(f"digits CNN on {args.device}: {len(train_set)} train / {len(test_set)} test images (8x8), "
        f"{sum(p.numel() for p in params)} parameters, batch {args.batch_size}, max lr {args.lr}, {args.epochs} epochs")
  r = fit(model, train_set.arrays, test_set.arrays, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, steps=args.steps,
          opt=opt, sched=sched, augment=shift_batch, eval_batch_size=360)
  return report_fit(r, args, "digits_cnn", "digits CNN", f"digits_cnn, {r.steps} steps ({r.ms_per_step:.0f} ms/step)")


if __name__ == "__main__":
  main()
