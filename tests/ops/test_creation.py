"""Tensor creation vs torch: zeros/ones/empty/full/arange/eye, random sources, from_numpy, Python data, tolist/item."""
import math
import numpy as np
import pytest
import torch
from lazygrad import Tensor, dtypes
from helpers import compare


# ============================================================ construction

@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 0, 4), (1, 1, 5)])
@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
def test_zeros_ones_empty(name, shape):
  for args in ((shape,), shape):
    if name == "empty":
      t = Tensor.empty(*args)
      assert t.shape == shape and t.dtype == dtypes.float32
      continue
    out = getattr(Tensor, name)(*args)
    ref = getattr(torch, name)(*args) if args else getattr(torch, name)(())
    assert out.shape == tuple(ref.shape) and out.dtype == dtypes.float32
    compare(out.numpy(), ref.numpy(), 0, 0)


@pytest.mark.parametrize("dtype", [dtypes.int32, dtypes.int64, dtypes.float16, dtypes.bool, dtypes.uint8])
def test_zeros_ones_dtype(dtype):
  tdt = getattr(torch, dtype.name)
  for name in ("zeros", "ones"):
    out, ref = getattr(Tensor, name)(2, 3, dtype=dtype), getattr(torch, name)(2, 3, dtype=tdt)
    assert out.dtype == dtype
    compare(out.numpy(), ref.numpy(), 0, 0)


@pytest.mark.parametrize("value,dtype", [(3.5, None), (2, None), (True, None), (-1, dtypes.float16), (7, dtypes.int32), (1.5, dtypes.float32)])
def test_full(value, dtype):
  out = Tensor.full((2, 3), value, dtype=dtype)
  ref = torch.full((2, 3), value, dtype=getattr(torch, dtype.name) if dtype else None)
  assert out.dtype == dtypes.from_any(ref.dtype)
  compare(out.numpy(), ref.numpy(), 0, 0)
  assert Tensor.full((), value).shape == ()


@pytest.mark.parametrize("args,kw", [((5,), {}), ((2, 10, 3), {}), ((0, 1, 0.1), {}), ((10, 0, -2), {}), ((-3, 3), {}),
                                     ((1.5, 4.0), {}), ((5,), {"dtype": dtypes.float32}), ((4,), {"dtype": dtypes.int32}), ((3, 3), {})])
def test_arange(args, kw):
  out = Tensor.arange(*args, **kw)
  ref = torch.arange(*args, **({"dtype": getattr(torch, kw["dtype"].name)} if kw else {}))
  assert out.dtype == dtypes.from_any(ref.dtype)
  compare(out.numpy(), ref.numpy(), 1e-6, 1e-6)


@pytest.mark.parametrize("n,m", [(1, None), (4, None), (3, 5), (5, 2), (0, None)])
def test_eye(n, m):
  out = Tensor.eye(n, m) if m is not None else Tensor.eye(n)
  ref = torch.eye(n, m) if m is not None else torch.eye(n)
  assert out.dtype == dtypes.float32
  compare(out.numpy(), ref.numpy(), 0, 0)


def test_rand_stats():
  Tensor.manual_seed(1)
  a = Tensor.rand(4000).numpy()
  assert a.dtype == np.float32 and a.shape == (4000,)
  assert a.min() >= 0 and a.max() < 1
  assert abs(a.mean() - 0.5) < 0.03 and abs(a.std() - math.sqrt(1 / 12)) < 0.02
  assert len(np.unique(a)) > 3900
  b = Tensor.rand(2, 3, 4)
  assert b.shape == (2, 3, 4) and Tensor.rand((2, 3)).shape == (2, 3)


def test_randn_stats():
  Tensor.manual_seed(2)
  a = Tensor.randn(20000).numpy()
  assert np.isfinite(a).all()
  assert abs(a.mean()) < 0.03 and abs(a.std() - 1) < 0.03
  assert abs((np.abs(a) < 1).mean() - 0.6827) < 0.02
  assert Tensor.randn(3, 2, dtype=dtypes.float16).dtype == dtypes.float16


def test_manual_seed_reproducible():
  Tensor.manual_seed(42); a = Tensor.rand(50).numpy(); b = Tensor.rand(50).numpy()
  Tensor.manual_seed(42); c = Tensor.rand(50).numpy()
  np.testing.assert_array_equal(a, c)
  assert not np.array_equal(a, b)


