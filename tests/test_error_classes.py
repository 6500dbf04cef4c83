"""The bad-input table run on torch too: the same call raises, in lazygrad, an instance of the
class torch raises (IndexError for a dim out of range, RuntimeError for shapes that do not fit,
TypeError for wrong argument types), still a ValueError where it was one before, and a message
that names the op and the shapes."""
import pytest
import torch
import lazygrad
from lazygrad import ShapeError, DimError, DTypeError, IndexTypeError


def O(m, *shape): return m.ones(*shape)


def _index(m, *shape): return m.tensor([[0], [1], [0]])
def F(m): return m.nn.functional


# (id, call on a module m (lazygrad or torch): the same code for both, substrings our message must contain)
CASES = [
  # ---- dims out of range: torch's IndexError
  ("sum_dim", lambda m: O(m, 2, 3).sum(5), ["sum", "5"]),
  ("sum_dim_neg", lambda m: O(m, 2, 3).sum(-3), ["sum", "-3"]),
  ("mean_dim", lambda m: O(m, 2, 3).mean(2), ["mean", "2"]),
  ("softmax_dim", lambda m: O(m, 2, 3).softmax(2), ["2", "out of range"]),
  ("argmax_dim", lambda m: O(m, 2, 3).argmax(3), ["argmax", "3"]),
  ("cumsum_dim", lambda m: O(m, 2, 3).cumsum(2), ["cumsum", "2"]),
  ("transpose_dim", lambda m: O(m, 2, 3).transpose(0, 3), ["transpose", "3"]),
  ("unsqueeze_dim", lambda m: O(m, 2, 3).unsqueeze(4), ["unsqueeze", "4"]),
  ("squeeze_dim", lambda m: O(m, 2, 3).squeeze(3), ["squeeze", "3"]),
  ("flip_dim", lambda m: O(m, 2, 3).flip(5), ["flip", "5"]),
  ("size_dim", lambda m: O(m, 2, 3).size(3), ["size", "3"]),
  ("cat_dim", lambda m: m.cat([O(m, 2, 3), O(m, 2, 3)], dim=2), ["cat", "2"]),
  ("stack_dim", lambda m: m.stack([O(m, 2, 3), O(m, 2, 3)], dim=4), ["stack", "4"]),
  ("index_int_oob", lambda m: O(m, 2, 3)[5], ["index", "5", "(2, 3)"]),
  ("index_too_many", lambda m: O(m, 2, 3)[0, 0, 0], ["index", "too many", "(2, 3)"]),
  ("index_list_oob", lambda m: O(m, 2, 3)[[0, 5]], ["index", "5", "(2, 3)"]),
  ("index_mask_shape", lambda m: O(m, 2, 3)[m.tensor([True, False, True])], ["index", "mask", "(3,)", "(2, 3)"]),
  ("setitem_oob", lambda m: O(m, 2, 3).__setitem__(5, 1.0), ["5", "(2, 3)"]),
  ("permute_range", lambda m: O(m, 2, 3).permute(0, 2), ["permute", "2"]),
  ("max_empty_dim", lambda m: O(m, 0, 3).max(0), ["(0, 3)"]),
  # ---- shapes that do not fit: torch's RuntimeError
  ("add_shapes", lambda m: O(m, 2, 3) + O(m, 4, 5), ["add", "(2, 3)", "(4, 5)"]),
  ("mul_shapes", lambda m: O(m, 2, 3) * O(m, 3, 2), ["mul", "(2, 3)", "(3, 2)"]),
  ("where_shapes", lambda m: m.where(O(m, 2, 3).bool(), O(m, 4, 3), O(m, 2, 3)), ["where", "(2, 3)", "(4, 3)"]),
  ("matmul_inner", lambda m: O(m, 2, 3) @ O(m, 2, 3), ["matmul", "(2, 3)"]),
  ("matmul_1d", lambda m: O(m, 3) @ O(m, 4), ["matmul", "(3,)", "(4,)"]),
  ("matmul_batch", lambda m: O(m, 2, 3, 4) @ O(m, 3, 4, 5), ["matmul", "(2, 3, 4)", "(3, 4, 5)"]),
  ("dot_2d", lambda m: O(m, 2, 3).dot(O(m, 2, 3)), ["dot", "(2, 3)"]),
  ("cat_shapes", lambda m: m.cat([O(m, 2, 3), O(m, 4, 5)]), ["cat", "(2, 3)", "(4, 5)"]),
  ("cat_ndim", lambda m: m.cat([O(m, 2, 3), O(m, 2, 3, 1)], 1), ["cat", "(2, 3)", "(2, 3, 1)"]),
  ("stack_shapes", lambda m: m.stack([O(m, 2, 3), O(m, 3, 2)]), ["stack", "(2, 3)", "(3, 2)"]),
  ("reshape_size", lambda m: O(m, 2, 3).reshape(4, 2), ["reshape", "(4, 2)", "(2, 3)"]),
  ("reshape_minus1", lambda m: O(m, 2, 3).reshape(-1, 4), ["reshape", "(-1, 4)", "(2, 3)"]),
  ("view_size", lambda m: O(m, 2, 3).view(7), ["(2, 3)"]),
  ("gather_shape", lambda m: O(m, 2, 3).gather(1, _index(m)), ["gather", "(3, 1)", "(2, 3)"]),
  ("scatter_add_shape", lambda m: O(m, 2, 3).scatter_add(0, m.tensor([[0, 1, 0, 1]]), O(m, 1, 4)), ["scatter_add", "(1, 4)", "(2, 3)"]),
  ("conv2d_channels", lambda m: m.nn.functional.conv2d(O(m, 1, 3, 5, 5), O(m, 4, 2, 3, 3)), ["conv2d", "(1, 3, 5, 5)", "(4, 2, 3, 3)"]),
  ("conv2d_ndim", lambda m: m.nn.functional.conv2d(O(m, 2, 1, 3, 5, 5), O(m, 4, 3, 3, 3)), ["conv2d", "(2, 1, 3, 5, 5)"]),
  ("conv2d_kernel_too_big", lambda m: m.nn.functional.conv2d(O(m, 1, 3, 2, 2), O(m, 4, 3, 3, 3)), ["conv2d", "(3, 3)", "(2, 2)"]),
  ("conv2d_groups", lambda m: m.nn.functional.conv2d(O(m, 1, 3, 5, 5), O(m, 4, 3, 3, 3), groups=2), ["conv2d", "groups"]),
  ("conv2d_bias", lambda m: m.nn.functional.conv2d(O(m, 1, 3, 5, 5), O(m, 4, 3, 3, 3), O(m, 3)), ["conv2d", "bias", "(3,)"]),
  ("max_pool_too_big", lambda m: m.nn.functional.max_pool2d(O(m, 1, 1, 2, 2), 3), ["max_pool2d", "(1, 1, 2, 2)"]),
  ("linear_weight", lambda m: m.nn.functional.linear(O(m, 2, 3), O(m, 4, 5)), ["linear", "(2, 3)", "(4, 5)"]),
  ("cross_entropy_target_len", lambda m: m.nn.functional.cross_entropy(O(m, 4, 3), m.tensor([0, 1, 2])), ["(3,)", "(4, 3)"]),
  ("bce_shape", lambda m: m.nn.functional.binary_cross_entropy(O(m, 2, 3) / 2, O(m, 3, 2)), ["binary_cross_entropy", "(3, 2)", "(2, 3)"]),
  ("layer_norm_shape", lambda m: m.nn.functional.layer_norm(O(m, 2, 3), (4,)), ["layer_norm", "(4,)", "(2, 3)"]),
  ("sum_dim_repeated", lambda m: O(m, 2, 3).sum((0, 0)), ["sum", "more than once"]),
  ("flip_repeated", lambda m: O(m, 2, 3).flip(0, -2), ["flip"]),
  ("permute_repeated", lambda m: O(m, 2, 3).permute(0, 0), ["permute", "(2, 3)"]),
  ("permute_count", lambda m: O(m, 2, 3).permute(0), ["permute", "(2, 3)"]),
  ("expand_size", lambda m: O(m, 2, 3).expand(4, 3), ["expand", "(2, 3)", "(4, 3)"]),
  ("expand_fewer_dims", lambda m: O(m, 2, 3).expand(3), ["expand", "(2, 3)", "(3,)"]),
  ("reshape_two_minus1", lambda m: O(m, 2, 3).reshape(-1, -1), ["reshape", "(-1, -1)"]),
  ("reshape_negative", lambda m: O(m, 2, 3).reshape(-2, 3), ["reshape", "(-2, 3)"]),
  ("unflatten_size", lambda m: O(m, 2, 3).unflatten(1, (2, 2)), ["(2, 3)"]),
  ("split_sizes", lambda m: O(m, 2, 3).split([1, 2], 0), ["split", "(2, 3)"]),
  ("chunk_zero", lambda m: O(m, 2, 3).chunk(0), ["chunk"]),
  ("narrow_range", lambda m: O(m, 2, 3).narrow(1, 2, 5), ["narrow", "(2, 3)"]),
  ("flatten_order", lambda m: O(m, 2, 3, 4).flatten(2, 1), ["flatten"]),
  ("repeat_count", lambda m: O(m, 2, 3).repeat(2), ["repeat"]),
  ("repeat_negative", lambda m: O(m, 2, 3).repeat(-1, 1), ["repeat", "(2, 3)"]),
  ("pad_odd", lambda m: F(m).pad(O(m, 2, 3), (1, 2, 3)), ["pad", "(1, 2, 3)"]),
  ("masked_fill_shape", lambda m: O(m, 2, 3).masked_fill(O(m, 4, 3).bool(), 0), ["masked_fill", "(2, 3)", "(4, 3)"]),
  ("lerp_shape", lambda m: O(m, 2, 3).lerp(O(m, 4), 0.5), ["(2, 3)", "(4,)"]),
  ("add_inplace_shape", lambda m: O(m, 3).add_(O(m, 4)), ["add", "(3,)", "(4,)"]),
  ("copy_shape", lambda m: O(m, 3).copy_(O(m, 2, 2)), ["copy_", "(2, 2)", "(3,)"]),
  ("setitem_shape", lambda m: O(m, 2, 3).__setitem__(0, O(m, 4)), ["(4,)", "(3,)"]),
  ("item_many", lambda m: O(m, 2, 3).item(), ["item", "(2, 3)"]),
  ("zeros_negative", lambda m: m.zeros(-1, 2), ["negative", "(-1, 2)"]),
  ("layer_norm_weight", lambda m: F(m).layer_norm(O(m, 2, 3), (3,), O(m, 4)), ["layer_norm", "weight", "(4,)"]),
  ("batch_norm_stats", lambda m: F(m).batch_norm(O(m, 2, 3, 4), O(m, 4), O(m, 4)), ["batch_norm", "(4,)"]),
  ("sdpa_shapes", lambda m: F(m).scaled_dot_product_attention(O(m, 2, 4, 8), O(m, 2, 4, 7), O(m, 2, 4, 8)),
   ["scaled_dot_product_attention", "(2, 4, 8)", "(2, 4, 7)"]),
  ("embedding_weight_1d", lambda m: F(m).embedding(m.tensor([1]), O(m, 3)), ["embedding", "(3,)"]),
  ("nll_target_shape", lambda m: F(m).nll_loss(O(m, 4, 3), m.tensor([0, 1])), ["nll_loss", "(2,)", "(4, 3)"]),
  ("cross_entropy_prob_shape", lambda m: F(m).cross_entropy(O(m, 4, 3), O(m, 4, 4)), ["cross_entropy", "(4, 4)", "(4, 3)"]),
  ("mse_shape", lambda m: F(m).mse_loss(O(m, 2, 3), O(m, 3, 2)), ["mse_loss", "(3, 2)", "(2, 3)"]),
  ("max_pool_ndim", lambda m: F(m).max_pool2d(O(m, 2, 1, 1, 4, 4), 2), ["max_pool2d", "(2, 1, 1, 4, 4)"]),
  ("conv_transpose2d_channels", lambda m: F(m).conv_transpose2d(O(m, 1, 3, 5, 5), O(m, 4, 2, 3, 3)), ["conv_transpose2d", "(1, 3, 5, 5)"]),
  ("fold_shape", lambda m: F(m).fold(O(m, 1, 9, 5), (4, 4), 3), ["fold", "(1, 9, 5)"]),
  # ---- a tensor of a dtype the op has no kernel for: torch's RuntimeError
  ("bitand_float", lambda m: O(m, 2, 3) & O(m, 2, 3), ["bitwise_and", "float32"]),
  ("mean_int", lambda m: m.tensor([1, 2, 3]).mean(), ["mean", "int64"]),
  ("neg_bool", lambda m: -O(m, 2).bool(), ["neg", "bool"]),
  ("masked_fill_float_mask", lambda m: O(m, 2, 3).masked_fill(O(m, 2, 3), 0), ["masked_fill", "bool"]),
  ("gather_float_index", lambda m: O(m, 2, 3).gather(0, m.tensor([[0.0]])), ["gather", "integer"]),
  ("one_hot_float", lambda m: F(m).one_hot(O(m, 3), 3), ["one_hot", "float32"]),
  ("embedding_float_idx", lambda m: F(m).embedding(O(m, 3), O(m, 3, 3)), ["embedding", "float32"]),
  ("nll_float_target", lambda m: F(m).nll_loss(O(m, 2, 3), m.tensor([0.0, 1.0])), ["nll_loss", "integer"]),
  # ---- wrong argument types: torch's TypeError (or IndexError for an index)
  ("index_float_tensor", lambda m: O(m, 2, 3)[m.tensor([0.0])], ["index", "float32"]),
  ("index_dict", lambda m: O(m, 2, 3)[{}], ["index", "dict"]),
  ("index_str", lambda m: O(m, 2, 3)["x"], ["index", "str"]),
  ("cat_non_tensor", lambda m: m.cat([O(m, 2), 1]), ["cat"]),
  ("sum_dim_float", lambda m: O(m, 2, 3).sum(1.0), ["sum", "float"]),
  ("add_str", lambda m: O(m, 2, 3) + "x", ["add", "str"]),
  ("index_float_scalar", lambda m: O(m, 2, 3)[1.5], ["index", "float"]),
  ("reshape_float", lambda m: O(m, 2, 3).reshape(2.0, 3), ["reshape"]),
]


