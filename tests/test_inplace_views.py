"""In-place writes through views and __setitem__, with torch as the oracle: the same program runs on torch and on
lazygrad (the names are the same), and every tensor it returns (bases, views made before the write, values read before
it) is compared, then gradients where torch allows the write. Runs on cpu and interp (tests/conftest.py); shapes are
small so interp launches few programs."""
from types import SimpleNamespace
import numpy as np
import pytest
import torch
from lazygrad import Tensor, dtypes, no_grad, optim
from lazygrad.tensor_inplace import ShapeMismatch
from helpers import compare

def _np(d):   # Python floats become float32, as torch.tensor's default
  a = np.asarray(d)
  return a.astype(np.float32) if a.dtype == np.float64 else a


LZ = SimpleNamespace(tensor=lambda d, dtype=None: Tensor(_np(d), dtype=getattr(dtypes, dtype) if dtype else None), no_grad=no_grad)
TH = SimpleNamespace(tensor=lambda d, dtype=None: torch.tensor(_np(d), dtype=getattr(torch, dtype) if dtype else None), no_grad=torch.no_grad)


def arr(*shape, dtype="float32", seed=0):
  rng = np.random.default_rng(seed + len(shape))
  if dtype == "bool": return rng.random(shape) < 0.5
  if "int" in dtype: return rng.integers(-5, 6, size=shape).astype(dtype)
  return rng.uniform(-2, 2, size=shape).astype(dtype)


def check(fn, *arrays):
  """fn(ns, *tensors) -> list of tensors, run on torch and lazygrad from the same arrays; values and dtypes compared."""
  want = fn(TH, *[torch.tensor(a) for a in arrays])
  got = fn(LZ, *[Tensor(a.copy()) for a in arrays])
  assert len(got) == len(want)
  for k, (g, w) in enumerate(zip(got, want)):
    assert g.shape == tuple(w.shape), f"output {k}: shape {g.shape} != torch {tuple(w.shape)}"
    assert g.dtype == dtypes.from_any(w.dtype), f"output {k}: dtype {g.dtype} != torch {w.dtype}"
    compare(g.numpy(), w.detach().numpy(), 1e-6, 1e-6, f"output {k}")


