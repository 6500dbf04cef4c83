"""Run one Program in torch and lazygrad and say how they differ: values, dtypes, shapes, gradients of a random
projection of the output, and errors (torch raised: lazygrad must raise too, any exception for now)."""
from __future__ import annotations
import json
import os
import pickle
import tempfile
import numpy as np
import torch
from lazygrad import Tensor, dtypes
from fuzz.programs import LAZY, TORCH, Program, run

# (rtol, atol) per result dtype; atol scales with the output's largest finite magnitude, since a program's rounding errors
# are relative to the values it combined (a chain of fp16 ops loses a few ulps of the biggest operand)
TOL = {"float32": (2e-3, 2e-4), "float16": (2e-2, 2e-2), "bfloat16": (5e-2, 5e-2)}
COUNTS: dict = {}   # device -> {"programs", "must_raise", "grads", "known", "mismatches"}


def _np(t) -> np.ndarray:
  return t.detach().float().numpy() if t.dtype in (torch.float16, torch.bfloat16) else t.detach().numpy()


def compare(name: str, got: np.ndarray, want: np.ndarray, dtype: str, skip_nan_want=False) -> str | None:
  """None if got matches want (torch); else a one-line description."""
  if got.shape != want.shape: return f"{name}: shape {got.shape} != torch {want.shape}"
  if want.dtype.kind not in "fc" or dtype not in TOL:
    if not np.array_equal(got.astype(want.dtype), want): return f"{name}: {_first_diff(got, want)}"
    return None
  g, w = got.astype(np.float64), want.astype(np.float64)
  rtol, atol = TOL[dtype]
  fin = np.isfinite(w)
  scale = max(1.0, float(np.abs(w[fin]).max())) if fin.any() else 1.0
  with np.errstate(invalid="ignore", over="ignore"):
    ok = np.where(np.isnan(w), np.isnan(g) | skip_nan_want, np.where(fin, np.abs(g - w) <= atol * scale + rtol * np.abs(w), g == w))
    # fp16 at the edge of its range: a different order of rounding steps overflows on one side only (2 * x * g vs 2 * (x * g))
    if dtype == "float16": ok |= np.isinf(w) & (np.sign(g) == np.sign(w)) & (np.abs(g) >= 16384)
  if not ok.all(): return f"{name}: {_first_diff(g, w, ok)}"
  return None


def _first_diff(g, w, ok=None) -> str:
  bad = np.argwhere(~ok) if ok is not None else np.argwhere(g != w)
  i = tuple(bad[0]) if len(bad) else ()
  return f"{len(bad)} of {w.size} differ, first at {list(i)}: lazygrad {g[i]!r} torch {w[i]!r}"


def check(p: Program, device: str) -> str | None:
  """Run p in both libraries; None when lazygrad agrees with torch, else what differs."""
  c = COUNTS.setdefault(device, {"programs": 0, "must_raise": 0, "grads": 0, "known": 0, "mismatches": 0})
  c["programs"] += 1
  err = _check(p, c)
  if err: c["mismatches"] += 1
  return err


