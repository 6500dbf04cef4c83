"""What the examples share: the flags, device setup and seeding, a progress bar, the training
loop (`fit`) and test-set evaluation (`evaluate`), loss-curve plots and the summary line.

Every example puts this directory on sys.path once, at its top, and imports from here, so
`python examples/<name>.py` works from any working directory. Flags (`make_parser`):

  --epochs --seed --steps --lr --batch-size      the run (--steps N: stop after N optimizer steps, a smoke test)
  --device --blas-threads                         where it runs
  --out-dir --no-plot                             outputs: the loss-curve PNG, checkpoints
  --amp bf16|fp16                                 mixed precision (add_amp_flag: the examples that take it)

Outputs go to examples/out/ for a real run; with --steps (a smoke test) they go to a fresh
temporary directory unless --out-dir is given, so a smoke run never overwrites a real result.
"""
from __future__ import annotations
import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT_DIR = os.path.join(HERE, "out")
_T_IMPORT = time.perf_counter()   # an example imports this module first: its clock starts before lazygrad's import
_parsed = False


# ---- flags, device, seeding
def make_parser(description: str, *, epochs: Optional[int], lr: Optional[float], batch_size: Optional[int],
                epilog: Optional[str] = None, epochs_type=int) -> argparse.ArgumentParser:
  """The flags every example takes, with this example's defaults (None: the example decides, e.g. from a preset)."""
  ap = argparse.ArgumentParser(description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
  def default(v): return "" if v is None else f" (default {v})"
  ap.add_argument("--epochs", type=epochs_type, default=epochs, help="passes over the training set" + default(epochs))
  ap.add_argument("--seed", type=int, default=0, help="initialisation, shuffling and augmentation seed (default 0)")
  ap.add_argument("--steps", type=int, default=None,
                  help="stop after this many optimizer steps (a smoke test: outputs go to a temporary directory unless --out-dir is given)")
  ap.add_argument("--lr", type=float, default=lr, help="learning rate" + default(lr))
  ap.add_argument("--batch-size", type=int, default=batch_size, help="minibatch size" + default(batch_size))
  ap.add_argument("--device", default=None, help="cpu, cuda or interp (default: LAZYGRAD_DEVICE, else cuda if present, else cpu)")
  ap.add_argument("--blas-threads", type=int, default=1, help="numpy BLAS threads for the cpu device (default 1; 0: the library's default)")
  ap.add_argument("--out-dir", default=None,
                  help="where the loss-curve PNG and checkpoints go (default examples/out; with --steps a new temporary directory)")
  ap.add_argument("--no-plot", action="store_true", help="do not write the loss-curve PNG")
  return ap


def add_amp_flag(ap: argparse.ArgumentParser) -> None:
  """--amp bf16|fp16: run the forward under lazygrad.autocast (matmuls, convs and attention in that dtype with float32
  accumulation, float32 master weights); fp16 also scales the loss with a GradScaler (bf16 has float32's range)."""
  ap.add_argument("--amp", choices=("bf16", "fp16"), default=None,
                  help="mixed precision: autocast the forward to bf16 or fp16 (fp16 adds a GradScaler); default off (float32)")


class Amp:
  """What --amp sets up for a training loop: `autocast()` (a region: lazygrad.autocast, or a no-op when off) and
  `scaler` (a lazygrad.amp.GradScaler for fp16, else None). `backward_and_step(loss, opt, before_step)` runs
  backward and the optimizer step, through the scaler when there is one (before_step(): e.g. clipping,
  called on unscaled gradients)."""
  def __init__(self, amp: Optional[str]):
    from lazygrad import amp as lg_amp, dtypes
    self.name = amp
    self.dtype = {"bf16": dtypes.bfloat16, "fp16": dtypes.float16, None: None}[amp]
    self._autocast = lg_amp.autocast
    self.scaler = lg_amp.GradScaler() if amp == "fp16" else None

  def autocast(self):
    """A fresh autocast region (disabled when --amp is off)."""
    return self._autocast(dtype=self.dtype or "bfloat16", enabled=self.dtype is not None)

  def backward_and_step(self, loss, opt, before_step: Optional[Callable] = None) -> None:
    """loss.backward() and opt.step(), scaled (and skipped on inf/nan gradients) when there is a scaler."""
    if self.scaler is None:
      loss.backward()
      if before_step is not None: before_step()
      opt.step()
      return
    self.scaler.scale(loss).backward()
    if before_step is not None: self.scaler.unscale_(opt); before_step()
    self.scaler.step(opt)
    self.scaler.update()

  def describe(self) -> str:
    """'' when off, else e.g. ', amp bf16' for a header line."""
    return "" if self.dtype is None else f", amp {self.name}" + (" (GradScaler)" if self.scaler else "")


def parse_args(ap: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
  """Parse, then set up: the clock (args.t0: when this module was imported, for the first run of a
  process, so "total time" counts imports and data loading too), the out dir, the device
  (args.device: its name) and the seeds."""
  global _parsed
  args = ap.parse_args(argv)
  args.t0, _parsed = (time.perf_counter() if _parsed else _T_IMPORT), True
  if getattr(args, "steps", None) is not None and args.steps < 1: ap.error("--steps must be at least 1")
  args.out_dir = out_dir(args.out_dir, smoke=getattr(args, "steps", None) is not None)
  args.device = setup_device(args.device, args.blas_threads)
  seed_everything(args.seed)
  return args


def out_dir(given: Optional[str], smoke: bool) -> str:
  """--out-dir when given; else a fresh temporary directory for a smoke run, examples/out for a real one."""
  if given: return os.path.abspath(given)
  return tempfile.mkdtemp(prefix="lazygrad_example_") if smoke else DEFAULT_OUT_DIR


def setup_device(device: Optional[str] = None, blas_threads: int = 0) -> str:
  """--device becomes the process's default device (LAZYGRAD_DEVICE; interp sets TRITON_INTERPRET=1
  itself when triton is not imported yet); returns the device name tensors get.
  blas_threads > 0 caps numpy's BLAS pool (threadpoolctl, a scikit-learn dependency): the cpu
  device's matmuls are small, and on a busy machine OpenBLAS threads spinning for a core cost far
  more than they bring (measured on 2 loaded cores: a ResNet step 3.7x slower with 2 threads)."""
  if device:
    os.environ["LAZYGRAD_DEVICE"] = device
    if device == "interp" and "triton" not in sys.modules: os.environ.setdefault("TRITON_INTERPRET", "1")
  elif not os.environ.get("LAZYGRAD_DEVICE") and not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")):
    # no GPU driver: the default would be cpu anyway, and lazygrad would import torch (seconds) only to ask for cuda
    os.environ["LAZYGRAD_DEVICE"] = "cpu"
  if blas_threads > 0:
    try:
      from threadpoolctl import threadpool_limits
      threadpool_limits(limits=blas_threads, user_api="blas")
    except ImportError: pass
  from lazygrad import Tensor
  return Tensor(np.zeros(1, np.float32)).device


def seed_everything(seed: int) -> None:
  """numpy's global generator and lazygrad's (Tensor.rand/randn, parameter init, dropout)."""
  from lazygrad import Tensor
  np.random.seed(seed)
  Tensor.manual_seed(seed)


# ---- progress bar
class _PlainBar:
  """tqdm's interface, enough for the examples, when tqdm is not installed: a counter on a terminal, nothing in a log."""
  def __init__(self, iterable, total, desc):
    self.iterable, self.total, self.desc, self.n = iterable, total, desc, 0
    self.tty = sys.stderr.isatty()
  def __iter__(self):
    for item in self.iterable:
      yield item
      self.update(1)
    self.close()
  def update(self, n: int = 1):
    self.n += n
    if self.tty: print(f"\r{self.desc}: {self.n}/{self.total}", end="", file=sys.stderr, flush=True)
  def set_postfix(self, **kwargs): pass
  def write(self, msg: str): print(msg, flush=True)
  def close(self):
    if self.tty: print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)


def progress(iterable=None, total: Optional[int] = None, desc: str = ""):
  """A progress bar on a terminal (tqdm when installed), nothing when stderr is not a tty (a log, a test).
  Print through bar.write() while it is open."""
  try:
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None)   # None: off when not a tty
  except ImportError:
    return _PlainBar(iterable if iterable is not None else (), total, desc)


