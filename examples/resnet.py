#!/usr/bin/env python3
"""A ResNet (BasicBlocks, BatchNorm) on Fashion-MNIST padded to 32x32, trained with SGD momentum + cosine lr.

The CIFAR-style layout for 32x32 input: a 3x3 stem conv (no max pool), then stages of
BasicBlocks (conv3x3 BN ReLU conv3x3 BN, plus the input: identity, or a strided
1x1 conv + BN where the shape changes), the first stage at stride 1 and each later one
at stride 2 with twice the channels, global average pooling and one linear layer.

  --arch resnet18   blocks 2,2,2,2, width 64 (11.2M parameters): the GPU configuration
  --arch resnet10   blocks 1,1,1,1, width 64
  --arch small      blocks 1,1,1,  width 16 (78k parameters): the CPU default
  --blocks / --width override the preset (e.g. --blocks 2,2,2 --width 32).

Data: Fashion-MNIST from the Debian package dataset-fashion-mnist (60000 train, 10000
test, 28x28 grey), normalised and padded to 32x32 on the host; --augment adds a random
crop (pad 2) and a random horizontal flip to training batches (worth it for long runs; it
slows a one-epoch run down). --train-size uses a fixed random subset of the training set
(the CPU default: 30000 images, one epoch); the test accuracy is always on the full
10000-image test set (--test-size shrinks it for smoke tests). At the end the
model is saved with nn.state.save (safetensors) and a loss-curve PNG is written, both to
--out-dir (default examples/out; a temporary directory with --steps, so a smoke test never
overwrites the real checkpoint). The loop is examples/common.py's fit().

  python examples/resnet.py                       # CPU: small ResNet, 468 steps, ~86% in ~3 min
  python examples/resnet.py --arch resnet18 --epochs 15 --train-size 60000 --batch-size 128 --lr 0.1 --augment   # GPU
  python examples/resnet.py --steps 3 --train-size 256 --test-size 256   # smoke test
  python examples/resnet.py --amp bf16            # mixed precision: convs and the linear layer in bf16 (fp16: + GradScaler)
"""
from __future__ import annotations
import os
import sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # examples/common.py
from common import Amp, add_amp_flag, fit, make_parser, parse_args, report_fit   # noqa: E402
from lazygrad import Tensor, nn, optim   # noqa: E402
from lazygrad.data import DatasetNotFoundError, load_fashion_mnist   # noqa: E402

ARCHS = {"resnet18": ((2, 2, 2, 2), 64), "resnet10": ((1, 1, 1, 1), 64), "small": ((1, 1, 1), 16)}
MEAN, STD = 0.2860, 0.3530   # Fashion-MNIST training-set pixel statistics


def build_model(blocks: tuple[int, ...], width: int, in_channels: int = 1, num_classes: int = 10):
  class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
      super().__init__()
      self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
      self.bn1 = nn.BatchNorm2d(cout)
      self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
      self.bn2 = nn.BatchNorm2d(cout)
      self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
                       if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
      out = self.bn1(self.conv1(x)).relu()
      return (self.bn2(self.conv2(out)) + self.shortcut(x)).relu()

  class ResNet(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
      self.bn1 = nn.BatchNorm2d(width)
      layers, cin = [], width
      for i, n in enumerate(blocks):
        cout = width * 2 ** i
        layers.append(nn.Sequential(*[BasicBlock(cin if j == 0 else cout, cout, (1 if i == 0 else 2) if j == 0 else 1) for j in range(n)]))
        cin = cout
      self.layers = nn.ModuleList(layers)
      self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
      x = self.bn1(self.conv1(x)).relu()
      for layer in self.layers: x = layer(x)
      return self.fc(x.mean((2, 3)))

  return ResNet()


def prepare(images: np.ndarray) -> np.ndarray:
  """(N, 1, 28, 28) in [0, 1] -> normalised, padded with the background (2 each side) to (N, 1, 32, 32) float32."""
  x = (images.astype(np.float32) - MEAN) / STD
  return np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=(0 - MEAN) / STD)


