"""The Spatiotemporal Transformer (Yao, Huang and Zhu 2023): network and imputer."""

from .core import STTransformer, STTransformerConfig

__all__ = ["STTransformer", "STTransformerConfig"]
