#!/usr/bin/env python3
"""10-class logistic regression on scikit-learn's digits, written TinyFlow-style: the graph
is built once (placeholders, Variables, gradients, assign) and Session.run feeds it batches.

Not an nn example, so it has its own loop (Session.run per batch); the flags, seeding, plot
and summary come from examples/common.py.

  python examples/static_logreg.py              # ~95.6% test accuracy in a few seconds
  python examples/static_logreg.py --steps 3    # smoke test
"""
from __future__ import annotations
import os
import sys
import time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # examples/common.py
from common import make_parser, parse_args, progress, save_loss_curve, summary   # noqa: E402
from lazygrad import GlobalCounters, dtypes, static as tf   # noqa: E402
from lazygrad.data import DataLoader, DatasetNotFoundError, load_digits   # noqa: E402


def main(argv=None) -> float:
  args = parse_args(make_parser(__doc__.splitlines()[0], epochs=27, lr=0.1, batch_size=64), argv)
  try: train, test = load_digits(seed=0)   # split seed fixed: the test set never depends on --seed
  except DatasetNotFoundError as e: sys.exit(str(e))
  x, y = tf.placeholder((args.batch_size, 64)), tf.placeholder((args.batch_size,), dtypes.int64)
  W, b = tf.Variable(np.zeros((64, 10), np.float32)), tf.Variable(np.zeros(10, np.float32))
  loss = (x @ W + b).cross_entropy(y)
  gW, gb = tf.gradients(loss, [W, b])
  train_op = [tf.assign(W, W - args.lr * gW), tf.assign(b, b - args.lr * gb)]
  x_test = tf.placeholder((len(test), 64))
  predict = (x_test @ W + b).argmax(1)   # the same Variables, in a graph sized for the test set

  loader = DataLoader(train, args.batch_size, shuffle=True, drop_last=True, seed=args.seed)
  print(f"static-graph logistic regression on {args.device}: {len(train)} train / {len(test)} test digits, "
        f"batch {args.batch_size}, SGD lr {args.lr}, {args.epochs} epochs ({len(loader)} steps each)")
  sess, losses, kernels, t_train = tf.Session(), [], 0, time.perf_counter()
  for epoch in range(1, args.epochs + 1):
    for xb, yb in progress(loader, len(loader), f"epoch {epoch}"):
      before = GlobalCounters.kernel_count
      _, l = sess.run([train_op, loss], feed_dict={x: xb, y: yb})
      kernels += GlobalCounters.kernel_count - before
      losses.append(float(l))
      if args.steps is not None and len(losses) >= args.steps: break
    if epoch % 5 == 0 or epoch == args.epochs or len(losses) == args.steps:
      print(f"epoch {epoch:3d}  step {len(losses):4d}  loss {np.mean(losses[-len(loader):]):.4f}", flush=True)
    if args.steps is not None and len(losses) >= args.steps: break
  train_s = time.perf_counter() - t_train
  acc = float((sess.run(predict, {x_test: test.arrays[0]}) == test.arrays[1]).mean())
  n = max(len(losses), 1)
  print(f"{len(losses)} steps in {train_s:.2f} s, {kernels / n:.1f} kernels per step, {train_s / n * 1e3:.2f} ms per step")
  if not args.no_plot and losses:
    path = save_loss_curve(os.path.join(args.out_dir, "static_logreg_loss.png"), losses,
                           f"static-graph logistic regression: test accuracy {acc * 100:.2f}%", epoch_steps=len(loader))
    if path: print(f"loss curve: {path}")
  summary(f"static_logreg, {len(losses)} Session.run steps", f"final test accuracy {acc * 100:.2f}%, training {train_s:.2f} s", args.t0)
  return acc


if __name__ == "__main__":
  main()