def augment(x: np.ndarray, rng: np.random.Generator, pad: int = 2) -> np.ndarray:
  """Random crop (of the image padded with background by `pad`) and random horizontal flip, per image."""
  n, c, h, w = x.shape
  bg = (0 - MEAN) / STD
  padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=bg)
  dy, dx = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
  rows = (dy[:, None] + np.arange(h))[:, None, :, None]
  cols = (dx[:, None] + np.arange(w))[:, None, None, :]
  out = padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]
  flip = rng.random(n) < 0.5
  out[flip] = out[flip, :, :, ::-1]
  return np.ascontiguousarray(out)


def main(argv=None) -> float:
  ap = make_parser(__doc__.splitlines()[0], epochs=1, lr=0.05, batch_size=64)
  ap.add_argument("--arch", choices=sorted(ARCHS), default="small", help="layout preset (default small; resnet18 for a GPU)")
  ap.add_argument("--blocks", default=None, help="BasicBlocks per stage, comma separated (overrides --arch), e.g. 2,2,2,2")
  ap.add_argument("--width", type=int, default=None, help="channels of the first stage (overrides --arch)")
  ap.add_argument("--train-size", type=int, default=30000, help="train on a fixed random subset of this many images (default 30000; 60000: all)")
  ap.add_argument("--test-size", type=int, default=10000, help="evaluate on the first N test images (default: all 10000)")
  ap.add_argument("--weight-decay", type=float, default=5e-4, help="SGD weight decay (default 5e-4)")
  ap.add_argument("--augment", action="store_true", help="random crop (pad 2) and horizontal flip of training images")
  add_amp_flag(ap)
  args = parse_args(ap, argv)
  amp = Amp(args.amp)

  blocks, width = ARCHS[args.arch]
  if args.blocks: blocks = tuple(int(b) for b in args.blocks.split(","))
  if args.width: width = args.width
  try: train_set, test_set = load_fashion_mnist()
  except DatasetNotFoundError as e: sys.exit(str(e))
  x_all, y_all = train_set.arrays
  sub = np.random.default_rng(1234).permutation(len(x_all))[:min(args.train_size, len(x_all))]   # fixed subset, not --seed
  x_tr, y_tr = prepare(x_all[sub]), y_all[sub]
  x_te, y_te = prepare(test_set.arrays[0][:args.test_size]), test_set.arrays[1][:args.test_size]

  model = build_model(blocks, width)
  params = list(model.parameters())
  Tensor.realize(*params, *model.buffers())
  steps_per_epoch = len(x_tr) // args.batch_size
  total_steps = steps_per_epoch * args.epochs if args.steps is None else min(args.steps, steps_per_epoch * args.epochs)
  opt = optim.SGD(params, lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
  sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
  name = args.arch if not (args.blocks or args.width) else f"resnet blocks {','.join(map(str, blocks))} width {width}"
  print(f"{name} on {args.device}: blocks {blocks}, width {width}, {sum(p.numel() for p in params)} parameters; "
        f"{len(x_tr)} train / {len(x_te)} test images (32x32), batch {args.batch_size}, lr {args.lr} cosine over {total_steps} steps{amp.describe()}")
  r = fit(model, (x_tr, y_tr), (x_te, y_te), epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, steps=args.steps,
          opt=opt, sched=sched, augment=augment if args.augment else None, eval_batch_size=500, amp=amp)
  os.makedirs(args.out_dir, exist_ok=True)
  ckpt = os.path.join(args.out_dir, "resnet.safetensors")
  nn.state.save(model.state_dict(), ckpt, metadata={"blocks": ",".join(map(str, blocks)), "width": width, "test_accuracy": f"{r.accuracy:.4f}"})
  print(f"checkpoint: {ckpt}")
  metric = f"final test accuracy {r.accuracy * 100:.2f}% ({len(x_te)} test images), test loss {r.test_loss:.4f}, training {r.seconds:.1f} s"
  return report_fit(r, args, "resnet", f"{name}, Fashion-MNIST", f"resnet ({name}), {r.steps} steps ({r.ms_per_step:.0f} ms/step)", metric)


if __name__ == "__main__":
  main()
