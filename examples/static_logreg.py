#!/usr/bin/env python3
"""10-class logistic regression on scikit-learn's digits, written TinyFlow-style: the graph
is built once (placeholders, Variables, gradients, assign) and Session.run feeds it batches.

  python examples/static_logreg.py              # ~95% test accuracy in a few seconds
  python examples/static_logreg.py --steps 3    # smoke test
"""
import argparse
import time
import numpy as np
from lazygrad import dtypes, static as tf
from lazygrad.data import DataLoader, load_digits


def main(argv=None) -> float:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--steps", type=int, default=600, help="SGD steps (default 600)")
  ap.add_argument("--lr", type=float, default=0.1)
  ap.add_argument("--batch-size", type=int, default=64)
  ap.add_argument("--seed", type=int, default=0, help="shuffling seed (default 0)")
  args = ap.parse_args(argv)
  train, test = load_digits()
  x, y = tf.placeholder((args.batch_size, 64)), tf.placeholder((args.batch_size,), dtypes.int64)
  W, b = tf.Variable(np.zeros((64, 10), np.float32)), tf.Variable(np.zeros(10, np.float32))
  loss = (x @ W + b).cross_entropy(y)
  gW, gb = tf.gradients(loss, [W, b])
  train_op = [tf.assign(W, W - args.lr * gW), tf.assign(b, b - args.lr * gb)]
  x_test = tf.placeholder((len(test), 64))
  predict = (x_test @ W + b).argmax(1)   # the same Variables, in a graph sized for the test set

  sess, step, t0 = tf.Session(), 0, time.perf_counter()
  loader = DataLoader(train, args.batch_size, shuffle=True, drop_last=True, seed=args.seed)
  while step < args.steps:
    for xb, yb in loader:
      _, l = sess.run([train_op, loss], feed_dict={x: xb, y: yb})
      step += 1
      if step % 100 == 0 or step == args.steps: print(f"step {step:4d}  loss {float(l):.4f}")
      if step == args.steps: break
  acc = float((sess.run(predict, {x_test: test.arrays[0]}) == test.arrays[1]).mean())
  print(f"final test accuracy {acc * 100:.2f}%, {step} steps in {time.perf_counter() - t0:.2f} s")
  return acc


if __name__ == "__main__":
  main()
