"""Multi-head attention pooling: learned queries attend over feed-forward-transformed vectors."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_int
from ..errors import ConfigError
from ._registry import register_layer

__all__ = ["AttentionPool"]


@register_layer
class AttentionPool(nn.Module):
    """Attention pooling: ``MultiheadAttention(Q, V, V)`` with ``V = [FFN(v_1), ..., FFN(v_n)]``.

    ``Q`` is a learned (num_queries, dim) matrix, so the output length is fixed whatever ``n`` is. The
    FFN is ``Linear(dim, hidden_dim) -> GELU -> Linear(hidden_dim, dim)`` applied to each vector.

    Args:
        dim: vector (channel) size.
        num_heads: attention heads; must divide ``dim``.
        num_queries: number of learned queries, i.e. of output vectors.
        hidden_dim: FFN width; defaults to ``4 * dim`` (the transformer convention).

    Shape:
        (B, N, dim) -> (B, num_queries, dim); a (B, dim, H, W) feature map is read as N = H * W vectors.

    Example:
        >>> pool = AttentionPool(16, num_heads=4, num_queries=2)
        >>> pool(torch.randn(3, 16, 5, 5)).shape
        torch.Size([3, 2, 16])

    Reference:
        The article's "multihead attention pooling"; Lee et al., "Set Transformer", ICML 2019, Sec. 3.2
        (PMA: MAB(S, rFF(Z)), pooling by multihead attention with learned seeds S); Zhai et al.,
        "Scaling Vision Transformers", CVPR 2022 (the MAP head).

    Deviations:
        We follow the article exactly: FFN on each vector, then plain multi-head attention. Set
        Transformer's PMA also applies the FFN first but wraps the attention in a MAB block (residual,
        layer norms, a second FFN); timm's ``AttentionPoolLatent`` puts its MLP after the attention.
    """

    def __init__(self, dim: int, num_heads: int = 1, num_queries: int = 1, hidden_dim: int | None = None) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim")
        self.num_heads = check_int(num_heads, "num_heads")
        if dim % num_heads:
            raise ConfigError(f"Expected num_heads to divide dim. Received: dim={dim}, num_heads={num_heads}")
        self.num_queries = check_int(num_queries, "num_queries")
        self.hidden_dim = check_int(hidden_dim if hidden_dim is not None else 4 * dim, "hidden_dim")
        self.ffn = nn.Sequential(nn.Linear(dim, self.hidden_dim), nn.GELU(), nn.Linear(self.hidden_dim, dim))
        self.query = nn.Parameter(torch.empty(num_queries, dim))
        nn.init.trunc_normal_(self.query, std=dim ** -0.5)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            x = x.flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, H*W, C)
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"Expected (B, N, {self.dim}) or (B, {self.dim}, H, W) input. "
                             f"Received: shape={tuple(x.shape)}")
        v = self.ffn(x)
        q = self.query.to(v.dtype).expand(x.shape[0], -1, -1)
        out, _ = self.attn(q, v, v, need_weights=False)
        return out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, num_queries={self.num_queries}, hidden_dim={self.hidden_dim}"
