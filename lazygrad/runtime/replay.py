"""The replay side of lazygrad.jit: a Plan built from one recorded call (runtime/record.py) that runs the same
kernels again on new buffers, and the memory planner for its temporaries.

Every value of the record becomes a slot (design.md, "Step capture"):
  arg    an argument Tensor's buffer (by position among the flattened arguments)
  state  an external read held at the call's start by a live Tensor T (`T.node` or `T.grad`): at replay T's buffer
  const  an external read nothing held (made inside the call): the recorded buffer is kept
  output written by a kernel and still alive after the call: a fresh buffer per replay, then bound to the nodes
  temp   written and dead after the call: one of a few reused allocations (plan_memory)
A Plan that no longer fits the state (a holder died, a view changed) raises Recapture before running anything."""
from __future__ import annotations
import math
import sys
import time
from dataclasses import dataclass
import numpy as np
from lazygrad.dtype import dtypes
from lazygrad.helpers import GlobalCounters
from lazygrad.runtime import Buffer, get_device
from lazygrad.runtime.errors import ScheduleChecks
from lazygrad.runtime.record import Recorder, KernelStep, HostStep

ALIGN = 64   # bytes: every planned buffer starts at a multiple of this in its allocation


def _refs_of_argument(x) -> int:
  return sys.getrefcount(x)


# references to a buffer that Plan._writable's call itself makes (a list element, the argument, getrefcount's own)
_BASE_REFS = (lambda lst: _refs_of_argument(lst[0]))([object()])


class Recapture(Exception):
  """The captured plan does not fit the call's state (a holder is gone, a shape or view changed): capture again."""


# ---- classification of a record's values
def rand_rule(seed: int, counter: int, rng0: tuple, rng1: int) -> tuple:
  """A RAND's (seed, counter) relative to the global stream at the call's start when it was drawn in the call."""
  if seed == rng0[0] and rng0[1] <= counter < rng1: return ("rel", counter - rng0[1])
  return ("abs", seed, counter)


def external_classes(rec: Recorder, arg_ids: dict, holders: dict) -> dict:
  """vid -> ('arg', index) | ('state', holder) | ('const',) for every external value of the record.
  arg_ids: id(Buffer) -> argument index; holders: id(Buffer) -> (weakref to Tensor, attr, st)."""
  out = {}
  for vid, v in enumerate(rec.values):
    if v.producer >= 0: continue
    buf = rec.buffers[v.bid].strong
    if id(buf) in arg_ids: out[vid] = ("arg", arg_ids[id(buf)])
    elif id(buf) in holders: out[vid] = ("state", holders[id(buf)])
    else: out[vid] = ("const",)
  return out


def structure(rec: Recorder, classes: dict, rng0: tuple, rng1: int) -> tuple:
  """What two recorded calls must share for the second to be replayable: kernels, in-place flags, where each input
  comes from (argument, state, const, or which step wrote it), RAND rules, host calls and check points."""
  order = {vid: i for i, vid in enumerate(v for v in classes)}
  def ref(vid):
    v = rec.values[vid]
    if v.producer >= 0: return ("p", v.producer)
    c = classes[vid]
    return ("x", order[vid], c[0], c[1] if c[0] == "arg" else c[1][1] if c[0] == "state" else None)
  out = []
  for s in rec.steps:
    if isinstance(s, KernelStep):
      out.append(("k", s.kernel.key, s.in_place, tuple(ref(i) for i in s.ins), tuple(rand_rule(a, c, rng0, rng1) for a, c in s.rand), s.err_base))
    elif isinstance(s, HostStep): out.append(("h", getattr(s.fn, "__qualname__", ""), tuple(ref(i) for i in s.vids)))
    else: out.append(("c", s.items is None))
  return tuple(out), rng1 - rng0[1]


