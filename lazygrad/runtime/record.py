"""What lazygrad.jit captures of one call: while a Recorder is active (in this thread), the executor reports every kernel it runs
(the Compiled function, its input and output buffers, the RAND vars, the in-place flag, the bounds-check slot) and
every node it marks realized; code that keeps Python state the kernels do not carry records a host call.

The record is in values, not buffers: each kernel output is a new value, and an in-place write into a buffer makes a
new version of that buffer's value (a replay writes it elsewhere). A buffer read before any captured kernel wrote it
is *external* (version 0): the jit later finds what holds it (an argument, a live Tensor, nothing). The recorder holds
external buffers strongly (a const must outlive the call) and the buffers kernels wrote only weakly, so that after
the call a written buffer still alive is an output and a dead one a temporary (runtime/replay.py plans those).

Host calls: `host_call(fn, buffers)` records `fn(current_buffers)` at this point between the kernels; a replay calls
it again at the same point with the Buffers the replay uses for those values (the optimizer rewrites its
hyperparameter buffer and advances its step counts this way; an all-reduce of gradient buffers between kernels
would be one too). Outside a capture it does nothing. `host_read` is what Tensor.numpy/item/tolist call: inside a
capture a read of a value on the host raises (a replay does not run the Python that would use it)."""
from __future__ import annotations
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from lazygrad.runtime import get_device

class _Current(threading.local):
  """The capture in progress in this thread (lazygrad.jit sets it around a recorded call): another thread's
  realizes are never recorded into it."""
  recorder: Optional["Recorder"] = None


_current = _Current()


def active() -> Optional["Recorder"]:
  """This thread's capture in progress, or None."""
  return _current.recorder


def set_active(rec: Optional["Recorder"]) -> None:
  """Start (a Recorder) or end (None) this thread's capture."""
  _current.recorder = rec


def host_call(fn: Callable[[list], None], buffers: tuple = ()) -> None:
  """Record fn(buffers) for replay (no-op outside a capture); see the module docstring."""
  rec = _current.recorder
  if rec is not None: rec.host(fn, buffers)


def host_read(tensor, what: str) -> None:
  """Called by the Tensor methods that read values on the host: inside a capture they raise RuntimeError."""
  current = _current.recorder
  if current is not None:
    raise RuntimeError(f"lazygrad.jit: {current.name} reads a tensor value on the host ({what} of a tensor of shape "
                       f"{tuple(tensor.shape)}) while being captured; a replay would not run that Python again. Move the "
                       "read outside the jitted function (return the tensor and read it there)")


def write_buffer(buf, values) -> None:
  """Copy a numpy array of buf.size elements into an existing Buffer (numpy or torch storage)."""
  src = get_device(buf.device).from_numpy(values, buf.dtype).data
  buf.data[...] = src


@dataclass
class KernelStep:
  """One captured launch: inputs and output as value ids, the RAND (seed, counter) pairs, the error slot base."""
  fn: Any
  kernel: Any
  device: str
  out: int
  ins: tuple
  in_place: bool
  rand: tuple          # ((seed, counter), ...) as launched
  err_base: int


@dataclass
class HostStep:
  """A recorded host call and the value ids of the buffers it is given."""
  fn: Callable
  vids: tuple


@dataclass
class ChecksStep:
  """The start (items: stand-ins for the schedule's items) or the end (items None) of a schedule with error buffers."""
  items: Optional[tuple]


@dataclass
class Value:
  """One value: an external buffer's contents at the call's start (producer -1) or what step `producer` wrote."""
  bid: int             # which buffer (index into Recorder.buffers)
  producer: int
  size: int
  dtype: Any
  device: str


@dataclass
class BufferInfo:
  """A buffer seen in the call: weakly held unless external (then `strong` holds it until the jit has classified it:
  only a const stays held, so the record never changes the scheduler's in-place decisions of later calls); its
  values in write order."""
  ref: Any
  strong: Any
  external: bool
  versions: list = field(default_factory=list)


class _Out:
  __slots__ = ("device",)
  def __init__(self, device): self.device = device


class _ItemStub:
  """What errors.ScheduleChecks reads of a ScheduleItem (kernel, out.device, check_nodes), kept past the call."""
  __slots__ = ("kernel", "out", "check_nodes")
  def __init__(self, it): self.kernel, self.out, self.check_nodes = it.kernel, _Out(it.out.device), tuple(it.check_nodes)


class Recorder:
  """The record of one call (see the module docstring): steps, values, buffers, marks (node, buffer, st)."""
  def __init__(self, name: str):
    self.name = name
    self.steps: list = []
    self.values: list[Value] = []
    self.buffers: list[BufferInfo] = []
    self.marks: list = []          # (weakref to node, bid, st)
    self._ids: dict[int, int] = {}  # id(Buffer) -> bid

  # ---- buffers and values
  def _bid(self, buf, external: bool) -> int:
    bid = self._ids.get(id(buf))
    if bid is not None and self.buffers[bid].ref() is buf: return bid
    bid = len(self.buffers)
    self._ids[id(buf)] = bid
    self.buffers.append(BufferInfo(weakref.ref(buf), buf if external else None, external))
    if external: self._new_value(bid, buf, -1)
    return bid

  def _new_value(self, bid: int, buf, producer: int) -> int:
    self.values.append(Value(bid, producer, buf.size, buf.dtype, buf.device))
    self.buffers[bid].versions.append(len(self.values) - 1)
    return len(self.values) - 1

  def release(self, keep: set) -> None:
    """Drop the strong references to external buffers except those of the value ids in keep."""
    for vid, v in enumerate(self.values):
      if v.producer < 0 and vid not in keep: self.buffers[v.bid].strong = None

  def current_value(self, buf) -> int:
    """The value id the buffer holds now (an external value when the call has not seen it before)."""
    return self.buffers[self._bid(buf, True)].versions[-1]

  # ---- what the executor reports
  def begin_schedule(self, items) -> None:
    """A schedule starts; with kernels using error buffers its bounds checks are read at its end."""
    self._checked = any(it.kernel.uses_errors for it in items)
    if self._checked: self.steps.append(ChecksStep(tuple(_ItemStub(it) for it in items)))

  def end_schedule(self) -> None:
    """The schedule's kernels all ran and its checks passed."""
    if self._checked: self.steps.append(ChecksStep(None))

  def kernel(self, it, out_buf, in_bufs: list, err_base: int) -> None:
    """One launch of the executor (after it ran)."""
    ins = tuple(self.current_value(b) for b in in_bufs)
    bid = self._bid(out_buf, True) if it.in_place else self._bid(out_buf, False)
    out = self._new_value(bid, out_buf, len(self.steps))
    fn = get_device(it.out.device).compile(it.kernel)   # a cache hit: the function the executor just ran
    rand = tuple(tuple(n.arg) for n in it.rand_nodes)
    self.steps.append(KernelStep(fn, it.kernel, it.out.device, out, ins, it.in_place, rand, err_base))

  def mark(self, node, buf, st) -> None:
    """The executor set node.buffer = buf (view st)."""
    self.marks.append((weakref.ref(node), self._bid(buf, True), st))

  def host(self, fn: Callable, buffers: tuple) -> None:
    """A host call at this point (see host_call)."""
    self.steps.append(HostStep(fn, tuple(self.current_value(b) for b in buffers)))