def check_grad(fn, *arrays, grad_of=None):
  """fn(ns, *leaves) -> scalar loss; the loss and the gradient of every leaf in grad_of (default all) vs torch."""
  grad_of = range(len(arrays)) if grad_of is None else grad_of
  tl = [torch.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
  ll = [Tensor(a.copy(), requires_grad=i in grad_of) for i, a in enumerate(arrays)]
  tloss, lloss = fn(TH, *tl), fn(LZ, *ll)
  tloss.backward(); lloss.backward()
  compare(lloss.numpy(), tloss.detach().numpy(), 1e-5, 1e-5, "loss")
  for i in grad_of:
    compare(ll[i].grad.numpy(), tl[i].grad.numpy(), 1e-5, 1e-5, f"grad of input {i}")


# ---- in-place methods on views reach the base (issue 10 item 5)

def test_slice_add_reaches_base():
  check(lambda ns, x: [x, x[1:].add_(100)], arr(6))

def test_select_fill_reaches_base():
  check(lambda ns, w: [w[0].fill_(0), w], arr(3, 4))

@pytest.mark.parametrize("n", [5, 6, 7])
def test_strided_slices(n):
  def prog(ns, x):
    x[::2].mul_(3)             # n odd: the strided view goes through a pad
    x[1::3].sub_(1, alpha=2)
    return [x]
  check(prog, arr(n))
  check(lambda ns, x: [x[1::2, ::3].fill_(7), x], arr(5, n))

def test_transpose_views():
  def prog(ns, x, y):
    x.T.add_(y)                # y (4,) broadcast over the transposed (5, 4)
    x.transpose(0, 1)[2].zero_()
    x.mT[1:, 1].copy_(ns.tensor([1.0, 2.0, 3.0, 4.0]))
    return [x]
  check(prog, arr(4, 5), arr(4))

def test_reshape_views():
  def prog(ns, x):
    x.reshape(3, 4)[1].fill_(7)
    x.view(-1)[::5].sub_(1)
    x.flatten()[2:4].mul_(-1)
    x.unsqueeze(0)[0, 0].add_(10)
    x.reshape(1, 12, 1).squeeze()[11:].fill_(-3)
    return [x]
  check(prog, arr(2, 6))

def test_narrow_split_chunk_unbind():
  def prog(ns, x):
    x.narrow(1, 1, 2).add_(1)
    a, b = x.split([1, 2], dim=0)
    b.mul_(2)
    x.chunk(2, dim=1)[1].fill_(0)
    x.unbind(0)[0].sub_(5)
    return [x, a, b]
  check(prog, arr(3, 4))

def test_chained_views_and_view_of_view():
  def prog(ns, x):
    v = x[1:]                  # a view made before the writes sees them
    vv = v[:, ::2]
    vv.T[0].fill_(9)
    v[0, 1:].add_(100)
    return [x, v, vv, vv.T]
  check(prog, arr(4, 5))

def test_two_views_written_in_one_realize():
  def prog(ns, x):
    top, bottom, col = x[0], x[1:], x[:, 2]
    before = x * 1             # computed from the old value
    top.fill_(1)
    bottom.mul_(-1)
    col.add_(top[1:] * 1)      # reads a written view (a copy: torch's add_ on overlapping memory reads as it writes)
    after = x * 1
    return [x, top, bottom, col, before, after]
  check(prog, arr(3, 4))

def test_read_base_before_and_after():
  def prog(ns, x):
    y = x.sum(0)
    x[1].add_(1)
    z = x.sum(0)
    return [y, z, x]
  check(prog, arr(3, 4))
  # the same with the base realized before the write: the write must not change what was read
  x = Tensor(arr(3, 4)).realize()
  y = x[1] * 2
  x[1].add_(1)
  compare(y.numpy(), arr(3, 4)[1] * 2, 1e-6, 1e-6)

def test_inplace_on_base_updates_its_views():
  def prog(ns, x):
    v = x[:, 1]
    x.add_(1)
    x.copy_(x * 2)
    x.clamp_(-1, 3)
    x.div_(2)
    x.masked_fill_(x > 1, 0.5)
    return [x, v]
  check(prog, arr(3, 4))

def test_iadd_on_views_and_base():
  def prog(ns, x):
    v = x[1:]
    v += 1
    x[0] *= 3
    x -= 2
    x[:, 1] /= 4
    return [x, v]
  check(prog, arr(3, 4))

def test_copies_are_not_views():
  # flip, pad, repeat and a one-tensor cat copy in torch: writes into them stay in them
  def prog(ns, x):
    f, r, c = x.flip(0), x.repeat(2, 1), ns_cat(ns, x)
    f.fill_(1); r[0].fill_(2); c[1].fill_(3)
    return [x, f, r, c]
  def ns_cat(ns, x): return torch.cat([x]) if ns is TH else Tensor.cat([x])
  check(prog, arr(3, 4))
  x = Tensor(arr(3, 4))
  p = x.pad((0, 0))
  p.fill_(5)
  compare(x.numpy(), arr(3, 4), 0, 0)

def test_write_into_expanded_view_raises():
  for x in (torch.zeros(1, 3), Tensor.zeros(1, 3)):
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor refers to a single memory location"):
      x.expand(4, 3).add_(1)

def test_zero_size_writes():
  def prog(ns, x):
    x[2:2] = 5
    x[:, 0:0].fill_(1)
    return [x]
  check(prog, arr(3, 4))


# ---- __setitem__ (issue 12)

@pytest.mark.parametrize("idx", [0, -1, (1, 2), (slice(None), 1), (slice(1, None, 2),), (Ellipsis, 0), (None, 1),
                                 (0, Ellipsis, slice(None, None, 3)), (slice(None, None, -1),)[:0] or (slice(-2, None),)])
def test_setitem_basic_scalar(idx):
  def prog(ns, x):
    x[idx] = 7.5
    return [x]
  check(prog, arr(3, 4, 5))

def test_setitem_basic_broadcast_values():
  def prog(ns, x, row, col):
    x[0] = row                 # (5,) into (4, 5)
    x[1:3] = col               # (2, 1) broadcast to (2, 5)
    x[:, ::2] = ns.tensor([[1.0, 2.0, 3.0]])   # leading size-1 dim dropped, as torch
    x[3, 1:] = ns.tensor([[[0.5]]])
    return [x]
  check(prog, arr(4, 5), arr(5), arr(2, 1))

def test_setitem_lists_and_numpy_values():
  # torch takes only numbers and tensors; numpy's rules here
  x, want = Tensor(arr(2, 3)), arr(2, 3)
  x[0] = want[0] = [1.0, 2.0, 3.0]
  x[1, :2] = want[1, :2] = np.array([4.0, 5.0], dtype=np.float32)
  compare(x.numpy(), want, 0, 0)

def test_setitem_bool_mask():
  def prog(ns, x, m):
    x[x > 1] = 0                          # the common form: where, no host sync
    x[m] = -1.0
    x[m[:, 0]] = ns.tensor([9.0, 8.0, 7.0, 6.0])   # a mask over the leading dim, value broadcast per row
    return [x]
  check(prog, arr(5, 4), arr(5, 4, dtype="bool"))

def test_setitem_bool_mask_with_one_value_per_selected_element():
  m = np.array([True, False, True, True, False])
  def prog(ns, x):
    x[ns.tensor(m)] = ns.tensor([1.0, 2.0, 3.0])
    x[:, ns.tensor(m[:3])] = 0.5
    return [x]
  check(prog, arr(5, 3))

def test_setitem_bool_mask_shape_mismatch():
  x = Tensor(arr(3, 4))
  with pytest.raises(IndexError):
    x[Tensor(np.ones((2, 4), bool))] = 1.0

def test_setitem_index_tensors():
  def prog(ns, x):
    x[ns.tensor([0, 2])] = 1.0                              # rows
    x[ns.tensor([-1]), 1:] = ns.tensor([5.0, 6.0, 7.0])     # negative index, with a slice
    x[:, ns.tensor([3, 0])] = ns.tensor([[-1.0], [-2.0], [-3.0], [-4.0]])
    x[ns.tensor([1, 2]), ns.tensor([1, 2])] = ns.tensor([10.0, 20.0])   # pairs
    x[ns.tensor(1), ns.tensor(3)] = 42.0                    # 0-d indices
    x[[0, 3], 2] = 0.25                                      # a list
    return [x]
  check(prog, arr(4, 4))

def test_setitem_index_tensor_placement():
  # adjacent index tensors after a slice keep their place in the indexed region, as torch
  def prog(ns, x, v):
    x[:, ns.tensor([[0, 1]]), ns.tensor([[2], [0]])] = v
    return [x]
  check(prog, arr(3, 2, 4), arr(3, 2, 2))

def test_setitem_index_tensor_duplicates_same_value():
  # duplicates are unspecified in torch; with equal values every choice agrees
  def prog(ns, x):
    x[ns.tensor([1, 1, 3, 1])] = ns.tensor([[2.0], [2.0], [3.0], [2.0]])
    return [x]
  check(prog, arr(5, 2))
  x = Tensor(np.zeros(3, np.float32))
  x[Tensor([0, 0])] = Tensor([1.0, 2.0])
  assert x.numpy()[0] in (1.0, 2.0)

def test_index_put_accumulate():
  def prog(ns, x, v):
    x.index_put_((ns.tensor([0, 2, 0]),), v, accumulate=True)
    x.index_put_((ns.tensor([1]), ns.tensor([3])), ns.tensor(5.0))
    return [x]
  check(prog, arr(3, 4), arr(3, 4))

@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "float16"])
def test_setitem_casts_to_the_base_dtype(dtype):
  def prog(ns, x):
    x[0] = 2.7                              # truncated into ints, nonzero into bool
    x[1, :2] = ns.tensor([True, False])
    x[2] = ns.tensor([-1.5, 0.0, 3.5])
    x[ns.tensor([1]), 2] = 7
    return [x]
  check(prog, arr(3, 3, dtype=dtype))

