"""nn.utils: gradient clipping (lazy: the norm and the scaled gradients are graph nodes)."""
from __future__ import annotations
import math
from typing import Iterable, Union
from lazygrad.tensor import Tensor, no_grad


def _grads(parameters) -> list[Tensor]:
  params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
  return [p for p in params if p.grad is not None]


def clip_grad_norm_(parameters: Union[Tensor, Iterable[Tensor]], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
  """Scale all gradients together so their joint norm is at most max_norm, as torch:
  coef = min(1, max_norm / (total_norm + 1e-6)). Returns the total norm (a lazy Tensor)."""
  norm_type = float(norm_type)
  params = _grads(parameters)
  if not params: return Tensor(0.0)
  with no_grad():
    gs = [(p.grad.detach() if p.grad.requires_grad else p.grad).float() for p in params]   # a copy only where there is a graph to cut
    if math.isinf(norm_type): total = Tensor.stack([g.abs().max() for g in gs]).max()
    elif norm_type == 2.0: total = Tensor.stack([(g * g).sum() for g in gs]).sum().sqrt()
    else: total = Tensor.stack([(g.abs() ** norm_type).sum() for g in gs]).sum() ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
      raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite; "
                         "set error_if_nonfinite=False to clip anyway")
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for p in params: p.grad = (p.grad * coef).cast(p.grad.dtype)
  return total


def clip_grad_value_(parameters: Union[Tensor, Iterable[Tensor]], clip_value: float, foreach=None) -> None:
  """Clamp every gradient to [-clip_value, clip_value] (lazily), as torch.nn.utils.clip_grad_value_."""
  with no_grad():
    for p in _grads(parameters): p.grad = p.grad.clamp(-clip_value, clip_value)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
  """All parameters flattened and concatenated into one 1-D tensor, as torch.nn.utils.parameters_to_vector."""
  return Tensor.cat([p.reshape(-1) for p in parameters])
