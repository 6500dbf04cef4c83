"""lazygrad.nn: Module and the layers of torch.nn, with torch's names, defaults and init.

The functional forms are Tensor methods (x.conv2d, x.layer_norm, x.cross_entropy, ...)."""
from lazygrad.nn.module import Module, Parameter
from lazygrad.nn.containers import Sequential, ModuleList, ModuleDict
from lazygrad.nn.layers import (Identity, Linear, Conv2d, Embedding, Dropout, ReLU, GELU, SiLU, Sigmoid, Tanh, LeakyReLU, Softmax,
                                MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten)
from lazygrad.nn.norm import BatchNorm1d, BatchNorm2d, LayerNorm, RMSNorm
from lazygrad.nn.attention import MultiheadAttention, TransformerEncoderLayer
from lazygrad.nn.rnn import LSTM
from lazygrad.nn import init, state, utils

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Identity", "Linear", "Conv2d", "Embedding", "Dropout",
           "ReLU", "GELU", "SiLU", "Sigmoid", "Tanh", "LeakyReLU", "Softmax", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten",
           "BatchNorm1d", "BatchNorm2d", "LayerNorm", "RMSNorm", "MultiheadAttention", "TransformerEncoderLayer", "LSTM",
           "init", "state", "utils"]
