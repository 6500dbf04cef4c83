"""Elementwise math: broadcasting and dtype promotion, arithmetic, comparisons, logic,
rounding, pow and the unary functions, composed from the primitive ALU ops."""
from __future__ import annotations
import math
from typing import TYPE_CHECKING, Optional
import numpy as np
from lazygrad.dtype import DType, dtypes, result_type, least_upper_float
from lazygrad.ops import Ops
from lazygrad.tensor_base import TensorBase, DTypeError, ArgumentError, broadcast_shape, reject_dtype

if TYPE_CHECKING: from lazygrad.tensor import Tensor


class MathMixin(TensorBase):
  """Tensor arithmetic with torch's broadcasting and type promotion, comparisons, rounding, pow and unary math."""
  __slots__ = ()

  # ---- broadcasting and promotion
  def _broadcasted(self, other, op: str, reverse: bool = False, dtype: Optional[DType] = None) -> tuple[Tensor, Tensor]:
    """(self, other) promoted to one dtype (torch's rules, or `dtype`) and broadcast to one shape; swapped if reverse."""
    if not isinstance(other, TensorBase):
      if not isinstance(other, (int, float, bool, np.number, np.bool_)):
        raise TypeError(f"{op}: unsupported operand type {type(other).__name__} (shape {self.shape}, {self.dtype})")
      other = other.item() if isinstance(other, (np.number, np.bool_)) else other
      dt = dtype or result_type(self, other)
      other = self._Tensor.full((), other, dtype=dt, device=self.device)
    else:
      if other.device != self.device: raise ValueError(f"{op}: tensors on different devices ({self.device}, {other.device})")
      dt = dtype or result_type(self, other)
    a, b = self.cast(dt), other.cast(dt)
    shape = broadcast_shape(op, a.shape, b.shape)
    a, b = a._broadcast_to(shape), b._broadcast_to(shape)
    return (b, a) if reverse else (a, b)

  def _binop(self, op: Ops, other, name: str, reverse=False, out_dtype=None) -> Tensor:
    a, b = self._broadcasted(other, name, reverse)
    return a._alu(op, b, dtype=out_dtype)

  # ---- arithmetic
  def __neg__(self) -> Tensor:
    if self.dtype.is_bool: raise DTypeError("neg: negation of a bool tensor is not supported, use logical_not()")
    return self._alu(Ops.NEG)
  def __add__(self, o): return self._binop(Ops.ADD, o, "add")
  def __radd__(self, o): return self._binop(Ops.ADD, o, "add", True)
  def __mul__(self, o): return self._binop(Ops.MUL, o, "mul")
  def __rmul__(self, o): return self._binop(Ops.MUL, o, "mul", True)
  def __sub__(self, o): return self.sub(o)
  def __rsub__(self, o): return self.sub(o, reverse=True)
  def sub(self, o, reverse=False, alpha=1):
    """torch.sub: self - alpha * o, broadcast and promoted (reverse=True computes o - alpha * self; not in torch)."""
    # torch rejects a bool tensor on either side, whatever the promoted dtype
    if self.dtype.is_bool or (isinstance(o, TensorBase) and o.dtype.is_bool): raise DTypeError("sub: subtraction of bool tensors is not supported")
    a, b = self._broadcasted(o, "sub", reverse)
    return a + (-b if alpha == 1 else -b * alpha)
  def add(self, o, alpha=1):
    """torch.add: self + alpha * o, broadcast and promoted."""
    return self + (o * alpha if alpha != 1 else o)
  def mul(self, o):
    """torch.mul: self * o, broadcast and promoted."""
    return self * o
  def __truediv__(self, o): return self.div(o)
  # torch's Tensor.__rtruediv__ is reciprocal() * o (not correctly rounded: 7 / x may differ from torch.div(7, x) in the last bit)
  def __rtruediv__(self, o): return self.reciprocal() * o if not isinstance(o, TensorBase) else self.div(o, reverse=True)
  def div(self, o, reverse=False, rounding_mode=None):
    """torch.div: true division (ints become float), or rounding_mode 'trunc'/'floor' keeping the dtype.
    True division is the FDIV primitive: correctly rounded, as torch."""
    if rounding_mode == "floor": return self.__floordiv__(o) if not reverse else self.__rfloordiv__(o)
    # true division casts both operands to float directly: an int operand keeps its value (uint8 / -1 is -x, as torch)
    if isinstance(o, (np.number, np.bool_)): o = o.item()
    a, b = self._broadcasted(o, "div", reverse, dtype=least_upper_float(result_type(self, o)) if rounding_mode is None else None)
    if rounding_mode == "trunc":
      return a._alu(Ops.IDIV, b) if a.dtype.is_int else (a.float() / b.float()).trunc().cast(a.dtype) if not a.dtype.is_float else (a / b).trunc()
    if rounding_mode is not None: raise ValueError(f"div: unknown rounding_mode {rounding_mode!r}")
    dt = least_upper_float(a.dtype)
    return a.cast(dt)._alu(Ops.FDIV, b.cast(dt))
  def __floordiv__(self, o): return self._floordiv(o, False)
  def __rfloordiv__(self, o): return self._floordiv(o, True)
  def _floordiv(self, o, reverse):
    a, b = self._broadcasted(o, "floor_divide", reverse)
    if a.dtype.is_float:
      # as torch (and Python): from fmod, so 1.0 // 0.1 is 9 (floor(a / b) would round the quotient up to 10 first)
      mod = a._alu(Ops.MOD, b)
      div = (a - mod) / b
      div = (mod.ne(0) & (b < 0).ne(mod < 0)).where(div - 1, div)
      fl = div.floor()
      return b.eq(0).where(a / b, (div - fl > 0.5).where(fl + 1, fl)).detach()
    q = a._alu(Ops.IDIV, b)
    # IDIV rounds toward zero; step down when the signs differ and it was inexact
    inexact = (q * b).ne(a) & ((a < 0).ne(b < 0))
    return q - inexact.cast(q.dtype)
  def __mod__(self, o): return self.remainder(o)
  def __rmod__(self, o): return self._broadcasted(o, "remainder", True)[0].remainder(self)
  def remainder(self, o):
    """torch.remainder (Python's %): the result has the divisor's sign."""
    a, b = self._broadcasted(o, "remainder")
    reject_dtype("remainder", a)
    r = a._alu(Ops.MOD, b)
    # MOD has the dividend's sign (C fmod); Python/torch % has the divisor's
    fix = r.ne(0) & ((r < 0).ne(b < 0))
    return fix.where(r + b, r)
  def fmod(self, o):
    """torch.fmod (C's fmod): the result has the dividend's sign."""
    a, b = self._broadcasted(o, "fmod")
    return a._alu(Ops.MOD, b)
  def __pow__(self, o): return self.pow(o)
  def __rpow__(self, o): return self._broadcasted(o, "pow", True)[0].pow(self)
  def maximum(self, o):
    """torch.maximum: elementwise max, broadcast and promoted; at ties the gradient is split equally (as torch)."""
    a, b = self._broadcasted(o, "maximum")
    return a._alu(Ops.MAX, b) if not a.dtype.is_bool else a | b
  def minimum(self, o):
    """torch.minimum: elementwise min, broadcast and promoted; at ties the gradient is split equally (as torch)."""
    a, b = self._broadcasted(o, "minimum")
    if a.dtype.is_bool: return a & b
    # ~x = -1 - x reverses the order of every int type without overflow (-x overflows at the smallest value)
    if a.dtype.is_int: return ~((~a).maximum(~b))
    return -((-a).maximum(-b))
  def where(self, x, y) -> Tensor:
    """Tensor.where(cond, x, y), tinygrad style: self is the condition (torch.where(cond, x, y));
    note torch's method x.where(cond, y) puts the condition second."""
    if not isinstance(x, TensorBase) and not isinstance(y, TensorBase):
      x = self._Tensor.full((), x, dtype=result_type(x, y), device=self.device)
    if isinstance(x, TensorBase) and not isinstance(y, TensorBase): y = self._Tensor.full((), y, dtype=result_type(x, y), device=self.device)
    if not isinstance(x, TensorBase): x = self._Tensor.full((), x, dtype=result_type(y, x), device=self.device)
    if not self.dtype.is_bool:
      raise ArgumentError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {self.dtype.name} (as torch)")
    dt = result_type(x, y)
    shape = broadcast_shape("where", self.shape, x.shape, y.shape)
    c = self.cast(dtypes.bool)._broadcast_to(shape)
    return c._new(Ops.WHERE, (c.node, x.cast(dt)._broadcast_to(shape).node, y.cast(dt)._broadcast_to(shape).node), None, shape, dt)
  def masked_fill(self, mask, value) -> Tensor:
    """torch.masked_fill: value where the bool mask (broadcast) is True, else self (not in place)."""
    if not isinstance(mask, TensorBase) or not mask.dtype.is_bool: raise DTypeError("masked_fill: mask must be a bool Tensor")
    broadcast_shape("masked_fill", self.shape, mask.shape)
    fill = self._Tensor.full((), value, dtype=self.dtype, device=self.device) if not isinstance(value, TensorBase) else value.cast(self.dtype)
    return mask.where(fill, self)._broadcast_to(broadcast_shape("masked_fill", self.shape, mask.shape))

  # ---- comparisons (bool results, no gradient)
  def __lt__(self, o): return self._binop(Ops.CMPLT, o, "lt", out_dtype=dtypes.bool)
  def __gt__(self, o): return self._binop(Ops.CMPLT, o, "gt", True, out_dtype=dtypes.bool)
  def __eq__(self, o): return self._binop(Ops.CMPEQ, o, "eq", out_dtype=dtypes.bool)
  def __ne__(self, o): return self.eq(o).logical_not()
  def __le__(self, o): return (self < o) | self.eq(o)
  def __ge__(self, o): return (self > o) | self.eq(o)
  def eq(self, o):
    """torch.eq (==): elementwise, a bool tensor."""
    return self.__eq__(o)
  def ne(self, o):
    """torch.ne (!=): elementwise, a bool tensor (nan != nan is True)."""
    return self.__ne__(o)
  def lt(self, o):
    """torch.lt (<): elementwise, a bool tensor."""
    return self < o
  def gt(self, o):
    """torch.gt (>): elementwise, a bool tensor."""
    return self > o
  def le(self, o):
    """torch.le (<=): elementwise, a bool tensor."""
    return self <= o
  def ge(self, o):
    """torch.ge (>=): elementwise, a bool tensor."""
    return self >= o

  # ---- logic / bitwise
  def _bitop(self, op, o, name, reverse=False):
    a, b = self._broadcasted(o, name, reverse)
    if a.dtype.is_float: raise DTypeError(f"{name}: not supported for floating point tensors ({a.dtype})")
    return a._alu(op, b)
  def __and__(self, o): return self._bitop(Ops.AND, o, "bitwise_and")
  def __or__(self, o): return self._bitop(Ops.OR, o, "bitwise_or")
  def __xor__(self, o): return self._bitop(Ops.XOR, o, "bitwise_xor")
  __rand__, __ror__, __rxor__ = __and__, __or__, __xor__
  def __invert__(self):
    if self.dtype.is_float: raise DTypeError(f"bitwise_not: not supported for floating point tensors ({self.dtype})")
    return self.logical_not() if self.dtype.is_bool else self ^ -1
  def logical_not(self):
    """torch.logical_not: a bool tensor, True where self is zero."""
    return self.cast(dtypes.bool)._alu(Ops.XOR, self._Tensor.full(self.shape, True, device=self.device), dtype=dtypes.bool)
  def logical_and(self, o):
    """torch.logical_and: both nonzero, a bool tensor."""
    return self.cast(dtypes.bool) & (o.cast(dtypes.bool) if isinstance(o, TensorBase) else bool(o))
  def logical_or(self, o):
    """torch.logical_or: either nonzero, a bool tensor."""
    return self.cast(dtypes.bool) | (o.cast(dtypes.bool) if isinstance(o, TensorBase) else bool(o))
  def logical_xor(self, o):
    """torch.logical_xor: exactly one nonzero, a bool tensor."""
    return self.cast(dtypes.bool) ^ (o.cast(dtypes.bool) if isinstance(o, TensorBase) else bool(o))

  # ---- unary math (compositions); ints and bools compute in float32, as torch
  def _float(self): return self.cast(least_upper_float(self.dtype))
  def _opmath(self, fn) -> Tensor:
    """fn(self) with fp16/bf16 computed in float32 and rounded once to the dtype (torch's opmath: a composition of
    several ops would round after each); ints and bools as float32."""
    x = self._float()
    if x.dtype.itemsize >= 4: return fn(x)
    return fn(x.float()).cast(x.dtype)
  def exp(self):
    """torch.exp."""
    return self._float()._alu(Ops.EXP)
  def exp2(self):
    """torch.exp2: 2 ** self."""
    return self._float()._alu(Ops.EXP2)
  def log(self):
    """torch.log (natural log; -inf at 0, nan below)."""
    return self._float()._alu(Ops.LOG)
  def log2(self):
    """torch.log2."""
    return self._float()._alu(Ops.LOG2)
  def log10(self):
    """torch.log10, as log2(x) * log10(2)."""
    return self._opmath(lambda x: x.log2() * math.log10(2))
  def log1p(self):
    """torch.log1p: log(1 + x), accurate near 0 (the LOG1P primitive)."""
    return self._float()._alu(Ops.LOG1P)
  def expm1(self):
    """torch.expm1: exp(x) - 1, accurate near 0 (the EXPM1 primitive)."""
    return self._float()._alu(Ops.EXPM1)
  def sqrt(self):
    """torch.sqrt."""
    return self._float()._alu(Ops.SQRT)
  def rsqrt(self):
    """torch.rsqrt: 1 / sqrt(x)."""
    return self._opmath(lambda x: x.sqrt().reciprocal())
  def reciprocal(self):
    """torch.reciprocal: 1 / x (float)."""
    return self._float()._alu(Ops.RECIP)
  def sin(self):
    """torch.sin."""
    return self._float()._alu(Ops.SIN)
  def cos(self):
    """torch.cos (the COS primitive: 1 - 2 sin(x/2)^2 cancels next to cos's zeros, sin(pi/2 - x) rounds pi/2 - x)."""
    return self._float()._alu(Ops.COS)
  def tan(self):
    """torch.tan, as sin / cos."""
    return self._opmath(lambda x: x.sin() / x.cos())
  def square(self):
    """torch.square: x * x (keeps the dtype; bools give int64, as torch)."""
    x = self.cast(dtypes.int64) if self.dtype.is_bool else self
    return x * x
  def abs(self):
    """torch.abs; the gradient at 0 is 0, as torch; the smallest int stays itself, as torch."""
    reject_dtype("abs", self)
    if self.dtype.is_bool or self.dtype.kind == 'u': return self
    if self.dtype.is_int: return (self < 0).where(-self, self)   # the smallest int stays itself, as torch
    return self.relu() + (-self).relu()   # gradient 0 at 0, as torch
  def sign(self):
    """torch.sign: -1, 0 or 1 in the input's dtype (gradient 0)."""
    if self.dtype.is_bool: return self
    return self._zero_grad((self > 0).cast(self.dtype) - (self < 0).cast(self.dtype))
  def clamp(self, min=None, max=None):
    """torch.clamp (alias clip): min and max may be numbers or tensors; a float bound on an int tensor gives float.
    The gradient passes where min <= x <= max (bounds included), as torch; a nan in x or a bound gives nan and no gradient to x."""
    if min is None and max is None: raise ValueError("clamp: at least one of min and max must be given")
    x = self
    for bound, low in ((min, True), (max, False)):
      if bound is None: continue
      if not isinstance(bound, TensorBase):
        # a nan bound gives nan everywhere, as torch (x < nan is False, so the where alone would keep x)
        # (in x's dtype promoted with the bound, fp16 stays fp16; x gets no gradient, as torch, even where it is nan)
        if isinstance(bound, float) and math.isnan(bound):
          nan = self._Tensor.full((), bound, dtype=result_type(x, bound), device=self.device)
          x = (x == x).where(nan, nan)
        else: x = ((x < bound) if low else (x > bound)).where(bound, x)
        continue
      b = bound.cast(x.dtype)
      x = ((x < b) if low else (x > b)).where(b, x)
      if b.dtype.is_float: x = b.isnan().where(b.detach(), x)   # nan propagates, with no gradient (torch gives none)
    # a nan x stays nan with a zero gradient, as torch (its gradient passes only where min <= x <= max)
    if self.dtype.is_float: x = (self == self).where(x, self.detach())
    return x.cast(self.dtype) if not (isinstance(min, float) or isinstance(max, float)) else x
  clip = clamp
  def lerp(self, end, weight):
    """torch.lerp: self + weight * (end - self)."""
    return self + (end - self) * weight
  def isnan(self):
    """torch.isnan: a bool tensor (x != x)."""
    return self.ne(self)
  def isinf(self):
    """torch.isinf: a bool tensor, True at +inf and -inf."""
    return (self == float("inf")) | (self == float("-inf"))
  def isfinite(self):
    """torch.isfinite: a bool tensor, False at inf and nan."""
    return (self.isinf() | self.isnan()).logical_not()
  def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
    """torch.nan_to_num: nan -> nan, +-inf -> posinf/neginf (default: the dtype's largest finite values).
    Integer and bool tensors hold no nan or inf: returned unchanged, in their dtype (as torch)."""
    if not self.dtype.is_float: return self
    big = np.finfo(self.dtype.np).max if self.dtype.is_float and self.dtype.name != 'bfloat16' else 3.3895e38
    x = self.isnan().where(nan, self)
    x = (x == float("inf")).where(big if posinf is None else posinf, x)
    return (x == float("-inf")).where(-big if neginf is None else neginf, x)

  # ---- rounding: the gradient is 0, as torch (0 almost everywhere): the result requires grad and backward gives zeros
  def _zero_grad(self, value):
    """value (a function of self with self's shape) with a zero gradient to self, as torch's rounding ops: an always-true
    WHERE picks value detached, and WHERE's rule sends self where(True, 0, g), zeros even where g or self is inf/nan
    (0 * self would make nan of an inf self) and differentiable again."""
    if not self.requires_grad: return value.detach()
    always = self._Tensor.full((), True, dtype=dtypes.bool, device=self.device)
    return always.where(value.detach(), self)
  def trunc(self):
    """torch.trunc: round toward zero; the gradient is 0 (as torch)."""
    reject_dtype("trunc", self)
    if not self.dtype.is_float: return self
    # every float beyond 2**mantissa is already an integer
    exact = {2: 2.0 ** 10, 4: 2.0 ** 23, 8: 2.0 ** 52}[self.dtype.itemsize] if self.dtype.name != 'bfloat16' else 2.0 ** 7
    small = self.abs() < exact
    return self._zero_grad(small.where(self.cast(dtypes.int64).cast(self.dtype), self))
  def floor(self):
    """torch.floor; the gradient is 0 (as torch)."""
    reject_dtype("floor", self)
    t = self.trunc()
    return t - (t > self).cast(self.dtype) if self.dtype.is_float else self
  def ceil(self):
    """torch.ceil; the gradient is 0 (as torch)."""
    reject_dtype("ceil", self)
    t = self.trunc()
    return t + (t < self).cast(self.dtype) if self.dtype.is_float else self
  def round(self, decimals: int = 0):
    """torch.round: half to even, optionally to `decimals` places; the gradient is 0 (as torch)."""
    reject_dtype("round", self)
    if not self.dtype.is_float: return self
    if decimals: return (self * 10 ** decimals).round() / 10 ** decimals
    f = (self + 0.5).floor()
    tie = (f - self).eq(0.5)
    odd = (f - (f / 2).floor() * 2).eq(1)
    return self._zero_grad((tie & odd).where(f - 1, f))
  def frac(self):
    """torch.frac: x - trunc(x) (the gradient is 1, as torch)."""
    return self - self.trunc()

  def pow(self, exponent) -> Tensor:
    """torch.pow (**): int ** int is repeated squaring, wrapping as torch's ints do; a float base to a Python int exponent
    is repeated multiplies (exact where the result is representable, 10. ** 3 is 1000); others exp2(e * log2|x|) with
    the sign fixed for integer exponents (rounded to the integer an integer base to an integer exponent gives, while it
    is exact in the dtype), so a float result may differ from torch in the last bits."""
    if not isinstance(exponent, TensorBase):
      if isinstance(exponent, (int, np.integer)) or (isinstance(exponent, float) and exponent.is_integer() and abs(exponent) <= 8):
        n = int(exponent)
        if n < 0 and not self.dtype.is_float:
          if isinstance(exponent, float): return self._float().pow(exponent)   # int ** -1.0 is a float, as torch
          raise ValueError("pow: integers to negative integer powers are not allowed")
        if not self.dtype.is_float and not isinstance(exponent, float): return self.cast(result_type(self, exponent))._pow_squaring(n)
        if abs(n) <= 8:
          base, out = (self if n >= 0 else self.reciprocal()), None
          for _ in range(abs(n)): out = base if out is None else out * base
          # x ** 0 is 1 everywhere (nan too) but stays in the graph: torch gives it a (zero) gradient
          out = out if out is not None else self._const_like(True, dtypes.bool).where(1, self)
          return out.cast(result_type(self, exponent)) if not isinstance(exponent, float) else out._float()
        if self.dtype.is_float:   # few roundings (3. ** 15 is exact); a negative power is one division of the positive one
          out = self._pow_squaring(abs(n))
          return out if n > 0 else 1 / out
      if exponent == 0.5: return self.sqrt()
    base, exp_ = self._broadcasted(exponent, "pow")
    if not base.dtype.is_float:
      if base.dtype.is_bool: raise DTypeError("pow: not implemented for bool tensors")
      return base._pow_int_tensor(exp_)
    # a negative base needs an integer exponent: odd flips the sign; a non-integer one is nan, in value and gradients (as
    # torch), by taking log2 of the negative base itself; -inf to a non-integer power is inf's (C pow)
    neg = (base < 0) | (base.eq(0) & (1 / base < 0))   # -0.0 too: (-0.0) ** -1 is -inf
    is_int = exp_.eq(exp_.trunc())
    # x ** 0, 1 ** nan and (+-1) ** +-inf are 1 (C pow): the main path computes exp2(0) there, so no nan reaches a gradient
    one = exp_.eq(0) | (base.eq(1) & exp_.isnan()) | (base.abs().eq(1) & exp_.isinf())
    lg = (neg & is_int.logical_not() & base.isfinite()).where(base, base.abs()).log2()
    # d/dy is 0 at x = 0 for y >= 0 (torch; y * log2(0) = -inf would make it 0 * inf): y reaches mag only elsewhere
    e = one.where(0, exp_)
    mag = ((base.eq(0) & (exp_ >= 0)).where(e.detach(), e) * one.where(0, lg)).exp2()
    odd = is_int & (exp_ - (exp_ / 2).floor() * 2).eq(1)
    out = (neg & odd).where(-mag, mag)
    # an integer to a non-negative integer power is an integer: rounded to it while that is exact (10 ** 3. is 1000, not
    # 999.99994); the gradient is exp2's
    exact = 2.0 ** {2: 11, 4: 24, 8: 53}[base.dtype.itemsize] if base.dtype.name != 'bfloat16' else 2.0 ** 8
    whole = is_int & base.eq(base.trunc()) & (exp_ >= 0) & (out.abs() < exact) & out.ne(0)   # (-0.0 + 0 would lose its sign)
    out = whole.where(out + (out.round() - out).detach(), out)
    # those ones: exp2(y * log2|x|) with y = 0, which is 1 with d/dy = ln|x| at y = 0 (torch: ln x; 0 where log2|x| is not finite)
    one_ = (exp_.eq(0).where(exp_, 0) * lg.isfinite().where(lg, 0)).exp2()
    return one.where(one_, out).cast(result_type(self, exponent))

  def _pow_squaring(self, n: int) -> Tensor:
    """self ** n for a Python int n >= 0 by repeated squaring, in self's dtype (ints wrap, as torch's)."""
    out, sq = None, self
    while n:
      if n & 1: out = sq if out is None else out * sq
      n >>= 1
      if n: sq = sq * sq
    return out if out is not None else self._const_like(True, dtypes.bool).where(1, self).cast(self.dtype)

  def _pow_int_tensor(self, e: Tensor) -> Tensor:
    """self ** e for int tensors of one dtype and shape: repeated squaring over e's bits (a where per bit), wrapping as
    torch; a negative exponent gives 0, except 1 for base 1 and +-1 for base -1 (as torch)."""
    pos = (e < 0).where(0, e)
    out, sq = self._const_like(1), self
    for i in range(8 * self.dtype.itemsize - (1 if self.dtype.kind != 'u' else 0)):
      bit = (pos._binop(Ops.IDIV, 2 ** i, "pow") & 1).ne(0)
      out = bit.where(out * sq, out)
      sq = sq * sq
    if self.dtype.kind == 'u': return out
    neg = self.eq(1).where(1, self.eq(-1).where((e & 1).ne(0).where(-1, 1), 0)).cast(self.dtype)
    return (e < 0).where(neg, out)
