"""PyTorch code, kept as written for torch: a sequence classifier (Embedding, LSTM with batch_first, Linear head,
F.cross_entropy, AdamW, gradient clipping)."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Classifier(nn.Module):
  def __init__(self, vocab=12, dim=8, hidden=16, classes=2):
    super().__init__()
    self.embed = nn.Embedding(vocab, dim)
    self.lstm = nn.LSTM(dim, hidden, batch_first=True)
    self.out = nn.Linear(hidden, classes)

  def forward(self, tokens):
    h, _ = self.lstm(self.embed(tokens))
    return self.out(h[:, -1])


def make_model():
  return Classifier()


def make_data(seed):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, 12, (16, 6))
  labels = (tokens[:, 0] > 5).astype(np.int64)
  return torch.tensor(tokens), torch.tensor(labels)


def train(model, x, y, steps=5):
  opt = torch.optim.AdamW(model.parameters(), lr=2e-2, weight_decay=0.01)
  losses = []
  for _ in range(steps):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    losses.append(loss.item())
  return losses, None
