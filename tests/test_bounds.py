"""Bounds-checked indexing (Ops.CHECK): an out-of-range index raises IndexError at realize, naming the op, the value,
the size and the line that built the op, on every device; in range, values and gradients match torch; the checks add no
kernel and a failing realize changes nothing."""
import os
import sys
import numpy as np
import re
import pytest
import torch
import torch.nn.functional as F
import lazygrad.scheduler as S
from lazygrad import Tensor, dtypes, no_grad, schedule
from lazygrad.ops import Ops
from lazygrad.runtime import get_device
from lazygrad.helpers import GlobalCounters
from lazygrad.nn.module import realize_with_next_step
from lazygrad.optim import SGD
from lazygrad.tensor_index import IndexMixin
from helpers import compile_for_hopper, helper_test_op, hopper_job

HERE = os.path.basename(__file__)


def _here() -> int:
  """The caller's line number: build an op and call this on the same line."""
  return sys._getframe(1).f_lineno


def _ints(values, dtype=dtypes.int64):
  return Tensor(np.array(values), dtype=dtype)


def _x(*shape):
  return Tensor(np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) + 1)


def _raises(build, *words):
  """build() -> (tensor, line); realizing it raises IndexError whose message has every word, this file and the line."""
  t, line = build()
  with pytest.raises(IndexError) as e: t.realize()
  msg = str(e.value)
  for w in words + (f"{HERE}:{line}",): assert str(w) in msg, msg
  return msg


def _setitem(x, idx, value):
  """x[idx] = value; (x, the line of that statement)."""
  x[idx] = value
  return x, _here() - 1


