"""The spectral head: shapes, loss terms, basis invariance, gradients, parity, settings."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import cheeger.heads.spectral as spectral_module
from cheeger.config import ParamsError, head_options, load_params
from cheeger.heads import SpectralHead, SpectralHeadConfig, build_head, spectral_filtering
from cheeger.heads.spectral import SOLVER_FIELDS, solver_summary
from cheeger.models import UNet


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _head(random_filter: bool = True, **options):
    """A small head; ``random_filter`` replaces the filter's zero-initialised last layer.

    At initialisation ``h = 1/2`` for every eigenvalue and the filter's first layer gets exactly
    zero gradient (the last layer's weights are 0): a flat response makes every rotation of the
    eigenvectors harmless and hides a cut gradient path, so the property tests use a random one.
    """
    torch.manual_seed(0)
    defaults = dict(stride=4, k=6, graph_channels=6, rank=3)
    head = SpectralHead(8, 3, **{**defaults, **options})
    if random_filter:
        with torch.no_grad():
            for layer in head.filter.layers:
                layer.weight.normal_(0.0, 1.0)
                layer.bias.normal_(0.0, 1.0)
    return head


GRAPH_PARAMETERS = ("embed.weight", "embed.bias", "affinity.projection", "affinity.log_sigma")


def test_output_contract():
    head = _head()
    out = head(torch.rand(2, 8, 24, 32), (48, 64))
    assert out.logits.shape == (2, 3, 48, 64)
    assert sorted(out.losses) == ["bulk", "rayleigh"]
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.losses.values())
    assert out.internals["eigenvalues"].shape == (2, 6)
    assert out.internals["eigenvectors"].shape == (2, 6 * 8, 6)
    assert out.internals["graph_size"].tolist() == [6, 8]
    assert out.internals["noise_edge"].shape == (2,)
    lam = out.internals["eigenvalues"]
    assert (lam[:, 1:] >= lam[:, :-1] - 1e-6).all() and (lam > -1e-5).all() and (lam < 2).all()


def test_graph_side_runs_on_pooled_features_and_matches_pooling_the_maps():
    # a 1x1 convolution commutes with average pooling, also over the partial windows of
    # ceil_mode (a 26x30 map at stride 4): the head may pool the features once
    head = _head().double()
    f = torch.rand(2, 8, 26, 30, dtype=torch.float64)
    pool = lambda t: torch.nn.functional.avg_pool2d(t, 4, ceil_mode=True)  # noqa: E731
    torch.testing.assert_close(head.classifier(pool(f)), pool(head.classifier(f)), rtol=0,
                               atol=1e-12)  # fmt: skip
    L, g_low = head.graph(f)
    assert g_low.shape == (2, 6, 7, 8) and L.shape == (2, 56, 56)
    torch.testing.assert_close(g_low.norm(dim=1), torch.ones(2, 7, 8, dtype=torch.float64))
    expected = torch.nn.functional.normalize(head.embed(pool(f)), dim=1)
    torch.testing.assert_close(g_low, expected, rtol=0, atol=1e-12)


def test_filtering_is_basis_invariant():
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(1, 30, 5, generator=g, dtype=torch.float64))
    x = torch.randn(1, 30, 4, generator=g, dtype=torch.float64)
    h = torch.tensor([[1.0, 0.7, 0.7, 0.2, 0.1]], dtype=torch.float64)  # pair (1, 2) degenerate
    c, s = torch.cos(torch.tensor(0.9)), torch.sin(torch.tensor(0.9))
    R = torch.eye(5, dtype=torch.float64)
    R[1:3, 1:3] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    flips = torch.diag(torch.tensor([-1.0, 1, -1, -1, 1], dtype=torch.float64))
    ref = spectral_filtering(U, h, x)
    assert torch.allclose(spectral_filtering(U @ R @ flips, h, x), ref, atol=1e-12)
    # and it is not vacuous: rotating a NON-degenerate pair changes the result
    R2 = torch.eye(5, dtype=torch.float64)
    R2[2:4, 2:4] = R[1:3, 1:3]
    assert not torch.allclose(spectral_filtering(U @ R2, h, x), ref, atol=1e-6)


def _transformed_logits(monkeypatch, head, feats, pair):
    """Logits (``lambda_2 := lambda_1`` forced): plain, and with ``pair`` rotated, signs flipped."""
    real_eigsh = spectral_module.eigsh
    calls = {}

    def patched(L, k, eps=None, **kw):
        lam, U, info = real_eigsh(L, k, eps, **kw)
        lam = lam.clone()
        lam[..., 2] = lam[..., 1]  # a degenerate pair (1, 2): rotating it is legitimate
        T = torch.eye(k, dtype=U.dtype)
        if calls.get("transform"):
            c, s = 0.6, 0.8
            i, j = pair
            T[[i, i, j, j], [i, j, i, j]] = torch.tensor([c, -s, s, c], dtype=U.dtype)
            T = T @ torch.diag(torch.tensor([-1.0] + [1.0] * (k - 2) + [-1.0], dtype=U.dtype))
        return lam, U @ T, info

    monkeypatch.setattr(spectral_module, "eigsh", patched)
    plain = head(feats, (24, 32)).logits
    calls["transform"] = True
    return plain, head(feats, (24, 32)).logits


def test_head_logits_unchanged_under_sign_flip_and_degenerate_rotation(monkeypatch):
    head = _head().double()
    feats = torch.rand(1, 8, 24, 32, dtype=torch.float64)
    plain, turned = _transformed_logits(monkeypatch, head, feats, (1, 2))
    assert torch.allclose(plain, turned, atol=1e-10)
    # not vacuous: the random filter separates the eigenvalues, so rotating a NON-degenerate pair
    # (a broken head) changes the logits far above the tolerance (with the flat initial filter,
    # h = 1/2 everywhere, it changed them by 2e-16)
    plain, broken = _transformed_logits(monkeypatch, head, feats, (2, 3))
    assert (plain - broken).abs().max() > 1e-4


def test_noise_edge_is_cached_in_training_and_per_image_in_eval(monkeypatch):
    head = _head(noise_every=3).train()
    feats = torch.rand(2, 8, 24, 32)
    feats[1] = feats[1] ** 4  # another embedding statistic: another edge
    calls = []
    real = spectral_module.noise_floor
    monkeypatch.setattr(spectral_module, "noise_floor",
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))  # fmt: skip
    edges = [head(feats, (24, 32)).internals["noise_edge"] for _ in range(7)]
    assert len(calls) == 3  # steps 1, 4, 7
    assert all(e.shape == (2,) and torch.isfinite(e).all() for e in edges)
    assert torch.equal(edges[0], edges[0].mean().expand(2))  # training: the batch mean
    assert "noise_edge" in head.state_dict() and int(head.state_dict()["noise_age"]) == 0
    cached = head.noise_edge.clone()
    head.eval()
    per_image = head(feats, (24, 32)).internals["noise_edge"]
    assert len(calls) == 4  # evaluation estimates its own edge ...
    assert per_image[0] != per_image[1]  # ... per image
    single = head(feats[1:], (24, 32)).internals["noise_edge"]
    # the image's own statistic (other null draws in another batch: equal up to sampling)
    torch.testing.assert_close(single, per_image[1:], rtol=1e-2, atol=0)
    assert torch.equal(head.noise_edge, cached) and int(head.noise_age) == 0  # cache untouched
    head.cfg.noise_eval = "cached"  # the old behaviour: the training cache, no estimate
    estimates = len(calls)
    assert torch.equal(head(feats, (24, 32)).internals["noise_edge"], cached.expand(2))
    assert len(calls) == estimates


def test_solver_internals_report_the_forward_solve(monkeypatch):
    head = _head(stride=2, solver={"dense_max_n": 64, "method": "lanczos"})
    out = head(torch.rand(2, 8, 24, 32), (24, 32))
    values = dict(zip(SOLVER_FIELDS, out.internals["solver"].tolist(), strict=True))
    assert out.internals["solver_method"] == "lanczos"
    assert values["matvecs"] > 0 and values["fallback"] == 0 and values["converged"] == 1.0
    assert values["certified"] in (1.0,) or math.isnan(values["certified"])
    # the fields follow the info they came from (a fallback, half the batch unconverged, no
    # certificate: an info of the solver before the certificate existed)
    info = SimpleNamespace(restarts=3, matvecs=120, method="lanczos->dense",
                           converged=torch.tensor([True, False]))  # fmt: skip
    got = dict(zip(SOLVER_FIELDS, solver_summary(info, torch.zeros(1)).tolist(), strict=True))
    assert [got[f] for f in SOLVER_FIELDS[:4]] == [3.0, 120.0, 1.0, 0.5]
    assert math.isnan(got["certified"])
    info.certified = torch.tensor([True, False, False, False])
    assert solver_summary(info, torch.zeros(1))[4].item() == 0.25


def test_gradients_reach_every_parameter_and_are_finite():
    head = _head()
    feats = torch.rand(2, 8, 24, 32, requires_grad=True)
    out = head(feats, (24, 32))
    (out.logits.square().mean() + out.losses["rayleigh"] + out.losses["bulk"]).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name  # reached: every entry zero means a cut path
    assert torch.isfinite(feats.grad).all()


def _gradients(term: torch.Tensor, head: SpectralHead) -> dict[str, torch.Tensor]:
    names, params = zip(*head.named_parameters(), strict=True)
    grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
    return {n: torch.zeros_like(p) if g is None else g for n, p, g in zip(names, params, grads,
                                                                         strict=True)}  # fmt: skip


def test_gradient_paths_only_the_cross_entropy_moves_the_graph():
    # the decision of the module docstring ("Gradient paths"): bulk and Rayleigh see the graph as
    # a constant; the logits (hence the cross-entropy) move it
    head = _head().double()
    feats = torch.rand(2, 8, 24, 32, dtype=torch.float64, requires_grad=True)
    out = head(feats, (24, 32))
    target = torch.randint(0, 3, (2, 24, 32))
    ce = torch.nn.functional.cross_entropy(out.logits, target)
    grads = {name: _gradients(term, head) for name, term in
             [("ce", ce), ("rayleigh", out.losses["rayleigh"]), ("bulk", out.losses["bulk"])]}
    assert out.losses["bulk"] > 0 and out.losses["rayleigh"] > 0  # both terms are live here
    for name in GRAPH_PARAMETERS:
        assert grads["ce"][name].abs().sum() > 0, name
        assert grads["rayleigh"][name].abs().max() == 0, name
        assert grads["bulk"][name].abs().max() == 0, name
    # what each term may move, it does move
    filter_names = [n for n, _ in head.named_parameters() if n.startswith("filter.")]
    for name in filter_names:
        assert grads["bulk"][name].abs().sum() > 0, name
        assert grads["rayleigh"][name].abs().sum() > 0, name
    assert grads["rayleigh"]["classifier.weight"].abs().sum() > 0
    assert grads["bulk"]["classifier.weight"].abs().max() == 0


@pytest.mark.parametrize("neighbourhood", ["grid", "knn"])
def test_lanczos_path_and_neighbourhoods(neighbourhood):
    # a graph larger than the dense threshold goes through Lanczos; both neighbourhoods train
    head = _head(neighbourhood=neighbourhood, stride=2, solver={"dense_max_n": 64})
    feats = torch.rand(1, 8, 24, 32, requires_grad=True)
    out = head(feats, (24, 32))
    out.logits.mean().backward()
    assert torch.isfinite(feats.grad).all()


def test_whole_models_within_five_percent():
    conv = UNet(11, width=8, depth=3, head="conv")
    spec = UNet(11, width=8, depth=3, head="spectral", head_options={"k": 8})
    n_conv = sum(p.numel() for p in conv.parameters())
    n_spec = sum(p.numel() for p in spec.parameters())
    assert abs(n_spec - n_conv) / n_conv < 0.05
    assert n_spec > n_conv  # the graph embedding, metric and filter are extra


def test_registry_and_settings(tmp_path):
    assert isinstance(build_head("spectral", 8, 3, k=4), SpectralHead)
    options = head_options(load_params("params.yaml"), "spectral")
    assert SpectralHeadConfig.from_mapping(options) == SpectralHeadConfig(**options)
    with pytest.raises(ValueError, match=r"spectral.head: unknown key\(s\) \['strid'\]"):
        SpectralHeadConfig.from_mapping({"strid": 4})
    with pytest.raises(ValueError, match=r"spectral.head.k: expected a positive int"):
        SpectralHeadConfig.from_mapping({"k": 0})
    with pytest.raises(ValueError, match=r"spectral.head.noise_eval: expected per_image or"):
        SpectralHeadConfig.from_mapping({"noise_eval": "fresh"})
    with pytest.raises(ValueError, match=r"spectral.head.solver_strict: expected true or false"):
        SpectralHeadConfig.from_mapping({"solver_strict": "yes"})
    with pytest.raises(ValueError, match=r"spectral.head.noise: .*unknown option.*'samples'"):
        SpectralHeadConfig.from_mapping({"noise": {"samples": 4}})
    with pytest.raises(ValueError, match=r"spectral.head.noise: .*bound must be"):
        SpectralHeadConfig.from_mapping({"noise": {"bound": "minmax"}})
    bad = tmp_path / "params.yaml"
    bad.write_text(
        load_params_text().replace("    rank: 8 ", "    rank: 99"), encoding="utf-8"
    )
    with pytest.raises(ParamsError, match=r"spectral\.head\.rank"):
        head_options(load_params(bad), "spectral")


def load_params_text():
    from pathlib import Path

    return Path("params.yaml").read_text(encoding="utf-8")


# --- the study's controls and the graph diagnostics ----------------------------------------------


def test_zero_filter_control_is_the_classifier_alone_without_an_eigensolve(monkeypatch):
    head = _head(random_filter=False, filter="zero")
    monkeypatch.setattr(spectral_module, "eigsh", lambda *a, **k: pytest.fail("eigsh ran"))
    features = torch.randn(2, 8, 16, 16)
    out = head(features, (16, 16))
    torch.testing.assert_close(out.logits, head.classifier(features))  # h = 0: y = 0
    assert float(out.losses["bulk"].detach()) == 0.0 and float(out.losses["rayleigh"].detach()) > 0
    assert "eigenvalues" not in out.internals
    d = dict(zip(spectral_module.DIAGNOSTICS, out.internals["diagnostics"][0].tolist(),
                     strict=True))
    assert d["y_ratio"] == 0.0 and math.isnan(d["lambda2"])
    (out.logits.square().sum() + out.losses["rayleigh"]).backward()
    for name in ("embed.weight", "affinity.projection"):  # no path to the graph is left
        grad = dict(head.named_parameters())[name].grad
        assert grad is None or float(grad.abs().max()) == 0.0, name


def test_uniform_affinity_control_is_the_plain_grid():
    head = _head(affinity="uniform")
    features = torch.randn(2, 8, 16, 16, dtype=torch.float64)
    head = head.double()
    out = head(features, (16, 16))
    d = dict(zip(spectral_module.DIAGNOSTICS, out.internals["diagnostics"][1].tolist(),
                     strict=True))
    assert d["affinity_cv"] == 0.0 and d["exponent_mean"] == 0.0
    torch.testing.assert_close(out.internals["eigenvalues"][1],
                               head.plain_grid_eigenvalues(4, 4, features))  # fmt: skip
    assert d["lambda_ratio"] == pytest.approx(1.0, abs=1e-9)
    out.logits.square().sum().backward()
    grad = head.embed.weight.grad
    assert grad is None or float(grad.abs().max()) == 0.0  # the embedding shapes nothing
    with pytest.raises(ValueError, match="affinity: uniform needs a fixed neighbourhood"):
        SpectralHeadConfig.from_mapping({"affinity": "uniform", "neighbourhood": "knn"})
    with pytest.raises(ValueError, match=r"spectral.head.affinity: expected learned or uniform"):
        SpectralHeadConfig.from_mapping({"affinity": "flat"})


@pytest.mark.parametrize("neighbourhood", ["grid", "dense"])
def test_diagnostics_match_a_dense_oracle(neighbourhood):
    head = _head(neighbourhood=neighbourhood).double()
    with torch.no_grad():  # a spread-out affinity, so the statistics are not trivial
        head.affinity.projection.mul_(3.0)
    features = torch.randn(2, 8, 16, 16, dtype=torch.float64)
    out = head(features, (16, 16))
    f_low = torch.nn.functional.avg_pool2d(features, 4, ceil_mode=True)
    g = torch.nn.functional.normalize(head.embed(f_low), dim=1)
    W = head.affinity(g)
    W = (W.to_dense() if W.is_sparse else W).detach()  # (B, n, n) oracle only: n = 16
    x_low = head.classifier(f_low).flatten(2).mT.detach()  # (B, n, K)
    lam, U = out.internals["eigenvalues"], out.internals["eigenvectors"]
    y = U @ (out.internals["filter"][..., None] * (U.mT @ x_low))
    grid = torch.linalg.eigvalsh(torch.eye(16, dtype=torch.float64) - _sym_norm(
        (W[0] > 0).double()))[: lam.shape[-1]]  # fmt: skip
    for b in range(2):
        edges = W[b][W[b] > 0]  # stored edges (off-diagonal, positive)
        expected = {
            "affinity_cv": float(edges.std(unbiased=False) / edges.mean()),
            "exponent_mean": float((-edges.log()).mean()),
            "y_ratio": float(y[b].norm() / x_low[b].norm()),
            "lambda2": float(lam[b, 1]), "lambda2_grid": float(grid[1]),
            "lambda_ratio": float((lam[b, 1:] / grid[1:]).mean()),
        }  # fmt: skip
        found = dict(zip(spectral_module.DIAGNOSTICS, out.internals["diagnostics"][b].tolist(),
                     strict=True))
        assert found == pytest.approx(expected, rel=1e-6)


def _sym_norm(A: torch.Tensor) -> torch.Tensor:
    d = A.sum(-1).rsqrt()
    return d[:, None] * A * d[None, :]