# ---- training and evaluation
@dataclass
class FitResult:
  losses: list = field(default_factory=list)          # training loss of every optimizer step
  test_curve: tuple = field(default_factory=lambda: ([], []))   # (step, test loss) after every epoch
  accuracy: float = float("nan")                      # test accuracy after the last epoch
  test_loss: float = float("nan")
  steps: int = 0
  kernels_per_step: float = 0.0
  ms_per_step: float = 0.0                            # forward + backward + update, loss read back
  seconds: float = 0.0                                # the whole loop, evaluations included
  steps_per_epoch: int = 0


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 500, device=None, amp: Optional[Amp] = None) -> tuple[float, float]:
  """(mean cross-entropy, accuracy) of `model` over (x, y), batch by batch, in eval mode when it has one
  (the forward under amp's autocast when given)."""
  from lazygrad import Tensor, no_grad
  was_training = getattr(model, "training", None)
  if was_training is not None: model.eval()
  loss_sum, correct = 0.0, 0
  amp = amp or Amp(None)
  with no_grad():
    for i in range(0, len(x), batch_size):
      xb, yb = Tensor(x[i:i + batch_size], device=device), Tensor(y[i:i + batch_size], device=device)
      with amp.autocast(): logits = model(xb)
      loss, pred = logits.cross_entropy(yb, reduction="sum"), logits.argmax(1)
      loss.realize(pred)
      loss_sum += loss.item()
      correct += int((pred.numpy() == y[i:i + batch_size]).sum())
  if was_training is not None: model.train(was_training)
  return loss_sum / len(x), correct / len(x)


