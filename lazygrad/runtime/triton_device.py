"""Triton devices: "cuda" (compiled for the GPU) and "interp" (the same source run by
Triton's interpreter on the CPU). Memory comes from torch (its caching allocator on
the GPU, plain CPU tensors for the interpreter)."""
from __future__ import annotations
import hashlib
import importlib.util
import math
import os
import numpy as np
from lazygrad.dtype import DType
from lazygrad.kernels.ir import Kernel

CACHE_DIR = os.path.join(os.environ.get("LAZYGRAD_CACHE", os.path.expanduser("~/.cache/lazygrad")), "triton")


def torch_dtype(dt: DType):
  import torch
  return getattr(torch, dt.name)


def load_source(src: str, name: str):
  """Write the source to the cache dir (by hash) and import it: Triton's JIT needs a real file."""
  digest = hashlib.sha256(src.encode()).hexdigest()[:20]
  os.makedirs(CACHE_DIR, exist_ok=True)
  path = os.path.join(CACHE_DIR, f"{name}_{digest}.py")
  if not os.path.exists(path):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f: f.write(src)
    os.replace(tmp, path)
  spec = importlib.util.spec_from_file_location(f"lazygrad_kernel_{digest}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return getattr(mod, name)


class TritonDevice:
  """Shared by cuda and interp; they differ in where memory lives, how the function is
  wrapped, and the block sizes (the interpreter pays per program: few, large ones)."""
  def __init__(self, name: str):
    import sys
    if name == "interp" and os.environ.get("TRITON_INTERPRET") != "1":
      # Triton decides at import time whether its own library functions (tl.sum, ...) are interpreted
      if "triton" in sys.modules:
        raise RuntimeError("device 'interp': Triton was imported before TRITON_INTERPRET=1 was set; "
                           "set TRITON_INTERPRET=1 in the environment (or use interp before anything imports triton)")
      os.environ["TRITON_INTERPRET"] = "1"
    if name == "cuda" and os.environ.get("TRITON_INTERPRET") == "1":
      raise RuntimeError("device 'cuda': TRITON_INTERPRET=1 is set in this process, so Triton cannot compile for the GPU")
    import torch
    self.name = name
    self.torch_device = "cuda" if name == "cuda" else "cpu"
    if name == "cuda" and not torch.cuda.is_available(): raise RuntimeError("device 'cuda': no CUDA GPU is available")
    self._fns: dict = {}

  # ---- memory
  def alloc(self, size: int, dtype: DType):
    import torch
    return torch.empty(size, dtype=torch_dtype(dtype), device=self.torch_device)

  def from_numpy(self, arr: np.ndarray, dtype: DType):
    import torch
    from lazygrad.runtime import Buffer
    a = np.ascontiguousarray(arr, dtype=dtype.np).reshape(-1)
    t = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16) if dtype.name == "bfloat16" else torch.from_numpy(a.copy())
    return Buffer(self.name, a.size, dtype, t.to(self.torch_device))

  def to_numpy(self, buf) -> np.ndarray:
    import torch
    t = buf.data.detach().cpu()
    if buf.dtype.name == "bfloat16": return t.view(torch.int16).numpy().view(buf.dtype.np)
    return t.numpy()

  def synchronize(self):
    if self.name == "cuda":
      import torch
      torch.cuda.synchronize()

  # ---- kernels
  def program(self, k: Kernel):
    from lazygrad.kernels.triton_render import triton_program
    return triton_program(k, interp=self.name == "interp")

  def compile(self, k: Kernel):
    key = k.key
    if key not in self._fns:
      prog = self.program(k)
      import triton
      kern = triton.jit(load_source(prog.source, prog.name))   # an InterpretedFunction under TRITON_INTERPRET=1
      self._fns[key] = (prog, self._launcher(prog, kern))
    prog, launch = self._fns[key]
    k.source = prog.source
    return launch

  def _launcher(self, prog, kern):
    cfg = prog.configs[0]
    def launch(bufs, var_values):
      kern[cfg.grid](*bufs, *[int(v) for v in var_values], **cfg.constexprs, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    return launch
