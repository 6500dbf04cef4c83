#!/usr/bin/env python3
"""CPU (numpy) kernel benchmark: the fused elementwise chain exp(relu(a*b+c)*d).sum() against the same
expression written in numpy, and one training step of examples/char_transformer.py's cpu config
(4 layers, width 128, context 64, batch 32, AdamW, clipping; random token ids, vocab 84) with its
top kernels by time.

  OPENBLAS_NUM_THREADS=1 python bench/cpu_kernels.py                 # chain at 1e6 and 1e7, then the step
  OPENBLAS_NUM_THREADS=1 python bench/cpu_kernels.py --steps 8 --top 15

Chain: lazygrad (graph + realize of the realized inputs) and numpy alternate in one process, median
of --repeats. Step: ms per step (median after 2 warm-up steps), kernels per step, and the kernels
that took the most time summed over the measured steps (each numpy kernel's function timed), with
calls x fastest call as a steadier figure on a busy machine.
Prints tables; asserts nothing."""
from __future__ import annotations
import argparse
import os
import sys
import time
from collections import defaultdict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "examples")]
import lazygrad.runtime as runtime   # noqa: E402
from lazygrad import GlobalCounters, Tensor, nn, optim   # noqa: E402
from lazygrad.kernels.numpy.render import NumpyProgram   # noqa: E402

KERNEL_TIME: dict[str, list] = defaultdict(lambda: [0.0, 0, float("inf"), 0.0])   # name -> [wall s, calls, fastest call s, CPU s]


def _timed_compile(kernel):
  prog = _compile(kernel)
  fn, name = prog.fn, prog.name
  def timed(bufs, vars_):
    t, c = time.perf_counter(), time.process_time()
    fn(bufs, vars_)
    rec, dt = KERNEL_TIME[name], time.perf_counter() - t
    rec[3] += time.process_time() - c
    rec[0] += dt
    rec[1] += 1
    rec[2] = min(rec[2], dt)
  return NumpyProgram(prog.name, prog.source, timed, prog.constants)


_compile = runtime.compile_numpy
runtime.compile_numpy = _timed_compile


def _both_clocks(fn) -> tuple[float, float]:
  w, c = time.perf_counter(), time.process_time()
  fn()
  return time.perf_counter() - w, time.process_time() - c


def chain(n: int, repeats: int) -> tuple[float, float, float, float]:
  """Median wall ms and median process-CPU ms of lazygrad and numpy for exp(relu(a*b+c)*d).sum() over n float32 values
  (CPU time: what the process itself spent, steadier than wall time on a shared machine; one BLAS thread)."""
  rng = np.random.default_rng(0)
  arrs = [rng.standard_normal(n).astype(np.float32) for _ in range(4)]
  a, b, c, d = [Tensor(x).realize() for x in arrs]
  tl, tn = [], []
  for _ in range(repeats + 2):
    tl.append(_both_clocks(lambda: ((a * b + c).relu() * d).exp().sum().numpy()))
    tn.append(_both_clocks(lambda: np.exp(np.maximum(arrs[0] * arrs[1] + arrs[2], 0) * arrs[3]).sum()))
  med = lambda ts, i: float(np.median([t[i] for t in ts[2:]]) * 1e3)
  return med(tl, 0), med(tn, 0), med(tl, 1), med(tn, 1)


def transformer_step(steps: int, top: int) -> None:
  """ms/step, kernels/step and the top kernels of the cpu config's training step."""
  from char_transformer import CONFIGS, GPT, param_groups
  cfg, vocab = CONFIGS["cpu"], 84
  L, H, C, T, B = cfg["layers"], cfg["heads"], cfg["width"], cfg["context"], cfg["batch_size"]
  model = GPT(vocab, T, C, L, H, 0.0)
  params = list(model.parameters())
  Tensor.realize(*params)
  opt = optim.AdamW(param_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.99))
  rng = np.random.default_rng(0)
  times, cpu, kernels = [], [], []
  for i in range(steps + 2):
    if i == 2: KERNEL_TIME.clear()
    x, y = (Tensor(rng.integers(0, vocab, (B, T))) for _ in range(2))
    k0, t0, c0 = GlobalCounters.kernel_count, time.perf_counter(), time.process_time()
    _, loss = model(x, y)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    loss.item()
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
    kernels.append(GlobalCounters.kernel_count - k0)
  in_kernels = sum(r[0] for r in KERNEL_TIME.values()) / steps
  cpu_kernels = sum(r[3] for r in KERNEL_TIME.values()) / steps
  print(f"\nchar_transformer cpu step: {np.median(times[2:]) * 1e3:.1f} ms/step wall, {np.median(cpu[2:]) * 1e3:.1f} ms/step "
        f"process CPU (medians of {steps}), {kernels[-1]} kernels/step; inside kernels {in_kernels * 1e3:.1f} ms/step wall, "
        f"{cpu_kernels * 1e3:.1f} ms/step CPU")
  # sorted by CPU time (steadier than wall time on a shared machine); min ms/step: calls per step x the fastest
  # call's wall time (a kernel name can cover kernels of one shape and different bodies: then a lower bound)
  print(f"{'kernel':<52} {'CPU ms/step':>11} {'wall ms/step':>12} {'min ms/step':>11} {'calls':>6}")
  for name, (t, n, fastest, c) in sorted(KERNEL_TIME.items(), key=lambda kv: -kv[1][3])[:top]:
    print(f"{name[:52]:<52} {c / steps * 1e3:>11.2f} {t / steps * 1e3:>12.2f} {fastest * n / steps * 1e3:>11.2f} {n // steps:>6}")


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--repeats", type=int, default=15)
  ap.add_argument("--steps", type=int, default=6)
  ap.add_argument("--top", type=int, default=10)
  ap.add_argument("--skip-step", action="store_true", help="only the chain")
  ap.add_argument("--skip-chain", action="store_true", help="only the step")
  args = ap.parse_args()
  print(f"{'chain':<8} {'lazygrad ms':>11} {'numpy ms':>9} {'ratio':>6} {'lazygrad cpu ms':>15} {'numpy cpu ms':>12} {'cpu ratio':>9}")
  for n in () if args.skip_chain else (10**6, 10**7):
    lg, npt, lgc, npc = chain(n, args.repeats)
    print(f"{n:<8.0e} {lg:>11.2f} {npt:>9.2f} {lg / npt:>6.2f} {lgc:>15.2f} {npc:>12.2f} {lgc / npc:>9.2f}")
  if not args.skip_step: transformer_step(args.steps, args.top)


if __name__ == "__main__":
  main()