def test_setitem_shape_mismatch_is_torchs_error_class():
  for ns, x in ((TH, torch.zeros(3, 4)), (LZ, Tensor.zeros(3, 4))):
    with pytest.raises(RuntimeError):
      x[0:2] = ns.tensor(np.ones(3, np.float32))
    with pytest.raises(RuntimeError):
      x[ns.tensor([0, 1])] = ns.tensor(np.ones((3, 4), np.float32))
  with pytest.raises(ShapeMismatch, match="setitem"):
    Tensor.zeros(3, 4)[0] = Tensor.ones(5)

def test_inplace_result_type_rules():
  for x in (torch.zeros(3, dtype=torch.int32), Tensor.zeros(3, dtype=dtypes.int32)):
    with pytest.raises(RuntimeError, match="can't be cast"):
      x.add_(0.5)
    with pytest.raises(RuntimeError, match="can't be cast"):
      x[1:].div_(2)
    x.mul_(3)                      # int result into int: fine
  with pytest.raises(RuntimeError, match="output with shape"):
    Tensor.zeros(3).add_(Tensor.ones(2, 3))


# ---- autograd

def test_leaf_requiring_grad_raises_as_torch():
  for ns in (TH, LZ):
    w = ns.tensor(arr(3, 4))
    w.requires_grad_()
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used in an in-place operation"):
      w[0] = 0.0
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
      w.add_(1)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
      w.T[1].fill_(2)

