"""Random lazy programs, built the same way in torch and lazygrad.

A Program is a list of nodes: leaves (numpy arrays, maybe requiring grad) and ops on earlier nodes. The
generator (`programs()`, a hypothesis strategy) runs torch while it draws, so every op is drawn for the
shapes and dtypes torch actually has at that point; an op torch rejects ends the program, which then
must raise in lazygrad too. `run(program, lib)` replays it on either library: the op table below is
written once, against the torch method names both libraries share, with `Lib` covering the few
functions whose spelling differs."""
from __future__ import annotations
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from lazygrad import Tensor

DTYPES = ("float32", "float16", "int32", "bool")
SIZES = (0, 1, 1, 2, 3, 3, 4)   # size-1 dims are broadcast corner cases, so drawn twice as often


# ---- the two libraries

class Lib:
  """The spellings that differ between torch and lazygrad; everything else is a shared method name."""
  def __init__(self, name: str): self.name = name
  def leaf(self, a: np.ndarray, requires_grad: bool):
    if self.name == "torch": return torch.tensor(a, requires_grad=requires_grad)
    return Tensor(a, requires_grad=requires_grad)
  def where(self, c, a, b): return torch.where(c, a, b) if self.name == "torch" else Tensor.where(c, a, b)
  def cat(self, ts, dim): return torch.cat(ts, dim) if self.name == "torch" else Tensor.cat(ts, dim)
  def stack(self, ts, dim): return torch.stack(ts, dim) if self.name == "torch" else Tensor.stack(ts, dim)
  def pad(self, x, pad, value): return F.pad(x, pad, value=value) if self.name == "torch" else x.pad(pad, value=value)
  def cross_entropy(self, x, t, reduction):
    return F.cross_entropy(x, t, reduction=reduction) if self.name == "torch" else x.cross_entropy(t, reduction=reduction)
  def sort(self, x, dim, descending):
    return x.sort(dim=dim, descending=descending, stable=True) if self.name == "torch" else x.sort(dim, descending=descending)


TORCH, LAZY = Lib("torch"), Lib("lazygrad")


# ---- programs

@dataclass
class Node:
  """A leaf (`op == "leaf"`, `arg` the numpy array) or an op applied to earlier nodes."""
  op: str
  srcs: tuple = ()
  arg: Any = None
  grad: bool = False   # leaves: requires_grad

  def __repr__(self):
    if self.op == "leaf":
      a = self.arg
      return f"leaf({a.dtype}{list(a.shape)}{', grad' if self.grad else ''}: {np.array2string(a.ravel()[:8], precision=3)})"
    return f"{self.op}{list(self.srcs)}{'' if self.arg is None else ' ' + repr(self.arg)}"


@dataclass
class Program:
  """nodes in order; the last one is the output. `must_raise`: torch raised at the last node. `no_grad`: why
  gradients are not compared (ties into a max/sort, whose gradient torch gives to one arbitrary index)."""
  nodes: list = field(default_factory=list)
  must_raise: Optional[str] = None
  no_grad: Optional[str] = None
  lenient_raise: bool = False   # a dtype lazygrad rejects at the call reached an op on an empty tensor, where torch's kernel never runs
  known: Optional[str] = None   # a known difference the program reaches: run, not compared

  def __repr__(self):
    lines = [f"  %{i} = {n!r}" for i, n in enumerate(self.nodes)]
    tail = f"  (torch raises: {self.must_raise})" if self.must_raise else ""
    return "Program(\n" + "\n".join(lines) + ("\n" + tail if tail else "") + ")"

  def ops(self) -> list[str]: return [n.op for n in self.nodes if n.op != "leaf"]


def run(p: Program, lib: Lib):
  """Build every node with lib; returns (leaves, values)."""
  leaves, vals = [], []
  for n in p.nodes:
    if n.op == "leaf":
      t = lib.leaf(n.arg, n.grad)
      leaves.append(t)
      vals.append(t)
    else: vals.append(OPS[n.op](lib, *[vals[i] for i in n.srcs], n.arg))
  return leaves, vals


# ---- the op table: name -> fn(lib, *srcs, arg)