def _raised(fn, mod):
  try: fn(mod)
  except Exception as e: return e   # noqa: BLE001 (the class is what the test compares)
  return None


def _torch_class(err):
  """The class ours must be an instance of: torch's own, or its builtin base where torch raises
  one of its subclasses (torch.OutOfMemoryError, torch._C._LinAlgError, ...)."""
  for cls in type(err).__mro__:
    if cls.__module__ == "builtins": return cls
  return Exception


@pytest.mark.filterwarnings("ignore::UserWarning")   # torch warns on some calls (mse_loss broadcasting)
@pytest.mark.parametrize("fn,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_same_exception_class_as_torch(fn, words):
  torch_err = _raised(fn, torch)
  assert torch_err is not None, "the case does not fail on torch: it tests nothing"
  ours = _raised(fn, lazygrad)
  assert ours is not None, "lazygrad accepted a call torch rejects"
  want = _torch_class(torch_err)
  assert isinstance(ours, want), f"lazygrad raised {type(ours).__name__}({ours}), torch raised {type(torch_err).__name__}({torch_err})"
  msg = str(ours)
  for w in words: assert w in msg, f"message {msg!r} lacks {w!r}"


def test_classes_keep_value_error():
  # code written against lazygrad's earlier ValueError keeps catching shape and dim mistakes
  assert issubclass(ShapeError, RuntimeError) and issubclass(ShapeError, ValueError)
  assert issubclass(DimError, IndexError) and issubclass(DimError, ValueError)
  with pytest.raises(ValueError): lazygrad.ones(2, 3) @ lazygrad.ones(2, 3)
  with pytest.raises(ValueError): lazygrad.ones(2, 3).sum(5)
  with pytest.raises(ShapeError): lazygrad.ones(2, 3) + lazygrad.ones(4, 5)
  with pytest.raises(DimError): lazygrad.ones(2, 3).transpose(0, 3)
  assert issubclass(DTypeError, NotImplementedError) and issubclass(DTypeError, RuntimeError) and issubclass(DTypeError, TypeError)
  assert issubclass(IndexTypeError, IndexError) and issubclass(IndexTypeError, TypeError)
  with pytest.raises(TypeError): lazygrad.ones(2, 3).gather(0, lazygrad.ones(1, 1))
  with pytest.raises(TypeError): lazygrad.ones(2, 3)[1.5]


def test_table_covers_each_class():
  classes = {type(_raised(c[1], torch)).__name__ for c in CASES}
  assert {"IndexError", "RuntimeError", "TypeError"} <= classes
