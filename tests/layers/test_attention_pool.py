"""AttentionPool: hand-written single-head attention oracle, permutation invariance, 4-D input."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.layers import AttentionPool


def test_matches_manual_attention() -> None:
    torch.manual_seed(0)
    pool = AttentionPool(6, num_heads=1, num_queries=2, hidden_dim=5).double()
    x = torch.randn(3, 7, 6, dtype=torch.float64)
    lin1, lin2 = pool.ffn[0], pool.ffn[2]
    v = lin2(torch.nn.functional.gelu(x @ lin1.weight.T + lin1.bias))  # FFN on each vector first
    wq, wk, wv = pool.attn.in_proj_weight.chunk(3)
    bq, bk, bv = pool.attn.in_proj_bias.chunk(3)
    q = pool.query @ wq.T + bq
    k, val = v @ wk.T + bk, v @ wv.T + bv
    att = torch.softmax(q @ k.transpose(1, 2) / 6 ** 0.5, dim=-1)  # softmax(QK^T / sqrt(d)) V
    expected = (att @ val) @ pool.attn.out_proj.weight.T + pool.attn.out_proj.bias
    torch.testing.assert_close(pool(x), expected)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_invariant_to_the_order_of_the_vectors(n: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    pool = AttentionPool(8, num_heads=2, num_queries=2).double()
    x = torch.randn(2, n, 8, generator=g, dtype=torch.float64)
    perm = torch.randperm(n, generator=g)
    torch.testing.assert_close(pool(x[:, perm]), pool(x))


def test_feature_map_is_read_as_hw_vectors() -> None:
    pool = AttentionPool(4)
    x = torch.randn(2, 4, 3, 5)
    torch.testing.assert_close(pool(x), pool(x.flatten(2).transpose(1, 2)))
