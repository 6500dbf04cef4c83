"""Laziness: nothing runs until realize(), views copy nothing, buffers die with their tensors."""
import gc
import weakref
import numpy as np
import pytest
import lazygrad
from lazygrad import Tensor, GlobalCounters


def _realized(shape=(2, 3, 4)):
  return Tensor(np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)).realize()


def test_thousand_ops_run_nothing_until_realize():
  a = Tensor(np.linspace(-1, 1, 16, dtype=np.float32))
  GlobalCounters.reset()
  x = a
  for i in range(1000):
    x = (x * 0.999 + 0.001) if i % 2 else (x + 0.5) - 0.5
  assert GlobalCounters.kernel_count == 0
  assert not x.is_realized
  ref = a.numpy().astype(np.float64)
  for i in range(1000): ref = (ref * np.float32(0.999) + np.float32(0.001)) if i % 2 else (ref + 0.5) - 0.5
  x.realize()
  assert GlobalCounters.kernel_count >= 1
  assert x.is_realized
  np.testing.assert_allclose(x.numpy(), ref, rtol=1e-4, atol=1e-5)


def test_graph_building_methods_are_lazy():
  a, b = Tensor.rand(4, 8), Tensor.rand(8, 3)
  GlobalCounters.reset()
  outs = [a @ b, a.softmax(-1), a.sum(0), a.max(1).values, a.argmax(1), a.T.contiguous(), a.cumsum(1),
          a.layer_norm(8), (a > 0.5).where(a, 0), Tensor.cat([a, a], 1), a[1:, ::2], a.pad((1, 1)),
          Tensor.randn(3, 3), Tensor.eye(4), a.exp().log().sqrt()]
  assert GlobalCounters.kernel_count == 0
  assert all(not o.is_realized for o in outs)


def test_realize_twice_runs_nothing_second_time():
  a, b = Tensor.rand(8, 8), Tensor.rand(8, 8)
  c = (a @ b).relu().sum(1)
  GlobalCounters.reset()
  c.realize()
  first = GlobalCounters.kernel_count
  assert first >= 1
  GlobalCounters.reset()
  c.realize()
  assert GlobalCounters.kernel_count == 0
  assert lazygrad.schedule(c) == []
  # numpy() of a realized contiguous tensor runs nothing either
  c.numpy()
  assert GlobalCounters.kernel_count == 0


def test_realize_several_in_one_schedule_returns_self():
  a = Tensor.rand(5)
  b, c = a + 1, a * 2
  GlobalCounters.reset()
  assert b.realize(c) is b
  assert b.is_realized and c.is_realized
  np.testing.assert_allclose(c.numpy(), a.numpy() * 2, rtol=1e-6)
  np.testing.assert_allclose(b.numpy(), a.numpy() + 1, rtol=1e-6)


