"""What a device's compile(kernel) returns (the renderer's program and a function running it),
and the compile cache every device keeps of them."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from lazygrad.helpers import getenv


class Compiled:
  """Call it with (buffers, var_values) to run the kernel. `program` is the renderer's program
  (TritonProgram or NumpyProgram: name, source, ...); `config` is the launch config in use
  (a Triton program's configs[0] until a cuda device has timed them; None for numpy).
  A kernel with bounds checks or a guard (Kernel.uses_errors) also gets its device's error buffer
  (`errors`, runtime/errors.py) after the inputs and, with checks, `err_base` (its first site's slot
  in the schedule) as its last var."""
  __slots__ = ("program", "fn", "config", "errors", "checks")

  def __init__(self, program: Any, fn: Callable, config: Any = None, errors: Any = None, checks: int = 0):
    self.program, self.fn, self.config, self.errors, self.checks = program, fn, config, errors, checks

  def __call__(self, bufs, var_values, err_base: int = 0, errors: Any = None):
    errors = errors or self.errors
    if self.errors is not None:
      bufs = [*bufs, errors.data(err_base + self.checks)]
      if self.checks: var_values = (*var_values, err_base)
    return self.fn(bufs, var_values)

  def __repr__(self): return f"<Compiled {self.program.name}>"


class KernelCache(OrderedDict):
  """A device's compile cache (kernel structure -> Compiled), least recently used first: with more than `capacity`
  entries the oldest is dropped (and compiled again if it comes back). capacity: LAZYGRAD_KERNEL_CACHE (default 4096;
  0 or less: unbounded). A plain dict's interface: get() and [] count as a use."""
  def __init__(self, capacity: int | None = None):
    super().__init__()
    self.capacity = getenv("LAZYGRAD_KERNEL_CACHE", 4096) if capacity is None else capacity
  def __getitem__(self, key):
    value = super().__getitem__(key)
    self.move_to_end(key)
    return value
  def get(self, key, default=None):
    """The cached value (now the most recently used) or default."""
    return self[key] if key in self else default
  def __setitem__(self, key, value):
    super().__setitem__(key, value)
    self.move_to_end(key)
    while 0 < self.capacity < len(self): self.popitem(last=False)
