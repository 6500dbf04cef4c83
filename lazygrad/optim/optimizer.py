"""Optimizer: param groups, state, zero_grad, and a step() that is one schedule and all-or-nothing.

step() builds every parameter's new value (and new optimizer state) as lazy tensors first,
checks them, then assigns them all and realizes them in ONE realize together with the
gradients and other pending values (see nn.module._PENDING). If anything raises, every
parameter and state tensor keeps its old value.

Hyperparameters reach the kernels as runtime values: each step uploads one small buffer of
the group's scalars (lr, momentum, bias corrections, ...), computed in Python double
precision as torch does. A scheduler changing lr or momentum never changes a kernel, so
compiled kernels are reused every step."""
from __future__ import annotations
import functools
import math
import weakref
from typing import Any, Callable, Iterable, Optional, Union
import numpy as np
from lazygrad.dtype import dtypes
from lazygrad.tensor import Tensor, no_grad
from lazygrad.nn.module import take_pending
from lazygrad.runtime import record

_required = object()


class Optimizer:
  """The base of SGD, Adam and AdamW, as torch.optim.Optimizer: `param_groups` (dicts of
  params and hyperparameters; a scheduler changes them), `state` (per-parameter tensors
  keyed by the parameter), zero_grad, step, state_dict, load_state_dict.

  Differs from torch in how step() runs: it builds every new parameter and state value
  lazily, then realizes them in ONE schedule together with the gradients, the loss and
  other pending values, all-or-nothing (on an error nothing changes). Hyperparameters
  travel as a small runtime buffer, so changing lr never recompiles a kernel.
  A subclass provides _scalars (the step's numbers) and _update (the formula)."""
  def __init__(self, params: Union[Iterable[Tensor], Iterable[dict]], defaults: dict):
    if isinstance(params, Tensor): raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                                                   "but got a Tensor")
    self.defaults = dict(defaults)
    self.param_groups: list[dict] = []
    # param -> state (tensors and the Python step count), keyed by the Tensor as torch's opt.state[p]
    # (safe: a dict finds a key by identity first, so Tensor.__eq__ is never called)
    self.state: dict[Tensor, dict] = {}
    params = list(params)
    if not params: raise ValueError("optimizer got an empty parameter list")
    for g in (params if isinstance(params[0], dict) else [{"params": params}]): self.add_param_group(g)

  def add_param_group(self, group: dict) -> None:
    """Add a group {'params': [...], hyperparameter: value, ...}; missing hyperparameters take the defaults.
    Raises for non-leaf params, params without requires_grad, or params already in a group."""
    if not isinstance(group, dict): raise TypeError(f"param group must be a dict, got {type(group).__name__}")
    params = group["params"]
    params = [params] if isinstance(params, Tensor) else list(params)
    for p in params:
      if not isinstance(p, Tensor): raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
      if not p.requires_grad: raise ValueError(f"optimizer: a parameter of shape {p.shape} does not require grad")
      if not p.is_leaf: raise ValueError("optimizer: can't optimize a non-leaf Tensor")
    seen = {id(p) for g in self.param_groups for p in g["params"]}
    if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
      raise ValueError("optimizer: some parameters appear more than once (in this group or in another group)")
    new = {**self.defaults, **group, "params": params}
    for k, v in new.items():
      if v is _required: raise ValueError(f"parameter group didn't specify a value of required optimization parameter {k}")
    self._check_group(new)
    self.param_groups.append(new)

  def _check_group(self, group: dict) -> None:
    """Raise ValueError for invalid hyperparameters (subclasses add their own)."""
    lr = group["lr"]
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr >= 0: raise ValueError(f"Invalid learning rate: {lr!r}")

  def zero_grad(self, set_to_none: bool = True) -> None:
    """Drop every parameter's .grad (set_to_none=False: lazy zeros instead), as torch."""
    for g in self.param_groups:
      for p in g["params"]:
        if p.grad is None: continue
        p.grad = None if set_to_none else Tensor.zeros(p.shape, dtype=p.dtype, device=p.device)

  # ---- what a subclass provides
  def _scalars(self, group: dict, step: int) -> dict[str, float]:
    """This step's scalars for a group, as Python floats (uploaded as one buffer)."""
    raise NotImplementedError

  def _update(self, p: Tensor, g: Tensor, group: dict, state: dict, h: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """(new parameter value, new state tensors) for one parameter: lazy, nothing assigned."""
    raise NotImplementedError

  # ---- the step
  def step(self, closure: Optional[Callable[[], Any]] = None):
    """Update every parameter that has a .grad, in one realize; returns closure() if given
    (torch's contract). Parameters without a gradient are skipped, as torch."""
    loss = closure() if closure is not None else None
    plan = []   # (param, grad, group, state, step)
    for group in self.param_groups:
      self._check_group(group)
      for p in group["params"]:
        if p.grad is None: continue
        g = p.grad
        if not isinstance(g, Tensor): raise TypeError(f"step: the gradient of a parameter of shape {p.shape} is a {type(g).__name__}, not a Tensor")
        if g.shape != p.shape: raise ValueError(f"step: gradient of shape {g.shape} for a parameter of shape {p.shape}")
        if g.device != p.device: raise ValueError(f"step: gradient on {g.device} for a parameter on {p.device}")
        if not g.dtype.is_float: raise TypeError(f"step: gradient of dtype {g.dtype} for a parameter of dtype {p.dtype}")
        st = self.state.get(p, {})
        plan.append((p, g, group, st, st.get("step", 0) + 1))
    if not plan: return loss
    # build every new value first (lazy; nothing changes yet)
    scalars: dict[tuple, dict[str, Tensor]] = {}
    updates = []
    with no_grad():
      for p, g, group, st, step in plan:
        sdt = dtypes.float64 if p.dtype == dtypes.float64 else dtypes.float32
        key = (id(group), step, sdt, p.device)
        if key not in scalars:
          scalars[key] = _upload(self._scalars(group, step), sdt, p.device)
          # a lazygrad.jit replay recomputes them from the group and step count of that time (lr schedules)
          record.host_call(functools.partial(self._refresh_scalars, group, p, sdt), (scalars[key]["_buffer"],))
        # detach only a gradient that has a graph (create_graph=True): a detached copy of a plain gradient would be a
        # second reader of its producer, which then stores it twice (autocast's float16 matmul, then its float32 cast)
        g = g.detach() if g.requires_grad else g
        new_p, new_state = self._update(p, g.cast(p.dtype), group, st, scalars[key])
        if new_p.shape != p.shape: raise ValueError(f"step: update of shape {new_p.shape} for a parameter of shape {p.shape}")
        updates.append((p, new_p.cast(p.dtype), st, new_state, step))
    self._commit(updates, [g for _, g, _, _, _ in plan])
    record.host_call(functools.partial(self._advance_steps, [p for p, *_ in plan]))   # a replay advances them too
    return loss

  def _refresh_scalars(self, group: dict, p: Tensor, sdt, buffers: list) -> None:
    """A lazygrad.jit replay: write this step's scalars (from the group's hyperparameters now and p's step count)
    into the buffer the captured kernels read."""
    step = self.state.get(p, {}).get("step", 0) + 1
    record.write_buffer(buffers[0], _scalar_array(self._scalars(group, step), sdt))

  def _advance_steps(self, params: list, buffers: list) -> None:
    """A lazygrad.jit replay: the step counts step() would have advanced."""
    for p in params: self.state[p]["step"] += 1

  def _commit(self, updates, grads: list[Tensor]) -> None:
    """Assign all new values and realize them in one schedule; on failure restore everything."""
    # old nodes are held weakly (the ASSIGN keeps them alive): the scheduler writes a parameter
    # in place only when nothing else references its old value (see scheduler._order_assigns)
    old_nodes, targets, new_states = [], [], []
    try:
      with no_grad():
        for p, new_p, st, new_state, step in updates:
          fresh = {}
          for k, v in new_state.items():
            if isinstance(st.get(k), Tensor):
              old_nodes.append((st[k], weakref.ref(st[k].node))); st[k].assign(v); targets.append(st[k])
            else:
              fresh[k] = Tensor._from_node(v.node)   # a new handle: later assigns to it never touch `v`'s owner (a grad)
              targets.append(fresh[k])
          old_nodes.append((p, weakref.ref(p.node))); p.assign(new_p); targets.append(p)
          new_states.append((p, st, fresh, step))
      targets[0].realize(*targets[1:], *grads, *take_pending())
    except BaseException:
      for t, node in reversed(old_nodes): t.node = node()   # the assigns never ran: put the old values back
      raise
    for p, st, fresh, step in new_states:
      st.update(fresh)
      st["step"] = step
      self.state[p] = st

  # ---- checkpoints of the optimizer itself
  def state_dict(self) -> dict:
    """{'state': {index: {name: Tensor or number}}, 'param_groups': [...]} with params as indices, as torch."""
    index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
    groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
    state = {index[id(p)]: dict(st) for p, st in self.state.items() if id(p) in index}
    return {"state": state, "param_groups": groups}

  def load_state_dict(self, state_dict: dict) -> None:
    """Restore hyperparameters and state from state_dict() output of an optimizer over the same parameters."""
    groups = state_dict["param_groups"]
    if len(groups) != len(self.param_groups) or any(len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
      raise ValueError("load_state_dict: the saved optimizer has a different number of groups or parameters")
    params = [p for g in self.param_groups for p in g["params"]]
    new_state = {}
    for i, st in state_dict["state"].items():
      p = params[int(i)]
      entry = {}
      for k, v in st.items():
        if isinstance(v, Tensor):
          if v.shape != p.shape and v.ndim: raise ValueError(f"load_state_dict: state {k!r} of shape {v.shape} for a parameter of shape {p.shape}")
          v = Tensor(v.numpy(), dtype=v.dtype, device=p.device)
        entry[k] = v
      new_state[p] = entry
    for g, saved in zip(self.param_groups, groups): g.update({k: v for k, v in saved.items() if k != "params"})
    self.state = new_state

  def __repr__(self):
    lines = [f"{type(self).__name__} ("]
    for i, g in enumerate(self.param_groups):
      lines.append(f"Parameter Group {i}")
      lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
    return "\n".join(lines + [")"])


def _scalar_array(values: dict[str, float], dtype) -> np.ndarray:
  """A step's scalars as one numpy array (ValueError for a value that is not a finite number)."""
  for k, v in values.items():
    if not isinstance(v, (int, float)) or not math.isfinite(v): raise ValueError(f"step: hyperparameter {k} = {v!r} is not a finite number")
  return np.array(list(values.values()), dtype=dtype.np)


def _upload(values: dict[str, float], dtype, device) -> dict[str, Tensor]:
  """One small buffer holding a step's scalars; each name maps to a 0-d view into it
  (0-d, so it never promotes a parameter's dtype: torch's rule for 0-d tensors); "_buffer" is the buffer itself."""
  buf = Tensor(_scalar_array(values, dtype), device=device)
  return {**{k: buf[i] for i, k in enumerate(values)}, "_buffer": buf.node.buffer}
