"""lazygrad.distributed: collectives on lazygrad Tensors, thin over torch.distributed.

lazygrad brings no transport of its own: processes are started by `torchrun` (or any launcher that sets
RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT), talk through torch.distributed's process group (gloo between
CPUs, NCCL between GPUs), and the tensors handed to torch are lazygrad's own buffers, never copies:

  cpu buffers are numpy arrays    -> torch.from_numpy shares their memory
  interp/cuda buffers are torch tensors already

A collective realizes its tensor and writes the result into a buffer the tensor then reads. It writes the
tensor's own buffer in place when nothing else can see it (the tensor is realized, contiguous, owns its memory,
and no other node, lazy graph or tensor holds that node or buffer; the test is the scheduler's for in-place
ASSIGNs); otherwise it works on a fresh copy and rebinds the tensor to it, so a lazy value computed from the old
contents (`y = x * 2` before `all_reduce(x)`) keeps them, as after `assign`. A view, or a tensor with live views,
is written through `assign`, so its base and the other views see the result, as torch's shared storage.

`all_reduce_buffers` is the collective on realized Buffers alone, the one host step of DistributedDataParallel's
gradient averaging (nn/parallel.py); it and `broadcast` record themselves as lazygrad.jit host calls, so a jitted
training step replays its all-reduce between the same kernels.

Failures are DistributedError (a RuntimeError) naming the collective, the rank and the tensor: a peer that exits or
raises closes its connections and the others fail at their next collective instead of hanging; a peer that is
alive but never joins fails the others after the group's `timeout` (init_process_group)."""
from __future__ import annotations
import contextlib
import datetime
import functools
import os
import socket
import sys
from typing import Optional, Sequence
import numpy as np
from lazygrad.ops import Node, Ops
from lazygrad.ops.view import ShapeTracker
from lazygrad.runtime import Buffer, default_device, record
from lazygrad.scheduler.assign import _owns_memory
from lazygrad.tensor import Tensor, no_grad
from lazygrad.nn.state import save as _save_state, load as _load_state

__all__ = ["DistributedError", "ReduceOp", "init_process_group", "new_group", "destroy_process_group", "is_available", "is_initialized", "get_rank",
           "get_world_size", "get_backend", "barrier", "all_reduce", "broadcast", "all_gather", "all_gather_object", "all_reduce_buffers",
           "is_main_process", "print0", "save_checkpoint", "load_checkpoint"]


class DistributedError(RuntimeError):
  """A collective or the process group failed (a peer exited, raised, timed out, or the group is not set up)."""


class ReduceOp:
  """torch.distributed.ReduceOp's names, as strings (torch's own ReduceOp values are accepted too). AVG on gloo, which
  has no average, is a SUM divided by the world size."""
  SUM, AVG, PRODUCT, MIN, MAX = "sum", "avg", "product", "min", "max"


def _dist():
  import torch.distributed as dist   # optional dependency: only distributed runs need torch
  return dist


def is_available() -> bool:
  """torch.distributed.is_available: torch with distributed support is installed."""
  try: return _dist().is_available()
  except ImportError: return False


def is_initialized() -> bool:
  """torch.distributed.is_initialized: a default process group exists."""
  return is_available() and _dist().is_initialized()


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def init_process_group(backend: Optional[str] = None, init_method: Optional[str] = None, timeout=None, world_size: int = -1,
                       rank: int = -1, **kwargs) -> None:
  """torch.distributed.init_process_group, with lazygrad's defaults: backend 'nccl' when the default device is cuda
  (and each process takes the GPU LOCAL_RANK), else 'gloo'; rank, world size and rendezvous from torchrun's
  environment (env://). Without that environment and without rank/world_size/init_method it starts a group of
  one process on a free localhost port, so a script written for torchrun also runs as `python script.py`.
  timeout: seconds or a timedelta; a collective waiting longer for a peer fails (torch's default otherwise)."""
  dist = _dist()
  if dist.is_initialized(): raise DistributedError("init_process_group: the default process group is already initialized")
  if backend is None: backend = "nccl" if default_device() == "cuda" and dist.is_nccl_available() else "gloo"
  if "nccl" in str(backend):
    import torch
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))   # lazygrad's cuda buffers and kernels use torch's current device
  if init_method is None and rank < 0 and world_size < 0 and not ("RANK" in os.environ and "WORLD_SIZE" in os.environ):
    init_method, rank, world_size = f"tcp://127.0.0.1:{_free_port()}", 0, 1
  if timeout is not None: kwargs["timeout"] = _timedelta(timeout)
  dist.init_process_group(backend=backend, init_method=init_method, world_size=world_size, rank=rank, **kwargs)


