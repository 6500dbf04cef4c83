"""lazygrad: a lazy, fusing, GPU-first deep-learning framework."""
from lazygrad.dtype import dtypes, DType
from lazygrad.tensor import Tensor, no_grad
from lazygrad.tensor_base import ShapeError, DimError, DTypeError, IndexTypeError, ArgumentError
from lazygrad.helpers import GlobalCounters
from lazygrad.autograd import grad, gradcheck
from lazygrad.scheduler import create_schedule
from lazygrad.runtime import get_device
from lazygrad import nn, optim, data, backends, amp
from lazygrad import functions
from lazygrad.functions import *  # noqa: F401,F403 (torch's module-level API: lazygrad.tensor, zeros, cat, float32, ...)
from lazygrad.amp import autocast
from lazygrad import distributed
from lazygrad.jit import jit

from_dlpack = Tensor.from_dlpack   # torch.from_dlpack (tensor_create.py)


def schedule(*tensors):
  """The kernels realizing `tensors` would run, without running them (each has .name, .source)."""
  sched = create_schedule([t.node for t in tensors])
  for it in sched.items: it.program = get_device(it.out.device).compile(it.kernel).program   # .source reads it
  return sched.items


__all__ = ["Tensor", "dtypes", "DType", "no_grad", "GlobalCounters", "grad", "gradcheck", "schedule", "nn", "optim", "data",
           "backends", "amp", "autocast", "functions", "distributed", "from_dlpack", "jit",
           "ShapeError", "DimError", "DTypeError", "IndexTypeError", "ArgumentError"] + functions.__all__
