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
COUNTS: dict = {}   # device -> {"programs", "must_raise", "grads", "mismatches"}


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
  if not ok.all(): return f"{name}: {_first_diff(g, w, ok)}"
  return None


def _first_diff(g, w, ok=None) -> str:
  bad = np.argwhere(~ok) if ok is not None else np.argwhere(g != w)
  i = tuple(bad[0]) if len(bad) else ()
  return f"{len(bad)} of {w.size} differ, first at {list(i)}: lazygrad {g[i]!r} torch {w[i]!r}"


def check(p: Program, device: str) -> str | None:
  """Run p in both libraries; None when lazygrad agrees with torch, else what differs."""
  c = COUNTS.setdefault(device, {"programs": 0, "must_raise": 0, "grads": 0, "mismatches": 0})
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
  tl, tv = run(p, TORCH)
  want = tv[-1]
  try:
    ll, lv = run(p, LAZY)
    got = lv[-1].numpy()
  except Exception as e:
    return f"lazygrad raised {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''} (torch returned {want.dtype}{list(want.shape)})"
  out = lv[-1]
  if out.dtype != dtypes.from_any(want.dtype): return f"dtype {out.dtype} != torch {want.dtype}"
  dt = str(want.dtype).replace("torch.", "")
  if err := compare("value", got, _np(want), dt): return err
  if p.no_grad or not want.dtype.is_floating_point or not want.requires_grad: return None
  proj = np.random.default_rng(1).standard_normal(tuple(want.shape)).astype(np.float32)
  try: (want * torch.tensor(proj).to(want.dtype)).sum().backward()
  except RuntimeError: return None   # torch cannot differentiate it either
  try:
    (out * Tensor(proj).cast(out.dtype)).sum().backward()
    grads = [(i, lt.grad.numpy() if lt.grad is not None else np.zeros(lt.shape, lt.dtype.np), tt) for i, (lt, tt) in enumerate(zip(ll, tl))
             if tt.requires_grad]
  except Exception as e: return f"lazygrad backward raised {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
  c["grads"] += 1
  for i, lg, tt in grads:
    tg = _np(tt.grad) if tt.grad is not None else np.zeros(tuple(tt.shape), np.float32)
    # where torch's own gradient is nan (log(-1), 0 * inf, ...) it is ill-defined and not compared
    if err := compare(f"grad of leaf {i}", lg.astype(np.float32), tg, str(tt.dtype).replace("torch.", ""), skip_nan_want=True): return err
  return None


# ---- recording: counts for the summary, mismatches for triage

def fuzz_dir() -> str:
  d = os.environ.get("LAZYGRAD_FUZZ_DIR") or os.path.join(tempfile.gettempdir(), "lazygrad_fuzz")
  os.makedirs(d, exist_ok=True)
  return d


def record_counts(tag: str):
  """Write this process's counts (one JSON file per process and test) for the terminal summary."""
  with open(os.path.join(fuzz_dir(), f"counts-{tag}-{os.getpid()}.json"), "w") as f: json.dump(COUNTS, f)


def record_mismatch(p: Program, device: str, err: str):
  """Append the mismatch to mismatches.log and pickle the program next to it (for triage: `python -m fuzz.replay FILE`)."""
  d = fuzz_dir()
  fd, path = tempfile.mkstemp(prefix=f"{device}-", suffix=".pkl", dir=d)
  with os.fdopen(fd, "wb") as f: pickle.dump(p, f)
  with open(os.path.join(d, "mismatches.log"), "a") as f: f.write(f"### {device} {os.path.basename(path)}\n{err}\n{p!r}\n\n")
