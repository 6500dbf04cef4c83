"""What a device's compile(kernel) returns: the renderer's program and a function running it."""
from __future__ import annotations

from typing import Any, Callable


class Compiled:
  """Call it with (buffers, var_values) to run the kernel. `program` is the renderer's program
  (TritonProgram or NumpyProgram: name, source, ...); `config` is the launch config in use
  (a Triton program's configs[0] until a cuda device has timed them; None for numpy)."""
  __slots__ = ("program", "fn", "config")

  def __init__(self, program: Any, fn: Callable, config: Any = None):
    self.program, self.fn, self.config = program, fn, config

  def __call__(self, bufs, var_values): return self.fn(bufs, var_values)

  def __repr__(self): return f"<Compiled {self.program.name}>"