OPS: dict[str, Callable] = {
  # unary
  "neg": lambda L, x, a: -x, "abs": lambda L, x, a: x.abs(), "exp": lambda L, x, a: x.exp(), "log": lambda L, x, a: x.log(),
  "sqrt": lambda L, x, a: x.sqrt(), "sin": lambda L, x, a: x.sin(), "cos": lambda L, x, a: x.cos(), "tanh": lambda L, x, a: x.tanh(),
  "sigmoid": lambda L, x, a: x.sigmoid(), "relu": lambda L, x, a: x.relu(), "reciprocal": lambda L, x, a: x.reciprocal(),
  "square": lambda L, x, a: x.square(), "floor": lambda L, x, a: x.floor(), "ceil": lambda L, x, a: x.ceil(),
  "trunc": lambda L, x, a: x.trunc(), "sign": lambda L, x, a: x.sign(), "exp2": lambda L, x, a: x.exp2(), "log2": lambda L, x, a: x.log2(),
  "logical_not": lambda L, x, a: x.logical_not(), "isnan": lambda L, x, a: x.isnan(),
  "cast": lambda L, x, a: getattr(x, a)(),
  # binary with a tensor
  "add": lambda L, x, y, a: x + y, "sub": lambda L, x, y, a: x - y, "mul": lambda L, x, y, a: x * y, "div": lambda L, x, y, a: x / y,
  "floordiv": lambda L, x, y, a: x // y, "mod": lambda L, x, y, a: x % y, "pow": lambda L, x, y, a: x ** y,
  "maximum": lambda L, x, y, a: x.maximum(y), "minimum": lambda L, x, y, a: x.minimum(y),
  "lt": lambda L, x, y, a: x < y, "le": lambda L, x, y, a: x <= y, "eq": lambda L, x, y, a: x == y, "ne": lambda L, x, y, a: x != y,
  "and": lambda L, x, y, a: x & y, "or": lambda L, x, y, a: x | y,
  "where": lambda L, c, x, y, a: L.where(c, x, y),
  # binary with a Python scalar (a = (scalar, reflected))
  "add_s": lambda L, x, a: a[0] + x if a[1] else x + a[0], "sub_s": lambda L, x, a: a[0] - x if a[1] else x - a[0],
  "mul_s": lambda L, x, a: a[0] * x if a[1] else x * a[0], "div_s": lambda L, x, a: a[0] / x if a[1] else x / a[0],
  "floordiv_s": lambda L, x, a: a[0] // x if a[1] else x // a[0], "mod_s": lambda L, x, a: a[0] % x if a[1] else x % a[0],
  "pow_s": lambda L, x, a: a[0] ** x if a[1] else x ** a[0],
  "maximum_s": lambda L, x, a: x.clamp(min=a[0]), "minimum_s": lambda L, x, a: x.clamp(max=a[0]),
  # reductions (a = (dim, keepdim))
  "sum": lambda L, x, a: x.sum() if a[0] is None else x.sum(a[0], keepdim=a[1]),
  "mean": lambda L, x, a: x.mean() if a[0] is None else x.mean(a[0], keepdim=a[1]),
  "amax": lambda L, x, a: x.amax() if a[0] is None else x.amax(a[0], keepdim=a[1]),
  "amin": lambda L, x, a: x.amin() if a[0] is None else x.amin(a[0], keepdim=a[1]),
  "max_dim": lambda L, x, a: x.max(a[0], keepdim=a[1])[0], "min_dim": lambda L, x, a: x.min(a[0], keepdim=a[1])[0],
  "prod": lambda L, x, a: x.prod() if a[0] is None else x.prod(a[0], keepdim=a[1]),
  "var": lambda L, x, a: x.var() if a[0] is None else x.var(a[0], keepdim=a[1]),
  "std": lambda L, x, a: x.std() if a[0] is None else x.std(a[0], keepdim=a[1]),
  "argmax": lambda L, x, a: x.argmax() if a[0] is None else x.argmax(a[0], keepdim=a[1]),
  "logsumexp": lambda L, x, a: x.logsumexp(a[0], keepdim=a[1]),
  "any": lambda L, x, a: x.any() if a[0] is None else x.any(a[0], keepdim=a[1]),
  "all": lambda L, x, a: x.all() if a[0] is None else x.all(a[0], keepdim=a[1]),
  "cumsum": lambda L, x, a: x.cumsum(a), "softmax": lambda L, x, a: x.softmax(a), "log_softmax": lambda L, x, a: x.log_softmax(a),
  # movement
  "reshape": lambda L, x, a: x.reshape(a), "permute": lambda L, x, a: x.permute(a), "transpose": lambda L, x, a: x.transpose(*a),
  "expand": lambda L, x, a: x.expand(a), "unsqueeze": lambda L, x, a: x.unsqueeze(a), "squeeze": lambda L, x, a: x.squeeze(a),
  "flip": lambda L, x, a: x.flip(a), "pad": lambda L, x, a: L.pad(x, a[0], a[1]), "getitem": lambda L, x, a: x[a],
  "contiguous": lambda L, x, a: x.contiguous(),
  "cat": lambda L, x, y, a: L.cat([x, y], a), "stack": lambda L, x, y, a: L.stack([x, y], a),
  "matmul": lambda L, x, y, a: x @ y,
  "cross_entropy": lambda L, x, t, a: L.cross_entropy(x, t, a),
  "index": lambda L, x, i, a: x[i] if a is None else x[(slice(None),) * a + (i,)],
  "gather": lambda L, x, i, a: x.gather(a, i), "scatter_add": lambda L, x, i, s, a: x.scatter_add(a, i, s),
  "sort": lambda L, x, a: L.sort(x, a[0], a[1])[0], "topk": lambda L, x, a: x.topk(a[0], a[1])[0],
}
UNARY = ("neg", "abs", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "reciprocal", "square", "floor", "ceil",
         "trunc", "sign", "exp2", "log2", "logical_not", "isnan", "cast")
