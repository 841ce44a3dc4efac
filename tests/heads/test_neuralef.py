"""The NeuralEF head: shapes, convergence to eigsh's eigenvectors, gradient paths, invariance,
bad input, settings."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

import cheeger.heads.neuralef as neuralef_module
from cheeger.graph import normalized_laplacian, normalized_rayleigh_quotients
from cheeger.heads import NeuralEFHead, NeuralEFHeadConfig, build_head, head_names
from cheeger.heads.neuralef import SHARED_KEYS, position_encoding, rayleigh_quotients
from cheeger.linalg import eigsh
from cheeger.losses.neuralef import l2_batch_normalize

pytestmark = pytest.mark.usefixtures("one_thread")

GRAPH_PARAMETERS = ("embed.weight", "embed.bias", "affinity.projection", "affinity.log_sigma")


def _head(random_filter: bool = True, dtype=torch.float64, **options) -> NeuralEFHead:
    """A small head; ``random_filter`` replaces the filter's zero-initialised last layer (a flat
    response hides cut gradient paths: see ``tests/heads/test_spectral.py``)."""
    torch.manual_seed(0)
    defaults = dict(stride=4, k=5, graph_channels=6, rank=3, hidden=16)
    head = NeuralEFHead(8, 3, **{**defaults, **options}).to(dtype)
    if random_filter:
        with torch.no_grad():
            for layer in head.filter.layers:
                layer.weight.normal_(0.0, 1.0)
                layer.bias.normal_(0.0, 1.0)
    return head


def _features(dtype=torch.float64, requires_grad=False) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 8, 24, 32, generator=g, dtype=dtype).requires_grad_(requires_grad)


def test_docstring_examples():
    torch.manual_seed(0)
    result = doctest.testmod(neuralef_module, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0


def test_output_contract_and_registry():
    assert "neuralef" in head_names()
    head = _head()
    out = head(_features(), (48, 64))
    assert out.logits.shape == (2, 3, 48, 64)
    assert sorted(out.losses) == ["bulk", "neuralef", "rayleigh"]
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.losses.values())
    assert out.internals["eigenvalues"].shape == (2, 5)
    assert out.internals["eigenvectors"].shape == (2, 6 * 8, 5)
    assert out.internals["graph_size"].tolist() == [6, 8]
    assert out.internals["noise_edge"].shape == (2,)
    lam = out.internals["eigenvalues"]
    assert (lam[:, 1:] >= lam[:, :-1]).all() and (lam >= -1e-12).all() and (lam <= 2).all()
    U = out.internals["eigenvectors"]  # QR: orthonormal to rounding
    assert torch.allclose(U.mT @ U, torch.eye(5, dtype=U.dtype).expand(2, -1, -1), atol=1e-12)
    assert isinstance(build_head("neuralef", 8, 3, stride=4, k=5), NeuralEFHead)


def test_psi_is_l2_batch_normalised_per_image_as_in_the_loss_module():
    head = _head()
    f_low = F.avg_pool2d(_features(), 4)
    psi = head.eigenfunctions(f_low)  # (B, n, k)
    codes = position_encoding(6, 8, head.cfg.positional, f_low).expand(2, -1, -1, -1)
    raw = head.psi(torch.cat([f_low, codes], 1)).flatten(2).mT
    for b in range(2):
        assert torch.allclose(psi[b], l2_batch_normalize(raw[b]), atol=1e-12)


def test_rayleigh_quotients_match_dense_oracle():
    head = _head()
    f_low = F.avg_pool2d(_features(), 4)
    L = normalized_laplacian(head.affinity(F.normalize(head.embed(f_low), dim=1)))
    U = torch.randn(2, 48, 3, dtype=torch.float64)
    dense = L.to_dense()
    expected = torch.einsum("bnk,bnm,bmk->bk", U, dense, U) / U.square().sum(1)
    assert torch.allclose(rayleigh_quotients(L, U), expected, atol=1e-12)
    assert torch.allclose(rayleigh_quotients(dense, U), expected, atol=1e-12)


def test_position_encoding_values():
    codes = position_encoding(3, 5, 2, torch.zeros((), dtype=torch.float64))  # (8, 3, 5)
    t_row = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    t_col = torch.linspace(0, 1, 5, dtype=torch.float64)
    assert torch.allclose(codes[0, :, 0], torch.sin(torch.pi * t_row), atol=1e-12)
    assert torch.allclose(codes[1, 0, :], torch.sin(torch.pi * t_col), atol=1e-12)
    assert torch.allclose(codes[5, 0, :], torch.sin(2 * torch.pi * t_col), atol=1e-12)
    assert torch.allclose(codes[6, :, 0], torch.cos(2 * torch.pi * t_row), atol=1e-12)
    assert position_encoding(3, 5, 0, codes).shape == (0, 3, 5)


def _planted_problem():
    """A fixed graph with 4 regions (4 small eigenvalues of L_sym, then a gap) and features rich
    enough for a linear psi to represent any node signal (n + 16 random channels)."""
    torch.manual_seed(0)
    h, w, k = 8, 10, 4
    n = h * w
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    region = (yy >= h // 2).long() * 2 + (xx >= w // 2).long()
    codes = torch.eye(4, dtype=torch.float64)[region].permute(2, 0, 1)  # (4, h, w)
    noise = torch.randn(4 + n + 16, h, w, dtype=torch.float64)
    f = torch.cat([codes + 0.05 * noise[:4], noise[4:]])[None]  # (1, C, h, w)
    head = NeuralEFHead(f.shape[1], 3, stride=1, k=k, graph_channels=4, rank=4, depth=0,
                        beta=1.0).double()  # fmt: skip
    with torch.no_grad():  # the graph sees the region codes only
        head.embed.weight.zero_()
        head.embed.bias.zero_()
        head.embed.weight[:, :4, 0, 0] = torch.eye(4, dtype=torch.float64)
    return head, f, k


def test_learned_eigenfunctions_converge_to_eigsh_bottom_eigenvectors():
    head, f, k = _planted_problem()
    with torch.no_grad():
        L = normalized_laplacian(head.affinity(F.normalize(head.embed(f), dim=1)))
    lam_ref, U_ref = eigsh(L.to_dense(), k)  # (1, k), (1, n, k)
    opt = torch.optim.Adam(head.psi.parameters(), lr=1e-2)
    angles_start = None
    for _ in range(400):  # the NeuralEF loss alone
        out = head(f, tuple(f.shape[-2:]))
        if angles_start is None:
            angles_start = scipy.linalg.subspace_angles(out.internals["eigenvectors"][0].numpy(),
                                                        U_ref[0].numpy())  # fmt: skip
        opt.zero_grad()
        out.losses["neuralef"].backward()
        opt.step()
    out = head(f, tuple(f.shape[-2:]))
    angles = scipy.linalg.subspace_angles(out.internals["eigenvectors"][0].numpy(),
                                          U_ref[0].numpy())  # fmt: skip
    assert angles_start.max() > 1.0  # it learned: a random psi starts far away
    assert angles.max() < 0.1  # measured 0.025 rad
    np.testing.assert_allclose(out.internals["eigenvalues"][0].numpy(), lam_ref[0].numpy(),
                               atol=2e-3)  # fmt: skip


def _grads(head, loss, features):
    head.zero_grad()
    if features.grad is not None:
        features.grad = None
    loss.backward(retain_graph=True)
    grads = {name: p.grad for name, p in head.named_parameters()}
    grads["features"] = features.grad
    return {k: 0.0 if g is None else float(g.abs().max()) for k, g in grads.items()}


PSI = ("psi.0.weight", "psi.0.bias", "psi.2.weight", "psi.2.bias")
FILTER = ("filter.layers.0.weight", "filter.layers.1.weight")
CLASSIFIER = ("classifier.weight", "classifier.bias")


@pytest.mark.parametrize("orthonormalize", [True, False])
def test_gradient_paths(orthonormalize):
    head = _head(orthonormalize=orthonormalize)
    head.noise_edge.fill_(0.05)  # an edge inside the spectrum, so bulk has a gradient
    head.noise_age.fill_(0)
    features = _features(requires_grad=True)
    out = head(features, (24, 32))
    task = _grads(head, out.logits.square().sum(), features)
    fit = _grads(head, out.losses["neuralef"], features)
    rayleigh = _grads(head, out.losses["rayleigh"], features)
    bulk = _grads(head, out.losses["bulk"], features)
    # NeuralEF moves psi and nothing else: not the graph, not the backbone, not the filter
    assert all(fit[p] > 0 for p in PSI)
    assert all(v == 0.0 for k, v in fit.items() if k not in PSI)
    # the task moves the graph (through the Rayleigh quotients), never psi
    assert all(task[p] > 0 for p in GRAPH_PARAMETERS + FILTER + CLASSIFIER + ("features",))
    assert all(task[p] == 0.0 for p in PSI)
    # the extra terms see the graph, lambda and U as constants
    for term in (rayleigh, bulk):
        assert all(term[p] == 0.0 for p in GRAPH_PARAMETERS + PSI)
    assert all(rayleigh[p] > 0 for p in CLASSIFIER + FILTER + ("features",))
    assert all(bulk[p] > 0 for p in FILTER)
    assert all(v == 0.0 for k, v in bulk.items() if not k.startswith("filter."))


def test_task_gradient_on_the_graph_is_the_eigenvalue_derivative():
    """The graph's task gradient is that of ``h(u^T L u)`` with ``U`` fixed: compare with the
    same head's filter applied to Rayleigh quotients computed densely by hand."""
    head = _head()
    features = _features()
    out = head(features, (24, 32))
    U = out.internals["eigenvectors"]  # sorted; the Rayleigh quotients do not care
    f_low = F.avg_pool2d(features, 4)
    dense = normalized_laplacian(head.affinity(F.normalize(head.embed(f_low), dim=1))).to_dense()
    lam = torch.einsum("bnk,bnm,bmk->bk", U, dense, U)
    head.zero_grad()
    head.filter(lam).sum().backward()
    expected = head.affinity.log_sigma.grad.clone()
    for quotients in (lambda W: rayleigh_quotients(normalized_laplacian(W), U),
                      lambda W: normalized_rayleigh_quotients(W, U)):  # the head's  # fmt: skip
        head.zero_grad()
        W = head.affinity(F.normalize(head.embed(f_low), dim=1))
        head.filter(quotients(W)).sum().backward()
        assert torch.allclose(head.affinity.log_sigma.grad, expected, rtol=1e-10)