@pytest.mark.parametrize("low,high", [(0, 2), (3, 10), (-5, 5)])
def test_randint(low, high):
  Tensor.manual_seed(3)
  t = Tensor.randint(low, high, (3000,))
  assert t.dtype == dtypes.int64 and t.shape == (3000,)
  a = t.numpy()
  assert a.min() >= low and a.max() < high
  assert set(np.unique(a).tolist()) == set(range(low, high))
  assert Tensor.randint(5, size=(2, 2)).numpy().max() < 5


def test_uniform():
  Tensor.manual_seed(4)
  a = Tensor.uniform(3000, low=-3.0, high=1.0).numpy()
  assert a.min() >= -3 and a.max() < 1 and abs(a.mean() + 1) < 0.1


@pytest.mark.parametrize("dtype", [dtypes.float32, dtypes.float16, dtypes.int32])
def test_like(dtype):
  x = Tensor.ones(2, 3, dtype=dtype)
  tx = torch.ones(2, 3, dtype=getattr(torch, dtype.name))
  for name in ("zeros_like", "ones_like"):
    out, ref = getattr(x, name)(), getattr(torch, name)(tx)
    assert out.shape == (2, 3) and out.dtype == dtype
    compare(out.numpy(), ref.numpy(), 0, 0)
  out = x.full_like(7)
  assert out.dtype == dtype and (out.numpy() == 7).all()
  if dtype.is_float:
    for name in ("rand_like", "randn_like"):
      r = getattr(x, name)()
      assert r.shape == (2, 3) and r.dtype == dtype
  assert x.zeros_like(dtype=dtypes.int8).dtype == dtypes.int8


@pytest.mark.parametrize("np_dtype", [np.float32, np.float16, np.int32, np.int64, np.uint8, np.int8, np.bool_])
def test_from_numpy_roundtrip(np_dtype):
  a = (np.arange(12).reshape(3, 4) % 3).astype(np_dtype)
  t = Tensor.from_numpy(a)
  assert t.dtype == dtypes.from_np(np_dtype) and t.shape == (3, 4)
  out = t.numpy()
  assert out.dtype == a.dtype
  np.testing.assert_array_equal(out, a)
  assert t.tolist() == a.tolist()
  np.testing.assert_array_equal(t.torch().numpy(), torch.from_numpy(a).numpy())


def test_from_numpy_noncontiguous():
  a = np.arange(24, dtype=np.float32).reshape(4, 6)[::2, ::-3]
  np.testing.assert_array_equal(Tensor.from_numpy(a).numpy(), a)
  np.testing.assert_array_equal(Tensor(a.T).numpy(), a.T)


def test_python_data_dtypes():
  assert Tensor(3).dtype == dtypes.int64 and Tensor(3).shape == ()
  assert Tensor(2.5).dtype == dtypes.float32
  assert Tensor(True).dtype == dtypes.bool
  assert Tensor([[1, 2], [3, 4]]).dtype == dtypes.int64
  assert Tensor([1.0, 2]).dtype == dtypes.float32
  assert Tensor([1, 2], dtype=dtypes.float16).dtype == dtypes.float16
  t = Tensor(torch.arange(6).reshape(2, 3))
  assert t.dtype == dtypes.int64 and t.tolist() == [[0, 1, 2], [3, 4, 5]]
  u = Tensor(Tensor([1.5, 2.5]), dtype=dtypes.int32)
  assert u.dtype == dtypes.int32 and u.tolist() == [1, 2]
  assert Tensor.from_torch(torch.ones(2, dtype=torch.float16)).dtype == dtypes.float16


def test_tolist_item():
  assert Tensor([[1.5, 2.0], [3.0, 4.0]]).tolist() == [[1.5, 2.0], [3.0, 4.0]]
  assert Tensor(5).tolist() == 5
  assert Tensor([]).tolist() == []
  x = Tensor([[2.5]])
  assert x.item() == 2.5 and isinstance(x.item(), float)
  assert isinstance(Tensor([3]).item(), int) and Tensor([3]).item() == 3
  assert Tensor(True).item() is True
  assert (Tensor.arange(6).reshape(2, 3)[1, 2]).item() == 5
  assert float(Tensor(1.5)) == 1.5 and int(Tensor(7)) == 7 and bool(Tensor(1))
  with pytest.raises(ValueError): Tensor([1, 2]).item()


def test_properties():
  x = Tensor.zeros(2, 3, 4)
  assert x.ndim == 3 and x.numel() == 24 and x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
  assert x.T.shape == (4, 3, 2) and isinstance(x.device, str)
  assert not x.requires_grad and x.grad is None
