"""lazygrad.jit: capture what a function realizes and replay its kernels on later calls.

    @lazygrad.jit
    def step(x, y):
      loss = model(x).cross_entropy(y); opt.zero_grad(); loss.backward(); opt.step()
      return loss

Per input signature (shapes, dtypes and devices of the Tensor arguments, nested in lists, tuples and dicts; the
values of the other arguments; the training flags of the Modules the function reaches; which parameters have a
.grad; grad mode and autocast) the first call runs plainly (a warm-up: optimizer state is created), the next two run
plainly under a recorder (runtime/record.py), and when their kernel sequences agree, calls from the fourth on
replay the third's kernels (runtime/replay.py): no graph building, scheduling, keying or rendering. A new signature
captures anew (a bounded LRU cache of signatures); a capture that never settles, or reads Python data that changes
per call into a tensor, runs plainly with a one-time warning. design.md, "Step capture (lazygrad.jit)", has the
slots, the rebinding of Tensors after a replay and the memory plan.

Limits: Python control flow on tensor values, host reads (item(), numpy()) inside the function (a RuntimeError at
capture), and Python state other than the optimizer's step counts and hyperparameters (lr schedules work) and the
random stream are not replayed; tensors made from changing Python data inside the function are detected at capture
(it then runs plainly). Returned tensors are detached (no autograd graph) on replays."""
from __future__ import annotations
import functools
import gc
import weakref
import warnings
from collections import OrderedDict
from typing import Any, Callable, Optional
import numpy as np
from lazygrad.helpers import DEBUG
from lazygrad.ops import Node, Ops
from lazygrad.tensor import Tensor
from lazygrad.tensor_base import TensorBase, _RNG, _GradMode, _Autocast
from lazygrad.nn.module import Module
from lazygrad.runtime import record
from lazygrad.runtime.record import Recorder, host_call
from lazygrad.runtime.replay import Plan, Recapture, Stats, structure, external_classes, const_mismatch

MAX_RECORDS = 5      # recorded calls per signature before giving up on one whose kernels keep changing
MAX_RECAPTURES = 3   # replays refused (state no longer fits) before a signature runs plainly for good

__all__ = ["jit", "JitFunction", "host_call", "Stats"]


def jit(fn: Optional[Callable] = None, *, cache_size: int = 16, plan_memory: bool = True):
  """Capture and replay `fn` (see the module docstring). `@jit`, `jit(fn)` and `jit(cache_size=..)(fn)` all work.
  cache_size: signatures kept (least recently used dropped); plan_memory=False gives every temporary its own buffer."""
  if fn is None: return lambda f: JitFunction(f, cache_size=cache_size, plan_memory=plan_memory)
  return JitFunction(fn, cache_size=cache_size, plan_memory=plan_memory)


class _Entry:
  """One signature's state: plain calls made, the last recording, the plan once verified."""
  def __init__(self):
    self.calls, self.records, self.recaptures = 0, 0, 0
    self.last: Any = None       # (Recorder, structure) of the last recorded call
    self.plan: Optional[Plan] = None
    self.failed: Optional[str] = None
    self.rebinds, self.returns = [], None