@pytest.mark.parametrize("name,fn,ref", [
  ("permute", lambda t: t.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
  ("transpose", lambda t: t.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
  ("reshape", lambda t: t.reshape(6, 4), lambda a: a.reshape(6, 4)),
  ("expand", lambda t: t.reshape(2, 3, 4, 1).expand(2, 3, 4, 5), lambda a: np.broadcast_to(a[..., None], (2, 3, 4, 5))),
  ("slice", lambda t: t[:, 1:], lambda a: a[:, 1:]),
  ("step_slice", lambda t: t[:, ::2, 1::3], lambda a: a[:, ::2, 1::3]),
  ("int_index", lambda t: t[1, :, 2], lambda a: a[1, :, 2]),
  ("flip", lambda t: t.flip(0, 2), lambda a: a[::-1, :, ::-1]),
  ("neg_step", lambda t: t[:, ::-1], lambda a: a[:, ::-1]),
  ("chain", lambda t: t.permute(1, 0, 2)[::2].flip(2).reshape(2, 2, 2, 2).expand(3, 2, 2, 2, 2),
   lambda a: np.broadcast_to(a.transpose(1, 0, 2)[::2][:, :, ::-1].reshape(2, 2, 2, 2), (3, 2, 2, 2, 2))),
])
def test_movement_on_realized_tensor_copies_nothing(name, fn, ref):
  a = _realized()
  GlobalCounters.reset()
  v = fn(a)
  v.realize()
  assert GlobalCounters.kernel_count == 0, name
  assert v.node.buffer is a.node.buffer, name
  np.testing.assert_array_equal(v.numpy(), ref(a.numpy()))


def test_movement_view_of_lazy_base_shares_its_buffer():
  a = _realized()
  b = a * 2
  v = b.permute(2, 1, 0)[1:]
  GlobalCounters.reset()
  v.realize(b)
  assert GlobalCounters.kernel_count == 1
  assert v.node.buffer is b.node.buffer
  np.testing.assert_array_equal(v.numpy(), (a.numpy() * 2).transpose(2, 1, 0)[1:])


def test_fused_elementwise_is_one_kernel():
  a, b, c = (Tensor.rand(16, 16).realize() for _ in range(3))
  GlobalCounters.reset()
  out = ((a + b) * c).relu()
  out.realize()
  assert GlobalCounters.kernel_count == 1
  np.testing.assert_allclose(out.numpy(), np.maximum((a.numpy() + b.numpy()) * c.numpy(), 0), rtol=1e-6)


def test_elementwise_through_views_is_one_kernel():
  a, b = Tensor.rand(8, 4).realize(), Tensor.rand(4, 8).realize()
  GlobalCounters.reset()
  out = (a.T.flip(0) + b[:, ::-1] * 2).exp().pad((1, 1))
  out.realize()
  assert GlobalCounters.kernel_count == 1
  ref = np.pad(np.exp(a.numpy().T[::-1] + b.numpy()[:, ::-1] * 2), ((0, 0), (1, 1)))
  np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6)


def test_reduce_with_prologue_is_one_kernel():
  a, b = Tensor.rand(16, 32).realize(), Tensor.rand(16, 32).realize()
  GlobalCounters.reset()
  out = (a * b + 1).sum(1)
  out.realize()
  assert GlobalCounters.kernel_count == 1
  np.testing.assert_allclose(out.numpy(), (a.numpy() * b.numpy() + 1).sum(1), rtol=1e-5)


def test_softmax_kernel_count_is_small():
  a = Tensor.rand(8, 32).realize()
  GlobalCounters.reset()
  a.softmax(-1).realize()
  assert 1 <= GlobalCounters.kernel_count <= 4   # max, exp, sum, divide (DESIGN targets 1-2 once reduces take epilogues)


def test_schedule_lists_kernels_without_running():
  a, b, c = Tensor.rand(4, 4), Tensor.rand(4, 4), Tensor.rand(4, 4)
  out = ((a + b) * c).relu().sum(0)
  GlobalCounters.reset()
  items = lazygrad.schedule(out)
  assert GlobalCounters.kernel_count == 0
  assert not out.is_realized
  assert len(items) >= 1
  for it in items:
    assert isinstance(it.name, str) and it.name
    assert isinstance(it.source, str) and it.source
  assert items[-1].name.startswith("R_")
  # scheduling twice is still free, realizing runs exactly what was listed
  assert len(lazygrad.schedule(out)) == len(items)
  out.realize()
  assert GlobalCounters.kernel_count == len(items)


def test_schedule_names_elementwise_kernel():
  a, b = Tensor.rand(4, 4).realize(), Tensor.rand(4, 4).realize()
  items = lazygrad.schedule((a + b).exp())
  assert len(items) == 1 and items[0].name.startswith("E_")
  assert "4x4" in items[0].name


def test_buffers_die_with_their_tensors():
  t = Tensor.rand(1000).realize()
  ref = weakref.ref(t.node.buffer)
  assert ref() is not None
  del t
  gc.collect()
  assert ref() is None


def test_computed_buffers_die_with_their_tensors():
  a = Tensor.rand(256).realize()
  out = ((a + 1) * 3).realize()
  ref_out = weakref.ref(out.node.buffer)
  view = out.reshape(16, 16).realize()
  del out
  gc.collect()
  assert ref_out() is not None          # the view still holds it
  del view
  gc.collect()
  assert ref_out() is None
  assert a.node.buffer is not None


def test_intermediate_buffers_are_not_kept():
  a = Tensor.rand(64, 64).realize()
  mid = (a @ a).contiguous()
  out = (mid + 1).sum()
  out.realize()
  ref = weakref.ref(mid.node.buffer)
  del mid
  gc.collect()
  # the realized output forgot its graph (no grad), so nothing keeps the intermediate alive
  assert ref() is None
  assert out.node.srcs == ()


def test_manual_seed_makes_rand_reproducible():
  Tensor.manual_seed(1234)
  a, an = Tensor.rand(3, 5).numpy(), Tensor.randn(7).numpy()
  Tensor.manual_seed(1234)
  b, bn = Tensor.rand(3, 5).numpy(), Tensor.randn(7).numpy()
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(an, bn)
  Tensor.manual_seed(4321)
  c = Tensor.rand(3, 5).numpy()
  assert not np.array_equal(a, c)
  # successive draws differ, values in [0, 1)
  d, e = Tensor.rand(100).numpy(), Tensor.rand(100).numpy()
  assert not np.array_equal(d, e)
  assert d.min() >= 0 and d.max() < 1


def test_rand_is_fixed_at_creation_not_at_realize():
  Tensor.manual_seed(7)
  a = Tensor.rand(10)
  Tensor.manual_seed(7)
  Tensor.rand(10).realize()      # realizing another draw first must not change a's numbers
  b = Tensor.rand(10)
  Tensor.manual_seed(7)
  ref = Tensor.rand(10).numpy()
  np.testing.assert_array_equal(a.numpy(), ref)
  assert not np.array_equal(b.numpy(), ref)


def test_debug2_prints_a_line_per_kernel(monkeypatch, capsys):
  a, b = Tensor.rand(8, 8).realize(), Tensor.rand(8, 8).realize()
  out = (a @ b).relu().sum(0)
  items = lazygrad.schedule(out)
  names = [it.name for it in items]
  capsys.readouterr()
  monkeypatch.setenv("DEBUG", "2")
  out.realize()
  printed = capsys.readouterr().out
  for n in names: assert n in printed
  kernel_lines = [ln for ln in printed.splitlines() if any(n in ln for n in names)]
  assert len(kernel_lines) == len(names)


def test_debug0_prints_nothing(monkeypatch, capsys):
  monkeypatch.setenv("DEBUG", "0")
  capsys.readouterr()
  (Tensor.rand(4) + 1).realize()
  assert capsys.readouterr().out == ""


def test_global_counters_count_ops_and_memory():
  a, b = Tensor.rand(32, 32).realize(), Tensor.rand(32, 32).realize()
  GlobalCounters.reset()
  assert GlobalCounters.kernel_count == GlobalCounters.global_ops == GlobalCounters.global_mem == 0
  (a + b).realize()
  assert GlobalCounters.kernel_count == 1
  assert GlobalCounters.global_ops >= 32 * 32
  assert GlobalCounters.global_mem >= 3 * 32 * 32 * 4
  assert GlobalCounters.time_sum_s >= 0


def test_backward_is_lazy():
  w = Tensor.rand(4, 4, requires_grad=True)
  x = Tensor.rand(3, 4)
  GlobalCounters.reset()
  loss = (x @ w).relu().sum()
  loss.backward()
  assert GlobalCounters.kernel_count == 0
  assert w.grad is not None and not w.grad.is_realized
  w.grad.realize()
  assert GlobalCounters.kernel_count >= 1


def test_printing_and_item_realize():
  a = Tensor([1.0, 2.0, 3.0])
  GlobalCounters.reset()
  s = a.sum()
  assert GlobalCounters.kernel_count == 0
  assert s.item() == 6.0
  assert GlobalCounters.kernel_count >= 1
  assert "6" in str(a.sum())   # printing realizes; repr is one line that never computes
