"""lazygrad.static, the TinyFlow-style front: a graph built once, re-evaluated for each feed;
gradients against torch; assign semantics; the logistic-regression example."""
import importlib.util
import pathlib
import re
import numpy as np
import pytest
import torch
from lazygrad import Tensor, dtypes, static as tf


def _arr(*shape, seed=0): return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)


def test_placeholder_fed_twice_gives_fresh_results():
  x = tf.placeholder((3, 4), name="x")
  W = tf.Variable(_arr(4, 2, seed=1))
  y = (x @ W).tanh() * 2 + 1
  sess = tf.Session()
  a, b = _arr(3, 4, seed=2), _arr(3, 4, seed=3)
  ref = lambda v: np.tanh(v @ W.numpy()) * 2 + 1
  out_a, out_b, out_a2 = sess.run(y, {x: a}), sess.run(y, {x: b}), sess.run(y, feed_dict={x: a})
  np.testing.assert_allclose(out_a, ref(a), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out_b, ref(b), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(out_a, out_a2)
  assert not y.node.realized and y.node.srcs   # the graph itself is never realized, so it stays reusable


def test_fetch_structures_and_tf_argument_order():
  x = tf.placeholder(dtypes.float32, (2,))     # TensorFlow's order works too
  n = tf.placeholder((2,), dtypes.int64)
  out = tf.Session().run({"sum": x.sum(), "pair": [x * 2, (n + 1,)]}, {x: [1.0, 2.0], n: np.array([5, 6])})
  assert out["sum"] == 3.0 and out["pair"][0].tolist() == [2.0, 4.0] and out["pair"][1][0].tolist() == [6, 7]
  assert out["pair"][1][0].dtype == np.int64
  lazy = Tensor([1.0, 2.0]) * 3                 # a lazy Tensor feeds as it is (it joins the run's schedule)
  assert tf.Session().run(x * 2, {x: lazy}).tolist() == [6.0, 12.0]


def test_gradients_match_torch():
  xa, wa, ba, ta = _arr(5, 3, seed=1), _arr(3, 4, seed=2), _arr(4, seed=3), np.array([0, 3, 1, 1, 2])
  x, t = tf.placeholder((5, 3)), tf.placeholder((5,), dtypes.int64)
  W, b = tf.Variable(wa), tf.Variable(ba)
  loss = (x @ W + b).relu().cross_entropy(t) + (W * W).sum() * 0.1
  gW, gb, gx = tf.gradients(loss, [W, b, x])
  got = tf.Session().run([loss, gW, gb, gx], {x: xa, t: ta})
  tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (xa, wa, ba))
  tl = torch.nn.functional.cross_entropy((tx @ tW + tb).relu(), torch.tensor(ta)) + (tW * tW).sum() * 0.1
  tl.backward()
  for g, r in zip(got, [tl, tW.grad, tb.grad, tx.grad]):
    np.testing.assert_allclose(g, r.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_gradients_sum_nonscalar_ys_second_order_and_unused():
  x = tf.placeholder((4,))
  v, unused = tf.Variable(np.float32(1.5) * np.ones(4, np.float32)), tf.Variable(np.zeros(2, np.float32))
  y = x * v * v                                          # non-scalar: summed, as TensorFlow
  (gv, gu) = tf.gradients(y, [v, unused])
  assert gu is None
  (ggv,) = tf.gradients(gv, [v])                          # d/dv of sum(2 x v) = 2 x
  xa = np.array([1, 2, 3, 4], np.float32)
  r1, r2 = tf.Session().run([gv, ggv], {x: xa})
  np.testing.assert_allclose(r1, 2 * xa * 1.5)
  np.testing.assert_allclose(r2, 2 * xa)


def test_assign_reads_old_values_and_updates_together():
  a, b = tf.Variable(np.float32(1.0)), tf.Variable(np.float32(2.0))
  swap = [tf.assign(a, b), tf.assign(b, a)]
  sess = tf.Session()
  assert [float(v) for v in sess.run(swap)] == [2.0, 1.0]
  assert (float(a.numpy()), float(b.numpy())) == (2.0, 1.0)
  inc = tf.assign(a, a + 1)
  assert float(sess.run(inc)) == 3.0 and float(sess.run(inc)) == 4.0 and float(sess.run(a)) == 4.0
  assert float(sess.run(inc * 10)) == 50.0                      # reading an assign reads the new value
  assert sess.run(tf.global_variables_initializer()) is None    # a Group runs and returns None
  assert (float(a.numpy()), float(b.numpy())) == (1.0, 2.0)
  with pytest.raises(ValueError, match="assigned twice"): sess.run([tf.assign(a, 5.0), tf.assign(a, 6.0)])
  assert float(a.numpy()) == 1.0                                 # a failed run changes nothing


def test_gradient_descent_optimizer_minimizes():
  x, y = tf.placeholder((8, 2)), tf.placeholder((8,))
  w = tf.Variable(np.zeros(2, np.float32))
  loss = ((x * w).sum(1) - y).square().mean()
  step = tf.GradientDescentOptimizer(0.2).minimize(loss)
  xa = _arr(8, 2, seed=4)
  ya = xa @ np.array([2.0, -1.0], np.float32)
  sess = tf.Session()
  first = float(sess.run(loss, {x: xa, y: ya}))
  for _ in range(200): sess.run(step, {x: xa, y: ya})
  assert float(sess.run(loss, {x: xa, y: ya})) < first * 1e-3
  np.testing.assert_allclose(w.numpy(), [2.0, -1.0], atol=2e-2)


def test_errors_are_clear():
  x = tf.placeholder((2, 3), name="images")
  y = x.sum()
  sess = tf.Session()
  with pytest.raises(ValueError, match="'images'.*needs a value in feed_dict"): sess.run(y)
  with pytest.raises(ValueError, match=r"shape \(3, 2\).*\(2, 3\)"): sess.run(y, {x: np.zeros((3, 2))})
  with pytest.raises(ValueError, match="every dimension must be known"): tf.placeholder((None, 3))
  with pytest.raises(RuntimeError, match="only inside Session.run"): x.numpy()
  with pytest.raises(RuntimeError, match="Session.run"): y.numpy()   # the scheduler names the placeholder
  with pytest.raises(TypeError, match="Variable"): tf.assign(Tensor([1.0]), 2.0)
  with pytest.raises(TypeError, match="cannot fetch"): sess.run("y")


def test_static_logreg_example_runs(capsys):
  pytest.importorskip("sklearn", reason="the example trains on scikit-learn's digits")
  path = pathlib.Path(__file__).resolve().parent.parent / "examples" / "static_logreg.py"
  spec = importlib.util.spec_from_file_location("example_static_logreg", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  acc = module.main(["--steps", "30"])
  out = capsys.readouterr().out
  m = re.search(r"final test accuracy (\d+\.\d+)%", out)
  assert m and abs(float(m.group(1)) / 100 - acc) < 1e-3, out
  assert acc > 0.8, out   # 30 steps of logistic regression already separate most digits
