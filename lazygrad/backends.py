"""Backend switches, spelled like torch.backends.

`lazygrad.backends.cuda.matmul.allow_tf32 = True` lets fp32 matmuls (the Triton matmul
template) multiply on the tensor cores in TF32 (10-bit mantissa products, fp32 accumulate),
like torch.backends.cuda.matmul.allow_tf32. Off by default: fp32 products are exact
(input_precision="ieee"). The flag is read when a kernel is compiled and is part of the
device's compile cache key, so flipping it takes effect on the next realize."""


class _Matmul:
  allow_tf32: bool = False


class _Cuda:
  matmul = _Matmul()


cuda = _Cuda()
