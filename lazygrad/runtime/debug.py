"""Debugging a run (runtime/executor.py calls these): DEBUG=3's per-kernel explanation,
GRAPH=1's Graphviz dot of the schedule, VERIFY=1's check of a Triton kernel against numpy."""
from __future__ import annotations
import os
import numpy as np
from lazygrad.ops import Ops, toposort
from lazygrad.runtime import get_device
from lazygrad.runtime.errors import ErrorFlags


def explain(it) -> str:
  """DEBUG=3: what a kernel fused, and why each of its inputs is a buffer rather than fused."""
  why = it.reason.value if it.reason is not None else "?"
  lines = [f"  {it.kernel.name} -> {list(it.shape)} {it.out.dtype.name}  [own kernel: {why}]", f"    computes {_graph_text(it)}"]
  for i, (n, r) in enumerate(zip(it.inputs, it.reasons)):
    lines.append(f"    in{i + 1} {list(n.shape)} {n.dtype.name}: {r.value}")
  return "\n".join(lines)


def _graph_text(it) -> str:
  """The fused expression of a kernel (DEBUG=3): each reduce named once (r0 = sum(...)), and
  each subexpression used more than once named once (t0 = ...), so the text stays linear in
  the kernel's size; then the expression over them."""
  order = it.kernel.body.walk()
  users: dict[int, int] = {}
  for e in order:
    for s_ in e.srcs: users[id(s_)] = users.get(id(s_), 0) + 1
  names: dict[int, str] = {}
  parts = []
  def show(e):
    if id(e) in names: return names[id(e)]
    if e.op is Ops.LOAD: return f"in{e.arg[0]}"
    if e.op is Ops.CONST: return repr(e.arg)
    return f"{e.op.name.lower()}({', '.join(show(s_) for s_ in e.srcs)})"
  for e in order:
    if e.op is Ops.REDUCE:
      text = f"{'sum' if e.arg[0] is Ops.ADD else 'max'}{list(e.arg[1])}({show(e.srcs[0])})"
      names[id(e)] = f"r{sum(1 for n in names.values() if n[0] == 'r')}"
    elif e.srcs and users.get(id(e), 0) > 1 and e is not it.kernel.body:
      text = show(e)
      names[id(e)] = f"t{sum(1 for n in names.values() if n[0] == 't')}"
    else: continue
    parts.append(f"{names[id(e)]} = {text}")
  return "; ".join(parts + [show(it.kernel.body)])


_dot_count = 0

def write_dot(sched) -> str:
  """GRAPH=1: the scheduled graph as Graphviz dot, one colour per kernel (file path printed)."""
  global _dot_count
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


def verify(it, buf, arrays) -> None:
  """VERIFY=1: re-run a Triton device's kernel with the numpy renderer on the same inputs
  and stop at the first kernel that disagrees (shows its source): finds codegen bugs."""
  ref = arrays[0]   # the output buffer as it was before the launch (an in-place assign reads it)
  cpu = get_device("cpu")
  # its own error buffer: the numpy rerun's bounds checks must not reach the cpu device's (the Triton kernel's count)
  with np.errstate(all='ignore'): cpu.compile(it.kernel)(arrays, it.var_values, 0, ErrorFlags(cpu))
  got = buf.numpy()
  tol = 1e-2 if it.kernel.buf_dtypes[0].itemsize < 4 else 1e-4
  if not np.allclose(got.astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol, equal_nan=True):
    raise RuntimeError(f"VERIFY: kernel {it.kernel.name} {it.kernel.shape} differs from the numpy renderer by "
                       f"{np.nanmax(np.abs(got.astype(np.float64) - ref.astype(np.float64)))}\n{it.source}")
