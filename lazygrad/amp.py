"""Mixed precision, as torch.amp: `autocast` and `GradScaler`.

autocast(dtype=float16 or bfloat16) is a thread-local region (a context manager and a decorator)
in which the ops torch's CPU autocast lists run in lower precision: matmul, linear, conv and
scaled_dot_product_attention cast their floating inputs to the autocast dtype (the kernels
accumulate in float32: kernels/common.py acc_dtype, the matmul template's fp32 accumulator) and
return it; losses and prod cast half-float inputs to float32. Every other op keeps its inputs'
dtype, and those that reduce (sum, mean, softmax, norms, ...) compute half floats in float32
inside. Parameters stay float32 (master weights): a cast is a graph node whose gradient casts
back, so parameters get float32 gradients. The casts fuse into the consumer's kernel (the matmul
template reads the float32 operand and converts its tiles), so autocast adds no kernel.
The op lists are marked in the front end with tensor_base.autocast_op (LOWER, FP32).

GradScaler scales the loss so that float16 gradients do not underflow, unscales the gradients
before the optimizer step, skips the step when any gradient is inf or nan, and grows or backs
off the scale (torch's rule). The inf/nan check is one lazy reduction over all gradients; the
one host sync of a step is where step() reads it (`_found_inf`)."""
from __future__ import annotations
import enum
import functools
from typing import Optional
import numpy as np
from lazygrad.dtype import DType, dtypes
from lazygrad.runtime import canonical_device
from lazygrad.tensor import Tensor, no_grad
from lazygrad.tensor_base import _Autocast
from lazygrad.nn.module import take_pending

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "get_autocast_dtype"]

LOWER_DTYPES = (dtypes.float16, dtypes.bfloat16)
# torch's defaults (torch.get_autocast_dtype): float16 on cuda, bfloat16 on cpu; interp is cuda's stand-in
DEFAULT_DTYPE = {"cuda": dtypes.float16, "interp": dtypes.float16, "cpu": dtypes.bfloat16}


class autocast:
  """torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None): inside the region (a `with`
  block, or a function decorated with it), matmul/linear/conv/attention run in `dtype` (float16 or bfloat16)
  with float32 accumulation, losses and prod in float32, other ops in their inputs' dtype (torch's CPU op
  lists, applied on every device). Per thread; regions nest, and enabled=False turns autocast off inside.

  device_type ('cpu', 'cuda', 'interp'; default: the default device) picks the default dtype as torch does
  (bfloat16 on cpu, float16 otherwise); `autocast(dtypes.bfloat16)` is accepted as autocast(dtype=...).
  Differs from torch: the op lists are torch's CPU lists on every device (torch's CUDA lists also put exp,
  log, pow, softmax, sum, layer_norm in float32; lazygrad computes those in float32 inside the kernel for
  half floats and returns the input dtype); a dtype other than float16/bfloat16 raises instead of warning
  and disabling; cache_enabled is accepted and ignored (a cast is a fused graph node, nothing to cache)."""
  def __init__(self, device_type=None, dtype=None, enabled: bool = True, cache_enabled: Optional[bool] = None):
    if dtype is None and device_type is not None and not isinstance(device_type, str): device_type, dtype = None, device_type
    if device_type is not None and not isinstance(device_type, str):
      raise TypeError(f"autocast: device_type must be a str ('cpu', 'cuda', 'interp'), got {type(device_type).__name__}")
    if not isinstance(enabled, bool): raise TypeError(f"autocast: enabled must be a bool, got {type(enabled).__name__}")
    self.device_type = canonical_device(device_type)
    self.fast_dtype: DType = dtypes.from_any(dtype) if dtype is not None else DEFAULT_DTYPE[self.device_type]
    if self.fast_dtype not in LOWER_DTYPES:
      raise ValueError(f"autocast: dtype must be float16 or bfloat16, got {self.fast_dtype}")
    self.enabled = enabled
    self._prev: list = []   # a stack: the same object may be entered again inside its own region

  def __enter__(self):
    self._prev.append(_Autocast.dtype)
    _Autocast.dtype = self.fast_dtype if self.enabled else None
    return self

  def __exit__(self, *exc):
    _Autocast.dtype = self._prev.pop()

  def __call__(self, fn):
    """Decorate fn: each call runs in its own region with these settings (safe across threads and recursion)."""
    if not callable(fn): raise TypeError(f"autocast: expected a function to decorate, got {type(fn).__name__}")
    @functools.wraps(fn)
    def run(*args, **kwargs):
      with autocast(self.device_type, self.fast_dtype, self.enabled): return fn(*args, **kwargs)
    return run

  def __repr__(self): return f"autocast(device_type={self.device_type!r}, dtype={self.fast_dtype}, enabled={self.enabled})"


def is_autocast_enabled(device_type=None) -> bool:
  """torch.is_autocast_enabled: True inside an enabled autocast region of this thread (any device type)."""
  return _Autocast.dtype is not None


