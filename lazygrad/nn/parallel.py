"""lazygrad.nn.parallel: DistributedDataParallel, data-parallel training over lazygrad.distributed.

Every process holds a replica of the model and trains on its own part of each batch; after backward() the gradients
are averaged across processes, so every replica takes the same optimizer step. How a step runs:

  construction   parameters and buffers broadcast from rank 0; their names, shapes and dtypes compared across
                 ranks first (one all_gather of a signature), so different models fail there with the first difference
  forward        passes through to the module (buffers broadcast from rank 0 first, as torch's broadcast_buffers)
                 and arms the gradient sync, unless under no_sync() or no_grad
  backward       autograd's backward-end hook (autograd.register_backward_end_hook) runs the sync: the gradients,
                 grouped into buckets of about bucket_cap_mb (per dtype, in reverse parameter order as torch), are
                 each flattened by one fused kernel (Tensor.cat of the gradients times 1/world size), realized
                 together with the forward's pending outputs (the loss), reduced by one all_reduce (SUM) per bucket
                 on the bucket's own buffer, and each .grad becomes a view of its bucket (no copy kernel)

With overlap (default on cuda, when there are several buckets) each bucket is realized in a schedule of its own
and its all_reduce runs asynchronously while the next bucket's kernels run; otherwise all buckets are one schedule
(fewest kernels) and the reductions follow it. The all-reduce itself is lazygrad.distributed.all_reduce_buffers,
a host step on realized Buffers."""
from __future__ import annotations
import contextlib
import functools
import time
import weakref
from typing import Optional
from lazygrad.autograd import register_backward_end_hook
from lazygrad.nn.module import Module, take_pending
from lazygrad.tensor import Tensor, no_grad
from lazygrad.tensor_base import _GradMode, ShapeError
from lazygrad import distributed as dist

__all__ = ["DistributedDataParallel"]


def _signature(module: Module) -> list[tuple]:
  """(kind, name, shape, dtype) of every parameter and buffer, in order: what every rank must agree on."""
  out = [("parameter", n, tuple(p.shape), p.dtype.name, bool(p.requires_grad)) for n, p in module.named_parameters()]
  return out + [("buffer", n, tuple(b.shape), b.dtype.name, False) for n, b in module.named_buffers()]


def _first_difference(sigs: list[list[tuple]]) -> Optional[str]:
  """A message naming the first entry where some rank's signature differs from rank 0's, or None."""
  ref = sigs[0]
  for r, sig in enumerate(sigs[1:], 1):
    if len(sig) != len(ref) or any(a[:2] != b[:2] for a, b in zip(sig, ref)):
      names = lambda s: [f"{k} {n}" for k, n, *_ in s]   # noqa: E731
      missing = [x for x in names(ref) if x not in names(sig)][:3]
      extra = [x for x in names(sig) if x not in names(ref)][:3]
      return (f"rank {r} has {len(sig)} parameters and buffers, rank 0 has {len(ref)} (only on rank 0: {missing or 'none'}; "
              f"only on rank {r}: {extra or 'none'})")
    for a, b in zip(sig, ref):
      if a != b:
        return f"{a[0]} {a[1]!r} has shape {a[2]} {a[3]}{'' if a[4] else ' (no grad)'} on rank {r} but {b[2]} {b[3]} on rank 0"
  return None


def _buckets(params: list[Tensor], cap_bytes: int) -> list[list[Tensor]]:
  """Parameters in reverse order (the last layers' gradients are the first the backward finishes), cut into buckets
  of at most cap_bytes (a larger parameter gets one of its own), one dtype and device per bucket."""
  out, open_ = [], {}
  for p in reversed(params):
    key = (p.dtype, p.device)
    b = open_.get(key)
    size = p.numel() * p.dtype.itemsize
    if b is None or (b[1] + size > cap_bytes and b[0]):
      b = open_[key] = [[], 0]
      out.append(b)
    b[0].append(p)
    b[1] += size
  return [b[0] for b in out]


def _after_backward(ref, touched) -> None:
  """autograd's backward-end hook of one DistributedDataParallel (held weakly by ref)."""
  ddp = ref()
  if ddp is not None: ddp._after_backward(touched)