# ---- every op, an index too large and one too negative: (name, build(bad value) -> (tensor, line), size, lowest allowed)
CASES = [
  ("index", lambda v: (_x(3, 4)[_ints([0, v])], _here()), 3, -3),
  ("index", lambda v: (_x(3, 4)[:, _ints([[v], [1]])], _here()), 4, -4),
  ("gather", lambda v: (_x(3, 4).gather(1, _ints([[0, v], [1, 1], [2, 3]])), _here()), 4, 0),
  ("take", lambda v: (_x(2, 3).take(_ints([[v, 0]])), _here()), 6, -6),
  ("index_select", lambda v: (_x(3, 4).index_select(0, _ints([2, v])), _here()), 3, 0),
  ("embedding", lambda v: (_ints([[1, v]]).embedding(_x(5, 2)), _here()), 5, 0),
  ("one_hot", lambda v: (_ints([v, 1]).one_hot(4), _here()), 4, 0),
  ("scatter", lambda v: (_x(3, 4).scatter(0, _ints([[0, v]]), _x(1, 2)), _here()), 3, 0),
  ("scatter", lambda v: (_x(3, 4).scatter(1, _ints([[v], [0]]), 5.0), _here()), 4, 0),
  ("scatter_add", lambda v: (_x(3, 4).scatter_add(1, _ints([[0, v]]), _x(1, 2)), _here()), 4, 0),
  ("setitem", lambda v: _setitem(_x(3, 4), (_ints([1, v]),), 7.0), 3, -3),
  ("index_put_", lambda v: (_x(3, 4).index_put_((_ints([0]), _ints([v])), _x(1), accumulate=True), _here()), 4, -4),
  ("nll_loss", lambda v: (_x(2, 3).log_softmax(1).nll_loss(_ints([v, 0])), _here()), 3, 0),
  ("cross_entropy", lambda v: (_x(2, 3).cross_entropy(_ints([0, v])), _here()), 3, 0),
  ("cross_entropy", lambda v: (_x(2, 3, 2).cross_entropy(_ints([[0, v], [1, 2]]), weight=_x(3), label_smoothing=0.1), _here()), 3, 0),
  ("cross_entropy", lambda v: (_x(3).cross_entropy(_ints(v)), _here()), 3, 0),
]
IDS = [f"{c[0]}{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize("op,build,size,lo", CASES, ids=IDS)
def test_too_large_raises(op, build, size, lo):
  _raises(lambda: build(size + 2), f"{op}:", f" {size + 2} ", f"size {size}")


@pytest.mark.parametrize("op,build,size,lo", CASES, ids=IDS)
def test_too_negative_raises(op, build, size, lo):
  _raises(lambda: build(lo - 1), f"{op}:", f" {lo - 1} ", f"size {size}", f"[{lo}, {size})")


@pytest.mark.parametrize("op,build,size,lo", CASES, ids=IDS)
def test_edges_in_range_do_not_raise(op, build, size, lo):
  for v in (lo, size - 1): build(v)[0].realize()


def test_int32_and_uint8_indices():
  _raises(lambda: (_x(3, 4)[_ints([7], dtypes.int32)], _here()), "index: index 7", "size 3")
  _raises(lambda: (_ints([200], dtypes.uint8).embedding(_x(5, 2)), _here()), "embedding: index 200", "size 5")
  np.testing.assert_equal(_x(3, 2)[_ints([-1, 2], dtypes.int8)].numpy(), [[5, 6], [5, 6]])


def test_message_shape_matches_torch_words():
  msg = _raises(lambda: (_x(2, 3).cross_entropy(_ints([0, 7])), _here()), "cross_entropy: target 7 is out of bounds for dim 1 with size 3")
  assert "checked in kernel" in msg and "more check" not in msg


# ---- in range: values and gradients match torch (negative indices where torch allows them)

def test_take_matches_torch():
  idx = np.array([[0, -1, 5], [-6, 2, 2]])
  helper_test_op([(2, 3)], lambda x: x.take(torch.tensor(idx)), lambda x: x.take(Tensor(idx)))
  helper_test_op([(7,)], lambda x: x.take(torch.tensor(3)), lambda x: x.take(Tensor(np.array(3))))


@pytest.mark.parametrize("dim,idx", [(0, [2, 0, 2]), (1, [3]), (-1, [0, 1, 1, 0]), (1, 2)])
def test_index_select_matches_torch(dim, idx):
  i = np.array(idx)
  helper_test_op([(3, 4)], lambda x: x.index_select(dim, torch.tensor(i)), lambda x: x.index_select(dim, Tensor(i)))


def test_index_select_of_a_transposed_view_matches_torch():
  i = np.array([1, 0])
  helper_test_op([(3, 4)], lambda x: x.T.index_select(1, torch.tensor(i)), lambda x: x.T.index_select(1, Tensor(i)))


@pytest.mark.parametrize("dim,idx,src_shape", [(0, [[1, 0, 2]], (1, 3)), (1, [[2], [0]], (2, 1)), (1, [[0, 2], [1, 0], [3, 1]], (3, 2))])
def test_scatter_matches_torch(dim, idx, src_shape):
  i = np.array(idx)
  helper_test_op([(3, 4), src_shape], lambda x, s: x.scatter(dim, torch.tensor(i), s), lambda x, s: x.scatter(dim, Tensor(i), s))
  helper_test_op([(3, 4)], lambda x: x.scatter(dim, torch.tensor(i), -2.5), lambda x: x.scatter(dim, Tensor(i), -2.5))


def test_negative_tensor_indices_wrap_like_torch():
  i = np.array([-1, 0, -3])
  helper_test_op([(3, 4)], lambda x: x[torch.tensor(i)], lambda x: x[Tensor(i)])
  helper_test_op([(3, 4)], lambda x: x[:, torch.tensor(i)], lambda x: x[:, Tensor(i)])


def test_checked_ops_still_match_torch_with_gradients():
  t = np.array([2, 0, 1, 2])
  helper_test_op([(4, 3)], lambda x: F.cross_entropy(x, torch.tensor(t)), lambda x: x.cross_entropy(Tensor(t)))
  helper_test_op([(4, 3)], lambda x: F.nll_loss(x, torch.tensor(t), reduction="sum"), lambda x: x.nll_loss(Tensor(t), reduction="sum"))
  e = np.array([[4, 0], [2, 2]])
  helper_test_op([(5, 3)], lambda w: F.embedding(torch.tensor(e), w), lambda w: Tensor(e).embedding(w))
  g = np.array([[1, 0], [2, 2]])
  helper_test_op([(2, 3)], lambda x: x.gather(1, torch.tensor(g)), lambda x: x.gather(1, Tensor(g)))


# ---- ignore_index: ignored targets are never out of range

@pytest.mark.parametrize("ignore", [-100, 5, -1])
def test_ignore_index_is_not_out_of_range(ignore):
  t = np.array([0, ignore, 2, ignore])
  for kw in ({}, {"label_smoothing": 0.2}, {"reduction": "sum"}):
    helper_test_op([(4, 3)], lambda x: F.cross_entropy(x, torch.tensor(t), ignore_index=ignore, **kw),
                   lambda x: x.cross_entropy(Tensor(t), ignore_index=ignore, **kw))
  w = np.array([0.5, 2.0, 1.5], dtype=np.float32)
  helper_test_op([(4, 3)], lambda x: F.cross_entropy(x, torch.tensor(t), weight=torch.tensor(w), ignore_index=ignore),
                 lambda x: x.cross_entropy(Tensor(t), weight=Tensor(w), ignore_index=ignore))


def test_ignore_index_does_not_hide_other_bad_targets():
  _raises(lambda: (_x(3, 3).cross_entropy(_ints([5, -100, 1])), _here()), "cross_entropy: target 5", "size 3")
  _raises(lambda: (_x(3, 3).cross_entropy(_ints([9, 7, 1]), ignore_index=7), _here()), "target 9")


# ---- lazy indices, constants, fused schedules

def test_computed_lazy_index_is_checked():
  idx = _ints([1, 2]) * 3 - 1            # [2, 5]: never realized on its own
  assert not idx.is_realized
  _raises(lambda: (_x(4, 2)[idx], _here()), "index: index 5", "size 4")
  _raises(lambda: (_x(4, 2).gather(0, (idx - 3).reshape(2, 1)), _here()), "gather: index -1")


def test_constant_index_is_checked_not_folded():
  idx = Tensor.full((2,), 7, dtype=dtypes.int64)
  _raises(lambda: (_x(3, 2)[idx], _here()), "index: index 7", "size 3")
  np.testing.assert_equal(_x(3, 2)[Tensor.full((1,), -1, dtype=dtypes.int64)].numpy(), [[5, 6]])


def _mlp():
  rng = np.random.default_rng(0)
  arrays = [rng.uniform(-0.3, 0.3, s).astype(np.float32) for s in ((16, 8), (16,), (4, 16), (4,))]
  return arrays, [Tensor(a, requires_grad=True).realize() for a in arrays]


def _sgd_step(params, x, y, opt=None):
  """One step of forward, backward and SGD update in one schedule: through the optimizer (which puts the old values
  back when the realize raises) or with plain assigns."""
  w1, b1, w2, b2 = params
  loss = x.linear(w1, b1).relu().linear(w2, b2).cross_entropy(y)
  loss.backward()
  try:
    if opt is not None:
      realize_with_next_step(loss)
      opt.step()
    else:
      with no_grad():
        for p in params: p.assign(p - 0.1 * p.grad)
      loss.realize(*params)
  finally:
    for p in params: p.grad = None
  return loss


def test_fused_training_step_raises_and_changes_nothing():
  """Forward, backward and the in-place SGD update in one schedule of several kernels: a bad target raises, no
  parameter is written (the update kernels are guarded; the optimizer puts the old nodes back), and the next step
  (good targets) matches torch."""
  arrays, params = _mlp()
  opt = SGD(params, lr=0.1)
  x = Tensor(np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32)).realize()
  bad, good = _ints([0, 1, 2, 3, 4, 1]), _ints([0, 1, 2, 3, 3, 1])
  with pytest.raises(IndexError, match=r"cross_entropy: target 4 is out of bounds for dim 1 with size 4"):
    _sgd_step(params, x, bad, opt)
  for p, a in zip(params, arrays):
    assert p.is_realized
    np.testing.assert_array_equal(p.numpy(), a)
  GlobalCounters.reset()
  loss = _sgd_step(params, x, good, opt)
  assert GlobalCounters.kernel_count > 3   # several kernels, checks in the first ones, in-place updates after
  tp = [torch.tensor(a, requires_grad=True) for a in arrays]
  tl = F.cross_entropy(F.linear(F.linear(torch.tensor(x.numpy()), tp[0], tp[1]).relu(), tp[2], tp[3]), torch.tensor(good.numpy()))
  tl.backward()
  np.testing.assert_allclose(loss.numpy(), tl.item(), rtol=1e-5)
  for p, t in zip(params, tp): np.testing.assert_allclose(p.numpy(), (t - 0.1 * t.grad).detach().numpy(), rtol=1e-4, atol=1e-6)