def get_autocast_dtype(device_type=None) -> DType:
  """torch.get_autocast_dtype: the dtype of this thread's autocast region, else the device type's default."""
  return _Autocast.dtype or DEFAULT_DTYPE[canonical_device(device_type)]


def _nonfinite(x: Tensor) -> Tensor:
  """A 0-d bool: does x hold an inf or a nan."""
  return (x.isinf() | x.isnan()).any()


class _Stage(enum.Enum):
  READY, UNSCALED, STEPPED = range(3)


class GradScaler:
  """torch.amp.GradScaler(device, init_scale=2**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
  enabled=True): dynamic loss scaling for float16 training.

      scaler.scale(loss).backward()
      scaler.unscale_(opt)            # optional: before clipping the unscaled gradients
      scaler.step(opt)                # skipped when a gradient is inf or nan
      scaler.update()                 # scale * backoff_factor after an inf, * growth_factor after growth_interval clean steps

  Laziness: scale() multiplies by a 0-d buffer holding the scale (a new scale uploads a new buffer, never a new
  kernel); unscale_() multiplies the gradients by 1/scale lazily and builds the inf/nan check as one lazy
  reduction. step() realizes the gradients, the check and the pending outputs of the forward (the loss) in one
  schedule and reads the check: the one host sync of a step. Then the optimizer's step is a second schedule.
  The scale itself lives on the host (update() needs only the flag step() already read), as a float32 value."""
  def __init__(self, device=None, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
               growth_interval: int = 2000, enabled: bool = True):
    if not growth_factor > 1.0: raise ValueError(f"GradScaler: the growth factor must be > 1.0, got {growth_factor}")
    if not backoff_factor < 1.0: raise ValueError(f"GradScaler: the backoff factor must be < 1.0, got {backoff_factor}")
    if not isinstance(growth_interval, int) or growth_interval <= 0:
      raise ValueError(f"GradScaler: growth_interval must be a positive int, got {growth_interval!r}")
    self._device = canonical_device(device)
    self._enabled = bool(enabled)
    self._scale = float(np.float32(init_scale))
    self._growth_factor, self._backoff_factor, self._growth_interval = float(growth_factor), float(backoff_factor), growth_interval
    self._growth_tracker = 0
    self._used = False                       # torch: unscale_ before any scale() is an error
    self._buffers: dict = {}                 # (value, device) -> 0-d Tensor: the scale and 1/scale as runtime values
    self._per_optimizer: dict[int, dict] = {}

  # ---- the scale as a runtime value
  def _value(self, v: float, device: str) -> Tensor:
    key = (v, device)
    if key not in self._buffers:
      if len(self._buffers) > 8: self._buffers.clear()   # the scale changes rarely: keep the few recent ones
      self._buffers[key] = Tensor(np.float32(v), device=device)
    return self._buffers[key]

  def _state(self, optimizer) -> dict:
    return self._per_optimizer.setdefault(id(optimizer), {"stage": _Stage.READY})

  # ---- the API
  def scale(self, outputs):
    """outputs * scale: a Tensor, or a list/tuple of them (nested), as torch. Unchanged when disabled."""
    if not self._enabled: return outputs
    if isinstance(outputs, Tensor):
      self._used = True
      return outputs * self._value(self._scale, outputs.device)
    if isinstance(outputs, (list, tuple)): return type(outputs)(self.scale(o) for o in outputs)
    raise ValueError(f"GradScaler.scale: outputs must be a Tensor or an iterable of Tensors, got {type(outputs).__name__}")

  def unscale_(self, optimizer) -> None:
    """Divide the optimizer's gradients by the scale (lazily, in place of .grad) and record the lazy inf/nan check.
    At most once per optimizer between update()s, and not after step(), as torch."""
    if not self._enabled: return
    if not self._used:
      raise AssertionError("Attempted unscale_ but _scale is None. This may indicate your script did not use "
                           "scaler.scale(loss or outputs) earlier in the iteration.")
    st = self._state(optimizer)
    if st["stage"] is _Stage.UNSCALED: raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
    if st["stage"] is _Stage.STEPPED: raise RuntimeError("unscale_() is being called after step().")
    inv = float(np.float32(1.0 / self._scale))   # torch: scale.double().reciprocal().float()
    grads = []
    with no_grad():
      for group in optimizer.param_groups:
        for p in group["params"]:
          if p.grad is None: continue
          if p.grad.dtype == dtypes.float16: raise ValueError("Attempting to unscale FP16 gradients.")
          p.grad = (p.grad * self._value(inv, p.grad.device)).cast(p.grad.dtype)
          grads.append(p.grad)
      # True where some gradient holds an inf or a nan: one reduction over all of a device's gradients, flattened and
      # concatenated (one kernel reading each gradient's buffer as a piece, instead of one kernel per gradient)
      per_device: dict[str, list] = {}
      for g in grads: per_device.setdefault(g.device, []).append(g.reshape(-1))
      st["found_inf"] = [_nonfinite(Tensor.cat(flat) if len(flat) > 1 else flat[0]) for flat in per_device.values()]
    st["grads"], st["stage"] = grads, _Stage.UNSCALED

  def _found_inf(self, st: dict) -> bool:
    """Whether the recorded check found an inf or nan: the host sync of a step. The gradients and the forward's
    pending outputs (nn.Module results, the loss) are realized in the same schedule, so nothing is computed twice."""
    if "found" not in st:
      if not st.get("found_inf"): raise AssertionError("No inf checks were recorded for this optimizer.")
      Tensor.realize(*st["found_inf"], *st["grads"], *take_pending())
      st["found"] = any(f.item() for f in st["found_inf"])   # <- the sync (one read per device holding gradients)
    return st["found"]

  def step(self, optimizer, *args, **kwargs):
    """optimizer.step(*args, **kwargs) unless a gradient is inf or nan (then skipped: no parameter or optimizer state
    changes); unscale_ first if it was not called. Returns what optimizer.step returned, or None when skipped."""
    if not self._enabled: return optimizer.step(*args, **kwargs)
    if "closure" in kwargs: raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
    st = self._state(optimizer)
    if st["stage"] is _Stage.STEPPED: raise RuntimeError("step() has already been called since the last update().")
    if st["stage"] is _Stage.READY: self.unscale_(optimizer)
    out = None if self._found_inf(st) else optimizer.step(*args, **kwargs)
    st["stage"] = _Stage.STEPPED
    return out

  def update(self, new_scale=None) -> None:
    """Back the scale off after a step with an inf/nan (resetting the growth count), grow it after growth_interval
    clean steps (only to a finite value), as torch's _amp_update_scale_; or set it to new_scale (a float or a
    one-element Tensor). Resets every optimizer for the next iteration."""
    if not self._enabled: return
    if new_scale is not None:
      if isinstance(new_scale, Tensor):
        if new_scale.numel() != 1 or not new_scale.dtype.is_float: raise ValueError("new_scale should be a float or a 1-element float Tensor.")
        new_scale = new_scale.item()
      self._scale = float(np.float32(new_scale))
    else:
      checked = [st for st in self._per_optimizer.values() if st["stage"] is not _Stage.READY]
      if not checked: raise AssertionError("No inf checks were recorded prior to update.")
      if any(self._found_inf(st) for st in checked):
        self._scale = float(np.float32(self._scale * self._backoff_factor))
        self._growth_tracker = 0
      elif self._growth_tracker + 1 == self._growth_interval:
        grown = np.float32(self._scale * self._growth_factor)
        if np.isfinite(grown): self._scale = float(grown)
        self._growth_tracker = 0
      else: self._growth_tracker += 1
    self._per_optimizer.clear()

  # ---- accessors and checkpoints
  def get_scale(self) -> float:
    """The current scale as a Python float (1.0 when disabled), as torch."""
    return self._scale if self._enabled else 1.0
  def get_growth_factor(self) -> float:
    """The factor the scale grows by after growth_interval clean steps."""
    return self._growth_factor
  def set_growth_factor(self, new_factor: float) -> None:
    """Set the growth factor."""
    self._growth_factor = float(new_factor)
  def get_backoff_factor(self) -> float:
    """The factor the scale shrinks by after a step with an inf or nan."""
    return self._backoff_factor
  def set_backoff_factor(self, new_factor: float) -> None:
    """Set the backoff factor."""
    self._backoff_factor = float(new_factor)
  def get_growth_interval(self) -> int:
    """How many consecutive clean steps grow the scale."""
    return self._growth_interval
  def set_growth_interval(self, new_interval: int) -> None:
    """Set the growth interval."""
    self._growth_interval = int(new_interval)
  def is_enabled(self) -> bool:
    """Whether scaling is on (enabled=False makes every method a pass-through)."""
    return self._enabled

  def state_dict(self) -> dict:
    """{'scale', 'growth_factor', 'backoff_factor', 'growth_interval', '_growth_tracker'} as torch's ({} when disabled)."""
    if not self._enabled: return {}
    return {"scale": self.get_scale(), "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

  def load_state_dict(self, state_dict: dict) -> None:
    """Restore what state_dict() returned (also from torch's GradScaler.state_dict())."""
    if not self._enabled: return
    if len(state_dict) == 0:
      raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled instance of GradScaler.")
    scale = state_dict["scale"]
    self._scale = float(np.float32(scale.item() if hasattr(scale, "item") else scale))
    self._growth_factor = float(state_dict["growth_factor"])
    self._backoff_factor = float(state_dict["backoff_factor"])
    self._growth_interval = int(state_dict["growth_interval"])
    tracker = state_dict["_growth_tracker"]
    self._growth_tracker = int(tracker.item() if hasattr(tracker, "item") else tracker)