def _flip_psi_outputs(head, columns):
    with torch.no_grad():
        last = head.psi[-1]
        last.weight[columns] *= -1
        last.bias[columns] *= -1


@pytest.mark.parametrize("orthonormalize", [True, False])
def test_logits_invariant_to_eigenfunction_signs(orthonormalize):
    head = _head(orthonormalize=orthonormalize).eval()
    head.noise_age.fill_(0)
    features = _features()
    before = head(features, (24, 32)).logits
    _flip_psi_outputs(head, [0, 3])
    after = head(features, (24, 32)).logits
    assert torch.allclose(before, after, atol=1e-12)


def test_logits_invariant_to_eigenfunction_order_without_qr_only():
    """Without QR, ``U diag(h) U^T`` is a sum over columns: any order gives the same logits. The
    QR of a permuted ``psi`` spans other nested subspaces, so with QR the logits change."""
    features = _features()
    changes = {}
    for orthonormalize in (False, True):
        head = _head(orthonormalize=orthonormalize).eval()
        head.noise_age.fill_(0)
        before = head(features, (24, 32)).logits.detach()
        with torch.no_grad():
            order = torch.tensor([2, 0, 4, 1, 3])
            head.psi[-1].weight.copy_(head.psi[-1].weight[order])
            head.psi[-1].bias.copy_(head.psi[-1].bias[order])
        after = head(features, (24, 32)).logits.detach()
        changes[orthonormalize] = float((after - before).abs().max())
    assert changes[False] < 1e-12
    assert changes[True] > 1e-6


