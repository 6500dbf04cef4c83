"""The schedule cache's key (scheduler/cache.py, ops.structural_id): graphs that differ in anything the scheduler
reads never share a schedule; graphs of one structure over other buffers and seeds do; graphs of one structure
that share nodes differently (x + x, x + y) each get the schedule made for them; realizing a node changes the key
of the graphs above it; building the key stays linear. Values are checked against numpy/torch, so a wrong hit
(a schedule of another graph) fails on the numbers as well as on the count of schedules built."""
from __future__ import annotations
import contextlib
import numpy as np
import pytest
import torch
from lazygrad import Tensor, dtypes
import lazygrad.scheduler as S
from lazygrad.scheduler import cache as C
from lazygrad.ops import structural_id
from test_linear_time import _run


@contextlib.contextmanager
def counting_builds():
  """A fresh schedule cache; yields a list that grows by one per schedule built (a cache miss) for some targets
  (realizing what is realized already schedules nothing: the empty graph is not counted)."""
  built = []
  orig = S._build_schedule
  def build(targets):
    if targets: built.append(len(targets))
    return orig(targets)
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(S, "_schedule_cache", {})
    mp.setattr(S, "_build_schedule", build)
    yield built


def _arr(*shape, seed=0, dtype=np.float32):
  return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _leaf(a: np.ndarray) -> Tensor:
  return (Tensor(a) * 1).realize()   # a buffer of its own


def _check(out: Tensor, want) -> None:
  np.testing.assert_allclose(out.numpy(), np.asarray(want), rtol=1e-5, atol=1e-6)


# (name, two builders over realized leaves a, b (4, 6) float32: their graphs differ in one thing)
DIFFERENT = {
  "constant":   (lambda a, b: a * 2.0 + b,           lambda a, b: a * 3.0 + b),
  "neg_zero":   (lambda a, b: a * 0.0 + b,           lambda a, b: a * -0.0 + b),
  "shape":      (lambda a, b: (a + b).sum(0),        lambda a, b: (a + b).sum(1)),
  "dtype":      (lambda a, b: (a + b).float(),       lambda a, b: (a.double() + b.double())),
  "view":       (lambda a, b: a[1:] + b[1:],         lambda a, b: a[:-1] + b[1:]),
  "permute":    (lambda a, b: (a.T @ b).exp(),       lambda a, b: (a.reshape(6, 4) @ b).exp()),
  "src_order":  (lambda a, b: a.exp() - b,           lambda a, b: b - a.exp()),
  "op":         (lambda a, b: (a + b).relu(),        lambda a, b: (a * b).relu()),
}


@pytest.mark.parametrize("name", sorted(DIFFERENT))
def test_graphs_differing_in_one_thing_never_share_a_schedule(name):
  f, g = DIFFERENT[name]
  x, y = _arr(4, 6), _arr(4, 6, seed=1)
  with counting_builds() as built:
    a, b = _leaf(x), _leaf(y)
    n0 = len(built)
    fa, ga = f(a, b), g(a, b)
    assert structural_id(fa.node) != structural_id(ga.node)
    _check(fa, f(torch.tensor(x), torch.tensor(y)).numpy())
    _check(ga, g(torch.tensor(x), torch.tensor(y)).numpy())
    assert len(built) - n0 == 2


def test_realized_leaf_vs_unrealized_node():
  x = _arr(4, 6)
  with counting_builds() as built:
    a = _leaf(x)
    n0 = len(built)
    lazy = (a * 2) + 1
    done_y = (a * 2).realize()
    done = done_y + 1
    assert structural_id(lazy.node) != structural_id(done.node)
    _check(lazy, x * 2 + 1)
    _check(done, x * 2 + 1)
    assert len(built) - n0 == 3   # done_y, lazy, done


def test_realized_view_leaf_vs_contiguous_leaf():
  x = _arr(5, 5)
  with counting_builds() as built:
    a = _leaf(x)
    t = a.T.realize()   # a view of a's buffer: a leaf whose view is a permute
    c = _leaf(x.T.copy())
    n0 = len(built)
    _check(t + 1, x.T + 1)
    _check(c + 1, x.T + 1)
    assert len(built) - n0 == 2