BINARY = ("add", "sub", "mul", "div", "floordiv", "mod", "pow", "maximum", "minimum", "lt", "le", "eq", "ne", "and", "or")
SCALAR = ("add_s", "sub_s", "mul_s", "div_s", "floordiv_s", "mod_s", "pow_s", "maximum_s", "minimum_s")
REDUCE = ("sum", "mean", "amax", "amin", "max_dim", "min_dim", "prod", "var", "std", "argmax", "logsumexp", "any", "all")
ROW = ("cumsum", "softmax", "log_softmax", "sort", "topk")
MOVE = ("reshape", "permute", "transpose", "expand", "unsqueeze", "squeeze", "flip", "pad", "getitem", "contiguous")
OTHER = ("where", "cat", "stack", "matmul", "cross_entropy", "index", "gather", "scatter_add")
TIE_SENSITIVE = ("sort", "topk")   # torch sends a tie's gradient to one index, lazygrad may pick another
# torch errors lazygrad does not reproduce, deliberately or not yet: the op is dropped and the program ends before it
KNOWN_RAISE = {
  "ZeroDivisionError": "open: integer // 0 and % 0 give a value instead of raising (needs an in-kernel check, like index bounds)",
  "cannot be converted to type": "open: a Python scalar that does not fit the tensor's dtype (int pad value -inf, fp16 clamp "
                                 "bound 1e30) is not rejected",
  "out of bounds": "index values out of range are the bounds checks' (another change's) tests",
  "same dtype": "deliberate: matmul promotes mixed dtypes (tests/ops/test_dtype_promotion.py); torch requires one dtype",
  "expected scalar type": "deliberate: matmul promotes mixed dtypes (as above)",
}
DTYPE_CHECKED = ("abs", "floor", "ceil", "trunc", "relu", "mod", "mod_s", "sub", "sub_s", "argmax", "matmul", "softmax", "log_softmax",
                 "cross_entropy", "topk", "max_dim", "min_dim", "square", "cat")


# ---- leaves: random values with special ones mixed in

def _special(dtype: str) -> list:
  if dtype == "float16": return [0.0, -0.0, np.inf, -np.inf, np.nan, 6e4, 1e-7, 1.0, -1.0]
  if dtype == "float32": return [0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, 1e-30, 1.0, -1.0]
  if dtype == "int32": return [0, 1, -1, 2**31 - 1, -(2**31)]
  return [True, False]


def make_array(rng: np.random.Generator, shape, dtype: str, special: float) -> np.ndarray:
  """Random values of dtype: floats ~ N(0, 1.5), ints in [-6, 6], bools; a fraction `special` of them special values."""
  if dtype == "bool": return rng.random(shape) < 0.5
  if dtype == "int32": a = rng.integers(-6, 7, size=shape).astype(np.int32)
  else: a = (rng.standard_normal(shape) * 1.5).astype(dtype)
  if special and a.size:
    sp = np.array(_special(dtype), dtype=dtype)
    hit = rng.random(shape) < special
    a = np.where(hit, sp[rng.integers(0, len(sp), size=shape)], a).astype(dtype)
  return np.ascontiguousarray(a)


# ---- the generator