def test_no_eigensolve_in_eval_forward(monkeypatch):
    head = _head().eval()
    head(_features(), (24, 32))  # estimates the noise edge once (no cache yet)

    def refuse(*args, **kwargs):
        raise AssertionError("an eigensolve ran in the NeuralEF head's eval forward")

    monkeypatch.setattr(neuralef_module, "noise_floor", refuse)  # the only eigsh caller
    out = head(_features(), (24, 32))
    assert torch.isfinite(out.logits).all()


def test_k_larger_than_the_graph_is_an_error_naming_k():
    head = _head(k=5, stride=8)  # 24 x 32 features -> 3 x 4 = 12 nodes: fine
    head(_features(), (24, 32))
    with pytest.raises(ValueError, match=r"k = 13 .* 12 nodes"):
        _head(k=13, stride=8)(_features(), (24, 32))


def test_nan_features_are_an_error_naming_the_tensor():
    features = _features()
    features[1, 3, 5, 7] = float("nan")
    with pytest.raises(ValueError, match="features contain NaN"):
        _head()(features, (24, 32))


def test_settings_share_the_spectral_graph_keys_and_validate_their_own():
    assert "eps" not in SHARED_KEYS and "solver" not in SHARED_KEYS
    assert {"stride", "k", "filter", "noise", "neighbourhood"} <= set(SHARED_KEYS)
    cfg = NeuralEFHeadConfig.from_mapping({"k": 8, "beta": 0.5, "hidden": 32})
    assert (cfg.k, cfg.beta, cfg.hidden, cfg.orthonormalize) == (8, 0.5, 32, True)
    with pytest.raises(ValueError, match=r"neuralef.head: unknown key\(s\) \['solver'\]"):
        NeuralEFHeadConfig.from_mapping({"solver": {}})
    with pytest.raises(ValueError, match=r"neuralef.head.rank: must be <= graph_channels"):
        NeuralEFHeadConfig.from_mapping({"rank": 9, "graph_channels": 4})
    with pytest.raises(ValueError, match=r"neuralef.head.beta"):
        NeuralEFHeadConfig.from_mapping({"beta": -1.0})
    with pytest.raises(ValueError, match=r"neuralef.head.hidden"):
        NeuralEFHeadConfig.from_mapping({"hidden": 0})
    with pytest.raises(ValueError, match=r"neuralef.head.orthonormalize"):
        NeuralEFHeadConfig.from_mapping({"orthonormalize": "yes"})