class JitFunction:
  """A jitted function: call it as fn. `stats` (a Stats: kernels, slots, planned and unplanned temporary bytes,
  replay time outside kernels) describes the most recent signature's plan; `cache` maps signatures to entries."""
  def __init__(self, fn: Callable, cache_size: int = 16, plan_memory: bool = True):
    self.fn, self.cache_size, self.plan_memory = fn, cache_size, plan_memory
    self.name = getattr(fn, "__qualname__", type(fn).__name__)
    self.cache: OrderedDict = OrderedDict()
    self.stats: Optional[Stats] = None
    self._modes: tuple = (None, None, ())   # (mode version, root module ids, training flags): see _training_flags
    functools.update_wrapper(self, fn, updated=())

  def __get__(self, obj, objtype=None):
    """As a method decorator: bind to the instance (one JitFunction per instance, cached on it)."""
    if obj is None: return self
    bound = obj.__dict__.get(f"_jit_{self.name}")
    if bound is None:
      bound = JitFunction(self.fn.__get__(obj, objtype), self.cache_size, self.plan_memory)
      obj.__dict__[f"_jit_{self.name}"] = bound
    return bound

  def __call__(self, *args, **kwargs):
    # inside another capture (a jitted function calling this one): run plainly, so the outer record sees every kernel
    if record.active() is not None: return self._plain(args, kwargs)
    tensors: list[Tensor] = []
    key = self._key(args, kwargs, tensors)
    entry = self.cache.get(key)
    if entry is None:
      # a new signature: first collect cyclic garbage (a dead model's parameters would leave the key later)
      gc.collect()
      tensors = []
      key = self._key(args, kwargs, tensors)
      entry = self.cache.get(key)
    if entry is None:
      entry = self.cache[key] = _Entry()
      while len(self.cache) > self.cache_size: self.cache.popitem(last=False)
    self.cache.move_to_end(key)
    if entry.plan is not None:
      try: return self._replay(entry, tensors)
      except Recapture as e:
        entry.plan, entry.calls, entry.last = None, 1, None
        entry.recaptures += 1
        if entry.recaptures > MAX_RECAPTURES: self._give_up(entry, f"the captured state keeps changing ({e})")
        if DEBUG() >= 1: print(f"jit {self.name}: capturing again: {e}")
    entry.calls += 1
    if entry.failed is not None or entry.calls == 1: return self._plain(args, kwargs)
    return self._record(entry, args, kwargs, tensors)

  # ---- the signature
  def _key(self, args, kwargs, tensors: list) -> tuple:
    """The call's signature (the module docstring); fills `tensors` with the Tensor arguments in order."""
    grads = tuple(id(p) for p in TensorBase._params.values() if p.grad is not None)   # a backward adds into these
    return (_flatten((args, kwargs), tensors, []), self._training_flags(args, kwargs), grads, _GradMode.enabled, _Autocast.dtype)

  def _training_flags(self, args, kwargs) -> tuple:
    """The training flags of every Module reachable from the function: its __self__, closure cells, the arguments and
    the module globals its code names. Recomputed only when Module.train()/eval() ran since (Module._mode_version)."""
    roots = _root_modules(self.fn, args, kwargs)
    ids = tuple(id(m) for m in roots)
    version, seen, flags = self._modes
    if version != Module._mode_version or seen != ids:
      flags = tuple(m.training for r in roots for m in r.modules())
      self._modes = (Module._mode_version, ids, flags)
    return flags

  # ---- the three ways to run
  def _plain(self, args, kwargs):
    out = self.fn(*args, **kwargs)
    rets = _returned(out, self.name)
    _realize_and_detach(rets)
    return out

  def _give_up(self, entry: _Entry, why: str) -> None:
    entry.failed, entry.plan, entry.last = why, None, None
    warnings.warn(f"lazygrad.jit: {self.name}: {why}; running it without capture for this signature", RuntimeWarning, stacklevel=3)

  def _record(self, entry: _Entry, args, kwargs, tensors: list[Tensor]):
    lazy = [t for t in tensors if not t.node.realized]
    if lazy: lazy[0].realize(*lazy[1:])
    gc.collect()
    start = _scan()
    holders = _holders(start)
    rng0 = (_RNG.seed, _RNG.counter)
    rec = Recorder(self.name)
    record.set_active(rec)
    try:
      out = self.fn(*args, **kwargs)
      rets = _returned(out, self.name)
      # returned tensors lose their graph first, as in a plain call: a graph kept alive by the loss (an activation's
      # saved input in a custom_vjp closure) would otherwise look like a fresh tensor and be realized for nothing
      _realize_and_detach(rets)
      gc.collect()
      changed, fresh = _changes(start)
      moved = [t if attr == "node" else final for t, attr, final in changed if final is not None]
      pending = [t for t in moved + fresh if not t.node.realized]
      if pending: pending[0].realize(*pending[1:])
    finally:
      record.set_active(None)
    rng1 = _RNG.counter
    arg_ids = {}
    for i, t in enumerate(tensors): arg_ids.setdefault(id(t.node.buffer), i)
    returns = _return_template(out, tensors, start, rec)
    classes = external_classes(rec, arg_ids, _pick_holders(holders, rec))
    rec.release({vid for vid, c in classes.items() if c[0] == "const"})
    shape = structure(rec, classes, rng0, rng1)
    last, entry.last = entry.last, (rec, classes, shape)
    entry.records += 1
    if last is not None and last[2] == shape:
      if const_mismatch(last[0], last[1], rec, classes):
        self._give_up(entry, "it makes a tensor from Python data that changes per call (pass it as a Tensor argument)")
        return out
      self._build(entry, rec, classes, tensors, returns, changed, rng0, rng1)
    elif entry.records >= MAX_RECORDS:
      self._give_up(entry, f"its kernels differed in each of {MAX_RECORDS} recorded calls")
    return out

  def _build(self, entry: _Entry, rec: Recorder, classes, tensors, returns, changed, rng0, rng1) -> None:
    ret_nodes = {id(leaf[3]) for leaf in _leaves(returns) if leaf[0] == "new"}
    finals = {id(f) for _, attr, f in changed if attr == "node"}
    rec.marks = [m for m in rec.marks if id(m[0]()) not in ret_nodes or id(m[0]()) in finals]
    alive = {vid for leaf in _leaves(returns) if leaf[0] == "new" for vid in (leaf[1],)}
    entry.plan = Plan(rec, classes, [t.node.st for t in tensors], alive, rng0, rng1, self.plan_memory)
    entry.rebinds = [(weakref.ref(t), attr, final) for t, attr, final in changed]
    entry.returns = _strip_nodes(returns)
    entry.last = None
    self.stats = entry.plan.stats
    if DEBUG() >= 1: print(f"jit {self.name}: captured {self.stats}")

  def _replay(self, entry: _Entry, tensors: list[Tensor]):
    plan = entry.plan
    bufs = plan.run(tensors, _RNG)
    plan.bind(bufs)
    for ref, attr, final in entry.rebinds:
      t = ref()
      if t is not None and getattr(t, attr) is not final: setattr(t, attr, final)
    _RNG.counter += plan.rng_delta
    self.stats = plan.stats
    return _rebuild(entry.returns, tensors, bufs)