def test_plain_assigns_after_a_failed_step_stay_pending_and_raise_again():
  """Without an optimizer nothing puts the old values back: the parameters are pending ASSIGNs of the failed step,
  their buffers untouched; realizing them raises again rather than returning values built from a bad index."""
  arrays, params = _mlp()
  x = Tensor(np.ones((6, 8), np.float32)).realize()
  with pytest.raises(IndexError): _sgd_step(params, x, _ints([0, 1, 2, 3, 9, 1]))
  for p, a in zip(params, arrays):
    assert not p.is_realized and p.node.srcs[0].realized
    np.testing.assert_array_equal(p.node.srcs[0].buffer.numpy().reshape(a.shape), a)
    with pytest.raises(IndexError, match="target 9"): p.realize()


def _force_in_place(monkeypatch):
  """Every ASSIGN writes in place (the scheduler's reference count test rarely allows it in a test's frame)."""
  orig = S.order_assigns
  def force(sched, *args):
    orig(sched, *args)
    for it in sched.items: it.in_place = it.out.op is Ops.ASSIGN
  monkeypatch.setattr(S, "order_assigns", force)


def test_guard_keeps_an_in_place_update_from_writing(monkeypatch):
  _force_in_place(monkeypatch)
  x = _x(4, 3)
  w = Tensor(np.ones((4, 3), np.float32)).realize()
  buf = w.node.buffer
  w.assign(w * 2 + x[_ints([0, 1, 5, 2])].contiguous())   # the index kernel first, then the update (guarded)
  items = schedule(w)
  assert len(items) == 2 and items[0].check_nodes and items[1].in_place and items[1].kernel.guard
  with pytest.raises(IndexError, match="index 5"): w.realize()
  np.testing.assert_array_equal(buf.numpy(), 1)
  w.node = w.node.srcs[0]   # drop the failed assign (what an optimizer does)
  w.assign(w * 2 + x[_ints([0, 1, 3, 2])].contiguous())
  w.realize()
  assert w.node.buffer is buf   # in place when nothing fails
  np.testing.assert_array_equal(w.numpy(), 2 + x.numpy()[[0, 1, 3, 2]])


