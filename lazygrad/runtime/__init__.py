"""Device registry: where buffers live and how kernels run. A device's compile(kernel) asks
its renderer (kernels/numpy, kernels/triton) for a program and returns a Compiled: the
program and a function running it. executor.py runs schedules; debug.py is DEBUG/GRAPH/VERIFY."""
from __future__ import annotations
import os
import numpy as np
from lazygrad.kernels.numpy.render import compile_numpy
from lazygrad.runtime.buffer import Buffer
from lazygrad.runtime.compiled import Compiled, KernelCache
from lazygrad.runtime.errors import ErrorFlags
from lazygrad.runtime.triton_device import TritonDevice

DEVICES = ("cpu", "interp", "cuda")


class CPUDevice:
  """numpy arrays; kernels are rendered as numpy source."""
  name = "cpu"
  def __init__(self):
    self._fns: KernelCache = KernelCache()   # kernel structure -> Compiled, LRU: a repeated kernel is rendered once
    self.errors = ErrorFlags(self)           # what bounds checks record (runtime/errors.py)
  def alloc(self, size, dtype):
    """An uninitialized flat numpy array of size elements of dtype."""
    return np.empty(size, dtype=dtype.np)
  def from_numpy(self, arr: np.ndarray, dtype) -> Buffer:
    """A Buffer with arr's values as a flat contiguous numpy array of dtype (no copy when arr already is one)."""
    return Buffer(self.name, arr.size, dtype, np.ascontiguousarray(arr, dtype=dtype.np).reshape(-1))
  def to_numpy(self, buf: Buffer) -> np.ndarray:
    """The buffer's backing numpy array itself (not a copy)."""
    return buf.data
  def synchronize(self):
    """Nothing to wait for: numpy kernels run synchronously."""
    pass
  def compile(self, kernel) -> Compiled:
    """The Compiled (numpy program, its function) of a kernel, rendered once per kernel.key."""
    fn = self._fns.get(kernel.key)
    if fn is None:
      prog = compile_numpy(kernel)
      fn = self._fns[kernel.key] = Compiled(prog, prog.fn, errors=self.errors if kernel.uses_errors else None, checks=kernel.checks)
    return fn


_devices: dict = {}

def get_device(name: str):
  """The device object for a name ('cpu', 'interp', 'cuda'; None: default_device()), created on first use."""
  name = canonical_device(name)
  if name not in _devices:
    if name == "cpu": _devices[name] = CPUDevice()
    else: _devices[name] = TritonDevice(name)   # imports torch and triton only now
  return _devices[name]


Buffer.get_device = staticmethod(get_device)   # the devices make Buffers; a Buffer finds its device here


def canonical_device(device) -> str:
  """A device name: lower case, any ':index' dropped (None: default_device()); ValueError for an unknown device."""
  if device is None: return default_device()
  d = str(device).lower().split(":")[0]
  if d not in DEVICES: raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
  return d


def default_device() -> str:
  """LAZYGRAD_DEVICE when set, else 'cuda' when torch sees a GPU, else 'cpu'."""
  env = os.environ.get("LAZYGRAD_DEVICE")
  if env: return canonical_device(env)
  try:
    import torch
    if torch.cuda.is_available(): return "cuda"
  except ImportError: pass
  return "cpu"
