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
shuffling and augmentation. A loss-curve PNG goes to --out-dir (default examples/out).

  python examples/digits_cnn.py                     # full run, >= 98% test accuracy
  python examples/digits_cnn.py --steps 3           # smoke test
"""
from __future__ import annotations
import argparse
import os
import sys
import time
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)   # mnist_mlp sits next to this file


def setup_device(device, blas_threads: int = 0):
  """The interp device needs TRITON_INTERPRET=1 before triton is imported. blas_threads > 0
  caps numpy's BLAS thread pool (threadpoolctl, a scikit-learn dependency): the cpu device's
  matmuls are small, and on a busy machine OpenBLAS threads spinning for a core cost far
  more than they bring (measured: a ResNet step 3.7x slower with 2 threads on 2 loaded cores)."""
  if device == "interp" and "triton" not in sys.modules: os.environ.setdefault("TRITON_INTERPRET", "1")
  if blas_threads > 0:
    try:
      from threadpoolctl import threadpool_limits
      threadpool_limits(limits=blas_threads, user_api="blas")
    except ImportError: pass
  return device


def base_parser(description: str, epochs: int, lr: float, batch_size: int) -> argparse.ArgumentParser:
  from mnist_mlp import build_parser
  ap = build_parser(description, epochs=epochs, lr=lr, batch_size=batch_size)
  ap.add_argument("--device", default=None, help="cpu, cuda or interp (default: LAZYGRAD_DEVICE, else cuda if present, else cpu)")
  ap.add_argument("--out-dir", default=os.path.join(HERE, "out"), help="where the loss-curve PNG (and checkpoints) go (default examples/out)")
  ap.add_argument("--no-plot", action="store_true", help="do not write the loss-curve PNG")
  ap.add_argument("--blas-threads", type=int, default=1, help="numpy BLAS threads for the cpu device (default 1; 0: the library's default)")
  return ap


def save_loss_curve(losses: list[float], path: str, title: str, epoch_steps: int = 0, extra: dict | None = None) -> str | None:
  """Training loss per step (thin) and its running mean (thick); returns the path, or None without matplotlib."""
  try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError:
    print("note: matplotlib is not installed (pip install matplotlib): no loss-curve PNG written")
    return None
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig, ax = plt.subplots(figsize=(7, 4))
  steps = np.arange(1, len(losses) + 1)
  ax.plot(steps, losses, lw=0.6, alpha=0.45, label="loss per step")
  w = max(1, min(50, len(losses) // 20))
  if len(losses) >= w > 1:
    smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
    ax.plot(steps[w - 1:], smooth, lw=1.8, label=f"running mean ({w} steps)")
  if epoch_steps and len(losses) // epoch_steps <= 20:   # epoch boundaries, when few enough to read
    for e in range(epoch_steps, len(losses), epoch_steps): ax.axvline(e, color="grey", lw=0.4, ls=":")
  for name, (xs, ys) in (extra or {}).items(): ax.plot(xs, ys, "o-", lw=1.2, ms=3, label=name)
  ax.set_xlabel("optimizer step"); ax.set_ylabel("cross-entropy"); ax.set_title(title)
  ax.set_yscale("log"); ax.grid(alpha=0.3, which="both"); ax.legend()
  fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)
  return path


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int, device=None) -> tuple[float, float]:
  """(mean loss, accuracy) of the model in eval mode over (x, y), batch by batch."""
  from lazygrad import Tensor, no_grad
  was_training = model.training
  model.eval()
  loss_sum, correct = 0.0, 0
  with no_grad():
    for i in range(0, len(x), batch_size):
      xb, yb = Tensor(x[i:i + batch_size], device=device), Tensor(y[i:i + batch_size], device=device)
      logits = model(xb)
      loss, pred = logits.cross_entropy(yb, reduction="sum"), logits.argmax(1)
      loss.realize(pred)
      loss_sum += loss.item()
      correct += int((pred.numpy() == y[i:i + batch_size]).sum())
  model.train(was_training)
  return loss_sum / len(x), correct / len(x)


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
  from lazygrad import nn
  def block(cin, cout): return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
  return nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2),
                       *block(32, 64), nn.MaxPool2d(2),
                       nn.Flatten(), nn.Dropout(0.2), nn.Linear(64 * 2 * 2, 10))


def main(argv=None) -> float:
  ap = base_parser(__doc__.splitlines()[0], epochs=30, lr=0.1, batch_size=64)
  args = ap.parse_args(argv)
  setup_device(args.device, args.blas_threads)
  from lazygrad import Tensor, GlobalCounters, optim
  from lazygrad.data import load_digits, DataLoader
  from mnist_mlp import progress

  Tensor.manual_seed(args.seed)
  train_set, test_set = load_digits(seed=0, flatten=False)   # split seed fixed: the test set never depends on --seed
  x_te, y_te = test_set.arrays
  model = make_model()
  if args.device: model.to(args.device)
  params = list(model.parameters())
  Tensor.realize(*params, *model.buffers())
  loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True, seed=args.seed)
  steps_per_epoch = len(loader)
  total_steps = steps_per_epoch * args.epochs
  opt = optim.SGD(params, lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
  sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total_steps, pct_start=0.25, cycle_momentum=False)
  rng = np.random.default_rng(args.seed)
  model_device = params[0].device
  print(f"digits CNN on {model_device}: {len(train_set)} train / {len(test_set)} test images (8x8), "
        f"{sum(p.numel() for p in params)} parameters, batch {args.batch_size}, max lr {args.lr}, {args.epochs} epochs")

  losses, test_curve = [], ([], [])
  step, kernels, step_time, acc = 0, 0, 0.0, 0.0
  t_start = time.perf_counter()
  for epoch in range(1, args.epochs + 1):
    t_epoch, first = time.perf_counter(), len(losses)
    bar = progress(loader.batch_indices(), steps_per_epoch, f"epoch {epoch}")
    for idx in bar:
      if args.steps is not None and step >= args.steps: break
      xb, yb = train_set.getbatch(idx)
      x, y = Tensor(shift_batch(xb, rng), device=model_device), Tensor(yb, device=model_device)
      before, t_step = GlobalCounters.kernel_count, time.perf_counter()
      loss = model(x).cross_entropy(y)
      opt.zero_grad()
      loss.backward()
      opt.step()                      # forward + backward + BN stats + update: one schedule
      losses.append(loss.item())
      sched.step()
      kernels, step_time = kernels + GlobalCounters.kernel_count - before, step_time + time.perf_counter() - t_step
      step += 1
      if hasattr(bar, "set_postfix"): bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    test_loss, acc = evaluate(model, x_te, y_te, 360, model_device)
    test_curve[0].append(len(losses)); test_curve[1].append(test_loss)
    train_loss = np.mean(losses[first:]) if len(losses) > first else float("nan")
    print(f"epoch {epoch:3d}  loss {train_loss:.4f}  test loss {test_loss:.4f}  test accuracy {acc * 100:.2f}%  "
          f"lr {sched.get_last_lr()[0]:.4f}  ({time.perf_counter() - t_epoch:.2f} s)")
    if args.steps is not None and step >= args.steps: break
  total = time.perf_counter() - t_start
  print(f"{step} steps, {kernels / max(step, 1):.1f} kernels per step, {step_time / max(step, 1) * 1e3:.2f} ms per step")
  print(f"final test accuracy {acc * 100:.2f}%, test loss {test_curve[1][-1]:.4f}, total time {total:.2f} s")
  if not args.no_plot and losses:
    path = save_loss_curve(losses, os.path.join(args.out_dir, "digits_cnn_loss.png"),
                           f"digits CNN: final test accuracy {acc * 100:.2f}%", steps_per_epoch, {"test loss": test_curve})
    if path: print(f"loss curve: {path}")
  return acc


if __name__ == "__main__":
  main()
