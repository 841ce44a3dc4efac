"""Unsupervised NeuralEF: orthonormal head, temperature schedule, clusters of a separable toy."""

from __future__ import annotations

import pytest
import torch

from cheeger.unsupervised.neuralef import PsiNet, fit_neuralef, gumbel_temperature
from cheeger.unsupervised.nodes import node_features

pytestmark = pytest.mark.usefixtures("one_thread")


def test_head_rows_orthonormal_and_logits_bounded():
    psi = PsiNet(5, 4, hidden=16)
    w = psi.head.weight
    torch.testing.assert_close(w @ w.T, torch.eye(4), atol=1e-5, rtol=0)
    logits = psi(1e4 * torch.randn(100, 5))
    assert logits.abs().max() <= 16**0.5 + 1e-3  # |LayerNorm output| = sqrt(hidden)
    # the bound must survive training: scramble every parameter before the head (a LayerNorm
    # with a learned gain would let the logits grow past it)
    with torch.no_grad():
        for parameter in psi.net.parameters():
            parameter.copy_(10 * torch.randn_like(parameter))
    assert psi(1e4 * torch.randn(100, 5)).abs().max() <= 16**0.5 + 1e-3


def test_temperature_schedule_ends():
    assert gumbel_temperature(0, 10) == pytest.approx(1.0)
    assert gumbel_temperature(10, 10) == pytest.approx(0.3)
    values = [gumbel_temperature(s, 10) for s in range(11)]
    assert values == sorted(values, reverse=True)


def test_separable_groups_get_their_own_clusters():
    """Two feature groups, left and right half of each image: psi's arg-max splits them.

    K = 3 for 2 groups: with K = 2 the first output took every node for one seed of two (the
    trivial top eigenfunction; a known local optimum of the quantised objective, measured).
    """
    gen = torch.Generator().manual_seed(0)
    m, h, w, c = 8, 4, 6, 6
    feats = torch.randn(m, h, w, c, generator=gen) * 0.05
    feats[:, :, : w // 2, 0] += 1.0
    feats[:, :, w // 2 :, 1] += 1.0
    colours = torch.zeros(m, h, w, 3)
    colours[:, :, : w // 2, 0] = 1.0
    psi, history = fit_neuralef(feats, colours, k_out=3, k=5, alpha=0.3, pixel_k=(4,),
                                position_weights=(2.0,), beta=1.0, epochs=15, batch_images=4,
                                lr=1e-2, hidden=16)  # fmt: skip
    with torch.no_grad():
        labels = psi(feats).argmax(-1)  # (m, h, w)
    left, right = labels[:, :, : w // 2], labels[:, :, w // 2 :]
    assert (left == left.flatten()[0]).all() and (right == right.flatten()[0]).all()
    assert left.flatten()[0] != right.flatten()[0]
    assert len(history["loss"]) == 15


def test_too_few_images_named():
    with pytest.raises(ValueError, match="batch_images = 5"):
        fit_neuralef(torch.rand(3, 2, 2, 4), torch.rand(3, 2, 2, 3), k_out=2, k=2, alpha=0.0,
                     pixel_k=(2,), position_weights=(1.0,), beta=1.0, epochs=1,
                     batch_images=5)  # fmt: skip


def test_more_eigenfunctions_than_a_batch_has_nodes_named():
    with pytest.raises(ValueError, match=r"K = 9 eigenfunctions exceed the 8 nodes"):
        fit_neuralef(torch.rand(3, 2, 2, 4), torch.rand(3, 2, 2, 3), k_out=9, k=2, alpha=0.0,
                     pixel_k=(2,), position_weights=(1.0,), beta=1.0, epochs=1,
                     batch_images=2, hidden=16)  # fmt: skip


def test_node_features_unit_norm_and_nan_named():
    sizes = zip((2, 3, 4, 5), (4, 8, 16, 32), strict=True)
    taps = [torch.randn(c, 64 // s, 96 // s) for c, s in sizes]
    f = node_features(taps, stride=16)
    assert f.shape == (4, 6, 12)
    torch.testing.assert_close(f.norm(dim=-1), torch.ones(4, 6))
    taps[2][0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"tap 2 \(stride 16\)"):
        node_features(taps, stride=16)
