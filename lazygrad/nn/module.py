"""Module: the container of parameters, buffers and submodules (torch.nn.Module's contract).

A Tensor assigned to a Module attribute becomes a parameter when it requires grad
(or already is one under that name); buffers (BatchNorm's running stats) are declared
with register_buffer; a Module assigned to an attribute becomes a submodule. Names,
order and state-dict keys follow torch, so torch checkpoints load unchanged."""
from __future__ import annotations
from collections import OrderedDict
from typing import Any, Callable, Iterator, Optional
import weakref
import numpy as np
from lazygrad.dtype import DType, dtypes
from lazygrad.ops import Node, Ops
from lazygrad.tensor import Tensor, no_grad


# Tensors whose pending lazy value the next optimizer step realizes in its one schedule:
# buffer updates made by layers (BatchNorm's running stats: otherwise their lazy chains
# grow step after step) and the outputs of top-level module calls (the logits, hence the
# loss, are computed from the old parameters in the same schedule as the update, as in torch).
# Keyed by id, not a WeakSet: a WeakSet compares its members with ==, elementwise for Tensors.
_PENDING: dict[int, weakref.ref] = {}

def realize_with_next_step(*tensors) -> None:
  """Mark lazy tensors to be realized by the next optimizer step, in its one schedule
  (lazygrad-specific: a layer's buffer update, such as BatchNorm's running stats, rides
  along with the step instead of growing a lazy chain). Realized tensors are ignored."""
  for t in tensors:
    if not isinstance(t, Tensor) or t.is_realized: continue
    key = id(t)
    def drop(ref, key=key):
      if _PENDING.get(key) is ref: del _PENDING[key]
    _PENDING[key] = weakref.ref(t, drop)

def take_pending() -> list[Tensor]:
  """The tensors marked by realize_with_next_step that are still alive and lazy; clears the marks."""
  out = [t for t in (r() for r in list(_PENDING.values())) if t is not None and not t.is_realized]
  _PENDING.clear()
  return out


def Parameter(data, requires_grad: bool = True) -> Tensor:
  """torch.nn.Parameter's role: a leaf Tensor that requires grad (a Tensor, not a subclass)."""
  t = data if isinstance(data, Tensor) else Tensor(data)
  if t.requires_grad != requires_grad: t.requires_grad_(requires_grad)
  return t


