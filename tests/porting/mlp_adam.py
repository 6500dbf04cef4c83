"""PyTorch code, kept as written for torch: an MLP classifier (nn.Sequential, F.cross_entropy, Adam).
test_porting.py runs it on torch and, with only the imports rewritten, on lazygrad."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_model():
  return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 16), nn.GELU(), nn.Dropout(0.0), nn.Linear(16, 3))


def make_data(seed):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((64, 8)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5).astype(np.int64)
  return torch.tensor(x), torch.tensor(y)


def train(model, x, y, steps=8):
  opt = torch.optim.Adam(model.parameters(), lr=1e-2)
  losses = []
  model.train()
  for i in range(steps):
    xb, yb = x[(i % 2) * 32:(i % 2 + 1) * 32], y[(i % 2) * 32:(i % 2 + 1) * 32]
    opt.zero_grad()
    loss = F.cross_entropy(model(xb), yb)
    loss.backward()
    opt.step()
    losses.append(loss.item())
  model.eval()
  with torch.no_grad():
    acc = (model(x).argmax(dim=1) == y).float().mean().item()
  return losses, acc