def test_an_update_with_its_own_check_writes_a_fresh_buffer(monkeypatch):
  """Other programs of a kernel may store before one records a failure: an update kernel that checks indices
  itself (or runs before a kernel that does) never writes in place."""
  _force_in_place(monkeypatch)
  x = _x(4, 3)
  w = Tensor(np.ones((4, 3), np.float32)).realize()
  buf = w.node.buffer
  w.assign(w * 2 + x[_ints([0, 1, 5, 2])])
  items = schedule(w)
  assert len(items) == 1 and items[0].check_nodes and not items[0].in_place
  with pytest.raises(IndexError, match="index 5"): w.realize()
  np.testing.assert_array_equal(buf.numpy(), 1)


def test_after_an_error_the_next_realize_works_and_the_bad_tensor_raises_again():
  y = _x(3, 2)[_ints([3])]
  for _ in range(2):
    with pytest.raises(IndexError): y.realize()
    assert not y.is_realized
  np.testing.assert_equal(_x(3, 2)[_ints([2])].numpy(), [[5, 6]])
  np.testing.assert_equal((_x(3, 2)[_ints([-3])] + 1).numpy(), [[2, 3]])


def test_first_failing_site_is_named_and_the_others_counted():
  x = _x(3, 4)
  a, line = x.gather(1, _ints([[9], [0], [0]])), _here()
  b = x[_ints([-7])]
  msg = _raises(lambda: ((a.sum() + b.sum()), line), "gather: index 9", "1 more check(s) failed")
  assert "index: index -7" not in msg


def test_same_structure_from_another_line_names_its_own_line():
  """The schedule and kernel caches are keyed by structure, not by site: a second graph of the same structure built
  at another line reuses them and still names its own line."""
  x = _x(2, 3)
  _raises(lambda: (x.cross_entropy(_ints([0, 3])), _here()), "target 3")
  _raises(lambda: (x.cross_entropy(_ints([4, 0])), _here()), "target 4")


def test_check_in_a_matmul_prologue():
  """one_hot(idx) @ W is a contraction: the check runs on the operand tiles of the matmul template (Triton) and in
  the operand of numpy's matmul."""
  w = _x(4, 16)
  items = schedule(_ints([0, 3, 1, 2] * 8).one_hot(4).float() @ w)
  assert len(items) == 1 and items[0].kernel.contraction is not None and items[0].kernel.checks == 1
  np.testing.assert_allclose((_ints([0, 3, 1, 2] * 8).one_hot(4).float() @ w).numpy(), w.numpy()[[0, 3, 1, 2] * 8])
  _raises(lambda: (_ints([0, 5, 1, 2] * 8).one_hot(4).float() @ w, _here()), "one_hot: class value 5", "size 4")