class Module:
  """The base class of every layer and model, as torch.nn.Module.

  Subclasses call `super().__init__()` first, then assign parameters (Tensors that require
  grad), buffers (`register_buffer`) and submodules as attributes, and define `forward`.
  Calling the module runs `forward`; nothing is computed until a realize. Parameter,
  buffer and state-dict names, their order, `train()`/`eval()`, `to()`, `apply()` and
  `load_state_dict` follow torch, so torch checkpoints load unchanged. Differences from
  torch: parameters are plain Tensors (no Parameter subclass), there are no hooks, and a
  top-level call's outputs are realized together with the next optimizer step (see
  realize_with_next_step) unless realized earlier.

  repr is torch's: `Linear(in_features=784, out_features=128, bias=True)`, a container
  lists its children one per line, indented, with `extra_repr()` giving the one-line part.
  """
  training: bool

  def __init__(self):
    object.__setattr__(self, "_parameters", OrderedDict())
    object.__setattr__(self, "_buffers", OrderedDict())
    object.__setattr__(self, "_non_persistent", set())
    object.__setattr__(self, "_modules", OrderedDict())
    object.__setattr__(self, "training", True)

  def forward(self, *args, **kwargs):
    """The computation; every subclass defines it. Call the module (`m(x)`), not forward."""
    raise NotImplementedError(f"{type(self).__name__} has no forward()")

  _call_depth = 0
  _mode_version = 0   # bumped by every train()/eval() (lazygrad.jit's signature cache)
  def __call__(self, *args, **kwargs):
    """Run forward(*args, **kwargs) (torch's __call__, without hooks)."""
    Module._call_depth += 1
    try: out = self.forward(*args, **kwargs)
    finally: Module._call_depth -= 1
    if Module._call_depth == 0:   # a top-level call: its outputs are computed with the next step (see _PENDING)
      realize_with_next_step(*(out if isinstance(out, (tuple, list)) else (out,)))
    return out

  # ---- registration by attribute
  def __setattr__(self, name: str, value: Any) -> None:
    if "_parameters" not in self.__dict__:
      raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called (call super().__init__() first)")
    params, buffers, modules = self._parameters, self._buffers, self._modules
    slot_value = value is None or isinstance(value, Tensor)
    if isinstance(value, Module): self._unregister(name); modules[name] = value
    elif name in params and slot_value: params[name] = value       # a parameter keeps its slot
    elif name in buffers and slot_value: buffers[name] = value
    elif isinstance(value, Tensor) and value.requires_grad: self._unregister(name); params[name] = value
    else: self._unregister(name); object.__setattr__(self, name, value)

  def _unregister(self, name: str) -> None:
    for store in (self._parameters, self._buffers, self._modules): store.pop(name, None)
    self._non_persistent.discard(name)
    self.__dict__.pop(name, None)

  def __getattr__(self, name: str):
    # only called when normal lookup fails: parameters, buffers and submodules live in their dicts
    d = self.__dict__
    for store in ("_parameters", "_buffers", "_modules"):
      if store in d and name in d[store]: return d[store][name]
    raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

  def __delattr__(self, name: str) -> None:
    for store in (self._parameters, self._buffers, self._modules):
      if name in store:
        del store[name]
        self._non_persistent.discard(name)
        return
    object.__delattr__(self, name)

  def register_parameter(self, name: str, param: Optional[Tensor]) -> None:
    """Add a parameter slot `name` holding `param` (None: a declared but absent parameter, such as bias=False)."""
    if param is not None and not isinstance(param, Tensor): raise TypeError(f"register_parameter: {name!r} must be a Tensor or None")
    self._unregister(name)
    self._parameters[name] = param

  def register_buffer(self, name: str, tensor: Optional[Tensor], persistent: bool = True) -> None:
    """Add a buffer: state that is not trained (running statistics); in the state dict unless persistent=False."""
    if tensor is not None and not isinstance(tensor, Tensor): raise TypeError(f"register_buffer: {name!r} must be a Tensor or None")
    self._unregister(name)
    self._buffers[name] = tensor
    if not persistent: self._non_persistent.add(name)

  def register_module(self, name: str, module: Optional[Module]) -> None:
    """Add a submodule under `name` (what assigning a Module attribute does); `add_module` is the same."""
    self._unregister(name)
    self._modules[name] = module
  add_module = register_module

  # ---- traversal
  def named_modules(self, memo: Optional[set] = None, prefix: str = "") -> Iterator[tuple[str, Module]]:
    """(dotted name, module) for this module ("") and every submodule, depth first, each module once."""
    memo = set() if memo is None else memo
    if id(self) in memo: return
    memo.add(id(self))
    yield prefix, self
    for name, m in self._modules.items():
      if m is not None: yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)
  def modules(self) -> Iterator[Module]:
    """This module and every submodule, each once."""
    return (m for _, m in self.named_modules())
  def named_children(self) -> Iterator[tuple[str, Module]]:
    """(name, module) for the direct submodules."""
    return ((n, m) for n, m in self._modules.items() if m is not None)
  def children(self) -> Iterator[Module]:
    """The direct submodules."""
    return (m for _, m in self.named_children())

  def _named_members(self, store: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
    seen = set()
    mods = self.named_modules() if recurse else iter([("", self)])
    for prefix, m in mods:
      for name, t in getattr(m, store).items():
        if t is None or id(t) in seen: continue
        seen.add(id(t))
        yield (f"{prefix}.{name}" if prefix else name), t

  def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
    """(dotted name, parameter) in registration order, each tensor once (a shared weight appears under its first name)."""
    for n, p in self._named_members("_parameters", recurse): yield (f"{prefix}.{n}" if prefix else n), p
  def parameters(self, recurse: bool = True) -> Iterator[Tensor]:
    """The parameters (what an optimizer takes), each once."""
    return (p for _, p in self.named_parameters(recurse=recurse))
  def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
    """(dotted name, buffer), non-persistent buffers included."""
    for n, b in self._named_members("_buffers", recurse): yield (f"{prefix}.{n}" if prefix else n), b
  def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
    """The buffers (BatchNorm's running statistics), each once."""
    return (b for _, b in self.named_buffers(recurse=recurse))

  def apply(self, fn: Callable[[Module], None]) -> Module:
    """Call fn on every submodule (children first) and then on self, as torch; returns self."""
    for m in self.children(): m.apply(fn)
    fn(self)
    return self

  # ---- modes and gradients
  def train(self, mode: bool = True) -> Module:
    """Set training mode on this module and all submodules (Dropout drops, BatchNorm uses batch statistics); returns self."""
    if not isinstance(mode, bool): raise ValueError(f"train: mode must be a bool, got {mode!r}")
    Module._mode_version += 1   # lazygrad.jit recomputes the training flags in its signature only after a change
    for m in self.modules(): object.__setattr__(m, "training", mode)
    return self
  def eval(self) -> Module:
    """train(False): evaluation mode; returns self."""
    return self.train(False)

  def requires_grad_(self, requires_grad: bool = True) -> Module:
    """Set requires_grad on every parameter (False freezes them); returns self."""
    for p in self.parameters(): p.requires_grad_(requires_grad)
    return self

  def zero_grad(self, set_to_none: bool = True) -> None:
    """Drop every parameter's .grad (set_to_none=False: replace it by zeros), as torch."""
    for p in self.parameters():
      if p.grad is None: continue
      p.grad = None if set_to_none else Tensor.zeros(p.shape, dtype=p.dtype, device=p.device)

  def to(self, device=None, dtype=None) -> Module:
    """Move (and/or cast float) parameters and buffers in place: the same Tensor objects
    get the new data, so optimizers built before the move still hold them."""
    if isinstance(device, DType): device, dtype = None, device     # model.to(dtypes.float16), as torch
    for t in list(self.parameters()) + list(self.buffers()):
      if dtype is not None and not t.dtype.is_float: new = t.to(device)
      else: new = t.to(device, dtype)
      if new is t: continue
      rg = t.requires_grad
      new = new.detach().realize()
      t.node = new.node   # rebind in place (a Tensor is a handle on its node)
      if rg: t.node.requires_grad = True
      t.grad = None
    return self
  def float(self) -> Module:
    """Cast float parameters and buffers to float32 in place; returns self."""
    return self.to(dtype=dtypes.float32)
  def half(self) -> Module:
    """Cast float parameters and buffers to float16 in place; returns self."""
    return self.to(dtype=dtypes.float16)

  # ---- state dict
  def _state_entries(self) -> "OrderedDict[str, Tensor]":
    out: OrderedDict[str, Tensor] = OrderedDict()
    for prefix, m in self.named_modules():
      pre = f"{prefix}." if prefix else ""
      for n, p in m._parameters.items():
        if p is not None: out[pre + n] = p
      for n, b in m._buffers.items():
        if b is not None and n not in m._non_persistent: out[pre + n] = b
    return out

  def state_dict(self, prefix: str = "") -> "OrderedDict[str, Tensor]":
    """name -> Tensor (the live tensors: later updates show, as torch's shared storage)."""
    return OrderedDict((prefix + k, v) for k, v in self._state_entries().items())

  def _optional_state_keys(self) -> set:
    """Keys a checkpoint may omit without a strict-load error (BatchNorm's num_batches_tracked)."""
    out = set()
    for prefix, m in self.named_modules():
      for n in getattr(m, "_optional_buffers", ()): out.add(f"{prefix}.{n}" if prefix else n)
    return out

  def load_state_dict(self, state_dict, strict: bool = True):
    """Copy values into this module's parameters and buffers. Every key, shape and dtype is
    checked first, then the new values are computed into new buffers and only then swapped in:
    on any error (a check, or the realize itself) nothing is changed. Values may be Tensors, numpy
    arrays or torch tensors; a float value is cast to a float parameter's dtype and an integer to an
    integer buffer's, as torch's copy_ does (lazygrad refuses float <-> int/bool, which torch casts).
    Returns (missing_keys, unexpected_keys) as torch's named tuple does."""
    own = self._state_entries()
    missing = [k for k in own if k not in state_dict and k not in self._optional_state_keys()]
    unexpected = [k for k in state_dict if k not in own]
    errors = []
    if strict:
      if missing: errors.append("missing keys: " + ", ".join(repr(k) for k in missing))
      if unexpected: errors.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
    arrays: list[tuple[Tensor, Any]] = []
    for k, dst in own.items():
      if k not in state_dict: continue
      src = state_dict[k]
      try: value, shape, dt = _as_value(src)
      except TypeError as e:
        errors.append(f"{k!r}: {e}"); continue
      if shape != dst.shape: errors.append(f"{k!r}: shape {shape} in the checkpoint, {dst.shape} in the model")
      elif dt != dst.dtype and not _castable(dt, dst.dtype):
        errors.append(f"{k!r}: dtype {dt} in the checkpoint, {dst.dtype} in the model")
      else: arrays.append((dst, value))
    if errors:
      raise RuntimeError(f"load_state_dict for {type(self).__name__}: " + "; ".join(errors) + " (the model is unchanged)")
    with no_grad(): news = [_to_tensor(v, dst) for dst, v in arrays]
    if news: news[0].realize(*news[1:])   # may raise: the model still holds its old values, with nothing pending
    for (dst, _), new in zip(arrays, news):
      node = Node(Ops.BUFFER, (), None, dst.shape, dst.dtype, dst.device, dst.node.requires_grad)
      node.buffer, node.st = new.node.buffer, new.node.st
      dst.node = node   # the swap: tensors computed from the old value keep it, as after assign
    return _IncompatibleKeys(missing, unexpected)

  # ---- printing
  def extra_repr(self) -> str:
    """The module's own settings for its repr, e.g. "in_features=784, out_features=128, bias=True" (torch's hook)."""
    return ""

  def __repr__(self) -> str:
    """torch's layout: `Name(extra)` for a leaf; with submodules, `Name(` then the extra_repr
    and one `(name): child` per line, indented by two spaces, then `)`."""
    extra = self.extra_repr()
    lines = extra.split("\n") if extra else []
    lines += [f"({n}): " + repr(m).replace("\n", "\n  ") for n, m in self._modules.items()]
    if len(lines) == 1 and not self._modules: return f"{type(self).__name__}({lines[0]})"
    return f"{type(self).__name__}(" + ("\n  " + "\n  ".join(lines) + "\n" if lines else "") + ")"


class _IncompatibleKeys(tuple):
  def __new__(cls, missing, unexpected): return super().__new__(cls, (missing, unexpected))
  @property
  def missing_keys(self): return self[0]
  @property
  def unexpected_keys(self): return self[1]
  def __repr__(self): return "<All keys matched successfully>" if not self[0] and not self[1] else \
    f"_IncompatibleKeys(missing_keys={self[0]}, unexpected_keys={self[1]})"


def _as_value(src):
  """(value, shape, dtype) of a state-dict entry without computing anything lazy."""
  if isinstance(src, Tensor): return src, src.shape, src.dtype
  if isinstance(src, np.ndarray) or type(src).__module__.startswith("numpy"):
    a = np.asarray(src)
    return a, tuple(a.shape), dtypes.from_np(a.dtype)
  if type(src).__module__.startswith("torch"):
    return src, tuple(src.shape), dtypes.from_any(src.dtype)
  raise TypeError(f"expected a Tensor, numpy array or torch tensor, got {type(src).__name__}")


def _castable(src, dst) -> bool:
  # float -> float (a float64 or float16 checkpoint) and int -> int (num_batches_tracked saved as int32) cast, as torch's copy_
  return (src.is_float and dst.is_float) or (src.is_int and dst.is_int)


def _to_tensor(value, dst: Tensor) -> Tensor:
  """value on dst's device in dst's dtype, lazy, in a buffer of its own once realized (never the checkpoint's own memory)."""
  if isinstance(value, Tensor):
    v = value.detach()
    v = (v if v.device == dst.device else v.to(dst.device)).cast(dst.dtype)
  else:
    if type(value).__module__.startswith("torch"):
      value = value.detach().cpu()
      value = (value.float() if str(value.dtype) == "torch.bfloat16" else value).numpy()   # numpy has no bfloat16
    return Tensor(np.array(value, order="C", copy=True), dtype=dst.dtype, device=dst.device)   # a fresh copy, its own buffer
  return Tensor._from_node(Node(Ops.CONTIGUOUS, (v.node,), None, dst.shape, dst.dtype, dst.device))   # a copy kernel
