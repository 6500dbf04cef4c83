"""The Tensor class as a whole: every public method documented, repr one line that never
computes, printing shows values, the mixins compose into one class."""
import inspect
from lazygrad import Tensor, GlobalCounters
from lazygrad.tensor_base import TensorBase


def _public():
  for name in sorted(dir(Tensor)):
    if name.startswith("_"): continue
    attr = inspect.getattr_static(Tensor, name)
    if type(attr).__name__ == "member_descriptor": continue   # slots (node, grad): documented in __slots__ and the class doc
    yield name, attr.fget if isinstance(attr, property) else getattr(attr, "__func__", attr)


def test_every_public_method_has_a_docstring():
  assert Tensor.__doc__
  missing = [name for name, fn in _public() if callable(fn) and not fn.__doc__]
  assert missing == []
  assert len(list(_public())) > 150


def test_repr_is_one_line_and_lazy():
  x = Tensor.ones(32, 10)
  GlobalCounters.reset()
  assert repr(x + 1) == f"<Tensor (32, 10) float32 {x.device} lazy>"
  assert GlobalCounters.kernel_count == 0
  w = Tensor([[1.0, 2.0]], requires_grad=True)
  assert repr(w) == f"<Tensor (1, 2) float32 {w.device} realized requires_grad>"
  assert repr(Tensor(3, device="cpu")) == "<Tensor () int64 cpu realized>"


def test_str_prints_values():
  s = str(Tensor([1.0, 2.0]) * 3)
  assert "3." in s and "6." in s and "float32" in s


def test_mixins_compose():
  t = Tensor([1.0])
  assert isinstance(t, TensorBase) and TensorBase._Tensor is Tensor
  # results of mixin methods are plain Tensors, also when called on a subclass instance
  class Sub(Tensor): pass
  s = Sub([1.0, 2.0])
  for out in (s + 1, s.sum(), s.reshape(2, 1), s.relu(), s.zeros_like(), s[0], Tensor.cat([s, s])):
    assert type(out) is Tensor