def test_stale_records_of_a_direct_launch_are_dropped():
  """A kernel launched by hand (bench scripts do) records into the device's error buffer, which nobody reads: the next
  schedule starts from a clean one (no false IndexError, guarded updates still write)."""
  (it,) = schedule(_x(3, 2)[_ints([7])])
  dev = get_device(it.out.device)
  fn = dev.compile(it.kernel)
  fn([dev.alloc(int(np.prod(it.out.shape)), it.out.dtype)] + [n.buffer.data for n in it.inputs], it.var_values)
  assert dev.errors.dirty and dev.errors.read(1) is not None
  fn([dev.alloc(int(np.prod(it.out.shape)), it.out.dtype)] + [n.buffer.data for n in it.inputs], it.var_values)
  w = Tensor(np.ones(2, np.float32)).realize()
  w.assign(w + _x(3, 2)[_ints([1])].sum(0))
  np.testing.assert_equal(w.numpy(), [4, 5])
  assert not dev.errors.dirty


def test_realized_results_of_an_earlier_schedule_are_kept():
  x = _x(3, 2)
  good = x[_ints([1])].realize()
  with pytest.raises(IndexError): (good + x[_ints([5])]).realize()
  np.testing.assert_equal(good.numpy(), [[3, 4]])


# ---- costs: the checks fuse (no extra kernel)

def _kernels(build) -> list[str]:
  return [it.kernel.name for it in schedule(*build())]


KERNEL_PROGRAMS = [
  lambda: [_x(8, 5).cross_entropy(_ints([0, 1, 4, 2, 3, 0, 1, 1]))],
  lambda: [(_ints([[1, 4], [2, 0]]).embedding(_x(5, 3)) @ _x(3, 2)).relu()],
  lambda: [_x(3, 4).gather(1, _ints([[1], [0], [3]])) * 2, _x(3, 4)[_ints([2, -1])].sum(0)],
  lambda: [_x(3, 4).scatter_add(1, _ints([[1, 1], [0, 2]]), _x(2, 2)), _ints([0, 3]).one_hot(4) + 1],
]


@pytest.mark.parametrize("build", KERNEL_PROGRAMS)
def test_checks_add_no_kernel(build, monkeypatch):
  with_checks = _kernels(build)
  monkeypatch.setattr(IndexMixin, "_bounds", lambda self, *a, **k: self)
  assert _kernels(build) == with_checks


def test_training_step_kernel_count_unchanged_by_checks(monkeypatch):
  counts = []
  for off in (False, True):
    if off: monkeypatch.setattr(IndexMixin, "_bounds", lambda self, *a, **k: self)
    _, params = _mlp()
    x = Tensor(np.ones((6, 8), np.float32)).realize()
    GlobalCounters.reset()
    _sgd_step(params, x, _ints([0, 1, 2, 3, 3, 1]))
    counts.append(GlobalCounters.kernel_count)
  assert counts[0] == counts[1]


def test_checked_kernels_compile_for_hopper(device, tmp_path):
  """The checks (masked relaxed atomics into the error buffer) and the guard of an in-place update compile for sm_90."""
  if device != "interp": pytest.skip("compiled once, from the interp run")
  _, params = _mlp()
  w1, b1, w2, b2 = params
  loss = Tensor(np.ones((6, 8), np.float32)).linear(w1, b1).relu().linear(w2, b2).cross_entropy(_ints([0, 1, 2, 3, 3, 1]))
  loss.backward()
  with no_grad(): w2.assign(w2 - 0.1 * w2.grad)
  items = schedule(loss, w2)
  assert any(it.kernel.checks for it in items) and any(it.kernel.guard for it in items)
  jobs = [hopper_job(it.kernel, ptx_out=str(tmp_path / f"{i}.ptx")) for i, it in enumerate(items) if it.kernel.uses_errors]
  assert any("atomic_max" in j["source"] for j in jobs) and any("tl.load(err_ptr" in j["source"] for j in jobs)
  results = compile_for_hopper(jobs, str(tmp_path))
  assert len(results) == len(jobs)
  ptx = [open(j["ptx_out"]).read() for j in jobs if "atomic_max" in j["source"]]
  # relaxed atomics; Triton 3.9 writes `red` (result unused), 3.6 `atom`
  assert ptx and all(re.search(r"(red|atom)\.global\.gpu\.relaxed\.max\.s64", p) and ".target sm_90" in p for p in ptx)
  for p in params: p.grad = None
