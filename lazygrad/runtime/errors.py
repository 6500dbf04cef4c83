"""Bounds checks at run time: each device's error buffer, which the CHECK ops of a schedule's kernels write
(only when an index is out of range), and the IndexError the executor raises after reading it once per schedule.

Layout (int64): slot 0 is set when any check failed (guarded ASSIGN kernels then write nothing); check site s of a
schedule owns slots 1 + 3s .. 3 + 3s: flags (1: a value >= hi, 2: a value < lo), the largest value >= hi, the
smallest value < lo. The buffer stays zero while nothing fails, so a schedule never clears it; after a failure the
executor drops it and the next schedule gets a fresh zeroed one."""
from __future__ import annotations
import numpy as np
from lazygrad.dtype import dtypes

SLOTS_PER_CHECK = 3


class ErrorFlags:
  """One device's error buffer (allocated on first use, at least 64 sites, grown when a schedule has more). `dirty`:
  a kernel was given it since it was last read or cleared (a launch outside the executor, a failed run): its
  contents are stale, and the executor clears it before a schedule that uses it."""
  def __init__(self, device):
    self.device, self.buffer, self.dirty = device, None, False

  def data(self, checks: int):
    """The buffer's backing array (numpy or torch) with room for `checks` sites, for a launch (marks it dirty)."""
    need = 1 + SLOTS_PER_CHECK * checks
    if self.buffer is None or self.buffer.size < need:
      self.buffer = self.device.from_numpy(np.zeros(max(need, 1 + SLOTS_PER_CHECK * 64), np.int64), dtypes.int64)
    self.dirty = True
    return self.buffer.data

  def read(self, checks: int):
    """The first 1 + 3 * checks slots (numpy) when a check failed, else None: one small read, which waits for the
    device's queued kernels."""
    self.dirty = False
    if self.buffer is None: return None
    arr = self.device.to_numpy(self.buffer)
    if not arr[0]: return None
    return np.array(arr[:1 + SLOTS_PER_CHECK * checks])

  def clear(self) -> None:
    """Forget the recorded errors (the next use allocates a zeroed buffer)."""
    self.buffer, self.dirty = None, False


class ScheduleChecks:
  """The executor's bookkeeping of one schedule's bounds checks: the sites per device in slot order, each kernel's
  first slot (`base`), the one read at the end (`finish`), and `abort` when the run fails."""
  def __init__(self, items, get_device):
    self.sites: dict[str, list] = {}   # device -> [(CHECK node, kernel name)]
    used = set()
    for it in items:
      if it.kernel.uses_errors: used.add(it.out.device)
      self.sites.setdefault(it.out.device, []).extend((n, it.kernel.name) for n in it.check_nodes)
    self.sites = {d: s for d, s in self.sites.items() if s}
    self.flags = {d: get_device(d).errors for d in used}
    for d, f in self.flags.items():
      if f.dirty: f.clear()                         # stale records (a launch outside the executor): start clean
      f.data(len(self.sites.get(d, ())))            # room for every site before the first launch
    self.next = dict.fromkeys(self.sites, 0)

  def base(self, it) -> int:
    """The first error slot of the item's kernel (its checks take the next ones)."""
    d = it.out.device
    b = self.next.get(d, 0)
    if it.kernel.checks: self.next[d] += it.kernel.checks
    return b

  def finish(self) -> None:
    """Read each device's error buffer once (after the last kernel) and raise the first failed site's IndexError."""
    for d, f in self.flags.items():
      flags = f.read(len(self.sites.get(d, ())))
      if flags is None: continue
      f.clear()
      err = index_error(flags, self.sites.get(d, []))
      # no site of this schedule failed, yet the flag is set: guarded kernels may have skipped their writes
      raise err if err is not None else RuntimeError("bounds check: the error flag was set by no check of this schedule")

  def abort(self) -> None:
    """A failed run: whatever its kernels recorded is dropped."""
    for f in self.flags.values(): f.clear()


def index_error(flags: np.ndarray, sites: list) -> IndexError | None:
  """The IndexError for the failed checks among sites [(CHECK node, kernel name)] (in slot order), naming the first
  site the program built (CheckSite.seq): op, value, size, valid range, the user's line, the kernel. None when no site
  of this schedule failed (a stale flag)."""
  hits = []
  for i, (node, kernel) in enumerate(sites):
    f, big, small = (int(v) for v in flags[1 + SLOTS_PER_CHECK * i: 1 + SLOTS_PER_CHECK * (i + 1)])
    if f: hits.append((node, kernel, big if f & 1 else small))
  if not hits: return None
  node, kernel, value = min(hits, key=lambda h: h[0].origin.seq if h[0].origin is not None else 0)
  others = len({id(h[0]) for h in hits} - {id(node)})   # a check fused into two kernels fails in both: one site
  lo, hi = node.arg
  site = node.origin
  op, what, where = (site.op, site.what, site.where) if site is not None else ("index", "index", "<unknown>")
  dim = f" for dim {site.dim}" if site is not None and site.dim is not None else ""
  more = f"; {others} more check(s) failed" if others else ""
  return IndexError(f"{op}: {what} {value} is out of bounds{dim} with size {hi} (valid range [{lo}, {hi})); "
                    f"built at {where}, checked in kernel {kernel}{more}")
