"""Device registry: where buffers live and how kernels run. A device's compile(kernel) asks
its renderer (kernels/numpy, kernels/triton) for a program and returns a Compiled: the
program and a function running it. executor.py runs schedules; debug.py is DEBUG/GRAPH/VERIFY."""
from __future__ import annotations
import os
import numpy as np
from lazygrad.kernels.numpy.render import compile_numpy
from lazygrad.runtime.buffer import Buffer
from lazygrad.runtime.compiled import Compiled
from lazygrad.runtime.triton_device import TritonDevice

DEVICES = ("cpu", "interp", "cuda")


class CPUDevice:
  """numpy arrays; kernels are rendered as numpy source."""
  name = "cpu"
  def __init__(self): self._fns: dict = {}   # kernel structure -> Compiled: a repeated kernel is rendered once
  def alloc(self, size, dtype): return np.empty(size, dtype=dtype.np)
  def from_numpy(self, arr: np.ndarray, dtype) -> Buffer:
    return Buffer(self.name, arr.size, dtype, np.ascontiguousarray(arr, dtype=dtype.np).reshape(-1))
  def to_numpy(self, buf: Buffer) -> np.ndarray: return buf.data
  def synchronize(self): pass
  def compile(self, kernel) -> Compiled:
    if kernel.key not in self._fns:
      prog = compile_numpy(kernel)
      self._fns[kernel.key] = Compiled(prog, prog.fn)
    return self._fns[kernel.key]


_devices: dict = {}

def get_device(name: str):
  name = canonical_device(name)
  if name not in _devices:
    if name == "cpu": _devices[name] = CPUDevice()
    else: _devices[name] = TritonDevice(name)   # imports torch and triton only now
  return _devices[name]


Buffer.get_device = staticmethod(get_device)   # the devices make Buffers; a Buffer finds its device here


def canonical_device(device) -> str:
  if device is None: return default_device()
  d = str(device).lower().split(":")[0]
  if d not in DEVICES: raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
  return d


def default_device() -> str:
  env = os.environ.get("LAZYGRAD_DEVICE")
  if env: return canonical_device(env)
  try:
    import torch
    if torch.cuda.is_available(): return "cuda"
  except ImportError: pass
  return "cpu"