def test_same_structure_other_buffers_and_seeds_share_one_schedule():
  with counting_builds() as built:
    outs = []
    for step in range(3):
      x, y = _arr(8, 4, seed=step), _arr(8, 4, seed=10 + step)
      a, b = _leaf(x), _leaf(y)
      Tensor.manual_seed(step)
      r = Tensor.rand(8, 4)
      out = ((a + r) * b).sum(1)
      n0 = len(built)
      got = out.numpy()
      outs.append(got)
      if step: assert len(built) == n0, "a graph of the same structure rebuilt its schedule"
      Tensor.manual_seed(step)
      _check(out, ((x + Tensor.rand(8, 4).numpy()) * y).sum(1))
    assert not np.allclose(outs[0], outs[1])


# pairs of one structure (same structural ids) that share nodes differently
SHARING = {
  "x+x vs x+y":         (lambda a, b: a + a,                      lambda a, b: a + b),
  "xx+y vs xy+y":       (lambda a, b: a * a + b,                  lambda a, b: a * b + b),
  "e(x)e(x') vs e(x)e(x)": (lambda a, b: a.exp() * b.exp(),       lambda a, b: a.exp() * a.exp()),
  "shared vs rebuilt":  (lambda a, b: (lambda e: e * e)(a.exp()), lambda a, b: a.exp() * a.exp()),
}


@pytest.mark.parametrize("name", sorted(SHARING))
def test_graphs_sharing_differently_get_their_own_schedule(name):
  f, g = SHARING[name]
  x, y = _arr(4, 6), _arr(4, 6, seed=1)
  with counting_builds() as built:
    a, b = _leaf(x), _leaf(y)
    n0 = len(built)
    tx, ty = torch.tensor(x), torch.tensor(y)
    fa, ga = f(a, b), g(a, b)
    assert structural_id(fa.node) == structural_id(ga.node)
    _check(fa, f(tx, ty).numpy())
    _check(ga, g(tx, ty).numpy())
    assert len(built) - n0 == 2
    for _ in range(2):   # both layouts stay cached under the one key
      _check(g(a, b), g(tx, ty).numpy())
      _check(f(a, b), f(tx, ty).numpy())
    assert len(built) - n0 == 2


def test_two_targets_of_one_structure():
  x, y = _arr(4, 6), _arr(4, 6, seed=1)
  with counting_builds() as built:
    a, b = _leaf(x), _leaf(y)
    n0 = len(built)
    p, q = (a * 2).exp(), (b * 2).exp()
    p.realize(q)
    _check(p, np.exp(x * 2)); _check(q, np.exp(y * 2))
    p2 = (a * 2).exp()
    p2.realize(p2 + 0)   # targets alike in structure, one above the other
    _check(p2, np.exp(x * 2))
    assert len(built) - n0 == 2


def test_realizing_a_node_changes_the_key_above_it():
  x = _arr(4, 6)
  with counting_builds() as built:
    a = _leaf(x)
    y = a * 2
    z = (y + 1).exp()
    before = C.graph_key([z.node])
    y.realize()
    after = C.graph_key([z.node])
    assert before != after
    n0 = len(built)
    _check(z, np.exp(x * 2 + 1))
    assert len(built) - n0 == 1
    # the same structure built after the realize shares z's schedule
    y2 = (a * 2).realize()
    n1 = len(built)
    _check((y2 + 1).exp(), np.exp(x * 2 + 1))
    assert len(built) == n1


def test_key_is_the_targets_ids_and_nofuse():
  x = _arr(4, 6)
  a = _leaf(x)
  z = (a + 1).exp()
  assert C.graph_key([z.node])[0] == (structural_id(z.node),)


def test_ids_after_an_int_and_a_float_constant_differ():
  a = _leaf(_arr(4, 6))
  i, f = a + Tensor(1, dtype=dtypes.float32), a + 1.0
  assert structural_id(i.node) != structural_id(f.node)


