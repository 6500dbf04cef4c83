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
  """One device's error buffer (allocated on first use, at least 64 sites, grown when a schedule has more)."""
  def __init__(self, device):
    self.device, self.buffer = device, None

  def data(self, checks: int):
    """The buffer's backing array (numpy or torch) with room for `checks` sites (a new zeroed buffer if it had not)."""
    need = 1 + SLOTS_PER_CHECK * checks
    if self.buffer is None or self.buffer.size < need:
      self.buffer = self.device.from_numpy(np.zeros(max(need, 1 + SLOTS_PER_CHECK * 64), np.int64), dtypes.int64)
    return self.buffer.data

  def read(self, checks: int):
    """The first 1 + 3 * checks slots (numpy) when a check failed, else None: one small read, which waits for the
    device's queued kernels."""
    if self.buffer is None: return None
    arr = self.device.to_numpy(self.buffer)
    if not arr[0]: return None
    return np.array(arr[:1 + SLOTS_PER_CHECK * checks])

  def clear(self) -> None:
    """Forget the recorded errors (the next use allocates a zeroed buffer)."""
    self.buffer = None


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
