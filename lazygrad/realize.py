"""Run a schedule: allocate buffers, compile and launch kernels, then mark nodes realized."""
from __future__ import annotations
import math
import time
import numpy as np
from lazygrad.ops import Node, Ops
from lazygrad.ops.view import ShapeTracker
from lazygrad.runtime import Buffer, get_device
from lazygrad.scheduler import create_schedule, Schedule
from lazygrad.helpers import GlobalCounters, DEBUG


def realize_nodes(nodes: list[Node]) -> None:
  sched = create_schedule(nodes)
  if sched.items or sched.views: run_schedule(sched)


def run_schedule(sched: Schedule) -> None:
  t0 = time.perf_counter()
  out_bufs: dict[int, Buffer] = {}
  for it in sched.items:
    node = it.out
    dev = get_device(node.device)
    buf = node.srcs[0].buffer if it.in_place else Buffer(node.device, math.prod(node.shape), node.dtype)
    ins = [n.buffer if n.realized else out_bufs[id(n)] for n in it.inputs]
    fn = dev.compile(it.kernel)
    t = time.perf_counter()
    if math.prod(it.kernel.shape) or math.prod(node.shape):
      with np.errstate(all='ignore'):
        fn([buf.data] + [b.data for b in ins], it.var_values)
    dev.synchronize()
    dt = time.perf_counter() - t
    out_bufs[id(node)] = buf
    _count(it, buf, ins, dt)
  for it in sched.items:
    _mark_realized(it.out, out_bufs[id(it.out)], ShapeTracker.from_shape(it.out.shape))
  for dup, same in sched.aliases:
    _mark_realized(dup, same.buffer, same.st)
  for node, base in sched.views:
    st = base.st
    n, mops = node, []
    while n is not base:
      mops.append((n.op, n.arg)); n = n.srcs[0]
    for op, arg in reversed(mops): st = st.apply(op.name, arg)
    _mark_realized(node, base.buffer, st)
  if DEBUG() >= 1:
    print(f"realize: {len(sched.items)} kernels, {len(sched.views)} views, {(time.perf_counter() - t0) * 1e3:.2f} ms")


def _mark_realized(node: Node, buf: Buffer, st: ShapeTracker) -> None:
  node.buffer, node.st = buf, st
  # a realized value that no gradient will flow through forgets how it was made,
  # so the graph behind it can be freed; an ASSIGN is always a fresh leaf
  if not node.requires_grad or node.op is Ops.ASSIGN:
    node.srcs = ()


def _count(it, buf, ins, dt):
  GlobalCounters.kernel_count += 1
  GlobalCounters.global_ops += it.kernel.flops
  mem = buf.nbytes + sum(b.nbytes for b in ins)
  GlobalCounters.global_mem += mem
  GlobalCounters.time_sum_s += dt
  if DEBUG() >= 2:
    print(f"  {it.kernel.name:<40} {str(it.kernel.shape):<20} {dt * 1e6:9.1f} us {mem / max(dt, 1e-9) / 1e9:8.2f} GB/s")
  if DEBUG() >= 4: print(it.kernel.source)
