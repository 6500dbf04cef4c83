"""Buffer: flat storage on a device (numpy arrays on cpu, torch tensors on cuda/interp)."""
from __future__ import annotations
import numpy as np
from lazygrad.dtype import DType


class Buffer:
  """Flat storage of `size` elements of `dtype` on a device; `data` is the backing array."""
  __slots__ = ('device', 'size', 'dtype', 'data', '__weakref__')
  # set by lazygrad.runtime to its get_device: the devices create Buffers, so this module
  # cannot import the registry that imports them
  get_device = None

  def __init__(self, device: str, size: int, dtype: DType, data=None):
    self.device, self.size, self.dtype = device, size, dtype
    self.data = data if data is not None else Buffer.get_device(device).alloc(size, dtype)

  @property
  def nbytes(self) -> int:
    """size * dtype.itemsize."""
    return self.size * self.dtype.itemsize
  def numpy(self) -> np.ndarray:
    """The contents as a flat numpy array, through the device's to_numpy (on cpu the backing array itself)."""
    return Buffer.get_device(self.device).to_numpy(self)
  def __repr__(self): return f"<Buffer {self.device} {self.size} {self.dtype.name}>"