def const_mismatch(a: Recorder, ca: dict, b: Recorder, cb: dict) -> bool:
  """Whether a const slot (not rewritten by a host call) holds different data in two recordings of one structure:
  the function builds a tensor from Python data that changes per call, which a replay would not see."""
  hosted = {i for s in b.steps if isinstance(s, HostStep) for i in s.vids}
  va = [vid for vid, c in ca.items() if c[0] == "const"]
  vb = [vid for vid, c in cb.items() if c[0] == "const"]
  for x, y in zip(va, vb):
    if y in hosted: continue
    bx, by = a.buffers[a.values[x].bid].strong, b.buffers[b.values[y].bid].strong
    if bx.size != by.size or bx.dtype != by.dtype or not np.array_equal(bx.numpy(), by.numpy(), equal_nan=True): return True
  return len(va) != len(vb)


# ---- memory planning
def plan_memory(temps: list) -> tuple[dict, list]:
  """Greedy best-fit by lifetime. temps: (vid, first step, last step, nbytes, device), in any order.
  Returns ({vid: block}, [(device, nbytes) per block]): two values share a block only when their lifetimes
  [first, last] do not overlap; a block is as large as its largest tenant."""
  assign, blocks, busy_until = {}, [], []
  for vid, first, last, nbytes, device in sorted(temps, key=lambda t: (t[1], -t[3])):
    nbytes = -(-max(nbytes, 1) // ALIGN) * ALIGN
    free = [b for b in range(len(blocks)) if blocks[b][0] == device and busy_until[b] < first]
    fits = [b for b in free if blocks[b][1] >= nbytes]
    if fits: b = min(fits, key=lambda b: blocks[b][1])
    elif free: b = max(free, key=lambda b: blocks[b][1])   # grow the largest free block
    else:
      b = len(blocks); blocks.append([device, 0]); busy_until.append(-1)
    blocks[b][1] = max(blocks[b][1], nbytes)
    busy_until[b] = last
    assign[vid] = b
  return assign, [tuple(b) for b in blocks]


def peak_live_bytes(temps: list) -> int:
  """The largest sum of bytes of temps alive at one step (the least any plan can use)."""
  events = sorted([(f, n) for _, f, _, n, _ in temps] + [(l + 0.5, -n) for _, _, l, n, _ in temps])
  cur = best = 0
  for _, n in events:
    cur += n; best = max(best, cur)
  return best


def _view(raw, device: str, dtype, size: int):
  """size elements of dtype over the start of a raw uint8 allocation (a numpy array or a torch tensor)."""
  part = raw[:size * dtype.itemsize]
  if isinstance(raw, np.ndarray): return part.view(dtype.np)
  return part.view(get_device(device).alloc(0, dtype).dtype)   # the torch dtype the device stores dtype as


@dataclass
class Stats:
  """What a capture found: kernels per replay, slots by kind, and temporary bytes: `unplanned_bytes` (one buffer per
  temporary), `planned_bytes` (the planner's allocations), `min_bytes` (most bytes alive at once: the bound)."""
  kernels: int = 0
  slots: dict = None
  unplanned_bytes: int = 0
  planned_bytes: int = 0
  min_bytes: int = 0
  replays: int = 0
  in_place: int = 0    # outputs the last replay wrote into their state buffer (as the recorded call did)
  replay_s: float = 0.0
  kernel_s: float = 0.0

  def __str__(self):
    over = (self.replay_s - self.kernel_s) / max(self.replays, 1) * 1e6
    return (f"{self.kernels} kernels, slots {self.slots}, temporaries {self.unplanned_bytes} B unplanned -> "
            f"{self.planned_bytes} B planned (live at once: {self.min_bytes} B), {self.replays} replays ({self.in_place} writes "
            "in place), "
            f"{over:.1f} us/replay outside kernels")


class Plan:
  """A recorded call made replayable (see the module docstring). `run(args)` launches the kernels on the current
  buffers and returns the list of Buffers by value id; `bind(bufs)` then points the recorded nodes at them."""
  def __init__(self, rec: Recorder, classes: dict, args_st: list, alive_after: set, rng0: tuple, rng1: int, planned: bool = True):
    self.rec_name = rec.name
    self.nvalues = len(rec.values)
    self.rng_delta = rng1 - rng0[1]
    self._specs = rec.values
    self.devices = {s.device for s in rec.steps if isinstance(s, KernelStep)}
    final = {bi.versions[-1] for bi in rec.buffers if bi.versions}
    self.args, self.states, self.consts, self.outs = [], [], [], {}
    for vid, c in classes.items():
      v = rec.values[vid]
      if c[0] == "arg": self.args.append((c[1], vid, args_st[c[1]], v.size, v.dtype))
      elif c[0] == "state": self.states.append((vid, c[1], v.size, v.dtype))
      else: self.consts.append((vid, rec.buffers[v.bid].strong))
    last_use = {}
    for i, s in enumerate(rec.steps):
      for vid in (s.ins if isinstance(s, KernelStep) else s.vids if isinstance(s, HostStep) else ()): last_use[vid] = i
    temps = []
    for vid, v in enumerate(rec.values):
      if v.producer < 0: continue
      info = rec.buffers[v.bid]
      if vid in final and (info.external or vid in alive_after or info.ref() is not None): self.outs[vid] = (v.device, v.size, v.dtype)
      else: temps.append((vid, v.producer, last_use.get(vid, v.producer), v.size * v.dtype.itemsize, v.device))
    self._plan_temps(temps, planned)
    self.marks = [(ref, rec.buffers[bid].versions[-1], st) for ref, bid, st in rec.marks if ref() is not None]
    self.state_vids = {vid for vid, *_ in self.states}
    self.state_holder = {vid: holder for vid, holder, _, _ in self.states}
    self.steps = self._prepare_steps(rec, rng0, rng1)
    nk = sum(isinstance(s, KernelStep) for s in rec.steps)
    self.stats.kernels = nk
    self.stats.slots = {"arg": len(self.args), "state": len(self.states), "const": len(self.consts),
                        "output": len(self.outs), "temp": len(temps)}
    self.flops = sum(s.kernel.flops for s in rec.steps if isinstance(s, KernelStep))

  def _plan_temps(self, temps: list, planned: bool) -> None:
    """Give every temporary its storage: views into a few planned allocations, or (planned=False) one buffer each."""
    self.stats = Stats(unplanned_bytes=sum(t[3] for t in temps), min_bytes=peak_live_bytes(temps))
    self.temp_bufs = {}
    if not planned:
      for vid, _, _, _, _ in temps:
        v = self._specs[vid]
        self.temp_bufs[vid] = Buffer(v.device, v.size, v.dtype)
      self.stats.planned_bytes = self.stats.unplanned_bytes
      return
    assign, blocks = plan_memory(temps)
    raws = [get_device(dev).alloc(n, dtypes.uint8) for dev, n in blocks]
    self.stats.planned_bytes = sum(n for _, n in blocks)
    for vid, _, _, _, _ in temps:
      v = self._specs[vid]
      self.temp_bufs[vid] = Buffer(v.device, v.size, v.dtype, _view(raws[assign[vid]], v.device, v.dtype, v.size))

  def _prepare_steps(self, rec: Recorder, rng0: tuple, rng1: int) -> list:
    out = []
    for s in rec.steps:
      if isinstance(s, KernelStep):
        rules = tuple(rand_rule(a, c, rng0, rng1) for a, c in s.rand)
        empty = not (math.prod(s.kernel.shape) or rec.values[s.out].size)   # the executor launches nothing either
        alloc = self.outs.get(s.out)
        if alloc is not None and s.in_place: alloc = (alloc, self._in_place_target(rec, s))
        elif alloc is not None: alloc = (alloc, None)
        out.append(("k", s.fn, s.out, s.ins, rules, s.err_base, alloc, empty))
      elif isinstance(s, HostStep): out.append(("h", s.fn, s.vids))
      else: out.append(("c", s.items))
    return out

  def _in_place_target(self, rec: Recorder, s: KernelStep):
    """(state value id, weakrefs to the nodes the plan binds to the output) for a captured in-place write into a
    state slot's buffer, which a replay repeats when nothing else holds that buffer; else None."""
    first = rec.buffers[rec.values[s.out].bid].versions[0]
    if first not in self.state_vids or first not in s.ins: return None
    return first, [ref for ref, vid, _ in self.marks if vid == s.out]

  def _writable(self, buf, target) -> bool:
    """Whether a state buffer may be overwritten: referenced only by this replay's list and by nodes the plan rebinds
    (its holder's, the views marked on it). A caller's detach() or an older value sharing it makes a fresh buffer."""
    nodes = {id(n): n for n in (r() for r in target[1]) if n is not None and n.buffer is buf}
    holder = self.state_holder[target[0]]
    t = holder[0]()
    if t is not None and holder[1] == "grad": t = t.grad
    if t is not None and t.node.buffer is buf: nodes[id(t.node)] = t.node
    return sys.getrefcount(buf) - _BASE_REFS <= len(nodes)

  def resolve(self, args: list) -> list:
    """The buffers of the arg, state, const and temp slots for this call (Recapture when one does not fit)."""
    bufs = [None] * self.nvalues
    for i, vid, st, size, dtype in self.args:
      if not args[i].node.realized: args[i].realize()
      n = args[i].node
      if n.st != st or n.buffer.size != size or n.buffer.dtype != dtype: raise Recapture(f"argument {i} has another layout")
      if bufs[vid] is not None and bufs[vid] is not n.buffer: raise Recapture("arguments that shared a buffer no longer do")
      bufs[vid] = n.buffer
    for vid, (ref, attr, st), size, dtype in self.states:
      t = ref()
      if t is not None and attr == "grad": t = t.grad
      if t is None: raise Recapture("a tensor the capture read is gone")
      if not t.node.realized: t.realize()
      n = t.node
      if n.st != st or n.buffer.size != size or n.buffer.dtype != dtype: raise Recapture("a tensor the capture read changed its layout")
      bufs[vid] = n.buffer
    for vid, buf in self.consts: bufs[vid] = buf
    for vid, buf in self.temp_bufs.items(): bufs[vid] = buf
    return bufs

  def run(self, args: list, rng) -> list:
    """Resolve the slots, launch every kernel and host call in order, read the bounds checks; the Buffers by value
    id. rng: the global random stream (seed, counter at this call's start: the RAND vars are relative to it)."""
    t0 = time.perf_counter()
    bufs = self.resolve(args)
    datas = [b.data if b is not None else None for b in bufs]
    seed, c0 = rng.seed, rng.counter
    checks, kt, in_place = None, 0.0, 0
    try:
      with np.errstate(all="ignore"):
        for step in self.steps:
          kind = step[0]
          if kind == "k":
            _, fn, out, ins, rules, err_base, alloc, empty = step
            if alloc is not None:
              spec, target = alloc
              if target is not None and self._writable(bufs[target[0]], target): b, in_place = bufs[target[0]], in_place + 1
              else: b = Buffer(*spec)
              bufs[out], datas[out] = b, b.data
            if empty: continue
            vars_ = tuple(x for r in rules for x in ((seed, c0 + r[1]) if r[0] == "rel" else r[1:])) if rules else ()
            t = time.perf_counter()
            fn([datas[out], *[datas[i] for i in ins]], vars_, err_base)
            kt += time.perf_counter() - t
          elif kind == "h": step[1]([bufs[i] for i in step[2]])
          elif step[1] is not None: checks = ScheduleChecks(step[1], get_device)
          else: checks.finish(); checks = None
    except BaseException:
      if checks is not None: checks.abort()
      raise
    for dev in self.devices: get_device(dev).synchronize()
    GlobalCounters.kernel_count += self.stats.kernels
    GlobalCounters.global_ops += self.flops
    GlobalCounters.time_sum_s += kt
    self.stats.replays += 1
    self.stats.in_place = in_place
    self.stats.replay_s += time.perf_counter() - t0
    self.stats.kernel_s += kt
    return bufs

  def bind(self, bufs: list) -> None:
    """Point every recorded node still alive at this replay's buffer of its value."""
    for ref, vid, st in self.marks:
      n = ref()
      if n is not None: n.buffer, n.st = bufs[vid], st


__all__ = ["Plan", "Recapture", "plan_memory", "peak_live_bytes", "structure", "external_classes", "const_mismatch", "Stats"]
