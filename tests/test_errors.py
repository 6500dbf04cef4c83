"""Bad input raises at the call that made it (not at realize), with the right exception type
and a message that names the op and the shapes; a failed call leaves nothing half-updated."""
import numpy as np
import pytest
import lazygrad
from lazygrad import Tensor, dtypes, GlobalCounters
from lazygrad.tensor import _GradMode


def A(*shape): return Tensor.ones(*shape)
def I(*vals): return Tensor(list(vals))
def W(*shape): return Tensor.ones(*shape, requires_grad=True)


# (id, bad call, exception type, substrings the message must contain)
CASES = [
  # ---- shape mismatches in binary ops / contractions
  ("add_shapes", lambda: A(2, 3) + A(4, 5), ValueError, ["add", "(2, 3)", "(4, 5)"]),
  ("mul_shapes", lambda: A(2, 3) * A(3, 2), ValueError, ["mul", "(2, 3)", "(3, 2)"]),
  ("sub_shapes", lambda: A(2, 3) - A(4,), ValueError, ["sub", "(2, 3)", "(4,)"]),
  ("div_shapes", lambda: A(2, 3) / A(2, 2), ValueError, ["div", "(2, 3)", "(2, 2)"]),
  ("cmp_shapes", lambda: A(2, 3) < A(5,), ValueError, ["lt", "(2, 3)", "(5,)"]),
  ("maximum_shapes", lambda: A(2, 3).maximum(A(4,)), ValueError, ["maximum", "(2, 3)", "(4,)"]),
  ("matmul_inner", lambda: A(2, 3) @ A(2, 3), ValueError, ["matmul", "(2, 3)"]),
  ("matmul_1d", lambda: A(3) @ A(4), ValueError, ["matmul", "(3,)", "(4,)"]),
  ("matmul_batch", lambda: A(2, 3, 4) @ A(3, 4, 5), ValueError, ["matmul", "(2, 3, 4)", "(3, 4, 5)"]),
  ("matmul_0d", lambda: A(3) @ Tensor(2.0), ValueError, ["matmul", "(3,)", "()"]),
  ("dot_2d", lambda: A(2, 3).dot(A(2, 3)), ValueError, ["dot", "(2, 3)"]),
  ("linear_weight", lambda: A(2, 3).linear(A(4, 5)), ValueError, ["linear", "(2, 3)", "(4, 5)"]),
  ("linear_bias", lambda: A(2, 3).linear(A(4, 3), A(5)), ValueError, ["linear", "(5,)", "(4, 3)"]),
  ("conv2d_channels", lambda: A(1, 3, 5, 5).conv2d(A(4, 2, 3, 3)), ValueError, ["conv2d", "(1, 3, 5, 5)", "(4, 2, 3, 3)"]),
  ("conv2d_ndim", lambda: A(3, 5, 5).conv2d(A(4, 3, 3, 3)), ValueError, ["conv2d", "(3, 5, 5)", "(4, 3, 3, 3)"]),
  ("conv2d_bias", lambda: A(1, 3, 5, 5).conv2d(A(4, 3, 3, 3), A(3)), ValueError, ["conv2d", "bias", "(3,)"]),
  ("conv2d_kernel_too_big", lambda: A(1, 3, 2, 2).conv2d(A(4, 3, 3, 3)), ValueError, ["conv2d", "(3, 3)", "(2, 2)", "(1, 3, 2, 2)", "(4, 3, 3, 3)"]),
  ("conv2d_groups_shapes", lambda: A(1, 4, 5, 5).conv2d(A(5, 2, 3, 3), groups=2), ValueError, ["conv2d", "groups=2", "(1, 4, 5, 5)", "(5, 2, 3, 3)"]),
  ("conv2d_stride0", lambda: A(1, 3, 5, 5).conv2d(A(4, 3, 3, 3), stride=0), ValueError, ["conv2d", "stride"]),
  ("conv2d_stride_float", lambda: A(1, 3, 5, 5).conv2d(A(4, 3, 3, 3), stride=1.5), ValueError, ["conv2d", "stride"]),
  ("conv2d_groups", lambda: A(1, 3, 5, 5).conv2d(A(4, 3, 3, 3), groups=2), ValueError, ["conv2d", "groups"]),
  ("conv2d_groups0", lambda: A(1, 4, 5, 5).conv2d(A(4, 4, 3, 3), groups=0), ValueError, ["conv2d", "groups"]),
  ("conv2d_neg_padding", lambda: A(1, 3, 5, 5).conv2d(A(4, 3, 3, 3), padding=-1), ValueError, ["conv2d", "padding"]),
  ("conv2d_bad_padding_str", lambda: A(1, 3, 5, 5).conv2d(A(4, 3, 3, 3), padding="full"), ValueError, ["conv2d", "padding"]),
  ("max_pool_too_big", lambda: A(1, 1, 2, 2).max_pool2d(3), ValueError, ["max_pool2d", "(1, 1, 2, 2)"]),
  ("max_pool_stride0", lambda: A(1, 1, 4, 4).max_pool2d(2, stride=0), ValueError, ["max_pool2d", "stride"]),
  ("avg_pool_too_big", lambda: A(1, 1, 2, 2).avg_pool2d(3), ValueError, ["avg_pool2d", "(1, 1, 2, 2)"]),
  ("avg_pool_2d_input", lambda: A(4, 4).avg_pool2d(2), ValueError, ["avg_pool2d", "(4, 4)"]),
  ("cat_shapes", lambda: Tensor.cat([A(2, 3), A(4, 5)]), ValueError, ["cat", "(2, 3)", "(4, 5)"]),
  ("cat_ndim", lambda: Tensor.cat([A(2, 3), A(2, 3, 1)], 1), ValueError, ["cat", "(2, 3)", "(2, 3, 1)"]),
  ("cat_empty", lambda: Tensor.cat([]), ValueError, ["cat"]),
  ("cat_non_tensor", lambda: Tensor.cat([A(2), 1]), TypeError, ["cat"]),
  ("stack_shapes", lambda: Tensor.stack([A(2, 3), A(3, 2)]), ValueError, ["stack", "(2, 3)", "(3, 2)"]),
  ("where_shapes", lambda: A(2, 3).bool().where(A(4, 3), 0), ValueError, ["where", "(2, 3)", "(4, 3)"]),
  ("where_y_shape", lambda: A(2, 3).bool().where(A(2, 3), A(2, 4)), ValueError, ["where", "(2, 4)"]),
  ("masked_fill_shape", lambda: A(2, 3).masked_fill(A(4, 3).bool(), 0), ValueError, ["masked_fill", "(2, 3)", "(4, 3)"]),
  ("masked_fill_float_mask", lambda: A(2, 3).masked_fill(A(2, 3), 0), TypeError, ["masked_fill", "bool"]),
  ("lerp_shape", lambda: A(2, 3).lerp(A(4,), 0.5), ValueError, ["(2, 3)", "(4,)"]),
  ("layer_norm_shape", lambda: A(2, 3).layer_norm(4), ValueError, ["layer_norm", "(4,)", "(2, 3)"]),
  ("layer_norm_weight", lambda: A(2, 3).layer_norm(3, A(4)), ValueError, ["layer_norm", "weight", "(4,)"]),
  ("batch_norm_stats", lambda: A(2, 3, 4).batch_norm(A(4), A(4)), ValueError, ["batch_norm", "(4,)"]),
  ("sdpa_shapes", lambda: A(2, 4, 8).scaled_dot_product_attention(A(2, 4, 7), A(2, 4, 8)), ValueError,
   ["scaled_dot_product_attention", "(2, 4, 8)", "(2, 4, 7)"]),
  ("sdpa_mask", lambda: A(2, 4, 8).scaled_dot_product_attention(A(2, 4, 8), A(2, 4, 8), attn_mask=A(3, 3).bool()), ValueError,
   ["scaled_dot_product_attention", "(3, 3)"]),
  ("gather_float_index", lambda: A(2, 3).gather(0, Tensor([[0.0]])), TypeError, ["gather", "integer"]),
  ("gather_shape", lambda: A(2, 3).gather(1, Tensor([[0], [1], [0]])), ValueError, ["gather", "(3, 1)", "(2, 3)"]),
  ("scatter_add_shape", lambda: A(2, 3).scatter_add(0, Tensor([[0, 1, 0, 1]]), A(1, 4)), ValueError, ["scatter_add", "(1, 4)", "(2, 3)"]),
  ("split_sizes", lambda: A(2, 3).split([1, 2], 0), ValueError, ["split", "(2, 3)"]),
  ("chunk_zero", lambda: A(2, 3).chunk(0), ValueError, ["chunk"]),
  ("narrow_range", lambda: A(2, 3).narrow(1, 2, 5), ValueError, ["narrow", "(2, 3)"]),
  # ---- dims
  ("sum_dim_range", lambda: A(2, 3).sum(5), ValueError, ["sum", "5", "2 dims"]),
  ("sum_dim_neg_range", lambda: A(2, 3).sum(-3), ValueError, ["sum", "-3"]),
  ("sum_dim_repeated", lambda: A(2, 3).sum((0, 0)), ValueError, ["sum", "more than once"]),
  ("sum_dim_float", lambda: A(2, 3).sum(1.0), TypeError, ["sum", "int", "float"]),
  ("sum_dim_str", lambda: A(2, 3).sum([0, "a"]), TypeError, ["sum", "int"]),
  ("mean_dim_range", lambda: A(2, 3).mean(2), ValueError, ["mean", "2"]),
  ("var_dim_range", lambda: A(2, 3).var(3), ValueError, ["var", "3"]),
  ("std_dim_repeated", lambda: A(2, 3).std((1, -1)), ValueError, ["std", "more than once"]),
  ("softmax_dim", lambda: A(2, 3).softmax(2), ValueError, ["2", "out of range"]),
  ("argmax_dim", lambda: A(2, 3).argmax(3), ValueError, ["argmax", "3"]),
  ("cumsum_dim", lambda: A(2, 3).cumsum(2), ValueError, ["cumsum", "2"]),
  ("max_empty_dim", lambda: A(0, 3).max(0), ValueError, ["amax", "(0, 3)"]),
  ("transpose_dim", lambda: A(2, 3).transpose(0, 3), ValueError, ["transpose", "3"]),
  ("unsqueeze_dim", lambda: A(2, 3).unsqueeze(4), ValueError, ["unsqueeze", "4"]),
  ("squeeze_dim", lambda: A(2, 3).squeeze(3), ValueError, ["squeeze", "3"]),
  ("flatten_order", lambda: A(2, 3, 4).flatten(2, 1), ValueError, ["flatten"]),
  ("flip_repeated", lambda: A(2, 3).flip(0, -2), ValueError, ["flip"]),
  ("flip_dim", lambda: A(2, 3).flip(5), ValueError, ["flip", "5"]),
  ("size_dim", lambda: A(2, 3).size(3), ValueError, ["size", "3"]),
  ("stack_dim", lambda: Tensor.stack([A(2, 3), A(2, 3)], dim=4), ValueError, ["stack", "4"]),
  ("cat_dim", lambda: Tensor.cat([A(2, 3), A(2, 3)], dim=2), ValueError, ["cat", "2"]),
  # ---- reshape / permute / expand / pad / repeat
  ("reshape_size", lambda: A(2, 3).reshape(4, 2), ValueError, ["reshape", "(4, 2)", "(2, 3)"]),
  ("reshape_two_minus1", lambda: A(2, 3).reshape(-1, -1), ValueError, ["reshape", "(-1, -1)"]),
  ("reshape_minus1_indivisible", lambda: A(2, 3).reshape(-1, 4), ValueError, ["reshape", "(-1, 4)", "(2, 3)"]),
  ("reshape_negative", lambda: A(2, 3).reshape(-2, 3), ValueError, ["reshape", "(-2, 3)"]),
  ("reshape_float", lambda: A(2, 3).reshape(2.0, 3), TypeError, ["reshape"]),
  ("view_size", lambda: A(2, 3).view(7), ValueError, ["reshape", "(2, 3)"]),
  ("unflatten_size", lambda: A(2, 3).unflatten(1, (2, 2)), ValueError, ["(2, 3)"]),
  ("permute_repeated", lambda: A(2, 3).permute(0, 0), ValueError, ["permute", "(2, 3)"]),
  ("permute_count", lambda: A(2, 3).permute(0), ValueError, ["permute", "(2, 3)"]),
  ("permute_range", lambda: A(2, 3).permute(0, 2), ValueError, ["permute", "2"]),
  ("expand_size", lambda: A(2, 3).expand(4, 3), ValueError, ["expand", "(2, 3)", "(4, 3)"]),
  ("expand_fewer_dims", lambda: A(2, 3).expand(3), ValueError, ["expand", "(2, 3)", "(3,)"]),
  ("expand_new_minus1", lambda: A(2, 3).expand(-1, 2, 3), ValueError, ["expand", "(-1, 2, 3)"]),
  ("pad_odd", lambda: A(2, 3).pad((1, 2, 3)), ValueError, ["pad", "(1, 2, 3)", "(2, 3)"]),
  ("pad_too_long", lambda: A(2, 3).pad((1,) * 6), ValueError, ["pad", "(2, 3)"]),
  ("pad_crop_too_much", lambda: A(2, 3).pad((-3, -3)), ValueError, ["pad", "(-3, -3)", "(2, 3)"]),
  ("pad_mode", lambda: A(2, 3).pad((1, 1), mode="reflect"), ValueError, ["pad", "reflect"]),
  ("repeat_count", lambda: A(2, 3).repeat(2), ValueError, ["repeat"]),
  ("repeat_negative", lambda: A(2, 3).repeat(-1, 1), ValueError, ["repeat", "(2, 3)"]),
  # ---- dtypes and types
  ("bitand_float", lambda: A(2, 3) & A(2, 3), TypeError, ["bitwise_and", "float32"]),
  ("bitor_float", lambda: A(2) | 1, TypeError, ["bitwise_or", "float"]),
  ("xor_int_float", lambda: I(1, 2) ^ A(2), TypeError, ["bitwise_xor", "float"]),
  ("invert_float", lambda: ~A(2), TypeError, ["bitwise_not", "float"]),
  ("mean_int", lambda: I(1, 2, 3).mean(), TypeError, ["mean", "int64"]),
  ("neg_bool", lambda: -A(2).bool(), TypeError, ["neg", "bool"]),
  ("sub_bool", lambda: A(2).bool() - A(2).bool(), TypeError, ["sub", "bool"]),
  ("int_negative_power", lambda: I(1, 2) ** -1, ValueError, ["pow"]),
  ("requires_grad_int", lambda: Tensor([1, 2], requires_grad=True), RuntimeError, ["requires_grad", "int64"]),
  ("requires_grad_bool", lambda: Tensor([True]).requires_grad_(), RuntimeError, ["requires_grad", "bool"]),
  ("zeros_int_requires_grad", lambda: Tensor.zeros(2, dtype=dtypes.int32, requires_grad=True), RuntimeError, ["requires_grad", "int32"]),
  ("add_str", lambda: A(2, 3) + "x", TypeError, ["add", "str", "(2, 3)"]),
  ("radd_str", lambda: "x" + A(2, 3), TypeError, ["add", "str"]),
  ("mul_none", lambda: A(2, 3) * None, TypeError, ["mul", "NoneType"]),
  ("matmul_list", lambda: A(2, 3).matmul([[1.0]]), TypeError, ["matmul", "list"]),
  ("cast_unknown", lambda: A(2).cast("foo"), TypeError, ["foo"]),
  ("bitcast_size", lambda: A(2).bitcast(dtypes.int8), ValueError, ["bitcast", "float32", "int8"]),
  ("one_hot_float", lambda: A(3).one_hot(3), TypeError, ["one_hot", "float32"]),
  ("embedding_float_idx", lambda: A(3).embedding(A(3, 3)), TypeError, ["embedding", "float32"]),
  ("embedding_weight_1d", lambda: I(1).embedding(A(3)), ValueError, ["embedding", "(3,)"]),
  ("full_str_value", lambda: Tensor.full((2,), "x"), TypeError, ["full", "str"]),
  ("full_bad_shape", lambda: Tensor.full((2, "a"), 1), TypeError, ["full", "shape"]),
  ("zeros_negative", lambda: Tensor.zeros(-1, 2), ValueError, ["negative", "(-1, 2)"]),
  ("rand_negative", lambda: Tensor.rand(3, -1), ValueError, ["rand", "(3, -1)"]),
  ("tensor_from_str", lambda: Tensor("abc"), TypeError, ["Tensor", "str"]),
  ("tensor_from_none", lambda: Tensor(None), TypeError, ["Tensor", "NoneType"]),
  ("tensor_ragged", lambda: Tensor([[1.0, 2.0], [3.0]]), ValueError, ["Tensor", "rectangular"]),
  ("unknown_device", lambda: Tensor([1.0], device="tpu"), ValueError, ["device", "tpu"]),
  ("arange_step0", lambda: Tensor.arange(0, 5, 0), ValueError, ["arange", "step"]),
  ("randint_empty", lambda: Tensor.randint(5, 2, (3,)), ValueError, ["randint", "[5, 2)"]),
  ("dropout_p", lambda: A(2).dropout(2.0), ValueError, ["dropout", "2"]),
  ("clamp_nothing", lambda: A(2).clamp(), ValueError, ["clamp"]),
  ("gelu_approx", lambda: A(2).gelu(approximate="fast"), ValueError, ["gelu", "fast"]),
  ("item_many", lambda: A(2, 3).item(), ValueError, ["item", "(2, 3)"]),
  ("len_0d", lambda: len(Tensor(1.0)), TypeError, ["0-d"]),
  # ---- indexing
  ("index_float_tensor", lambda: A(2, 3)[Tensor([0.0])], TypeError, ["index", "float32"]),
  ("index_float_scalar", lambda: A(2, 3)[1.5], TypeError, ["index", "float"]),
  ("index_str", lambda: A(2, 3)["x"], TypeError, ["index", "str"]),
  ("index_dict", lambda: A(2, 3)[{}], TypeError, ["index", "dict"]),
  ("index_bool_scalar", lambda: A(2, 3)[True], TypeError, ["index", "bool"]),
  ("index_too_many", lambda: A(2, 3)[0, 0, 0], IndexError, ["index", "too many", "(2, 3)"]),
  ("index_too_many_slices", lambda: A(2, 3)[:, :, :], IndexError, ["index", "too many", "(2, 3)"]),
  ("index_two_ellipsis", lambda: A(2, 3)[..., ...], IndexError, ["index", "ellipsis"]),
  ("index_int_oob", lambda: A(2, 3)[5], IndexError, ["index", "5", "size 2", "(2, 3)"]),
  ("index_int_oob_neg", lambda: A(2, 3)[-3], IndexError, ["index", "-3", "(2, 3)"]),
  ("index_int_oob_dim1", lambda: A(2, 3)[0, 3], IndexError, ["index", "3", "dim 1", "(2, 3)"]),
  ("index_list_oob", lambda: A(2, 3)[[0, 5]], IndexError, ["index", "5", "(2, 3)"]),
  ("index_list_oob_neg", lambda: A(2, 3)[:, [-4]], IndexError, ["index", "-4", "dim 1"]),
  ("index_ndarray_oob", lambda: A(2, 3)[np.array([2])], IndexError, ["index", "2", "(2, 3)"]),
  ("index_mask_shape", lambda: A(2, 3)[Tensor([True, False, True])], IndexError, ["index", "mask", "(3,)", "(2, 3)"]),
  ("index_mask_shape_2d", lambda: A(2, 3)[np.ones((3, 2), dtype=bool)], IndexError, ["index", "mask", "(3, 2)"]),
  ("index_step0", lambda: A(2, 3)[::0], ValueError, ["step"]),
  # ---- losses
  ("cross_entropy_target_len", lambda: A(4, 3).cross_entropy(Tensor([0, 1, 2])), ValueError, ["(3,)", "(4, 3)"]),
  ("cross_entropy_target_2d", lambda: A(4, 3).cross_entropy(Tensor([[0], [1], [2], [0]])), ValueError, ["(4, 1)", "(4, 3)"]),
  ("cross_entropy_prob_shape", lambda: A(4, 3).cross_entropy(A(4, 4)), ValueError, ["cross_entropy", "(4, 4)", "(4, 3)"]),
  ("cross_entropy_list_target", lambda: A(4, 3).cross_entropy([0, 1, 2, 0]), TypeError, ["cross_entropy", "Tensor"]),
  ("cross_entropy_reduction", lambda: A(4, 3).cross_entropy(A(4, 3).softmax(-1), reduction="avg"), ValueError, ["cross_entropy", "avg"]),
  ("nll_float_target", lambda: A(2, 3).nll_loss(Tensor([0.0, 1.0])), TypeError, ["nll_loss", "integer"]),
  ("nll_target_shape", lambda: A(4, 3).nll_loss(Tensor([0, 1])), ValueError, ["nll_loss", "(2,)", "(4, 3)"]),
  ("bce_shape", lambda: A(2, 3).binary_cross_entropy(A(3, 2)), ValueError, ["binary_cross_entropy", "(3, 2)", "(2, 3)"]),
  ("bce_logits_shape", lambda: A(2, 3).binary_cross_entropy_with_logits(A(2)), ValueError, ["binary_cross_entropy_with_logits", "(2,)"]),
  ("mse_shape", lambda: A(2, 3).mse_loss(A(3, 2)), ValueError, ["mse_loss", "(3, 2)", "(2, 3)"]),
  ("l1_shape", lambda: A(2, 3).l1_loss(A(3,)), ValueError, ["l1_loss", "(3,)", "(2, 3)"]),
  # ---- autograd misuse
  ("backward_non_scalar", lambda: (W(2, 3) * 2).backward(), RuntimeError, ["backward", "scalar", "(2, 3)"]),
  ("backward_no_grad", lambda: (A(2, 3) * 2).sum().backward(), RuntimeError, ["backward", "does not require grad"]),
  ("backward_under_no_grad", lambda: _under_no_grad(lambda w: (w * 2).sum().backward()), RuntimeError, ["backward", "grad"]),
  ("backward_detached", lambda: (W(3) * 2).detach().sum().backward(), RuntimeError, ["backward", "does not require grad"]),
  ("backward_gradient_shape", lambda: (W(3) * 2).backward(Tensor.ones(2)), RuntimeError, ["backward", "(2,)", "(3,)"]),
  ("grad_unused_input", lambda: _grad_unused(), RuntimeError, ["grad", "not have been used", "(4,)"]),
  ("grad_input_no_grad", lambda: lazygrad.grad((W(3) * 2).sum(), [A(3)]), RuntimeError, ["grad", "does not require grad", "(3,)"]),
  ("grad_output_no_grad", lambda: lazygrad.grad(A(3).sum(), [W(3)]), RuntimeError, ["grad", "does not require grad"]),
  ("grad_outputs_count", lambda: lazygrad.grad([W(3).sum()], [W(3)], [Tensor(1.0), Tensor(1.0)]), ValueError, ["grad", "grad_outputs"]),
  ("grad_non_scalar", lambda: _grad_non_scalar(), RuntimeError, ["grad", "scalar", "(3,)"]),
  ("requires_grad_off_non_leaf", lambda: setattr(W(3) * 2, "requires_grad", False), RuntimeError, ["requires_grad", "leaf"]),
  ("assign_shape", lambda: A(2, 3).assign(A(4, 5)), ValueError, ["assign", "(4, 5)", "(2, 3)"]),
]


