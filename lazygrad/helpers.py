"""Counters, environment flags and small utilities shared by every layer."""
from __future__ import annotations
import os
import math


def getenv(name: str, default=0):
  """The environment variable `name` converted to type(default) (int for the default 0), or default when unset;
  with a str default the raw string."""
  v = os.environ.get(name)
  if v is None: return default
  return type(default)(v) if not isinstance(default, str) else v


def DEBUG() -> int:
  """The DEBUG environment variable as an int (0 when unset), read on every call."""
  return getenv("DEBUG", 0)


class GlobalCounters:
  """What realizes actually ran, since the last reset()."""
  kernel_count: int = 0
  global_ops: int = 0
  global_mem: int = 0
  time_sum_s: float = 0.0

  @staticmethod
  def reset():
    """Zero every counter."""
    GlobalCounters.kernel_count = GlobalCounters.global_ops = GlobalCounters.global_mem = 0
    GlobalCounters.time_sum_s = 0.0


def prod(xs) -> int:
  """math.prod(xs): the product of a sequence of ints (1 when empty)."""
  return math.prod(xs)


def argfix(*x):
  """Accept f(1, 2, 3) and f((1, 2, 3)) alike."""
  if len(x) == 1 and isinstance(x[0], (tuple, list)): return tuple(x[0])
  return tuple(x)
