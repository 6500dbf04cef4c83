"""lazygrad.nn: Module and the layers of torch.nn, with torch's names, defaults and init.

The functional forms are lazygrad.nn.functional (as torch's F) and Tensor methods (x.conv2d, x.cross_entropy, ...)."""
from lazygrad.nn.module import Module, Parameter
from lazygrad.nn.containers import Sequential, ModuleList, ModuleDict
from lazygrad.nn.layers import (Identity, Linear, Conv2d, Embedding, Dropout, ReLU, GELU, SiLU, Sigmoid, Tanh, LeakyReLU, Softmax,
                                MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten)
from lazygrad.nn.norm import BatchNorm1d, BatchNorm2d, LayerNorm, RMSNorm
from lazygrad.nn.attention import MultiheadAttention, TransformerEncoderLayer
from lazygrad.nn.rnn import LSTM
from lazygrad.nn import functional
from lazygrad.nn.loss import *  # noqa: F401,F403 (torch.nn is one namespace)
from lazygrad.nn.conv import *  # noqa: F401,F403
from lazygrad.nn.activation import *  # noqa: F401,F403
from lazygrad.nn.spatial import *  # noqa: F401,F403
from lazygrad.nn.normalization import *  # noqa: F401,F403
from lazygrad.nn.recurrent import *  # noqa: F401,F403
from lazygrad.nn.transformer import *  # noqa: F401,F403
from lazygrad.nn import parallel
from lazygrad.nn import init, state, utils, loss, conv, activation, spatial, normalization, recurrent, transformer

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Identity", "Linear", "Conv2d", "Embedding", "Dropout",
           "ReLU", "GELU", "SiLU", "Sigmoid", "Tanh", "LeakyReLU", "Softmax", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten",
           "BatchNorm1d", "BatchNorm2d", "LayerNorm", "RMSNorm", "MultiheadAttention", "TransformerEncoderLayer", "LSTM",
           "init", "state", "utils", "functional", "parallel"] + loss.__all__ + conv.__all__ + activation.__all__ + spatial.__all__ \
  + normalization.__all__ + recurrent.__all__ + transformer.__all__