def test_no_grad_writes_to_parameters():
  def prog(ns, w):
    with ns.no_grad():
      w[0] = 0.0
      w[1:].mul_(2)
      w.T[2].add_(1)
    return w
  tw, lw = torch.tensor(arr(3, 4), requires_grad=True), Tensor(arr(3, 4), requires_grad=True)
  prog(TH, tw); prog(LZ, lw)
  assert lw.requires_grad and lw.is_leaf
  compare(lw.numpy(), tw.detach().numpy(), 1e-6, 1e-6)
  (tw * tw).sum().backward(); (lw * lw).sum().backward()
  compare(lw.grad.numpy(), tw.grad.numpy(), 1e-5, 1e-5)

def test_grad_through_setitem_on_non_leaf():
  def prog(ns, x, y):
    a = x * 2
    a[1:, ::2] = y[:, :2] * 3      # the region's gradient goes to y, the rest to x
    a[0, 0] = 5.0
    return (a * a.sin()).sum()
  check_grad(prog, arr(3, 4), arr(2, 3))

def test_grad_through_inplace_methods():
  def prog(ns, x, y):
    a = x * 2 + 1
    a[1].add_(y[:3])
    a.T[0].mul_(y)
    a[:, 2].copy_(y * y)
    a.clamp_(max=3.0)
    return (a * a).sum()
  check_grad(prog, arr(4, 3), arr(4))

def test_grad_into_a_tensor_not_requiring_grad():
  # a buffer that does not require grad takes a value that does: it becomes a non-leaf, as torch
  def prog(ns, x, y):
    x[1] = y.sin()
    return (x * x).sum()
  check_grad(prog, arr(3, 2), arr(2), grad_of=[1])

def test_grad_through_index_put_and_mask():
  def prog(ns, x, y):
    a = x + 0
    a[ns.tensor([2, 0])] = y
    a[a > 1] = 0.0
    return (a * ns.tensor(arr(3, 4, seed=3))).sum()
  check_grad(prog, arr(3, 4), arr(2, 4))


# ---- the scheduler: in-place writes, one kernel for pending writes, nothing stale

def _ptr(t): return t.node.buffer.data.data_ptr() if hasattr(t.node.buffer.data, "data_ptr") else t.node.buffer.data.ctypes.data

def test_region_writes_go_in_place():
  x = (Tensor(arr(4, 6)) * 1).realize()   # a buffer of its own (not the caller's numpy array)
  p = _ptr(x)
  x[1:].add_(100)
  x[0, ::2] = 0.0
  x.realize()
  assert _ptr(x) == p
  want = arr(4, 6); want[1:] += 100; want[0, ::2] = 0
  compare(x.numpy(), want, 1e-6, 1e-6)

def test_pending_writes_are_one_kernel():
  import lazygrad
  x = (Tensor(arr(3, 4)) * 1).realize()
  x[0] = 1.0
  x[2, 1:] = 2.0
  x[:, 0] = 3.0
  items = lazygrad.schedule(x)
  assert len(items) == 1, items
  del items

