"""What every renderer agrees on: the op table (each elementwise primitive's numpy function
and Triton function or operator) and the accumulation-dtype rule of sums."""
from __future__ import annotations

from typing import NamedTuple

from lazygrad.ops import Ops


class OpSpec(NamedTuple):
  """How the renderers compute one elementwise primitive: `numpy` a numpy function (or a lib.py helper) name,
  `triton` a tl function or an operator (None: the Triton renderer writes the op itself)."""
  numpy: str          # a numpy function (or a kernels/numpy/lib.py helper) taking the operands
  triton: str | None  # "tl.fn" is called on the operands, anything else is an infix (unary: prefix) operator;
                      # None: the Triton renderer writes the op itself


OPS: dict[Ops, OpSpec] = {
  # unary
  Ops.NEG: OpSpec("np.negative", "-"),
  Ops.EXP2: OpSpec("np.exp2", "tl.exp2"),
  Ops.LOG2: OpSpec("np.log2", "tl.log2"),
  Ops.EXP: OpSpec("np.exp", "tl.exp"),
  Ops.LOG: OpSpec("np.log", "tl.log"),
  Ops.SIN: OpSpec("np.sin", "tl.sin"),
  Ops.SQRT: OpSpec("np.sqrt", "tl.sqrt"),
  Ops.RECIP: OpSpec("np.reciprocal", None),   # Triton: 1.0 / x
  # numpy: lib.py evaluates these in float64 (<= 1 ulp after rounding); Triton: libdevice on cuda, a float64 formula
  # (erf: tl.erf) on the interpreter, which cannot call libdevice
  Ops.TANH: OpSpec("tanh", None),
  Ops.EXPM1: OpSpec("expm1", None),
  Ops.LOG1P: OpSpec("log1p", None),
  Ops.ERF: OpSpec("erf", None),
  Ops.COS: OpSpec("np.cos", "tl.cos"),   # (1 - 2 sin^2(x/2) cancels next to cos's zeros: cos(pi/2) had the wrong sign)
  # binary (IDIV and MOD truncate, as in C and Triton)
  Ops.ADD: OpSpec("np.add", "+"),
  Ops.MUL: OpSpec("np.multiply", "*"),
  Ops.MAX: OpSpec("np.maximum", "tl.maximum"),
  Ops.CMPLT: OpSpec("np.less", "<"),
  Ops.CMPEQ: OpSpec("np.equal", "=="),
  Ops.IDIV: OpSpec("idiv", "//"),
  Ops.MOD: OpSpec("np.fmod", "%"),
  Ops.AND: OpSpec("np.bitwise_and", "&"),
  Ops.OR: OpSpec("np.bitwise_or", "|"),
  Ops.XOR: OpSpec("np.bitwise_xor", "^"),
  Ops.FDIV: OpSpec("np.divide", None),   # Triton: tl.math.div_rn (correctly rounded; `/` is div.full.f32, 2 ulp)
}
UNARY = (Ops.NEG, Ops.EXP2, Ops.LOG2, Ops.EXP, Ops.LOG, Ops.SIN, Ops.SQRT, Ops.RECIP,
         Ops.TANH, Ops.EXPM1, Ops.LOG1P, Ops.ERF, Ops.COS)
BINARY = (Ops.ADD, Ops.MUL, Ops.MAX, Ops.CMPLT, Ops.CMPEQ, Ops.IDIV, Ops.MOD, Ops.AND, Ops.OR, Ops.XOR, Ops.FDIV)


def acc_dtype(name: str, contraction: bool = False) -> str:
  """The dtype (by name, as DType.name and numpy's dtype.name spell it) a sum of `name` values
  accumulates in: float16/bfloat16 in float32; bool in int32 (a count: any non-zero is True);
  other ints and floats in their own dtype, except that a contraction (numpy's matmul) takes
  ints and bools to int64. Rounded back to `name` at the end, so an int sum wraps the same
  either way."""
  if name in ("float16", "bfloat16"): return "float32"
  if contraction and (name == "bool" or name.startswith(("int", "uint"))): return "int64"
  return "int32" if name == "bool" else name
