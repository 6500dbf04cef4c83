"""Scratch arrays for numpy kernels' temporaries, reused across kernels.

A fresh multi-MiB numpy array is mmap-ed by malloc and page-faults on first touch: ~1 ms per 4 MiB,
as much as a ufunc pass over it, and a kernel of a transformer step makes several. The renderer
allocates a big temporary whose shape it knows with scratch() and gives every temporary back with
release() after the kernel's store; the next kernel gets the same (already mapped) memory."""
from __future__ import annotations

import math
import threading
import weakref

import numpy as np

POOL_MIN_BYTES = 1 << 18   # smaller arrays come from malloc's heap, whose pages are already mapped
POOL_MAX_BYTES = 1 << 28   # the most a thread's pool keeps between kernels


class _Pool(threading.local):
  """Big temporaries of finished kernels, kept for the next ones (per thread): a fresh multi-MiB numpy array is
  mmap-ed by malloc and page-faults on first touch (~1 ms per 4 MiB, as much as a ufunc pass over it)."""
  def __init__(self):
    self.free: dict[int, list] = {}   # nbytes -> idle uint8 arrays
    self.size = 0                      # bytes in `free`
    self.lent = weakref.WeakValueDictionary()   # id -> array lent out by scratch() and not yet released


_POOL = _Pool()


def scratch(shape, dtype) -> np.ndarray:
  """An uninitialised C-contiguous array of shape and dtype for a kernel temporary: a big one comes from the pool
  (pages already touched); release() gives it back when the kernel is done with it."""
  dtype = np.dtype(dtype)
  nbytes = math.prod(shape) * dtype.itemsize
  if nbytes < POOL_MIN_BYTES: return np.empty(shape, dtype)
  idle = _POOL.free.get(nbytes)
  if idle:
    raw = idle.pop()
    _POOL.size -= nbytes
  else: raw = np.empty(nbytes, np.uint8)
  _POOL.lent[id(raw)] = raw
  return raw.view(dtype).reshape(shape)


def release(*arrays) -> None:
  """The kernel's temporaries are dead: those scratch() lent go back to the pool (others are left to the GC).
  An array given twice (an op wrote in place into an earlier temporary) goes back once."""
  for a in arrays:
    root = a if a.base is None else a.base
    if _POOL.lent.get(id(root)) is not root: continue
    del _POOL.lent[id(root)]
    if _POOL.size + root.nbytes <= POOL_MAX_BYTES:
      _POOL.free.setdefault(root.nbytes, []).append(root)
      _POOL.size += root.nbytes