class _Builder:
  """Draws nodes into a Program while running them in torch (`vals`: the torch value of each node)."""
  def __init__(self, draw, rng, special):
    self.draw, self.rng, self.special = draw, rng, special
    self.p, self.vals = Program(), []

  def add(self, node: Node) -> bool:
    """Append node and run it in torch; False (and must_raise set) if torch raised."""
    self.p.nodes.append(node)
    if node.op == "leaf": self.vals.append(torch.tensor(node.arg)); return True
    if node.op in ("pow", "pow_s", "var", "std") and any(_extreme(self.vals[i]) for i in node.srcs):
      # pow is exp2(y log2|x|) and var a two-pass composition: at 0, +-inf, nan and overflow their gradients are inf where
      # torch's are nan or the other way round (test_reliability_grads.KNOWN); values are still compared
      self.p.no_grad = f"{node.op} of 0, inf, nan or huge values"
    try:
      out = OPS[node.op](TORCH, *[self.vals[i] for i in node.srcs], node.arg)
    except Exception as e:   # torch rejects it: so must lazygrad
      msg = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
      if any(k in msg for k in KNOWN_RAISE): self.p.nodes.pop()
      else: self.p.must_raise = msg
      return False
    self.vals.append(out)
    # torch checks dtypes in its kernels, which never run for an empty result: lazygrad may still reject the dtype at the call
    if node.op in DTYPE_CHECKED and isinstance(out, torch.Tensor) and out.numel() == 0: self.p.lenient_raise = True
    return True

  def leaf(self, shape, dtype, grad=None, values=None) -> int:
    a = values if values is not None else make_array(self.rng, shape, dtype, self.special)
    g = dtype.startswith("float") if grad is None else grad
    self.add(Node("leaf", arg=a, grad=g))
    return len(self.vals) - 1

  def input(self) -> int:
    """A new input: a leaf, or a non-contiguous view of a bigger leaf (transposed, sliced, strided)."""
    d = self.draw
    dtype = d(st.sampled_from(DTYPES))
    shape = tuple(d(st.lists(st.sampled_from(SIZES), min_size=0, max_size=3)))
    view = d(st.sampled_from(["none", "none", "T", "slice", "stride"])) if shape else "none"
    if view == "none": return self.leaf(shape, dtype)
    if view == "T":
      src = self.leaf(shape[::-1], dtype)
      self.add(Node("permute", (src,), tuple(range(len(shape)))[::-1]))
    else:
      step = 2 if view == "stride" else 1
      big = (shape[0] * step + 1,) + shape[1:]
      src = self.leaf(big, dtype)
      self.add(Node("getitem", (src,), (slice(1, 1 + shape[0] * step, step),)))
    return len(self.vals) - 1

  def like(self, shape, dtype=None) -> int:
    """A new input broadcastable to shape: some dims set to 1, some leading dims dropped."""
    d = self.draw
    drop = d(st.integers(0, len(shape)))
    s = tuple(1 if d(st.booleans()) and d(st.booleans()) else n for n in shape[drop:])
    return self.leaf(s, dtype or d(st.sampled_from(DTYPES)))

  def operand(self, x: int) -> int:
    """A second operand for x: an earlier value, a broadcastable new input or a new input of x's shape."""
    d = self.draw
    how = d(st.sampled_from(["old", "like", "same"]))
    if how == "old": return d(st.integers(0, len(self.vals) - 1))
    if how == "like": return self.like(tuple(self.vals[x].shape))
    return self.leaf(tuple(self.vals[x].shape), d(st.sampled_from(DTYPES)))

  def dim(self, x, allow_none=True):
    n = self.vals[x].ndim
    opts = ([None] if allow_none else []) + list(range(-max(n, 1), max(n, 1)))
    return self.draw(st.sampled_from(opts))

  def step(self) -> bool:
    """Draw one op on a recent value; False when torch raised (the program ends)."""
    d = self.draw
    x = d(st.integers(max(0, len(self.vals) - 3), len(self.vals) - 1))   # mostly chain on recent values
    v = self.vals[x]
    kind = d(st.sampled_from(["unary", "binary", "binary", "scalar", "reduce", "row", "move", "move", "other"]))
    name = d(st.sampled_from({"unary": UNARY, "binary": BINARY, "scalar": SCALAR, "reduce": REDUCE, "row": ROW, "move": MOVE,
                              "other": OTHER}[kind]))
    shape = tuple(v.shape)
    if name in TIE_SENSITIVE and v.dtype.is_floating_point and v.numel() != torch.unique(v).numel():
      self.p.no_grad = f"{name} of a value with ties"
    if name in DTYPE_CHECKED and v.numel() == 0: self.p.lenient_raise = True
    if name in ("var", "std") and v.dtype.is_floating_point and bool((v.abs() > 1e18).any() & v.isfinite().any()):
      self.p.known = "var/std of huge values: torch's cpu kernel accumulates float32 in float64 (4e29 where x - mean squared overflows)"
    if name in ("maximum_s", "minimum_s") and v.dtype == torch.bool:
      self.p.known = "clamp of a bool tensor by an int keeps bool (torch: int64)"
    if kind == "unary":
      arg = d(st.sampled_from(["float", "half", "int", "bool"])) if name == "cast" else None
      return self.add(Node(name, (x,), arg))
    if kind == "binary": return self.add(Node(name, (x, self.operand(x))))
    if kind == "scalar":
      sc = d(st.sampled_from([0, 1, 2, 3, -1, 0.5, -2.5, 0.0, -0.0, 1e30, float("inf"), float("nan")]))
      if name == "pow_s": sc = d(st.sampled_from([0, 1, 2, 3, -1, -2, 0.5, 2.5, -0.5, 0.0, 3.0, 10]))
      return self.add(Node(name, (x,), (sc, d(st.booleans()) and name not in ("maximum_s", "minimum_s"))))
    if kind == "reduce":
      dim = self.dim(x, allow_none=name not in ("max_dim", "min_dim", "logsumexp"))
      return self.add(Node(name, (x,), (dim, d(st.booleans()))))
    if kind == "row":
      dim = self.dim(x, allow_none=False)
      if name == "sort": return self.add(Node(name, (x,), (dim, d(st.booleans()))))
      if name == "topk":
        if not shape: return self.add(Node("sort", (x,), (dim, False)))   # 0-d topk takes k=1 only here (torch also k=0): reported
        n = shape[dim]
        return self.add(Node(name, (x,), (d(st.integers(0, max(n, 0))), dim)))
      return self.add(Node(name, (x,), dim))
    if kind == "move": return self.add(Node(name, (x,), self.move_arg(name, shape)))
    return self.other(name, x, shape)

  def move_arg(self, name, shape):
    d, n = self.draw, len(shape)
    if name == "reshape":
      return d(st.sampled_from([(-1,), shape[::-1], (1,) + shape, (math.prod(shape),) if shape else ()]))
    if name == "permute": return tuple(d(st.permutations(range(n))))
    if name == "transpose": return tuple(d(st.integers(-max(n, 1), max(n, 1) - 1)) for _ in range(2))
    if name == "expand": return tuple((3 if s == 1 and d(st.booleans()) else s) for s in (d(st.sampled_from([(), (2,)])) + shape))
    if name == "unsqueeze": return d(st.integers(-n - 1, n))
    if name == "squeeze": return d(st.integers(-max(n, 1), max(n, 1) - 1))
    if name == "flip": return tuple(d(st.sets(st.integers(0, n - 1), max_size=n))) if n else ()
    if name == "pad":
      k = d(st.integers(0, min(n, 2)))
      return tuple(d(st.integers(-1, 2)) for _ in range(2 * k)), d(st.sampled_from([0.0, 1.5, float("-inf")]))
    if name == "getitem":
      if not n: return (None,)
      idx = []
      for s in shape[:d(st.integers(1, n))]:
        kind = d(st.sampled_from(["all", "slice", "stride", "int"]))
        if kind == "int" and s: idx.append(d(st.integers(-s, s - 1)))
        elif kind == "slice": idx.append(slice(d(st.integers(-s - 1, s)), d(st.integers(-s - 1, s + 1))))
        elif kind == "stride": idx.append(slice(d(st.integers(0, max(s - 1, 0))), None, d(st.integers(2, 3))))
        else: idx.append(slice(None))
      if d(st.booleans()): idx.insert(d(st.integers(0, len(idx))), None)
      return tuple(idx)
    return None

  def other(self, name, x, shape) -> bool:
    d, n, dt = self.draw, len(shape), self.vals[x].dtype
    if name == "where":
      c = d(st.sampled_from(["cmp", "old"]))
      if c == "cmp": self.add(Node("lt", (x, self.leaf((), "float32", grad=False, values=np.array(0.5, np.float32)))))
      cond = len(self.vals) - 1 if c == "cmp" else d(st.integers(0, len(self.vals) - 1))
      return self.add(Node("where", (cond, x, self.operand(x))))
    if name in ("cat", "stack"):
      dim = d(st.integers(-n - (name == "stack"), n - 1 + (name == "stack"))) if n or name == "stack" else 0
      other = list(shape)
      if name == "cat" and n and d(st.booleans()): other[dim] = d(st.sampled_from(SIZES))
      y = d(st.sampled_from([x, None])) if tuple(other) == shape else None
      if y is None: y = self.leaf(tuple(other), d(st.sampled_from([dt_name(dt), dt_name(dt), "float32"])))
      return self.add(Node(name, (x, y), dim))
    if name == "matmul":
      k = shape[-1] if shape else d(st.sampled_from(SIZES))
      wshape = d(st.sampled_from([(k,), (k, d(st.sampled_from(SIZES))), (2, k, d(st.sampled_from(SIZES)))]))
      return self.add(Node(name, (x, self.leaf(wshape, d(st.sampled_from([dt_name(dt), dt_name(dt), "float32"]))))))
    if name == "cross_entropy":
      c = shape[1] if n >= 2 else (shape[0] if n == 1 else 1)
      if c == 0: return self.add(Node("sum", (x,), (None, False)))   # no valid class: the bounds checks' test
      tshape = (shape[0],) + shape[2:] if n >= 2 else ()
      t = self.leaf(tshape, "int64", grad=False, values=self.rng.integers(0, max(c, 1), size=tshape).astype(np.int64))
      return self.add(Node(name, (x, t), d(st.sampled_from(["mean", "sum", "none"]))))
    if name == "index":
      if not n: return self.add(Node("getitem", (x,), (None,)))   # a 0-d mask (a new dim in torch) raises here: reported
      if d(st.booleans()):   # a bool mask over the leading dims
        k = d(st.integers(1, n))
        m = self.leaf(shape[:k], "bool", grad=False)
        return self.add(Node("index", (x, m), None))
      ax = d(st.integers(0, n - 1))
      ishape = tuple(d(st.lists(st.sampled_from(SIZES), min_size=1, max_size=2)))
      if not shape[ax]: ishape = (0,)   # no valid index into an empty dim (out-of-range ones are the bounds checks' tests)
      vals = self.rng.integers(-shape[ax], max(shape[ax], 1), size=ishape)
      return self.add(Node("index", (x, self.leaf(ishape, "int64", grad=False, values=vals.astype(np.int64))), ax))
    # gather / scatter_add along dim: an index in range (out-of-range indices are the bounds checks' tests)
    if not n: return self.add(Node("sum", (x,), (None, False)))
    dim = d(st.integers(0, n - 1))
    ishape = tuple(d(st.integers(0, s)) if i != dim else d(st.sampled_from(SIZES)) for i, s in enumerate(shape))
    if shape[dim] == 0: ishape = tuple(0 if i == dim else s for i, s in enumerate(ishape))   # no valid index into an empty dim
    vals = self.rng.integers(0, max(shape[dim], 1), size=ishape).astype(np.int64)
    idx = self.leaf(ishape, "int64", grad=False, values=vals)
    if name == "gather": return self.add(Node("gather", (x, idx), dim))
    src = self.leaf(ishape, dt_name(dt))
    return self.add(Node("scatter_add", (x, idx, src), dim))


def _extreme(v: torch.Tensor) -> bool:
  if not v.dtype.is_floating_point: return v.dtype != torch.bool and bool((v.abs() > 1e4).any())   # beyond fp16 once promoted
  return not bool(((v.abs() < 1e4) & (v.abs() > 1e-3)).all())   # 0, tiny (fp16 intermediates overflow), huge, inf, nan


def dt_name(dt: torch.dtype) -> str: return str(dt).replace("torch.", "")


@st.composite
def programs(draw, max_ops: int = 6) -> Program:
  """A random program of 1..max_ops ops over 1-2 inputs (hypothesis strategy; shrinks to fewer ops and simpler draws)."""
  seed = draw(st.integers(0, 2**32 - 1))
  special = draw(st.sampled_from([0.0, 0.0, 0.1, 0.3]))
  b = _Builder(draw, np.random.default_rng(seed), special)
  b.input()
  if draw(st.booleans()): b.input()
  for _ in range(draw(st.integers(1, max_ops))):
    if not b.step(): break
  return b.p