# ---- arguments
def _flatten(obj, tensors: list, key: list) -> tuple:
  """The signature of the arguments (tensors appended to `tensors` in order)."""
  if isinstance(obj, Tensor):
    first = next((i for i, t in enumerate(tensors) if t is obj), len(tensors))
    tensors.append(obj)
    key.append(("T", obj.shape, obj.dtype, obj.device, first))
  elif type(obj) in (list, tuple):
    key.append((type(obj).__name__, len(obj)))
    for x in obj: _flatten(x, tensors, key)
  elif isinstance(obj, dict):
    key.append(("dict", tuple(obj)))
    for x in obj.values(): _flatten(x, tensors, key)
  elif isinstance(obj, np.ndarray):
    raise TypeError("lazygrad.jit: a numpy array argument would be captured as a constant; pass it as a Tensor")
  else:
    try: key.append(("v", type(obj), obj, hash(obj)))
    except TypeError: key.append(("id", id(obj)))
  return tuple(key)


def _root_modules(fn, args, kwargs) -> list:
  """Modules the function can reach directly: itself, its __self__, closure cells, arguments, globals it names."""
  found = {}
  def add(o):
    if isinstance(o, Module): found.setdefault(id(o), o)
  add(fn); add(getattr(fn, "__self__", None))
  func = getattr(fn, "__func__", fn)
  for cell in getattr(func, "__closure__", None) or ():
    try: add(cell.cell_contents)
    except ValueError: pass
  code, glob = getattr(func, "__code__", None), getattr(func, "__globals__", {})
  for name in (code.co_names if code is not None else ()): add(glob.get(name))
  for a in (*args, *kwargs.values()):
    if isinstance(a, (list, tuple)):
      for x in a: add(x)
    else: add(a)
  return list(found.values())


def _realize_and_detach(rets: list[Tensor]) -> None:
  """Realize the returned tensors, then drop their autograd graph, as on a replay: every call returns the same kind of
  value, and a loss kept by the caller does not hold the step's graph (which would change the next step's in-place
  writes)."""
  if any(not t.node.realized for t in rets): rets[0].realize(*rets[1:])
  for t in rets:
    if t.requires_grad and not t.is_leaf:
      n = t.node
      t.node = Node(Ops.BUFFER, (), None, n.shape, n.dtype, n.device)
      t.node.buffer, t.node.st = n.buffer, n.st


def _returned(out, name: str) -> list[Tensor]:
  """The Tensors in a return value (Tensors, None, lists/tuples/dicts of them); TypeError for anything else."""
  found = []
  def walk(o):
    if isinstance(o, Tensor): found.append(o)
    elif type(o) in (list, tuple): [walk(x) for x in o]
    elif isinstance(o, dict): [walk(x) for x in o.values()]
    elif o is not None:
      raise TypeError(f"lazygrad.jit: {name} returned a {type(o).__name__}; a jitted function returns Tensors (in lists, "
                      "tuples or dicts) or None: a replay would not compute a Python value")
  walk(out)
  return found


# ---- the scans of live Tensors (once per recorded call)
def _scan() -> list:
  """Every live Tensor with its node and grad now (weakly held)."""
  out = []
  for o in gc.get_objects():
    if issubclass(type(o), Tensor):   # not isinstance: some module proxies answer __class__ lookups noisily
      g = o.grad
      out.append((weakref.ref(o), weakref.ref(o.node), weakref.ref(g) if g is not None else None, o))
  return [(r, n, g) for r, n, g, _ in out]