def test_nothing_sees_a_stale_or_overwritten_buffer():
  x = (Tensor(arr(3, 4)) * 1).realize()
  flipped = x.flip(0).realize()              # a copy: realized as a view of x's buffer
  detached = x.detach()
  v = x[1]
  v.realize()                                # a view: must see the write
  lazy_old = x * 1                           # a lazy reader of the old value
  x.fill_(5)
  x.realize()
  compare(flipped.numpy(), arr(3, 4)[::-1], 0, 0)
  compare(detached.numpy(), arr(3, 4), 0, 0)
  compare(lazy_old.numpy(), arr(3, 4), 0, 0)
  compare(v.numpy(), np.full(4, 5, np.float32), 0, 0)

def test_caller_numpy_array_is_not_written():
  a = arr(2, 3)
  x = Tensor(a)
  x.add_(1).realize()
  compare(a, arr(2, 3), 0, 0)

def test_optimizer_updates_unaffected_and_in_place():
  w0 = arr(4, 3)
  tw, lw = torch.tensor(w0, requires_grad=True), Tensor(w0, requires_grad=True)
  topt, lopt = torch.optim.SGD([tw], lr=0.1, momentum=0.9), optim.SGD([lw], lr=0.1, momentum=0.9)
  ptrs = []
  for _ in range(3):
    (tw * tw).sum().backward(); topt.step(); topt.zero_grad()
    (lw * lw).sum().backward(); lopt.step(); lopt.zero_grad()
    ptrs.append(_ptr(lw))
  compare(lw.numpy(), tw.detach().numpy(), 1e-5, 1e-5)
  assert ptrs[1] == ptrs[2]                  # after the first step the parameter owns its buffer: updated in place

def test_augmented_setitem_is_one_write_in_place():
  x = (Tensor(arr(3, 4)) * 1).realize()
  p = _ptr(x)
  x[1] += 5                  # __getitem__, __iadd__ on the view, __setitem__ of the same view: one write
  x[:, ::2] *= 2
  x.realize()
  assert _ptr(x) == p
  want = arr(3, 4); want[1] += 5; want[:, ::2] *= 2
  compare(x.numpy(), want, 1e-6, 1e-6)

def test_readers_between_pending_writes_see_their_moment():
  def prog(ns, x):
    x[0] = 1.0
    mid = x * 2                # between two writes: sees the first only
    x[1] = 2.0
    x[0] += x[1]
    return [mid, x]
  check(prog, arr(3, 2))

def test_many_pending_writes():
  x = Tensor(np.zeros(24, np.float32))
  for i in range(24): x[i] += i
  compare(x.numpy(), np.arange(24, dtype=np.float32), 0, 0)

def test_setitem_index_out_of_range_raises():
  for x in (torch.zeros(3, 2), Tensor.zeros(3, 2)):
    with pytest.raises(IndexError):
      x[[0, 3]] = 1.0
    with pytest.raises(IndexError):
      x[:, [-3]] = 1.0
    with pytest.raises(IndexError):
      x[3] = 1.0

def test_requires_grad_on_a_view_makes_a_leaf():
  a = Tensor(arr(3, 4))
  w = a[1:].requires_grad_()
  with no_grad(): a.fill_(0)                 # the base's write no longer reaches the leaf
  assert w.requires_grad and w.is_leaf
  (w * w).sum().backward()
  compare(w.grad.numpy(), 2 * arr(3, 4)[1:], 1e-6, 1e-6)

def test_clone_is_a_copy_with_gradient():
  def prog(ns, x):
    c = x.clone()
    c[0] = 0.0
    v = x[1].clone()
    v.add_(1)
    return [x, c, v]
  check(prog, arr(3, 2))
  def loss(ns, x):
    c = x.clone()
    c[1:] = 0.0
    return (c * c).sum()
  check_grad(lambda ns, x: loss(ns, x * 1), arr(3, 2))
  y = (Tensor(arr(3, 2)) * 1).realize()
  c = y.clone()
  c.fill_(4).realize()                       # must not write y's buffer in place
  compare(y.numpy(), arr(3, 2), 0, 0)
