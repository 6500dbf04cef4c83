"""Movement ops vs torch: reshape/permute/expand/flatten/squeeze/flip/repeat/pad, dtypes, zero-size and 0-d."""
import pytest
import torch
import torch.nn.functional as F
from lazygrad import Tensor
from helpers import helper_test_op


# ============================================================ movement

MOVEMENT = [
  ("reshape", lambda x: x.reshape(6, 4)), ("reshape_tuple", lambda x: x.reshape((4, -1))), ("reshape_-1", lambda x: x.reshape(-1)),
  ("reshape_1s", lambda x: x.reshape(1, 2, 1, 12, 1)), ("view", lambda x: x.view(3, 8)), ("view_tuple", lambda x: x.view((2, 12))),
  ("permute", lambda x: x.permute(2, 0, 1)), ("permute_tuple", lambda x: x.permute((1, 2, 0))), ("permute_neg", lambda x: x.permute(-1, -3, -2)),
  ("transpose", lambda x: x.transpose(0, 2)), ("transpose_neg", lambda x: x.transpose(-1, 0)), ("transpose_same", lambda x: x.transpose(1, 1)),
  ("T", lambda x: x.T), ("mT", lambda x: x.mT),
  ("expand", lambda x: x[:, :1].expand(2, 5, 4)), ("expand_-1", lambda x: x[:, :1].expand(-1, 3, -1)),
  ("expand_new", lambda x: x.expand(2, 2, 3, 4)), ("expand_tuple", lambda x: x[:1].expand((3, 3, 4))),
  ("flatten", lambda x: x.flatten()), ("flatten_1", lambda x: x.flatten(1)), ("flatten_0_1", lambda x: x.flatten(0, 1)),
  ("flatten_neg", lambda x: x.flatten(-2, -1)), ("flatten_kw", lambda x: x.flatten(start_dim=1, end_dim=2)),
  ("unflatten", lambda x: x.unflatten(2, (2, 2))), ("unflatten_-1", lambda x: x.unflatten(-1, (2, -1))),
  ("unsqueeze0", lambda x: x.unsqueeze(0)), ("unsqueeze_end", lambda x: x.unsqueeze(3)), ("unsqueeze_neg", lambda x: x.unsqueeze(-1)),
  ("unsqueeze_neg2", lambda x: x.unsqueeze(-2)),
  ("squeeze", lambda x: x.reshape(2, 1, 3, 1, 4).squeeze()), ("squeeze_dim", lambda x: x.reshape(2, 1, 3, 1, 4).squeeze(1)),
  ("squeeze_noop", lambda x: x.squeeze(0)), ("squeeze_neg", lambda x: x.reshape(2, 3, 4, 1).squeeze(-1)),
  ("squeeze_tuple", lambda x: x.reshape(1, 2, 1, 3, 4).squeeze((0, 2))),
  ("contiguous", lambda x: x.permute(1, 0, 2).contiguous()),
  ("flip0", lambda x: x.flip(0)), ("flip_multi", lambda x: x.flip(0, 2)), ("flip_tuple", lambda x: x.flip((1, -1))),
  ("flip_list", lambda x: x.flip([2])),
  ("repeat", lambda x: x.repeat(2, 1, 3)), ("repeat_more", lambda x: x.repeat(2, 1, 1, 2)), ("repeat_tuple", lambda x: x.repeat((1, 2, 1))),
  ("pad_last", lambda x: F.pad(x, (1, 2)) if isinstance(x, torch.Tensor) else x.pad((1, 2))),
  ("pad_two", lambda x: F.pad(x, (1, 0, 0, 2)) if isinstance(x, torch.Tensor) else x.pad((1, 0, 0, 2))),
  ("pad_all", lambda x: F.pad(x, (1, 1, 2, 2, 1, 0)) if isinstance(x, torch.Tensor) else x.pad((1, 1, 2, 2, 1, 0))),
  ("pad_value", lambda x: F.pad(x, (2, 1, 1, 0), value=-3.5) if isinstance(x, torch.Tensor) else x.pad((2, 1, 1, 0), value=-3.5)),
  ("pad_neg", lambda x: F.pad(x, (-1, -1)) if isinstance(x, torch.Tensor) else x.pad((-1, -1))),
  ("pad_mixed", lambda x: F.pad(x, (-1, 2, 1, -2)) if isinstance(x, torch.Tensor) else x.pad((-1, 2, 1, -2))),
  ("pad_mixed_value", lambda x: F.pad(x, (2, -3, -1, 1), value=7.0) if isinstance(x, torch.Tensor) else x.pad((2, -3, -1, 1), value=7.0)),
  ("pad_zero", lambda x: F.pad(x, (0, 0, 0, 0)) if isinstance(x, torch.Tensor) else x.pad((0, 0, 0, 0))),
  ("pad_crop_all", lambda x: F.pad(x, (-2, -2)) if isinstance(x, torch.Tensor) else x.pad((-2, -2))),
  ("chain", lambda x: x.permute(2, 1, 0).reshape(4, 6)[1:, ::2].flip(1).unsqueeze(1).expand(3, 2, 3)),
]


@pytest.mark.parametrize("name,fn", MOVEMENT, ids=[m[0] for m in MOVEMENT])
def test_movement(name, fn):
  helper_test_op([(2, 3, 4)], fn)


@pytest.mark.parametrize("name,fn", [m for m in MOVEMENT
                                     if m[0] in ("permute", "flip_multi", "repeat", "pad_value", "pad_mixed", "expand_new", "flatten")],
                         ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("dtype", ["int32", "float16", "bool"])
def test_movement_dtypes(name, fn, dtype):
  if dtype == "bool" and "pad_" in name: pytest.skip("torch pads bools only with a bool value")
  helper_test_op([(2, 3, 4)], fn, dtype=dtype, low=-5, high=5)


def test_movement_zero_size():
  helper_test_op([(0, 3)], lambda x: x.reshape(3, 0))
  helper_test_op([(0, 3)], lambda x: x.permute(1, 0))
  helper_test_op([(0, 3)], lambda x: F.pad(x, (1, 1, 1, 1)) if isinstance(x, torch.Tensor) else x.pad((1, 1, 1, 1)))
  helper_test_op([(2, 3)], lambda x: x.repeat(0, 1))
  helper_test_op([(2, 1)], lambda x: x.expand(2, 0))
  helper_test_op([(0, 3)], lambda x: x.flip(0))
  helper_test_op([(0,)], lambda x: x.unsqueeze(0).reshape(1, 0, 1))


def test_movement_0d():
  helper_test_op([()], lambda x: x.reshape(1, 1))
  helper_test_op([()], lambda x: x.expand(3, 2))
  helper_test_op([()], lambda x: x.unsqueeze(0))
  helper_test_op([()], lambda x: x.flatten())
  helper_test_op([(1, 1)], lambda x: x.reshape(()))
  helper_test_op([(1,)], lambda x: x.squeeze())


def test_movement_errors():
  x = Tensor.ones(2, 3)
  with pytest.raises(ValueError): x.reshape(4, 2)
  with pytest.raises(ValueError): x.permute(0, 0)
  with pytest.raises(ValueError): x.expand(3, 3)
  with pytest.raises(ValueError): x.pad((1, 2, 3))
