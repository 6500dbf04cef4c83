"""dtypes and torch-style type promotion."""
from __future__ import annotations
from dataclasses import dataclass
import numpy as np


@dataclass(frozen=True, eq=True)
class DType:
  """A scalar type (torch.dtype's counterpart): name, itemsize in bytes, kind ('b' bool, 'i'/'u' int, 'f' float)
  and the numpy storage dtype's name. repr is `dtypes.<name>`."""
  name: str
  itemsize: int
  kind: str          # 'b' bool, 'i' signed int, 'u' unsigned int, 'f' float
  np_name: str       # numpy storage dtype name ('bfloat16' is stored via ml_dtypes when present)

  @property
  def is_float(self) -> bool:
    """True for floating-point dtypes (torch's dtype.is_floating_point)."""
    return self.kind == 'f'
  @property
  def is_int(self) -> bool:
    """True for signed and unsigned integer dtypes (bool is not an int)."""
    return self.kind in 'iu'
  @property
  def is_bool(self) -> bool:
    """True for bool."""
    return self.kind == 'b'
  @property
  def np(self):
    """The numpy dtype values are stored in (ml_dtypes.bfloat16 for bfloat16, imported on use)."""
    if self.name == 'bfloat16':
      import ml_dtypes
      return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(self.np_name)
  def __repr__(self): return f"dtypes.{self.name}"


class dtypes:
  """Every DType by name (as torch.float32 ...), torch's aliases (half, float, double, long, int), the defaults
  (default_float float32, default_int int64) and `all`, the tuple of distinct dtypes."""
  bool = DType('bool', 1, 'b', 'bool')
  uint8 = DType('uint8', 1, 'u', 'uint8')
  int8 = DType('int8', 1, 'i', 'int8')
  int16 = DType('int16', 2, 'i', 'int16')
  int32 = DType('int32', 4, 'i', 'int32')
  int64 = DType('int64', 8, 'i', 'int64')
  float16 = DType('float16', 2, 'f', 'float16')
  bfloat16 = DType('bfloat16', 2, 'f', 'bfloat16')
  float32 = DType('float32', 4, 'f', 'float32')
  float64 = DType('float64', 8, 'f', 'float64')
  default_float = float32
  default_int = int64
  half, float, double, long, int = float16, float32, float64, int64, int32
  all = (bool, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)

  @staticmethod
  def from_np(d) -> DType:
    """The DType of a numpy dtype (or anything np.dtype accepts); TypeError when it is not one of dtypes.all."""
    d = np.dtype(d)
    if d.name == 'bfloat16': return dtypes.bfloat16
    for dt in dtypes.all:
      if dt.np_name == d.name: return dt
    raise TypeError(f"unsupported numpy dtype {d}")

  @staticmethod
  def from_any(d) -> DType:
    """Accept a DType, a torch dtype, a numpy dtype or a name."""
    if isinstance(d, DType): return d
    if isinstance(d, str) and hasattr(dtypes, d) and isinstance(getattr(dtypes, d), DType): return getattr(dtypes, d)
    s = str(d)
    if s.startswith('torch.'):
      name = s[6:]
      if name in ('half',): name = 'float16'
      if hasattr(dtypes, name) and isinstance(getattr(dtypes, name), DType): return getattr(dtypes, name)
    try: return dtypes.from_np(d)
    except TypeError: pass
    raise TypeError(f"unknown dtype {d!r}")


# torch.promote_types for two dtypes
_ORDER_INT = [dtypes.uint8, dtypes.int8, dtypes.int16, dtypes.int32, dtypes.int64]

def promote_types(a: DType, b: DType) -> DType:
  """torch.promote_types: the smallest dtype both a and b convert to without losing their kind
  (bool < int < float; float16 with bfloat16 -> float32, uint8 with int8 -> int16)."""
  if a == b: return a
  if a.is_bool: return b
  if b.is_bool: return a
  if a.is_float and b.is_float:
    if {a, b} == {dtypes.float16, dtypes.bfloat16}: return dtypes.float32
    return a if a.itemsize > b.itemsize else b
  if a.is_float: return a
  if b.is_float: return b
  # both ints
  if {a, b} == {dtypes.uint8, dtypes.int8}: return dtypes.int16
  if a == dtypes.uint8: return b if b.itemsize > 1 else dtypes.int16
  if b == dtypes.uint8: return a if a.itemsize > 1 else dtypes.int16
  return a if a.itemsize > b.itemsize else b


def _category(dt: DType) -> int: return 0 if dt.is_bool else 1 if dt.is_int else 2

def _scalar_dtype(x) -> DType:
  if isinstance(x, bool): return dtypes.bool
  if isinstance(x, int): return dtypes.default_int
  return dtypes.default_float

_result_types: dict = {}   # (per operand: its group and dtype name, or a scalar's type) -> the result: a few dozen entries


def result_type(*operands) -> DType:
  """torch.result_type over Tensors (dimensioned or 0-d) and Python scalars.

  A higher category (bool < int < float) always wins; within the winning category,
  dimensioned tensors decide over 0-d tensors, which decide over Python scalars.
  (Memoized on the operands' groups and dtypes: every binary op of the front end asks.)"""
  sig = ()
  for x in operands:
    if isinstance(x, np.generic): x = x.item()
    if hasattr(x, 'dtype') and hasattr(x, 'shape'):
      if type(x.dtype) is not DType: return _result_type(operands)
      sig += (len(x.shape) > 0, x.dtype.name)
    else: sig += (type(x), None)
  out = _result_types.get(sig)
  if out is None: out = _result_types[sig] = _result_type(operands)
  return out


def _result_type(operands) -> DType:
  dims, zero_dims, scalars = [], [], []
  for x in operands:
    if isinstance(x, np.generic): x = x.item()   # numpy scalars count as Python scalars, as in torch
    if hasattr(x, 'dtype') and hasattr(x, 'shape'): (dims if len(x.shape) else zero_dims).append(x.dtype)
    else: scalars.append(_scalar_dtype(x))
  top = max(_category(d) for d in dims + zero_dims + scalars)
  for group in (dims, zero_dims):
    cands = [d for d in group if _category(d) == top]
    if cands:
      out = cands[0]
      for d in cands[1:]: out = promote_types(out, d)
      return out
  return {0: dtypes.bool, 1: dtypes.default_int, 2: dtypes.default_float}[top]


def least_upper_float(dt: DType) -> DType:
  """dt if it is floating point, else dtypes.default_float (float32)."""
  return dt if dt.is_float else dtypes.default_float