def _check(p: Program, c: dict) -> str | None:
  if p.must_raise:
    c["must_raise"] += 1
    try:
      _, vals = run(p, LAZY)
      out = vals[-1].numpy()
    except Exception: return None
    return f"torch raised ({p.must_raise}) but lazygrad returned {out.dtype}{list(out.shape)}"
  try: tl, tv = run(p, TORCH)
  except Exception as e: return f"torch raised on the replay with requires_grad leaves: {type(e).__name__}: {str(e)[:200]}"
  want = tv[-1]
  try:
    ll, lv = run(p, LAZY)
    got = lv[-1].numpy()
  except Exception as e:
    if p.lenient_raise and "(as torch)" in str(e): return None
    return f"lazygrad raised {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''} (torch returned {want.dtype}{list(want.shape)})"
  out = lv[-1]
  if p.known: c["known"] += 1; return None
  if out.dtype != dtypes.from_any(want.dtype): return f"dtype {out.dtype} != torch {want.dtype}"
  dt = str(want.dtype).replace("torch.", "")
  if err := compare("value", got, _np(want), dt): return err
  if p.no_grad or not want.dtype.is_floating_point or not want.requires_grad: return None
  proj = np.random.default_rng(1).standard_normal(tuple(want.shape)).astype(np.float32)
  try: (want * torch.tensor(proj).to(want.dtype)).sum().backward()
  except RuntimeError: return None   # torch cannot differentiate it either
  detached_ok = all(tt.grad is None or not tt.grad.any() for tt in tl if tt.requires_grad)   # torch's gradient is all 0
  try:
    (out * Tensor(proj).cast(out.dtype)).sum().backward()
    grads = [(i, lt.grad.numpy() if lt.grad is not None else np.zeros(lt.shape, lt.dtype.np), tt) for i, (lt, tt) in enumerate(zip(ll, tl))
             if tt.requires_grad]
  except Exception as e:
    # floor, trunc, sign, ... are detached here (torch: a zero gradient), so a graph of only those has nothing to differentiate
    if detached_ok and "does not require grad" in str(e): return None
    return f"lazygrad backward raised {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
  c["grads"] += 1
  for i, lg, tt in grads:
    tg = _np(tt.grad) if tt.grad is not None else np.zeros(tuple(tt.shape), np.float32)
    # where torch's own gradient is nan (log(-1), 0 * inf, ...) it is ill-defined and not compared
    if err := compare(f"grad of leaf {i}", lg.astype(np.float32), tg, str(tt.dtype).replace("torch.", ""), skip_nan_want=True): return err
  return None


# ---- recording: counts for the summary, mismatches for triage

def fuzz_dir() -> str:
  """LAZYGRAD_FUZZ_DIR, default <tmp>/lazygrad_fuzz: mismatches.log, the programs' pickles and runs/<run>/counts-<pid>.json."""
  d = os.environ.get("LAZYGRAD_FUZZ_DIR") or os.path.join(tempfile.gettempdir(), "lazygrad_fuzz")
  os.makedirs(d, exist_ok=True)
  return d


def _run_dir() -> str:
  # one folder per pytest run (tests/conftest.py names it in the controller; xdist workers inherit the variable)
  d = os.path.join(fuzz_dir(), "runs", os.environ.get("LAZYGRAD_FUZZ_RUN", "adhoc"))
  os.makedirs(d, exist_ok=True)
  return d


def record_counts():
  """Write this process's counts so far (cumulative, one file per process) for the terminal summary."""
  with open(os.path.join(_run_dir(), f"counts-{os.getpid()}.json"), "w") as f: json.dump(COUNTS, f)


def summary() -> str | None:
  """One line: the programs fuzzed in this run per device (None if none ran)."""
  d = os.path.join(fuzz_dir(), "runs", os.environ.get("LAZYGRAD_FUZZ_RUN", "adhoc"))
  if not os.path.isdir(d): return None
  tot: dict = {}
  for name in os.listdir(d):
    with open(os.path.join(d, name)) as f:
      for dev, c in json.load(f).items():
        for k, v in c.items(): tot.setdefault(dev, {}).setdefault(k, 0); tot[dev][k] += v
  parts = [f"{dev}: {c['programs']} programs ({c['must_raise']} must raise, {c['grads']} with gradients, {c['known']} known differences, "
           f"{c['mismatches']} mismatches)" for dev, c in sorted(tot.items())]
  return "fuzz: " + "; ".join(parts) if parts else None


def record_mismatch(p: Program, device: str, err: str):
  """Append the mismatch to mismatches.log and pickle the program next to it (triage: `cd tests; python -m fuzz.replay FILE`)."""
  d = fuzz_dir()
  fd, path = tempfile.mkstemp(prefix=f"{device}-", suffix=".pkl", dir=d)
  with os.fdopen(fd, "wb") as f: pickle.dump(p, f)
  with open(os.path.join(d, "mismatches.log"), "a") as f: f.write(f"### {device} {os.path.basename(path)}\n{err}\n{p!r}\n\n")