def test_params_reader_takes_shared_spectral_keys_then_its_own(repo_root):
    from cheeger.config import ParamsError, head_options, load_params

    params = load_params(repo_root / "params.yaml")
    params["spectral"] = {
        **params.get("spectral", {}),
        "head": {**params.get("spectral", {}).get("head", {}), "k": 12, "stride": 4, "eps": 1e-3},
    }
    params["neuralef"] = {"head": {"beta": 0.25, "hidden": 32}}
    options = head_options(params, "neuralef")
    picked = (options["k"], options["stride"], options["beta"], options["hidden"])
    assert picked == (12, 4, 0.25, 32)
    assert "eps" not in options  # an eigensolver key of the spectral head, not shared
    params["neuralef"] = {"head": {"k": 6}}  # its own section wins over spectral.head
    assert head_options(params, "neuralef")["k"] == 6
    params["neuralef"] = {"head": {"solver": {}}}
    with pytest.raises(ParamsError, match=r"neuralef.head: unknown key"):
        head_options(params, "neuralef")


def test_kernels_are_n_times_identity_minus_l_sym_per_image():
    head = _head()
    f_low = F.avg_pool2d(_features(), 4)
    W = head.affinity(F.normalize(head.embed(f_low), dim=1))
    W = torch.sparse_coo_tensor(W.indices(), W.values().detach(), W.shape).coalesce()
    dense_W = W.to_dense()
    dense_W[1, 5, :] = dense_W[1, :, 5] = 0.0  # an isolated node: eigenvalue 0 of L_sym, mu = 1
    L = normalized_laplacian(dense_W.to_sparse())
    kernels = neuralef_module._kernels(L)
    eye = torch.eye(48, dtype=torch.float64)
    for b, kernel in enumerate(kernels):
        assert kernel.shape == (48, 48) and kernel.is_coalesced()
        assert torch.allclose(kernel.to_dense(), 48 * (eye - L.to_dense()[b]), atol=1e-12)
    assert float(kernels[1].to_dense()[5, 5]) == 48.0


@pytest.mark.parametrize("neighbourhood", ["knn", "dense"])
def test_other_neighbourhoods_run(neighbourhood):
    out = _head(neighbourhood=neighbourhood, knn=5)(_features(), (24, 32))
    assert out.logits.shape == (2, 3, 24, 32)
    assert all(torch.isfinite(v) for v in out.losses.values())


def test_losses_are_skipped_at_inference_only(monkeypatch):
    """eval + no_grad: no loss term is computed (neuralef_loss never runs), the logits are those
    of eval mode with autograd on; training mode, or autograd on, returns all three terms."""
    head = _head().eval()
    features = _features()
    with_grad = head(features, (24, 32))
    assert sorted(with_grad.losses) == ["bulk", "neuralef", "rayleigh"]

    def refuse(*args, **kwargs):
        raise AssertionError("the NeuralEF loss ran at inference")

    monkeypatch.setattr(neuralef_module, "neuralef_loss", refuse)
    with torch.no_grad():
        out = head(features, (24, 32))
    assert out.losses == {}
    assert torch.equal(out.logits, with_grad.logits.detach())
    assert out.internals.keys() == with_grad.internals.keys()
    with torch.no_grad(), pytest.raises(AssertionError, match="ran at inference"):
        head.train()(features, (24, 32))
