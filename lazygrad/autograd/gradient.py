"""Vector-Jacobian products, one per primitive, written with Tensor ops so that the
backward pass is just more lazy graph (and can itself be differentiated).

Each rule gets (out, grad, *srcs) as Tensors and returns one gradient per src
(None where no gradient flows)."""
from __future__ import annotations
import math
from lazygrad.ops import Ops
from lazygrad.tensor_attention import attention_gradient


# Masks are applied with where, never by multiplying with a 0/1 mask: the branch not taken
# gets an exact 0 even where the incoming gradient is inf or nan (0 * inf would be nan).

def _max_rule(out, g, a, b):
  # as torch.maximum: ties share the gradient equally; where a or b is nan both get all of it
  shared = (a == b).where(g * 0.5, g)
  return (a < b).where(0, shared), (b < a).where(0, shared)


def _reduce_max_rule(out, g, x):
  # as torch.max(): the gradient is split evenly over the elements equal to the max (the nan ones when it is nan)
  axes = out.node.arg[1]
  m = out.expand(x.shape)
  hit = (x == m) | ((x != x) & (m != m))
  count = hit.cast(g.dtype)._reduce(Ops.ADD, axes)
  return (hit.where((g / count).expand(x.shape), 0),)


def _log_rule(scale):
  # a zero gradient stays zero at x = 0 (torch: 0 / 0 = nan), so a masked log (BCE's clamp at -100,
  # where(x > 0, log(x), 0), pow at base 0) keeps finite gradients
  return lambda out, g, x: (g.eq(0).where(0, g / (x * scale if scale != 1 else x)),)


def _expand_rule(out, g, x):
  axes = tuple(i for i, (a, b) in enumerate(zip(x.shape, out.shape)) if a != b)
  return (g._reduce(Ops.ADD, axes) if axes else g,)


def _mul_rule(out, g, a, b):
  # x * x (square, var, mse): one g * x node for both sources, so the backward graph holds the product once
  if a.node is b.node:
    ga = g * a
    return ga, ga
  return g * b, g * a


def _gather_rule(out, g, src, idx):
  # the values read go back where they were read from: a scatter-add (repeated indices accumulate)
  return (g._scatter_add_prim(out.node.arg, idx, src.shape) if src.dtype.is_float else None), None


def _scatter_add_rule(out, g, idx, vals):
  # each value reaches the output element it was added to: a gather of the incoming gradient
  return None, g._gather_prim(out.node.arg[0], idx)


def _float_only(fn):
  return lambda out, g, x: (fn(out, g, x),) if x.dtype.is_float else (None,)


RULES = {
  Ops.NEG: lambda out, g, x: (-g,),
  Ops.EXP2: lambda out, g, x: (g * out * math.log(2),),
  Ops.LOG2: _log_rule(math.log(2)),
  Ops.EXP: lambda out, g, x: (g * out,),
  Ops.LOG: _log_rule(1),
  Ops.SIN: lambda out, g, x: (g * x.cos(),),
  Ops.COS: lambda out, g, x: (-g * x.sin(),),
  Ops.SQRT: lambda out, g, x: (g / (out * 2),),
  Ops.RECIP: lambda out, g, x: (-g * out * out,),
  Ops.TANH: lambda out, g, x: (g * (1 - out * out),),   # torch's tanh_backward: 0, not nan, where tanh is +-1
  Ops.EXPM1: lambda out, g, x: (g * (out + 1),),
  Ops.LOG1P: lambda out, g, x: (g / (x + 1),),
  Ops.ERF: lambda out, g, x: (g * (2 / math.sqrt(math.pi)) * (-x * x).exp(),),
  Ops.CAST: _float_only(lambda out, g, x: g.cast(x.dtype)),
  Ops.BITCAST: lambda out, g, x: (None,),
  Ops.ADD: lambda out, g, a, b: (g, g),
  Ops.MUL: _mul_rule,
  Ops.MAX: _max_rule,
  Ops.MOD: lambda out, g, a, b: (g, -g * (a / b).trunc()),   # torch.fmod's gradient
  Ops.FDIV: lambda out, g, a, b: (g / b, -g * (out / b)),   # torch.div's: (a / b) / b, not a / (b * b), which under/overflows
  Ops.WHERE: lambda out, g, c, a, b: (None, c.where(g, 0), c.where(0, g)),
  Ops.REDUCE: lambda out, g, x: ((g.expand(x.shape),) if out.node.arg[0] is Ops.ADD else _reduce_max_rule(out, g, x)),
  Ops.RESHAPE: lambda out, g, x: (g.reshape(x.shape),),
  Ops.PERMUTE: lambda out, g, x: (g.permute(tuple(sorted(range(x.ndim), key=lambda i: out.node.arg[i]))),),
  Ops.EXPAND: _expand_rule,
  Ops.PAD: lambda out, g, x: (g._movement(Ops.SHRINK, tuple((b, b + s) for (b, _), s in zip(out.node.arg, x.shape))),),
  Ops.SHRINK: lambda out, g, x: (g._movement(Ops.PAD, tuple((lo, s - hi) for (lo, hi), s in zip(out.node.arg, x.shape))),),
  Ops.FLIP: lambda out, g, x: (g._movement(Ops.FLIP, out.node.arg),),
  Ops.CONTIGUOUS: lambda out, g, x: (g,),
  Ops.GATHER: _gather_rule,
  Ops.SCATTER_ADD: _scatter_add_rule,
  Ops.ATTENTION: attention_gradient,   # flash-attention backward: two template nodes (tensor_attention.py)
}
NO_GRADIENT = {Ops.CMPLT, Ops.CMPEQ, Ops.IDIV, Ops.AND, Ops.OR, Ops.XOR}
NO_GRADIENT.add(Ops.CHECK)   # a bounds check passes integer indices through