def _under_no_grad(fn):
  w = W(3)
  with Tensor.no_grad():
    return fn(w)


def _grad_unused():
  x, unused = W(3), W(4)
  return lazygrad.grad((x * 2).sum(), [x, unused])


def _grad_non_scalar():
  x = W(3)
  return lazygrad.grad(x * 2, [x])


@pytest.mark.parametrize("fn,exc,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_call_raises_at_the_call(fn, exc, words):
  GlobalCounters.reset()
  with pytest.raises(exc) as info:
    fn()
  msg = str(info.value)
  for w in words: assert w in msg, f"message {msg!r} lacks {w!r}"
  # raised while building the graph: nothing ran
  assert GlobalCounters.kernel_count == 0
  # and the grad mode is never left switched off by a failure
  assert _GradMode.enabled


def test_table_is_big_enough():
  assert len(CASES) >= 40
  assert len({c[0] for c in CASES}) == len(CASES)
  assert {c[2] for c in CASES} >= {ValueError, TypeError, RuntimeError}


def test_index_errors_are_also_value_errors():
  # torch raises IndexError; API.md promises ValueError for argument errors: both catch it
  with pytest.raises(ValueError): A(2, 3)[5]
  with pytest.raises(IndexError): A(2, 3)[0, 0, 0]


def test_valid_neighbours_of_bad_calls_work():
  # the checks are not over-eager
  a = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
  np.testing.assert_array_equal(a[[0, 1]].numpy(), a.numpy()[[0, 1]])
  np.testing.assert_array_equal(a[:, [-3, 2]].numpy(), a.numpy()[:, [-3, 2]])
  np.testing.assert_array_equal(a[np.array([True, False])].numpy(), a.numpy()[[True, False]])
  np.testing.assert_array_equal(a[..., np.array([True, False, True])].numpy(), a.numpy()[..., [True, False, True]])
  np.testing.assert_array_equal(a.reshape(-1, 2).numpy(), a.numpy().reshape(-1, 2))
  np.testing.assert_array_equal(a.expand(4, 2, 3).numpy(), np.broadcast_to(a.numpy(), (4, 2, 3)))
  np.testing.assert_array_equal(a.pad((-1, -1)).numpy(), a.numpy()[:, 1:2])
  np.testing.assert_array_equal(a.sum(-2).numpy(), a.numpy().sum(0))
  np.testing.assert_array_equal(a.linear(Tensor.eye(3), Tensor.zeros(3)).numpy(), a.numpy())
  np.testing.assert_array_equal(a.repeat(1, 0).shape, (2, 0))
  idx = Tensor([[0, 1, 0]])
  np.testing.assert_array_equal(a.scatter_add(0, idx, Tensor.ones(2, 3)).numpy(), a.numpy() + np.array([[1, 0, 1], [0, 1, 0]]))
  np.testing.assert_array_equal(Tensor.ones(1, 1, 3, 3).max_pool2d(3).shape, (1, 1, 1, 1))
  np.testing.assert_allclose(a.mse_loss(Tensor([1.0, 1.0, 1.0])).numpy(), ((a.numpy() - 1) ** 2).mean(), rtol=1e-6)


# ---- never half-updated state

def test_failed_assign_leaves_value_unchanged():
  t = Tensor([[1.0, 2.0, 3.0]]).realize()
  node, buf = t.node, t.node.buffer
  with pytest.raises(ValueError): t.assign(Tensor.ones(2, 2))
  with pytest.raises(TypeError): t.assign("nope")
  assert t.node is node and t.node.buffer is buf
  np.testing.assert_array_equal(t.numpy(), [[1.0, 2.0, 3.0]])
  # a good assign after the failures works and broadcasts as torch's copy_
  t.assign(Tensor([5.0, 6.0, 7.0])).realize()
  np.testing.assert_array_equal(t.numpy(), [[5.0, 6.0, 7.0]])


def test_failed_inplace_ops_leave_value_unchanged():
  t = Tensor([1.0, 2.0, 3.0]).realize()
  with pytest.raises(ValueError): t.add_(Tensor.ones(4))
  with pytest.raises(ValueError): t.sub_(Tensor.ones(2))
  with pytest.raises(ValueError): t.mul_(Tensor.ones(5))
  with pytest.raises(ValueError): t.copy_(Tensor.ones(2, 2))
  np.testing.assert_array_equal(t.numpy(), [1.0, 2.0, 3.0])
  assert _GradMode.enabled
  t.add_(1).realize()
  np.testing.assert_array_equal(t.numpy(), [2.0, 3.0, 4.0])


def test_failed_backward_leaves_grads_untouched():
  w = Tensor([1.0, 2.0, 3.0], requires_grad=True)
  (w * w).sum().backward()
  g0 = w.grad.numpy()
  np.testing.assert_array_equal(g0, [2.0, 4.0, 6.0])
  with pytest.raises(RuntimeError): (w * 3).backward()                       # non-scalar
  with pytest.raises(RuntimeError): (w * 3).backward(Tensor.ones(4))         # wrong gradient shape
  np.testing.assert_array_equal(w.grad.numpy(), g0)
  assert _GradMode.enabled


def test_failing_gradient_rule_restores_grad_mode_and_grads(monkeypatch):
  from lazygrad.ops import Ops
  from lazygrad.autograd import gradient
  w = Tensor([1.0, 2.0], requires_grad=True)
  v = Tensor([3.0, 4.0], requires_grad=True)
  def boom(out, g, x): raise RuntimeError("exp rule exploded")
  monkeypatch.setitem(gradient.RULES, Ops.EXP, boom)
  with pytest.raises(RuntimeError, match="exploded"): (w * v + w.exp()).sum().backward()
  assert w.grad is None and v.grad is None
  assert _GradMode.enabled
  monkeypatch.undo()
  (w * v).sum().backward()
  np.testing.assert_array_equal(w.grad.numpy(), [3.0, 4.0])


def test_failed_requires_grad_leaves_flag_unchanged():
  t = Tensor([1, 2, 3])
  with pytest.raises(RuntimeError): t.requires_grad = True
  assert not t.requires_grad
  with pytest.raises(RuntimeError): t.requires_grad_()
  assert not t.requires_grad
  np.testing.assert_array_equal(t.numpy(), [1, 2, 3])


def test_errors_do_not_leave_lazy_graphs_broken():
  # a tensor involved in a failed call is still usable afterwards
  a, b = Tensor.rand(2, 3), Tensor.rand(4, 5)
  with pytest.raises(ValueError): a + b
  with pytest.raises(ValueError): a @ a
  with pytest.raises(ValueError): Tensor.cat([a, b])
  np.testing.assert_allclose((a + 1).numpy(), a.numpy() + 1, rtol=1e-6)
  np.testing.assert_allclose((b * 2).numpy(), b.numpy() * 2, rtol=1e-6)