def _timedelta(timeout):
  return timeout if timeout is None or isinstance(timeout, datetime.timedelta) else datetime.timedelta(seconds=float(timeout))


def new_group(ranks=None, timeout=None, backend: Optional[str] = None):
  """torch.distributed.new_group: a group of some ranks (all by default; every rank must call it), with its own timeout
  (seconds or a timedelta); pass it as `group=` to the collectives."""
  dist = _require("new_group")
  with _guard("new_group", f"ranks {ranks if ranks is not None else 'all'}"):
    return dist.new_group(ranks, timeout=_timedelta(timeout), backend=backend)


def destroy_process_group() -> None:
  """torch.distributed.destroy_process_group (nothing when no group exists)."""
  if is_initialized(): _dist().destroy_process_group()


def _require(op: str):
  if not is_initialized():
    raise DistributedError(f"{op}: no process group; call lazygrad.distributed.init_process_group() first (run under torchrun "
                           "for several processes)")
  return _dist()


def get_rank() -> int:
  """torch.distributed.get_rank: this process's rank in the default group (DistributedError when there is none)."""
  return _require("get_rank").get_rank()


def get_world_size() -> int:
  """torch.distributed.get_world_size: the number of processes in the default group (DistributedError when there is none)."""
  return _require("get_world_size").get_world_size()


def get_backend() -> str:
  """torch.distributed.get_backend: 'gloo' or 'nccl'."""
  return str(_require("get_backend").get_backend())


def _failed(op: str, what: str, e: BaseException) -> DistributedError:
  rank = _dist().get_rank() if is_initialized() else "?"
  size = _dist().get_world_size() if is_initialized() else "?"
  return DistributedError(f"{op} failed on rank {rank} of {size} ({what}): {type(e).__name__}: {str(e).strip()}. "
                          "Another rank probably exited, raised or stopped calling collectives; its own traceback says why.")


@contextlib.contextmanager
def _guard(op: str, what: str):
  try: yield
  except DistributedError: raise
  except Exception as e: raise _failed(op, what, e) from e


def barrier() -> None:
  """torch.distributed.barrier: wait until every rank gets here."""
  dist = _require("barrier")
  with _guard("barrier", "waiting for every rank"): dist.barrier()


# ---- buffers handed to torch without copies
def torch_view(buf: Buffer, numel: Optional[int] = None):
  """A flat torch tensor on the memory of a Buffer (its first numel elements): torch.from_numpy of a cpu buffer (bfloat16
  through an int16 view), the buffer's own torch tensor on interp/cuda. Writes through it change the buffer."""
  import torch
  data = buf.data
  if isinstance(data, np.ndarray):
    data = torch.from_numpy(data.view(np.int16)).view(torch.bfloat16) if buf.dtype.name == "bfloat16" else torch.from_numpy(data)
  return data if numel is None or numel == buf.size else data[:numel]


def _exclusive(node: Node) -> bool:
  """Nothing but the caller's tensor reads node or its buffer, and the buffer's memory is its own: writing it in place
  changes no other value (references expected: the tensor's .node, `node`, getrefcount's argument; the node's .buffer)."""
  if not (node.realized and node.st.is_contiguous and node.buffer.size == int(np.prod(node.shape))): return False
  return sys.getrefcount(node) <= 3 and sys.getrefcount(node.buffer) <= 2 and _owns_memory(node.buffer)


def _claim(t: Tensor) -> tuple[Buffer, bool]:
  """(a realized buffer holding t's value that a collective may overwrite, whether it is t's own). t's own buffer when
  nothing else sees it, else a fresh contiguous copy (one kernel) that _settle makes t's value afterwards."""
  if not isinstance(t, Tensor): raise TypeError(f"expected a lazygrad Tensor, got {type(t).__name__}")
  if not t.node.realized: t.realize()
  if t._base is None and not _has_views(t) and _exclusive(t.node): return t.node.buffer, True
  copy = Tensor._from_node(Node(Ops.CONTIGUOUS, (t.detach().node,), None, t.shape, t.dtype, t.device)).realize()
  return copy.node.buffer, False


