"""The executor: run a schedule. Allocate buffers, compile each kernel on its device (the
device returns the renderer's program and a function running it), launch, then mark the
nodes realized. DEBUG=1..4, GRAPH=1 and VERIFY=1 tooling is in runtime/debug.py."""
from __future__ import annotations
import math
import time
import numpy as np
from lazygrad.ops import Node, Ops
from lazygrad.ops.view import ShapeTracker
from lazygrad.runtime import Buffer, get_device
from lazygrad.runtime.debug import explain, verify, write_dot
from lazygrad.runtime.errors import ScheduleChecks
from lazygrad.runtime import record
from lazygrad.scheduler import create_schedule, Schedule, assign_value_aliased
from lazygrad.helpers import GlobalCounters, DEBUG, getenv


def realize_nodes(nodes: list[Node]) -> None:
  """Schedule and run what realizes nodes (already realized ones are skipped)."""
  sched = create_schedule(nodes)
  if sched.items or sched.views: run_schedule(sched)


def run_schedule(sched: Schedule) -> None:
  """Run a schedule: per item allocate the output (or write in place), compile on the node's device, launch; then
  set buffers on the roots, aliases and views. GRAPH=1, VERIFY=1 and DEBUG as in runtime/debug.py.

  Bounds checks (Ops.CHECK) record out-of-range indices in their device's error buffer; it is read once, after the
  last kernel (no sync per kernel), and a failure raises IndexError (runtime/errors.py) naming the op, the value,
  the size and the user's line. Such a realize changes nothing: no node is marked realized (realizing them again
  reruns the schedule and raises again), the buffers it allocated are dropped, and no realized buffer was written
  (an ASSIGN after the checks is guarded, one before them writes a fresh buffer)."""
  t0 = time.perf_counter()
  if getenv("GRAPH", 0): write_dot(sched)   # before the run: realized nodes forget their sources
  out_bufs: dict[int, Buffer] = {}
  checks = ScheduleChecks(sched.items, get_device)
  rec = record.active()   # lazygrad.jit capturing a call: each launch is reported (runtime/record.py)
  if rec is not None: rec.begin_schedule(sched.items)
  try:
    for it in sched.items:
      base = checks.base(it)
      out_bufs[id(it.out)] = _run_item(it, out_bufs, base)
      if rec is not None: rec.kernel(it, out_bufs[id(it.out)], [n.buffer if n.realized else out_bufs[id(n)] for n in it.inputs], base)
    checks.finish()
    if rec is not None: rec.end_schedule()
  except BaseException:
    checks.abort()
    raise
  for it in sched.items:
    value = it.out.srcs[1] if it.out.op is Ops.ASSIGN else None
    _mark_realized(it.out, out_bufs[id(it.out)], ShapeTracker.from_shape(it.out.shape))
    if value is not None and assign_value_aliased(it.out, value) and id(value) not in out_bufs:
      # the value an ASSIGN stored is that buffer: a tensor still holding it reads it there, never recomputing it
      # from the target's old contents (which an in-place write replaced)
      _mark_realized(value, out_bufs[id(it.out)], ShapeTracker.from_shape(value.shape))
  for dup, same in sched.aliases:
    _mark_realized(dup, same.buffer, same.st)
  for node, base in sched.views:
    st = base.st
    n, mops = node, []
    while n is not base:
      mops.append((n.op, n.arg)); n = n.srcs[0]
    for op, arg in reversed(mops): st = st.apply(op.name, arg)
    _mark_realized(node, base.buffer, st)
  if sched.items: get_device(sched.items[-1].out.device).synchronize()
  if DEBUG() >= 1:
    print(f"realize: {len(sched.items)} kernels, {len(sched.views)} views, {(time.perf_counter() - t0) * 1e3:.2f} ms")


def _run_item(it, out_bufs: dict, err_base: int) -> Buffer:
  """Allocate the item's output (or take its target's buffer, in place), compile and launch its kernel; the output."""
  node = it.out
  dev = get_device(node.device)
  buf = node.srcs[0].buffer if it.in_place else Buffer(node.device, math.prod(node.shape), node.dtype)
  ins = [n.buffer if n.realized else out_bufs[id(n)] for n in it.inputs]
  fn = dev.compile(it.kernel)
  it.program = fn.program
  if DEBUG() >= 3: print(explain(it))
  check = getenv("VERIFY", 0) and node.device != "cpu"
  if check: before = [buf.numpy().copy()] + [b.numpy().copy() for b in ins]
  t = time.perf_counter()
  if math.prod(it.kernel.shape) or math.prod(node.shape):
    with np.errstate(all='ignore'):
      fn([buf.data] + [b.data for b in ins], it.var_values, err_base)
  if check: verify(it, buf, before)
  if DEBUG() >= 2: dev.synchronize()   # per-kernel times; otherwise the GPU runs ahead until read-back
  _count(it, fn.config, buf, ins, time.perf_counter() - t)
  return buf


def _mark_realized(node: Node, buf: Buffer, st: ShapeTracker) -> None:
  node.buffer, node.st = buf, st
  rec = record.active()
  if rec is not None: rec.mark(node, buf, st)
  # a realized value that no gradient will flow through forgets how it was made,
  # so the graph behind it can be freed; an ASSIGN is always a fresh leaf
  if not node.requires_grad or node.op is Ops.ASSIGN:
    node.srcs = ()


def _count(it, config, buf, ins, dt):
  GlobalCounters.kernel_count += 1
  GlobalCounters.global_ops += it.kernel.flops
  mem = buf.nbytes + sum(b.nbytes for b in ins)
  GlobalCounters.global_mem += mem
  GlobalCounters.time_sum_s += dt
  if DEBUG() >= 2:   # the launch config in use (Triton: grid, block sizes, warps); numpy has none
    grid = config.grid if config is not None else None
    print(f"  {it.kernel.name:<40} {str(it.kernel.shape):<20} grid {str(grid or '-'):<10} {dt * 1e6:9.1f} us "
          f"{mem / max(dt, 1e-9) / 1e9:8.2f} GB/s {it.kernel.flops / max(dt, 1e-9) / 1e9:8.2f} GFLOP/s")
  if DEBUG() >= 4: print(it.source)
