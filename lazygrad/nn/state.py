"""Checkpoints in the safetensors format (the `safetensors` package's numpy API; never pickle).

  nn.state.save(model.state_dict(), "model.safetensors")
  model.load_state_dict(nn.state.load("model.safetensors"))

Files are interchangeable with torch's `safetensors.torch.save_file/load_file`: a torch
state dict saved that way loads into the lazygrad model with the same names."""
from __future__ import annotations
import os
from typing import Optional
import numpy as np
from lazygrad.tensor import Tensor


def _safetensors_numpy():
  try:
    import ml_dtypes  # noqa: F401  (registers numpy's 'bfloat16' so bf16 tensors save and load)
  except ImportError: pass
  try:
    import safetensors.numpy
  except ImportError:
    raise ImportError("nn.state: checkpoints need the safetensors package: pip install safetensors") from None
  return safetensors.numpy


def save(state_dict: dict, path, metadata: Optional[dict] = None) -> None:
  """Write name -> Tensor (or numpy array) to `path`; all lazy values are realized in one schedule."""
  if not isinstance(state_dict, dict): raise TypeError(f"save: expected a dict of tensors, got {type(state_dict).__name__}")
  lazy = [v for v in state_dict.values() if isinstance(v, Tensor)]
  for k, v in state_dict.items():
    if not isinstance(k, str): raise TypeError(f"save: keys must be strings, got {k!r}")
    if not isinstance(v, (Tensor, np.ndarray)): raise TypeError(f"save: {k!r} is a {type(v).__name__}, expected a Tensor or numpy array")
  if lazy: lazy[0].realize(*lazy[1:])
  arrays = {k: np.asarray(v.numpy() if isinstance(v, Tensor) else v, order="C") for k, v in state_dict.items()}
  meta = {str(k): str(v) for k, v in (metadata or {}).items()}
  tmp = f"{os.fspath(path)}.tmp"
  _safetensors_numpy().save_file(arrays, tmp, metadata=meta or None)
  os.replace(tmp, path)   # a crash mid-write never leaves a truncated checkpoint behind


def load(path, device=None) -> dict[str, Tensor]:
  """Read a safetensors file into name -> Tensor (on `device`, default device if None)."""
  if not os.path.exists(path): raise FileNotFoundError(f"load: no checkpoint at {os.fspath(path)!r}")
  arrays = _safetensors_numpy().load_file(os.fspath(path))
  return {k: Tensor(np.asarray(a, order="C"), device=device) for k, a in arrays.items()}


def load_metadata(path) -> dict:
  """The file's text metadata (what save(metadata=...) stored), without reading the tensors."""
  from safetensors import safe_open
  with safe_open(os.fspath(path), framework="np") as f: return dict(f.metadata() or {})