def _has_views(t: Tensor) -> bool:
  return bool(t._views) and any(r() is not None for r in t._views)


def _settle(t: Tensor, buf: Buffer) -> None:
  """Make buf (t's shape, contiguous) t's value: a new node on it for a plain tensor (a leaf that requires grad stays
  one; a collective's result is not differentiable, as in torch), an assign for a view or a base with views (they see it)."""
  node = Node(Ops.BUFFER, (), None, t.shape, t.dtype, t.device)
  node.buffer, node.st = buf, ShapeTracker.from_shape(t.shape)
  if t._base is not None or _has_views(t):
    with no_grad(): t.assign(Tensor._from_node(node))
  else:
    node.requires_grad = t.node.requires_grad and t._is_leaf_param
    t.node = node


class _Work:
  """What an async collective returns (torch's Work): wait() blocks until the result is in the tensor."""
  def __init__(self, works, finish=None, op: str = "", what: str = ""):
    self.works, self.finish, self.op, self.what, self.done = works, finish, op, what, False
  def wait(self) -> bool:
    """Block until the collective finished and its result is in place; True (DistributedError on failure)."""
    if self.done: return True
    with _guard(self.op, self.what):
      for w in self.works: w.wait()
    if self.finish is not None: self.finish()
    self.done = True
    return True
  def is_completed(self) -> bool:
    """torch's Work.is_completed."""
    return self.done or all(w.is_completed() for w in self.works)


def _reduce_op(op):
  dist = _dist()
  if not isinstance(op, str): return op, False
  name = op.lower()
  if name not in ("sum", "avg", "product", "min", "max"): raise ValueError(f"all_reduce: unknown op {op!r}; expected sum, avg, product, min or max")
  if name == "avg" and "nccl" not in get_backend(): return dist.ReduceOp.SUM, True   # gloo has no AVG
  return getattr(dist.ReduceOp, name.upper()), False


def all_reduce_buffers(buffers: Sequence[Buffer], op=ReduceOp.SUM, async_op: bool = False, group=None, what: Optional[str] = None):
  """Reduce each realized Buffer across ranks, in place (the host step lazygrad.jit records between kernels: it reads
  and writes Buffers only). One collective per buffer; async_op returns a handle whose wait() finishes them.
  what: how an error names the data (default: the buffers' count and size)."""
  dist = _require("all_reduce")
  # lazygrad.jit: a replay runs the same reduction at this point, on the buffers the replay uses (no-op outside a capture)
  record.host_call(functools.partial(_replay_all_reduce, op=op, group=group, what=what), tuple(buffers))
  rop, divide = _reduce_op(op)
  views = [torch_view(b) for b in buffers]
  what = what or f"{len(buffers)} buffer(s) of {sum(b.size for b in buffers)} elements"
  with _guard("all_reduce", what): works = [dist.all_reduce(v, op=rop, group=group, async_op=True) for v in views]
  n = dist.get_world_size(group)
  def finish():
    if divide:
      for v in views: v.div_(n) if v.is_floating_point() else v.floor_divide_(n)
  work = _Work(works, finish, "all_reduce", what)
  if async_op: return work
  work.wait()
  return None


def _replay_all_reduce(buffers, op, group, what) -> None:
  """What a lazygrad.jit replay runs for a recorded all_reduce_buffers: the same collective, synchronously."""
  all_reduce_buffers(buffers, op, group=group, what=what)


def _replay_broadcast(buffers, src, group, what) -> None:
  """What a lazygrad.jit replay runs for a recorded broadcast."""
  with _guard("broadcast", what): _dist().broadcast(torch_view(buffers[0]), src=src, group=group)


def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
  """torch.distributed.all_reduce: tensor becomes the reduction (sum, avg, product, min, max) of its value on every rank.
  Realizes tensor; the collective writes its buffer in place when nothing else reads it, else a fresh copy that becomes
  its value (module docstring). async_op=True returns a handle; read the tensor after its wait()."""
  _require("all_reduce")
  buf, own = _claim(tensor)
  work = all_reduce_buffers([buf], op, async_op=True, group=group, what=f"tensor {tensor.shape} {tensor.dtype.name}")
  if not own: _settle(tensor, buf)
  if async_op: return work
  work.wait()
  return None


