"""Torch as the oracle: run the same function on lazygrad and torch, compare values and gradients."""
from __future__ import annotations
import numpy as np
import torch
from lazygrad import Tensor, dtypes

# The one reason bf16 arithmetic is not checked on interp: Triton 3.9's interpreter gets it wrong in a plain @triton.jit
# kernel (bf16 x * x and x * 3 give garbage, fp32 -> bf16 casts truncate), so not lazygrad's rendering (see
# test_reliability_fuzz.test_interp_bf16_arithmetic_is_tritons_bug); cpu and cuda check it
INTERP_BF16 = "bf16 arithmetic in Triton 3.9's interpreter is wrong (Triton's bug, not lazygrad's: test_interp_bf16_arithmetic_is_tritons_bug)"
TOL = {"float32": (1e-4, 1e-5), "float16": (1e-2, 1e-2), "float64": (1e-7, 1e-9), "bfloat16": (5e-2, 5e-2)}


def tol_for(dtype: str):
  return TOL.get(dtype, (0, 0))


def make_inputs(shapes, dtype="float32", low=-2.0, high=2.0, seed=0):
  rng = np.random.default_rng(seed)
  out = []
  for s in shapes:
    if dtype in ("int32", "int64", "int8", "uint8", "int16"): out.append(rng.integers(int(low), int(high) + 1, size=s).astype(dtype))
    elif dtype == "bool": out.append(rng.random(s) < 0.5)
    else: out.append(rng.uniform(low, high, size=s).astype(np.float32).astype(dtype))
  return out


def compare(a: np.ndarray, b: np.ndarray, rtol, atol, what=""):
  assert a.shape == b.shape, f"{what}: shape {a.shape} != torch {b.shape}"
  if a.dtype == np.bool_ or b.dtype == np.bool_:
    np.testing.assert_array_equal(a, b, err_msg=what); return
  np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol, err_msg=what, equal_nan=True)


def helper_test_op(shapes, torch_fn, lazy_fn=None, dtype="float32", low=-2.0, high=2.0, grad=True, rtol=None, atol=None,
                   grad_rtol=None, grad_atol=None, inputs=None, device=None, check_dtype=True):
  """Forward values (and gradients of a random projection of the output, if float) vs torch."""
  lazy_fn = lazy_fn or torch_fn
  arrays = inputs if inputs is not None else make_inputs(shapes, dtype, low, high)
  d_rtol, d_atol = tol_for(dtype)
  rtol, atol = (rtol if rtol is not None else d_rtol), (atol if atol is not None else d_atol)
  is_float = all(np.asarray(a).dtype.kind == 'f' for a in arrays) and len(arrays) > 0
  grad = grad and is_float
  tts = [torch.tensor(a, requires_grad=grad) for a in arrays]
  lts = [Tensor(a, device=device, requires_grad=grad) for a in arrays]
  tout, lout = torch_fn(*tts), lazy_fn(*lts)
  if isinstance(tout, (tuple, list)): tout, lout = tout[0], lout[0]
  lnp = lout.numpy()
  if check_dtype: assert lout.dtype == dtypes.from_any(tout.dtype), f"dtype {lout.dtype} != torch {tout.dtype}"
  compare(lnp, tout.detach().numpy(), rtol, atol, "forward")
  if grad and tout.dtype.is_floating_point and tout.requires_grad:
    proj = np.random.default_rng(1).standard_normal(tout.shape).astype(np.float32).astype(tout.detach().numpy().dtype)
    (tout * torch.tensor(proj)).sum().backward()
    (lout * Tensor(proj, device=device)).sum().backward()
    for i, (tt, lt) in enumerate(zip(tts, lts)):
      tg = tt.grad.numpy() if tt.grad is not None else np.zeros(tt.shape, dtype=tt.detach().numpy().dtype)
      lg = lt.grad.numpy() if lt.grad is not None else np.zeros(lt.shape, dtype=lt.dtype.np)
      compare(lg, tg, grad_rtol or rtol * 10, grad_atol or atol * 10, f"grad of input {i}")
  return lout


# ---- compiling generated kernels for Hopper without a GPU (kernels/triton/compile.py)

def hopper_job(kernel, **extra) -> dict:
  """A compile job for the program a cuda device would launch for `kernel` (its default config)."""
  from lazygrad.kernels.triton import triton_program
  p = triton_program(kernel, interp=False)
  cfg = p.configs[0]
  return {"source": p.source, "name": p.name, "signature": p.signature, "constexprs": cfg.constexprs,
          "num_warps": cfg.num_warps, "num_stages": cfg.num_stages, **extra}


def compile_for_hopper(jobs: list[dict], workdir=None) -> list[dict]:
  """Compile the jobs for sm_90 in a process without TRITON_INTERPRET (Triton would only
  interpret there) and return one result per job; fails on a missing result or any error."""
  import json
  import os
  import subprocess
  import sys
  import tempfile
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  path = os.path.join(workdir or tempfile.mkdtemp(prefix="lazygrad_hopper_"), "jobs.json")
  with open(path, "w") as f: json.dump(jobs, f)
  env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
  env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
  r = subprocess.run([sys.executable, "-m", "lazygrad.kernels.triton.compile", path], check=False, env=env,
                     capture_output=True, text=True, timeout=600)
  results = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
  assert len(results) == len(jobs), r.stderr[-2000:]
  errors = [x for x in results if "error" in x]
  assert not errors, errors[:3]
  return results