def optimizer_step(model, opt, amp: Optional[Amp] = None) -> Callable:
  """The usual step: loss = model(x).cross_entropy(y); opt.zero_grad(); loss.backward(); opt.step().
  opt.step() realizes the forward pass, the backward pass, BatchNorm's running statistics and
  every parameter update in one schedule. With amp: the forward under autocast, and with its GradScaler
  the loss scaled and the step skipped on inf/nan gradients (then the check is a schedule of its own).
  Without a GradScaler the step is jitted (lazygrad.jit)."""
  import lazygrad
  amp = amp or Amp(None)
  def step(x, y):
    with amp.autocast(): loss = model(x).cross_entropy(y)
    opt.zero_grad()
    amp.backward_and_step(loss, opt)
    return loss
  # lazygrad.jit replays the step's kernels from the fourth call on; GradScaler reads its inf/nan flag on the host
  # each step (a Python decision a replay would not repeat), so an fp16 step runs plainly
  return step if amp.scaler is not None else lazygrad.jit(step)


def fit(model, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *, epochs: int, batch_size: int,
        seed: int = 0, steps: Optional[int] = None, opt=None, sched=None, step_fn: Optional[Callable] = None,
        augment: Optional[Callable] = None, eval_batch_size: int = 500, device=None, amp: Optional[Amp] = None) -> FitResult:
  """Train `model` on (x, y) arrays for `epochs` (or until `steps` optimizer steps) and evaluate
  it on `test` after every epoch; prints one line per epoch and the step statistics.

  step_fn(x, y) -> loss Tensor does one optimizer step (default: optimizer_step(model, opt));
  sched.step() runs after every optimizer step; augment(x_batch, rng) -> x_batch changes
  training batches on the host. Each epoch visits a new permutation (drop_last) drawn from a
  generator seeded with `seed`; augmentation has its own generator, seeded with `seed` too. amp (an Amp,
  from --amp) runs the default step's and the evaluation's forward under autocast."""
  from lazygrad import Tensor, GlobalCounters
  if step_fn is None:
    if opt is None: raise ValueError("fit: pass opt= (an optimizer) or step_fn=")
    step_fn = optimizer_step(model, opt, amp)
  x_tr, y_tr = train
  x_te, y_te = test
  order_rng, aug_rng = np.random.default_rng(seed), np.random.default_rng(seed)
  r = FitResult(steps_per_epoch=len(x_tr) // batch_size)
  if r.steps_per_epoch == 0: raise ValueError(f"fit: batch size {batch_size} is larger than the training set ({len(x_tr)})")
  kernels, step_time, t_start = 0, 0.0, time.perf_counter()
  for epoch in range(1, epochs + 1):
    t_epoch, first = time.perf_counter(), len(r.losses)
    perm = order_rng.permutation(len(x_tr))
    bar = progress(range(r.steps_per_epoch), r.steps_per_epoch, f"epoch {epoch}")
    for i in bar:
      if steps is not None and r.steps >= steps: break
      idx = perm[i * batch_size:(i + 1) * batch_size]
      xb = augment(x_tr[idx], aug_rng) if augment is not None else x_tr[idx]
      x, y = Tensor(xb, device=device), Tensor(y_tr[idx], device=device)
      before, t_step = GlobalCounters.kernel_count, time.perf_counter()
      loss = step_fn(x, y).item()
      kernels, step_time = kernels + GlobalCounters.kernel_count - before, step_time + time.perf_counter() - t_step
      r.losses.append(loss)
      if sched is not None: sched.step()
      r.steps += 1
      if hasattr(bar, "set_postfix"): bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
    bar.close()
    r.test_loss, r.accuracy = evaluate(model, x_te, y_te, eval_batch_size, device, amp)
    r.test_curve[0].append(len(r.losses)); r.test_curve[1].append(r.test_loss)
    train_loss = np.mean(r.losses[first:]) if len(r.losses) > first else float("nan")
    lr = f"  lr {opt.param_groups[0]['lr']:.4f}" if opt is not None and sched is not None else ""
    print(f"epoch {epoch:3d}  loss {train_loss:.4f}  test loss {r.test_loss:.4f}  test accuracy {r.accuracy * 100:.2f}%{lr}  "
          f"({time.perf_counter() - t_epoch:.2f} s)", flush=True)
    if steps is not None and r.steps >= steps: break
  r.seconds = time.perf_counter() - t_start
  r.kernels_per_step, r.ms_per_step = kernels / max(r.steps, 1), step_time / max(r.steps, 1) * 1e3
  print(f"{r.steps} steps, {r.kernels_per_step:.1f} kernels per step, {r.ms_per_step:.2f} ms per step")
  return r


# ---- loss-curve plot
def smoothing_window(n: int) -> int:
  """Steps in the running mean drawn over n per-step losses: ~n/20, between 1 (none) and 50."""
  return max(1, min(50, n // 20))


def plain_number(v: float, _pos=None) -> str:
  """A tick label as a plain decimal: 0.05, 0.2, 1, 2.5 (never 2.42x10^0 or 1e-02)."""
  if v == 0 or not math.isfinite(v): return "0" if v == 0 else str(v)
  return np.format_float_positional(float(f"{v:.4g}"), trim="-")


def loss_curve_figure(losses, title: str, *, label: str = "loss", ylabel: str = "cross-entropy", epoch_steps: int = 0,
                      extra: Optional[dict] = None, hlines: tuple = (), secondary: Optional[tuple] = None):
  """The figure save_loss_curve writes: the loss of every step (thin), its running mean when there
  are enough steps (thick, "<label> (mean of N steps)"), `extra` curves {name: (steps, values)} as
  markers, horizontal reference lines (value, name), dotted epoch boundaries when they are few
  enough to read, and an optional secondary y-axis (name, forward, inverse). The y-axis is
  logarithmic only when the curve spans more than a factor of 10, and always has plain labels."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
  losses = np.asarray(losses, dtype=np.float64)
  fig, ax = plt.subplots(figsize=(7, 4.2))
  steps = np.arange(1, len(losses) + 1)
  w = smoothing_window(len(losses))
  if w > 1:
    ax.plot(steps, losses, lw=0.6, alpha=0.4, label=f"{label} per step")
    ax.plot(steps[w - 1:], np.convolve(losses, np.ones(w) / w, mode="valid"), lw=1.8, label=f"{label} (mean of {w} steps)")
  else:
    ax.plot(steps, losses, ".-" if len(losses) < 30 else "-", lw=1.2, label=f"{label} per step")
  if epoch_steps and 1 < len(losses) // epoch_steps <= 20:
    for e in range(epoch_steps, len(losses), epoch_steps): ax.axvline(e, color="grey", lw=0.4, ls=":")
  shown = [losses]
  for name, (xs, ys) in (extra or {}).items():
    ax.plot(xs, ys, "o-", lw=1.2, ms=3, label=name); shown.append(np.asarray(ys, dtype=np.float64))
  for value, name in hlines: ax.axhline(value, color="grey", ls=":", lw=1, label=name)
  vals = np.concatenate([v[np.isfinite(v)] for v in shown]) if shown else np.array([])
  if len(vals) and vals.min() > 0 and vals.max() / vals.min() > 10 and secondary is None:
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
  ax.yaxis.set_major_formatter(FuncFormatter(plain_number))
  ax.set_xlabel("optimizer step"); ax.set_ylabel(ylabel); ax.set_title(title)
  ax.grid(alpha=0.3, which="major"); ax.legend()
  if secondary is not None:
    name, fwd, inv = secondary
    sec = ax.secondary_yaxis("right", functions=(fwd, inv)); sec.set_ylabel(name)
    sec.yaxis.set_major_formatter(FuncFormatter(plain_number))
  fig.tight_layout()
  return fig


def save_loss_curve(path: str, losses, title: str, **kwargs) -> Optional[str]:
  """Write loss_curve_figure(...) as a PNG; returns the path, or None without matplotlib."""
  try: import matplotlib  # noqa: F401
  except ImportError:
    print("note: matplotlib is not installed (pip install matplotlib): no loss-curve PNG written")
    return None
  import matplotlib.pyplot as plt
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig = loss_curve_figure(losses, title, **kwargs)
  fig.savefig(path, dpi=110); plt.close(fig)
  return path


# ---- the last line
def report_fit(r, args, name: str, title: str, what: str, metric: str = "") -> float:
  """The end of every fit() example: the loss-curve PNG (`<name>_loss.png` in the out dir,
  with the test loss per epoch; title gets the accuracy appended) unless --no-plot, then the
  summary line. Returns the test accuracy."""
  if not args.no_plot and r.losses:
    path = save_loss_curve(os.path.join(args.out_dir, f"{name}_loss.png"), r.losses, f"{title}: test accuracy {r.accuracy * 100:.2f}%",
                           epoch_steps=r.steps_per_epoch, extra={"test loss": r.test_curve})
    if path: print(f"loss curve: {path}")
  summary(what, metric or f"final test accuracy {r.accuracy * 100:.2f}%, test loss {r.test_loss:.4f}, training {r.seconds:.2f} s", args.t0)
  return r.accuracy


def summary(what: str, metric: str, t0: float) -> str:
  """`<what>: <metric>, total time <s> s` (t0: args.t0, set when the flags were parsed), printed and returned."""
  line = f"{what}: {metric}, total time {time.perf_counter() - t0:.2f} s"
  print(line, flush=True)
  return line