def test_stale_ids_recompute_iteratively_in_linear_time(device):
  if device != "cpu": pytest.skip("device-independent: once")
  # a chain of 80k nodes made before its bottom is realized: every id above it is stale and is recomputed by
  # an iterative walk (recursion would overflow; a walk per node would not finish)
  out = _run("""
    import time
    import numpy as np
    from lazygrad import Tensor
    from lazygrad.ops import Node, Ops, structural_id
    from lazygrad.scheduler import cache as C
    x = Tensor(np.ones(4, dtype=np.float32)).realize().node
    one = Node(Ops.CONST, (), 1.0, (4,), x.dtype, x.device)
    times = []
    for n in (20000, 80000):
      bottom = Node(Ops.MUL, (x, one), None, (4,), x.dtype, x.device)
      y = bottom
      for i in range(n): y = Node(Ops.ADD if i % 2 else Ops.MUL, (y, one), None, (4,), x.dtype, x.device)
      before = structural_id(y)
      Tensor._from_node(bottom).realize()
      t = time.perf_counter()
      after = C.graph_key([y])[0][0]
      times.append(time.perf_counter() - t)
      assert after != before
    print(times[1] / times[0] < 12, times)
  """, timeout=240)
  assert out.split()[0] == "True", out


def test_a_hit_builds_no_graph_walk(monkeypatch):
  # on a hit the nodes come from the layout's replay, not from a walk of the graph
  x, y = _arr(4, 6), _arr(4, 6, seed=1)
  with counting_builds():
    a, b = _leaf(x), _leaf(y)
    ((a + b).exp() * a).realize()
    walks = []
    orig = S.toposort
    def walk(ts, *rest):
      if ts: walks.append(len(ts))
      return orig(ts, *rest)
    monkeypatch.setattr(S, "toposort", walk)
    out = ((a + b).exp() * a).realize()
    assert walks == []
    _check(out, np.exp(x + y) * x)


def test_equal_kernels_share_one_kernel_key(monkeypatch):
  # the compile cache is looked up per launch: equal kernels of different schedules carry one KernelKey object, so
  # the lookup is an identity check (no node-by-node comparison of their bodies)
  from lazygrad.kernels.ir import Expr
  x = _arr(4, 6)
  with counting_builds() as built:
    a = _leaf(x)
    n0 = len(built)
    p = (a * 2).exp().realize()
    q = ((a * 2).exp() + 0).realize()   # another structure: a schedule of its own, with another kernel
    r = (a * 2).exp()
    S._schedule_cache.clear()           # r's schedule built again: new Kernel objects, equal to p's
    items = S.create_schedule([r.node]).items
    assert len(built) - n0 == 3
    key = items[0].kernel.key
    assert isinstance(key, C.KernelKey) and key is C.canonical_key(key.value)
    compared = []
    orig = Expr.__eq__
    monkeypatch.setattr(Expr, "__eq__", lambda s, o: compared.append(1) or orig(s, o))
    r.realize()   # a schedule-cache hit (the graph create_schedule just saw), then the compile cache's lookup
    assert compared == [] and len(built) - n0 == 3
  _check(r, np.exp(x * 2)); _check(p, np.exp(x * 2)); _check(q, np.exp(x * 2))


def test_many_in_place_updates_order_in_linear_time(device):
  if device != "cpu": pytest.skip("device-independent: once")
  # 2000 parameters updated in place in one schedule (a cache hit, as in a training step): order_assigns compared
  # every in-place item with every item's inputs (quadratic: 15x the time for 5x the parameters, against 5x now)
  out = _run("""
    import time
    import numpy as np
    from lazygrad import Tensor
    def run(n):
      ps = [Tensor(np.full(3, float(i), np.float32)) * 1 for i in range(n)]
      Tensor.realize(*ps)
      for p in ps: p.assign(p * 2 + 1)
      Tensor.realize(*ps)   # a miss: scheduled once
      for p in ps: p.assign(p * 2 + 1)
      t = time.perf_counter()
      Tensor.realize(*ps)   # a hit: what a training step pays
      dt = time.perf_counter() - t
      assert all(float(p.numpy()[0]) == 4 * i + 3 for i, p in enumerate(ps))
      return dt
    run(100)
    small, big = run(400), run(2000)
    print(big / small < 12, small, big)
  """)
  assert out.split()[0] == "True", out
