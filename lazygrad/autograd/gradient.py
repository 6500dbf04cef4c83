"""Vector-Jacobian products, one per primitive, written with Tensor ops so that the
backward pass is just more lazy graph (and can itself be differentiated).

Each rule gets (out, grad, *srcs) as Tensors and returns one gradient per src
(None where no gradient flows)."""
from __future__ import annotations
import math
from lazygrad.ops import Ops


def _max_rule(out, g, a, b):
  # ties share the gradient equally, as torch.maximum does
  eq = (a == b).cast(g.dtype) * 0.5
  return g * ((a > b).cast(g.dtype) + eq), g * ((b > a).cast(g.dtype) + eq)


def _reduce_max_rule(out, g, x):
  axes = out.node.arg[1]
  hit = (x == out.expand(x.shape)).cast(g.dtype)
  count = hit._reduce(Ops.ADD, axes)
  return ((hit / count.expand(x.shape)) * g.expand(x.shape),)


def _expand_rule(out, g, x):
  axes = tuple(i for i, (a, b) in enumerate(zip(x.shape, out.shape)) if a != b)
  return (g._reduce(Ops.ADD, axes) if axes else g,)


def _float_only(fn):
  return lambda out, g, x: (fn(out, g, x),) if x.dtype.is_float else (None,)


RULES = {
  Ops.NEG: lambda out, g, x: (-g,),
  Ops.EXP2: lambda out, g, x: (g * out * math.log(2),),
  Ops.LOG2: lambda out, g, x: (g / (x * math.log(2)),),
  Ops.EXP: lambda out, g, x: (g * out,),
  Ops.LOG: lambda out, g, x: (g / x,),
  Ops.SIN: lambda out, g, x: (g * x.cos(),),
  Ops.SQRT: lambda out, g, x: (g / (out * 2),),
  Ops.RECIP: lambda out, g, x: (-g * out * out,),
  Ops.CAST: _float_only(lambda out, g, x: g.cast(x.dtype)),
  Ops.BITCAST: lambda out, g, x: (None,),
  Ops.ADD: lambda out, g, a, b: (g, g),
  Ops.MUL: lambda out, g, a, b: (g * b, g * a),
  Ops.MAX: _max_rule,
  Ops.MOD: lambda out, g, a, b: (g, -g * (a / b).trunc()),   # torch.fmod's gradient
  Ops.WHERE: lambda out, g, c, a, b: (None, c.where(g, 0), c.where(0, g)),
  Ops.REDUCE: lambda out, g, x: ((g.expand(x.shape),) if out.node.arg[0] is Ops.ADD else _reduce_max_rule(out, g, x)),
  Ops.RESHAPE: lambda out, g, x: (g.reshape(x.shape),),
  Ops.PERMUTE: lambda out, g, x: (g.permute(tuple(sorted(range(x.ndim), key=lambda i: out.node.arg[i]))),),
  Ops.EXPAND: _expand_rule,
  Ops.PAD: lambda out, g, x: (g._movement(Ops.SHRINK, tuple((b, b + s) for (b, _), s in zip(out.node.arg, x.shape))),),
  Ops.SHRINK: lambda out, g, x: (g._movement(Ops.PAD, tuple((lo, s - hi) for (lo, hi), s in zip(out.node.arg, x.shape))),),
  Ops.FLIP: lambda out, g, x: (g._movement(Ops.FLIP, out.node.arg),),
  Ops.CONTIGUOUS: lambda out, g, x: (g,),
}
NO_GRADIENT = {Ops.CMPLT, Ops.CMPEQ, Ops.IDIV, Ops.AND, Ops.OR, Ops.XOR}
