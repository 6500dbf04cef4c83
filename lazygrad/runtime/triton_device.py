"""Triton devices: "cuda" (compiled for the GPU) and "interp" (the same source run by
Triton's interpreter on the CPU). Memory comes from torch (its caching allocator on
the GPU, plain CPU tensors for the interpreter)."""
from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np

from lazygrad import backends
from lazygrad.dtype import DType
from lazygrad.helpers import DEBUG
from lazygrad.kernels.ir import Kernel
from lazygrad.kernels.triton import triton_program
from lazygrad.kernels.triton.loader import CACHE_DIR, load_source
from lazygrad.runtime.buffer import Buffer
from lazygrad.runtime.compiled import Compiled, KernelCache
from lazygrad.runtime.errors import ErrorFlags


def torch_dtype(dt: DType):
  """The torch dtype of the same name as dt."""
  import torch
  return getattr(torch, dt.name)


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
    self._fns: KernelCache = KernelCache()
    self.errors = ErrorFlags(self)   # what bounds checks record (runtime/errors.py)

  # ---- memory
  def alloc(self, size: int, dtype: DType):
    """An uninitialized flat torch tensor of size elements of dtype (on the GPU for cuda, the CPU for interp)."""
    import torch
    return torch.empty(size, dtype=torch_dtype(dtype), device=self.torch_device)

  def from_numpy(self, arr: np.ndarray, dtype: DType):
    """A Buffer with arr's values as a flat torch tensor of dtype on this device (bfloat16 through an int16 view)."""
    import torch
    a = np.ascontiguousarray(arr, dtype=dtype.np).reshape(-1)
    t = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16) if dtype.name == "bfloat16" else torch.from_numpy(a.copy())
    return Buffer(self.name, a.size, dtype, t.to(self.torch_device))

  def to_numpy(self, buf) -> np.ndarray:
    """The buffer's contents as a numpy array (copied to the host on cuda; bfloat16 through an int16 view)."""
    import torch
    t = buf.data.detach().cpu()
    if buf.dtype.name == "bfloat16": return t.view(torch.int16).numpy().view(buf.dtype.np)
    return t.numpy()

  def synchronize(self):
    """Wait for the queued GPU work (torch.cuda.synchronize) on cuda; nothing on interp."""
    if self.name == "cuda":
      import torch
      torch.cuda.synchronize()

  # ---- kernels
  def program(self, k: Kernel):
    """The TritonProgram of a kernel (source, signature, launch configs; interp gets the interpreter's configs)."""
    return triton_program(k, interp=self.name == "interp")

  def compile(self, k: Kernel) -> Compiled:
    """The Compiled launcher of a kernel, built once per (kernel.key, allow_tf32): render, JIT the source and,
    on cuda with several configs, time them on the first launch and keep the fastest."""
    key = (k.key, backends.cuda.matmul.allow_tf32)   # the flag changes fp32 matmul sources
    fn = self._fns.get(key)
    if fn is None:
      prog = self.program(k)
      import triton
      kern = triton.jit(load_source(prog.source, prog.name))   # an InterpretedFunction under TRITON_INTERPRET=1
      fn = self._fns[key] = self._launcher(prog, kern)
      if k.uses_errors: fn.errors, fn.checks = self.errors, k.checks   # the error buffer follows the inputs
    return fn

  def _launcher(self, prog, kern) -> Compiled:
    def run(cfg, bufs, var_values):
      if prog.zero_output: bufs[0].zero_()   # a scatter-add accumulates into its output
      kern[cfg.grid](*bufs, *[int(v) for v in var_values], **cfg.constexprs, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    if self.name != "cuda" or len(prog.configs) == 1:   # interp: configs[0], no timing
      cfg = prog.configs[0]
      return Compiled(prog, lambda bufs, var_values: run(cfg, bufs, var_values), cfg)
    compiled = Compiled(prog, None, prog.configs[0])
    tuned = []
    def launch(bufs, var_values):
      if not tuned: tuned.append(True); compiled.config = self._tune(prog, run, bufs, var_values)
      run(compiled.config, bufs, var_values)
    compiled.fn = launch
    return compiled

  def _tune(self, prog, run, bufs, var_values):
    """The fastest config on the real buffers (timed on scratch copies of the output and of
    inputs aliasing it: an in-place ASSIGN must not be applied once per timing run)."""
    import torch
    from triton.testing import do_bench

    key = tune_key(prog, bufs, torch.cuda.get_device_name())
    scratch = []   # cloned only when something is timed (not when the choice is cached)
    def bench(cfg):
      if not scratch: scratch.append(scratch_buffers(bufs))
      return do_bench(lambda: run(cfg, scratch[0], var_values), warmup=5, rep=20)
    cfg = choose_config(prog.configs, key, tune_cache(), bench)
    if DEBUG() >= 2: print(f"  autotune {prog.name}: {cfg.constexprs} warps {cfg.num_warps} stages {cfg.num_stages}")
    return cfg


# ---- autotuning: which launch config of a program is fastest, remembered on disk

def tune_key(prog, bufs, device_name: str) -> str:
  """A program (name + source hash) with its configs, the buffers' sizes and dtypes, the GPU."""
  digest = hashlib.sha256((prog.source + repr(prog.configs)).encode()).hexdigest()[:16]
  shapes = ",".join(f"{tuple(b.shape)}:{str(b.dtype).replace('torch.', '')}" for b in bufs)
  return f"{prog.name}/{digest}/{shapes}/{device_name}"


def scratch_buffers(bufs: list) -> list:
  """bufs with the output (slot 0) and any input sharing its storage replaced by clones."""
  out_storage = bufs[0].untyped_storage().data_ptr()
  return [bufs[0].clone()] + [b.clone() if b.untyped_storage().data_ptr() == out_storage else b for b in bufs[1:]]


class TuneCache:
  """key -> chosen config index, in memory and in a json file (re-read before each write, so
  processes sharing the cache dir add to it rather than overwrite each other's choices)."""
  def __init__(self, path: str):
    self.path, self.mem = path, None

  def _read(self) -> dict:
    try:
      with open(self.path) as f: return json.load(f)
    except (OSError, ValueError): return {}

  def get(self, key: str):
    """The remembered config index for key, or None (the file is read on the first get)."""
    if self.mem is None: self.mem = self._read()
    return self.mem.get(key)

  def put(self, key: str, index: int):
    """Remember key -> index: merged with the file's current contents and written atomically (temp file + rename)."""
    self.mem = {**self._read(), **(self.mem or {}), key: index}
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    tmp = f"{self.path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f: json.dump(self.mem, f, indent=0, sort_keys=True)
    os.replace(tmp, self.path)


_tune_cache: list = []

def tune_cache() -> TuneCache:
  """The process's TuneCache, CACHE_DIR/autotune.json."""
  if not _tune_cache: _tune_cache.append(TuneCache(os.path.join(CACHE_DIR, "autotune.json")))
  return _tune_cache[0]


def choose_config(configs, key: str, cache: TuneCache, bench):
  """The cached choice for key, else time bench(cfg) for each config (ms; a config that fails,
  e.g. out of shared memory, counts as infinitely slow), remember and return the fastest."""
  idx = cache.get(key)
  if not isinstance(idx, int) or not 0 <= idx < len(configs):
    times = []
    for cfg in configs:
      try: times.append(float(bench(cfg)))
      except Exception: times.append(math.inf)  # noqa: BLE001
    idx = min(range(len(configs)), key=times.__getitem__)
    cache.put(key, idx)
  return configs[idx]