def broadcast(tensor: Tensor, src: int = 0, group=None, async_op: bool = False):
  """torch.distributed.broadcast: every rank's tensor takes rank src's value (shape and dtype must agree). In place as
  all_reduce."""
  dist = _require("broadcast")
  buf, own = _claim(tensor)
  what = f"tensor {tensor.shape} {tensor.dtype.name} from rank {src}"
  record.host_call(functools.partial(_replay_broadcast, src=src, group=group, what=what), (buf,))
  with _guard("broadcast", what): w = dist.broadcast(torch_view(buf), src=src, group=group, async_op=True)
  if not own: _settle(tensor, buf)
  work = _Work([w], None, "broadcast", what)
  if async_op: return work
  work.wait()
  return None


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
  """torch.distributed.all_gather: tensor_list[i] (world-size tensors of tensor's shape and dtype) becomes rank i's
  tensor. Each result lands in a fresh buffer the list's tensor is rebound to (no copy after the transfer)."""
  dist = _require("all_gather")
  n = dist.get_world_size(group)
  if not isinstance(tensor_list, list) or len(tensor_list) != n:
    raise ValueError(f"all_gather: tensor_list must be a list of {n} tensors (the world size), got {type(tensor_list).__name__} "
                     f"of {len(tensor_list) if isinstance(tensor_list, (list, tuple)) else '?'}")
  for i, t in enumerate(tensor_list):
    if not isinstance(t, Tensor) or t.shape != tensor.shape or t.dtype != tensor.dtype:
      raise ValueError(f"all_gather: tensor_list[{i}] must be a Tensor of shape {tensor.shape} and dtype {tensor.dtype.name}")
  src = tensor.contiguous().realize()
  numel = int(np.prod(tensor.shape))
  outs = [Buffer(t.device, numel, t.dtype) for t in tensor_list]
  what = f"tensor {tensor.shape} {tensor.dtype.name}"
  with _guard("all_gather", what):
    w = dist.all_gather([torch_view(b) for b in outs], torch_view(src.node.buffer, numel), group=group, async_op=True)
  for t, b in zip(tensor_list, outs): _settle(t, b)
  work = _Work([w], None, "all_gather", what)
  if async_op: return work
  work.wait()
  return None


def all_gather_object(obj, group=None) -> list:
  """Every rank's picklable obj, in rank order (torch.distributed.all_gather_object, returning the list instead of
  filling one)."""
  dist = _require("all_gather_object")
  out = [None] * dist.get_world_size(group)
  with _guard("all_gather_object", type(obj).__name__): dist.all_gather_object(out, obj, group=group)
  return out


# ---- rank-0 helpers
def is_main_process() -> bool:
  """True on rank 0, and in a process without a group (a plain single-process run)."""
  return not is_initialized() or _dist().get_rank() == 0


def print0(*args, **kwargs) -> None:
  """print() on rank 0 only (every process without a group): progress and logs printed once, not once per rank."""
  if is_main_process(): print(*args, **kwargs)


def _unwrap(model):
  return getattr(model, "module", model) if type(model).__name__ == "DistributedDataParallel" else model


def save_checkpoint(model, path, metadata: Optional[dict] = None) -> None:
  """Save a model's state dict to path (safetensors, nn.state.save) from rank 0 only, then wait for every rank, so the
  file is complete when any rank returns. A DistributedDataParallel model saves its inner module's state (no 'module.'
  prefix): the file loads into the plain model on any number of processes, one included."""
  sd = _unwrap(model).state_dict() if hasattr(model, "state_dict") else model
  if is_main_process(): _save_state(dict(sd), path, metadata=metadata)
  if is_initialized(): barrier()


def load_checkpoint(model, path, device=None):
  """Load a checkpoint written by save_checkpoint (or nn.state.save) into model on every rank, whatever the world size
  that saved it; a 'module.' prefix (a torch DDP state dict) is dropped. Returns load_state_dict's result."""
  state = _load_state(path, device=device)
  if state and all(k.startswith("module.") for k in state): state = {k[len("module."):]: v for k, v in state.items()}
  return _unwrap(model).load_state_dict(state)

