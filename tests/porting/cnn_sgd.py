"""PyTorch code, kept as written for torch: a small CNN (Conv2d, BatchNorm2d, MaxPool2d, Dropout, nn.CrossEntropyLoss,
SGD with momentum). Dropout has p=0 so both frameworks see the same network (their random streams differ)."""
import numpy as np
import torch
from torch import nn


class Net(nn.Module):
  def __init__(self):
    super().__init__()
    self.features = nn.Sequential(
      nn.Conv2d(1, 4, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(4, 8, kernel_size=3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
    )
    self.dropout = nn.Dropout(p=0.0)
    self.head = nn.Linear(8 * 2 * 2, 4)

  def forward(self, x):
    x = self.features(x)
    x = torch.flatten(x, 1)
    return self.head(self.dropout(x))


def make_model():
  return Net()


def make_data(seed):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((16, 1, 10, 10)).astype(np.float32)
  y = rng.integers(0, 4, 16)
  return torch.from_numpy(x), torch.tensor(y)


def train(model, x, y, steps=5):
  criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
  opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
  losses = []
  for _ in range(steps):
    opt.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
  return losses, None