class DistributedDataParallel(Module):
  """torch.nn.parallel.DistributedDataParallel: wraps module so that, after each backward(), every parameter's .grad is
  the average over all processes of the process group (lazygrad.distributed.init_process_group first).

  bucket_cap_mb: gradients are averaged in buckets of about this many MiB (one flatten kernel and one all_reduce each).
  broadcast_buffers: buffers (BatchNorm statistics) are broadcast from rank 0 before each forward, as torch.
  overlap: realize and reduce bucket by bucket, each reduction running while the next bucket computes (None: on cuda
  with more than one bucket). device_ids, output_device, find_unused_parameters, gradient_as_bucket_view and
  static_graph are accepted for torch compatibility: gradients are always views of their bucket, and a parameter the
  backward did not reach gets a zero gradient (torch leaves it None when no rank used it).

  `module` is the wrapped model; state_dict() has torch's 'module.' prefix (lazygrad.distributed.save_checkpoint saves
  the inner model's, which loads on any number of processes). `no_sync()` skips the averaging for gradient
  accumulation: gradients add up locally and the next backward outside it averages the sum."""
  def __init__(self, module: Module, device_ids=None, output_device=None, broadcast_buffers: bool = True, bucket_cap_mb: float = 25,
               find_unused_parameters: bool = False, gradient_as_bucket_view: bool = True, static_graph: bool = False,
               overlap: Optional[bool] = None):
    super().__init__()
    if not isinstance(module, Module): raise TypeError(f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}")
    if not bucket_cap_mb > 0: raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb!r}")
    self.module = module
    self.world_size, self.rank = dist.get_world_size(), dist.get_rank()
    self.broadcast_buffers, self.bucket_cap_mb = bool(broadcast_buffers), bucket_cap_mb
    self.require_backward_grad_sync = True
    self._check_same_model()
    self._sync_module_states()
    params = [p for p in module.parameters() if p.requires_grad]
    object.__setattr__(self, "_params", params)   # plain lists, not registered: module owns them
    object.__setattr__(self, "_bucket_params", _buckets(params, int(bucket_cap_mb * 2 ** 20)))
    object.__setattr__(self, "_ids", {id(p) for p in params})
    self.overlap = overlap if overlap is not None else (len(self._bucket_params) > 1 and any(p.device == "cuda" for p in params))
    self.buckets: list[Tensor] = []   # the last step's flat gradient buckets (each .grad is a view of one)
    # time in gradient syncs: sync_s all of it (the buckets' kernels included), comm_s launching and waiting for the
    # all_reduces (what the other ranks cost: a slower rank's backward shows here too), syncs how many
    self.stats = {"sync_s": 0.0, "comm_s": 0.0, "syncs": 0}
    self._armed = False
    # the hook holds the wrapper weakly: a dropped DDP unregisters itself instead of living on in autograd's hook table
    handle = register_backward_end_hook(functools.partial(_after_backward, weakref.ref(self)))
    weakref.finalize(self, handle.remove)

  @property
  def bucket_count(self) -> int:
    """How many buckets (all_reduce calls) one gradient sync takes."""
    return len(self._bucket_params)

  # ---- construction: the same model everywhere
  def _check_same_model(self) -> None:
    diff = _first_difference(dist.all_gather_object(_signature(self.module)))
    if diff is not None:
      raise ShapeError(f"DistributedDataParallel: the model differs across ranks: {diff}. Every rank must build the same model")

  def _sync_module_states(self) -> None:
    """Parameters and buffers take rank 0's values (a seed differing across ranks must not matter)."""
    states = list(self.module.parameters()) + list(self.module.buffers())
    if self.world_size == 1 or not states: return
    states[0].realize(*states[1:])
    for t in states: dist.broadcast(t, 0)

  # ---- forward
  def forward(self, *args, **kwargs):
    """The wrapped module's forward; arms the gradient averaging of the next backward (not under no_sync or no_grad)."""
    if self.broadcast_buffers and self.world_size > 1:
      bufs = list(self.module.buffers())
      if bufs:
        bufs[0].realize(*bufs[1:])
        for b in bufs: dist.broadcast(b, 0)
    self._armed = _GradMode.enabled and self.require_backward_grad_sync
    return self.module(*args, **kwargs)

  @contextlib.contextmanager
  def no_sync(self):
    """torch's no_sync(): backward passes of forwards run inside accumulate gradients locally; the first backward after
    it (of a forward outside) averages the accumulated sum."""
    old = self.require_backward_grad_sync
    self.require_backward_grad_sync = False
    try: yield
    finally: self.require_backward_grad_sync = old

  # ---- after backward
  def _after_backward(self, touched) -> None:
    if not self._armed or not any(id(p) in self._ids for p in touched): return
    self._armed = False
    self.sync_gradients()

  def _flat(self, bucket: list[Tensor]) -> Tensor:
    """The bucket's gradients (zeros where there is none) flattened, concatenated and scaled by 1/world: one kernel."""
    scale = 1.0 / self.world_size
    parts = []
    for p in bucket:
      g = p.grad if p.grad is not None else Tensor.zeros(p.shape, dtype=p.dtype, device=p.device)
      g = g.detach() if g.requires_grad else g
      parts.append((g.cast(p.dtype) * scale).reshape(-1))
    return Tensor.cat(parts)

  def sync_gradients(self) -> None:
    """Average every parameter's .grad across ranks now (what the backward after an armed forward runs); each .grad
    becomes a view of its bucket. Not in torch (its reducer has no public entry)."""
    if self.world_size == 1 or not self._params: return
    t0 = time.perf_counter()
    with no_grad():
      flats = [self._flat(b) for b in self._bucket_params]
      pending = take_pending()   # the loss and buffer updates: computed with the gradients, not again later
      works, comm = [], 0.0
      if self.overlap:
        for i, f in enumerate(flats):
          f.realize(*(pending if i == 0 else ()))
          t = time.perf_counter()
          works.append(dist.all_reduce(f, async_op=True))
          comm += time.perf_counter() - t
      else:
        flats[0].realize(*flats[1:], *pending)
        t = time.perf_counter()
        works.append(dist.all_reduce_buffers([self._own_buffer(f) for f in flats], async_op=True))
        comm += time.perf_counter() - t
      t = time.perf_counter()
      for w in works: w.wait()
      self.stats["comm_s"] += comm + time.perf_counter() - t
      for bucket, f in zip(self._bucket_params, flats):
        off = 0
        for p in bucket:
          n = p.numel()
          p.grad = f[off:off + n].reshape(p.shape)
          off += n
    self.buckets = flats
    self.stats["sync_s"] += time.perf_counter() - t0
    self.stats["syncs"] += 1

  @staticmethod
  def _own_buffer(f: Tensor):
    """f's buffer when a collective may write it (a fresh bucket always is); else f rebound to a copy first."""
    buf, own = dist._claim(f)
    if not own: dist._settle(f, buf)
    return buf

  def extra_repr(self) -> str:
    """world size, buckets and the bucket cap."""
    return f"world_size={self.world_size}, buckets={self.bucket_count}, bucket_cap_mb={self.bucket_cap_mb}"

