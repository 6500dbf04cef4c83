"""lazygrad.data: datasets, the DataLoader, and loaders for data that ships offline."""
from lazygrad.data.loader import Dataset, TensorDataset, Subset, DataLoader, collate
from lazygrad.data.datasets import (DatasetNotFoundError, parse_idx, read_idx, load_digits, load_fashion_mnist,
                                    load_mnist, parse_cifar10_bin, read_cifar10_bin, load_cifar10,
                                    FASHION_MNIST_CLASSES, CIFAR10_CLASSES)
from lazygrad.data.sampler import DistributedSampler
from lazygrad.data.text import CharCorpus, CharWindows, load_shakespeare, shakespeare_files

__all__ = ["Dataset", "TensorDataset", "DistributedSampler", "Subset", "DataLoader", "collate", "DatasetNotFoundError", "parse_idx", "read_idx",
           "load_digits", "load_fashion_mnist", "load_mnist", "parse_cifar10_bin", "read_cifar10_bin", "load_cifar10",
           "FASHION_MNIST_CLASSES", "CIFAR10_CLASSES", "CharCorpus", "CharWindows", "load_shakespeare", "shakespeare_files"]