def _holders(start: list) -> dict:
  """id(Buffer) -> candidate holders (weakref Tensor, 'node' | 'grad', st, weakref Buffer) at the call's start."""
  out: dict = {}
  for ref, nref, gref in start:
    t, n = ref(), nref()
    if t is None or n is None: continue
    if n.buffer is not None: out.setdefault(id(n.buffer), []).append((ref, "node", n.st, weakref.ref(n.buffer)))
    g = gref() if gref is not None else None
    if g is not None and g.node.buffer is not None:
      out.setdefault(id(g.node.buffer), []).append((ref, "grad", g.node.st, weakref.ref(g.node.buffer)))
  return out


def _pick_holders(holders: dict, rec: Recorder) -> dict:
  """For each external buffer of the record, the holder a replay resolves it through: a parameter's .grad first
  (a new gradient is a new Tensor), then a live base Tensor, then any live one."""
  out = {}
  for info in rec.buffers:
    buf = info.strong
    if buf is None or id(buf) not in holders: continue
    alive = [h for h in holders[id(buf)] if h[3]() is buf and h[0]() is not None]
    if not alive: continue
    def score(h):
      t = h[0]()
      return (h[1] == "grad", t._base is None)
    ref, attr, st, _ = max(alive, key=score)
    out[id(buf)] = (ref, attr, st)
  return out


def _changes(start: list) -> tuple[list, list]:
  """(Tensors alive at the start whose node or grad the call changed: [(Tensor, attr, final value)]; lazy Tensors made
  by the call and still alive)."""
  changed, before = [], set()
  for ref, nref, gref in start:
    t = ref()
    if t is None: continue
    before.add(id(t))
    if t.node is not nref(): changed.append((t, "node", t.node))
    if t.grad is not (gref() if gref is not None else None): changed.append((t, "grad", t.grad))
  fresh = [o for o in gc.get_objects() if issubclass(type(o), Tensor) and id(o) not in before and not o.node.realized]
  return changed, fresh


# ---- return values
def _return_template(out, tensors: list, start: list, rec: Recorder):
  """The return value with each Tensor replaced by ('arg', i), ('obj', weakref) for a Tensor alive at the start (returned
  as itself), or ('new', value id, st, node, shape, dtype, device)."""
  old = {id(r()) for r, _, _ in start if r() is not None}
  def walk(o):
    if isinstance(o, Tensor):
      for i, t in enumerate(tensors):
        if t is o: return ("arg", i)
      if id(o) in old: return ("obj", weakref.ref(o))
      n = o.node
      return ("new", rec.current_value(n.buffer), n.st, n, n.shape, n.dtype, n.device)
    if type(o) in (list, tuple): return (type(o), [walk(x) for x in o])
    if isinstance(o, dict): return (dict, {k: walk(v) for k, v in o.items()})
    return None
  return walk(out)


def _leaves(tpl) -> list:
  if tpl is None: return []
  if tpl[0] in (list, tuple): return [x for t in tpl[1] for x in _leaves(t)]
  if tpl[0] is dict: return [x for t in tpl[1].values() for x in _leaves(t)]
  return [tpl]


def _strip_nodes(tpl):
  """The template without the recorded call's nodes (a replay makes new ones)."""
  if tpl is None: return None
  if tpl[0] in (list, tuple): return (tpl[0], [_strip_nodes(t) for t in tpl[1]])
  if tpl[0] is dict: return (dict, {k: _strip_nodes(v) for k, v in tpl[1].items()})
  if tpl[0] == "new": return ("new", tpl[1], tpl[2], None, *tpl[4:])
  return tpl


def _rebuild(tpl, tensors: list, bufs: list):
  """The replay's return value: new Tensors over this replay's buffers, arguments and old Tensors as themselves."""
  if tpl is None: return None
  kind = tpl[0]
  if kind in (list, tuple): return kind(_rebuild(t, tensors, bufs) for t in tpl[1])
  if kind is dict: return {k: _rebuild(v, tensors, bufs) for k, v in tpl[1].items()}
  if kind == "arg": return tensors[tpl[1]]
  if kind == "obj":
    t = tpl[1]()
    if t is None: raise RuntimeError("lazygrad.jit: a returned tensor is gone")
    return t
  _, vid, st, _, shape, dtype, device = tpl
  node = Node(Ops.BUFFER, (), None, shape, dtype, device)
  node.buffer, node.st = bufs[vid], st
  return Tensor._from_node(node)
jit.host_call = host_call   # the host-call API as lazygrad.jit.host_call (runtime/record.py)
