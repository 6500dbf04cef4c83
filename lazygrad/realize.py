"""Run a schedule: allocate buffers, compile and launch kernels, then mark nodes realized."""
from __future__ import annotations
import math
import time
import numpy as np
from lazygrad.ops import Node, Ops
from lazygrad.ops.view import ShapeTracker
from lazygrad.runtime import Buffer, get_device
from lazygrad.scheduler import create_schedule, Schedule
from lazygrad.helpers import GlobalCounters, DEBUG, getenv


def realize_nodes(nodes: list[Node]) -> None:
  sched = create_schedule(nodes)
  if sched.items or sched.views: run_schedule(sched)


def run_schedule(sched: Schedule) -> None:
  t0 = time.perf_counter()
  if getenv("GRAPH", 0): write_dot(sched)   # before the run: realized nodes forget their sources
  out_bufs: dict[int, Buffer] = {}
  for it in sched.items:
    node = it.out
    dev = get_device(node.device)
    buf = node.srcs[0].buffer if it.in_place else Buffer(node.device, math.prod(node.shape), node.dtype)
    ins = [n.buffer if n.realized else out_bufs[id(n)] for n in it.inputs]
    fn = dev.compile(it.kernel)
    if DEBUG() >= 3: print(_explain(it))
    verify = getenv("VERIFY", 0) and node.device != "cpu"
    if verify: before = [buf.numpy().copy()] + [b.numpy().copy() for b in ins]
    t = time.perf_counter()
    if math.prod(it.kernel.shape) or math.prod(node.shape):
      with np.errstate(all='ignore'):
        fn([buf.data] + [b.data for b in ins], it.var_values)
    if verify: _verify(it, buf, before)
    if DEBUG() >= 2: dev.synchronize()   # per-kernel times; otherwise the GPU runs ahead until read-back
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
  if sched.items: get_device(sched.items[-1].out.device).synchronize()
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
    grid = getattr(it.kernel, "grid", None)
    print(f"  {it.kernel.name:<40} {str(it.kernel.shape):<20} grid {str(grid or '-'):<10} {dt * 1e6:9.1f} us "
          f"{mem / max(dt, 1e-9) / 1e9:8.2f} GB/s {it.kernel.flops / max(dt, 1e-9) / 1e9:8.2f} GFLOP/s")
  if DEBUG() >= 4: print(it.kernel.source)


def _explain(it) -> str:
  """DEBUG=3: what a kernel fused, and why each of its inputs is a buffer rather than fused."""
  why = it.reason.value if it.reason is not None else "?"
  lines = [f"  {it.kernel.name} -> {list(it.shape)} {it.out.dtype.name}  [own kernel: {why}]", f"    computes {_graph_text(it)}"]
  for i, (n, r) in enumerate(zip(it.inputs, it.reasons)):
    lines.append(f"    in{i + 1} {list(n.shape)} {n.dtype.name}: {r.value}")
  return "\n".join(lines)


def _graph_text(it) -> str:
  """The fused expression of a kernel (DEBUG=3): each reduce named once (r0 = sum(...)),
  then the expression over them."""
  names: dict[int, str] = {}
  parts = []
  def show(e, depth=0):
    if id(e) in names: return names[id(e)]
    if e.op is Ops.LOAD: return f"in{e.arg[0]}"
    if e.op is Ops.CONST: return repr(e.arg)
    if depth > 12: return "..."
    return f"{e.op.name.lower()}({', '.join(show(s_, depth + 1) for s_ in e.srcs)})"
  for e in it.kernel.body.walk():
    if e.op is Ops.REDUCE:
      text = f"{'sum' if e.arg[0] is Ops.ADD else 'max'}{list(e.arg[1])}({show(e.srcs[0])})"
      names[id(e)] = f"r{len(names)}"
      parts.append(f"{names[id(e)]} = {text}")
  return "; ".join(parts + [show(it.kernel.body)])


_dot_count = 0

def write_dot(sched) -> str:
  """GRAPH=1: the scheduled graph as Graphviz dot, one colour per kernel (file path printed)."""
  global _dot_count
  import os
  from lazygrad.ops import toposort
  colors = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#fabebe", "#008080"]
  owner = {}
  roots = {id(it.out) for it in sched.items}
  for k, it in enumerate(sched.items):   # a kernel owns what it computes inline
    stack = [it.out]
    while stack:
      n = stack.pop()
      if id(n) in owner or n.realized or (id(n) in roots and n is not it.out): continue
      owner[id(n)] = k
      stack.extend(n.srcs)
  nodes = toposort([it.out for it in sched.items] + [v for v, _ in sched.views], stop_at_realized=False)
  lines = ["digraph lazygrad {", "  node [shape=box, style=filled, fontname=monospace];"]
  for n in nodes:
    k = owner.get(id(n))
    color = colors[k % len(colors)] if k is not None else "#dddddd"
    label = f"{n.op.name} {n.shape}" + (f"\\n{sched.items[k].kernel.name}" if k is not None and n is sched.items[k].out else "")
    lines.append(f'  n{id(n)} [label="{label}", fillcolor="{color}"];')
    for s_ in n.srcs: lines.append(f"  n{id(s_)} -> n{id(n)};")
  lines.append("}")
  path = os.path.join(os.environ.get("GRAPH_DIR", "/tmp"), f"lazygrad_graph_{os.getpid()}_{_dot_count}.dot")
  _dot_count += 1
  with open(path, "w") as f: f.write("\n".join(lines) + "\n")
  print(f"GRAPH: wrote {path}")
  return path


def _verify(it, buf, arrays) -> None:
  """VERIFY=1: re-run a Triton device's kernel with the numpy renderer on the same inputs
  and stop at the first kernel that disagrees (shows its source): finds codegen bugs."""
  from lazygrad.kernels.numpy_render import compile_numpy
  from lazygrad.kernels.triton_render import render_triton
  ref = arrays[0]   # the output buffer as it was before the launch (an in-place assign reads it)
  with np.errstate(all='ignore'): compile_numpy(it.kernel)(arrays, it.var_values)
  got = buf.numpy()
  tol = 1e-2 if it.kernel.buf_dtypes[0].itemsize < 4 else 1e-4
  if not np.allclose(got.astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol, equal_nan=True):
    raise RuntimeError(f"VERIFY: kernel {it.kernel.name} {it.kernel.shape} differs from the numpy renderer by "
                       f"{np.nanmax(np.abs(got.astype(np.float64) - ref.astype(np.float64)))}\n{render_triton(it.kernel)}")
