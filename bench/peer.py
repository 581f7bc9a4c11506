"""The tutorial-style reference: a VAE trained the way pytorch/examples' vae/main.py does it.

A `Dataset` whose `__getitem__` turns one uint8 28x28 array into a float tensor divided by
255 (what torchvision's ToTensor does), `DataLoader(batch_size=128, shuffle=True)`, an MLP
784-400-20 with ReLU and a sigmoid output, summed binary cross-entropy plus the analytic KL,
Adam 1e-3. Written for the benchmarks only; nothing in vae/ uses it.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset


class UInt8Images(Dataset):
    def __init__(self, images: np.ndarray):
        self.images = images  # uint8 [N, 28, 28]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i].astype(np.float32)).div_(255.0).unsqueeze(0)  # ToTensor


class PeerVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())  # appendix B
    return bce + kld


def train_epoch(model, optimizer, loader) -> tuple[float, int]:
    """One epoch; returns (seconds, samples)."""
    model.train()
    t0, n = time.perf_counter(), 0
    for x in loader:
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        loss_function(recon, x, mu, logvar).backward()
        optimizer.step()
        n += x.shape[0]
    return time.perf_counter() - t0, n


@torch.no_grad()
def test_elbo(model, images: np.ndarray) -> float:
    """Mean ELBO per example (nats, negative) on grey pixels, as the project reports it."""
    model.eval()
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    total = 0.0
    for start in range(0, len(x), 1000):
        xb = x[start:start + 1000]
        recon, mu, logvar = model(xb)
        total += loss_function(recon, xb, mu, logvar).item()
    return -total / len(x)


def make(train_images: np.ndarray, seed: int = 0, batch_size: int = 128):
    torch.manual_seed(seed)
    model = PeerVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(UInt8Images(train_images), batch_size=batch_size, shuffle=True)
    return model, optimizer, loader
