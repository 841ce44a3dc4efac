"""The NeuralEF head (cheeger/heads/neuralef.py): its basis, and its cost beside the other heads.

``--basis``: is ``psi / sqrt(n)`` orthonormal enough to use as is, or does the head need its QR?
On CamVid frames (the cached EfficientNet-Lite0 taps of ``results/camvid_lite0/features``:
the stride-4 tap and the stride-8 tap upsampled, 24 + 40 = 64 channels at 90 x 120, as a
stand-in for the FPN decoder's map), the head's graph at stride 2 (45 x 60, the camvid_lite0
profile's) is held fixed and ``psi`` is trained with the NeuralEF loss alone (Adam, lr 1e-2,
``--steps``). Reported at the end: ``||U0^T U0 - I||_F`` of ``U0 = psi / sqrt(n)``, the principal
angles of span(psi) to eigsh's bottom-k eigenvectors (the same for both bases: QR keeps the
span), the Rayleigh quotients of each basis against eigsh's eigenvalues, and how far the filtered
signal ``U diag(h) U^T x`` is between the two bases.

``--timing``: forward time (eval mode, ``torch.no_grad``) of the NeuralEF head against the
spectral head on the same features (batch 8, 64 channels, 90 x 120 map, stride 2: a 45 x 60 graph,
k = 16), and an inference step of the whole camvid_lite0-shaped model (``build_model``: Lite0 +
FPN, frozen encoder, random weights unless the pretrained file is present: the cost is the same)
with each head against the conv head. Median of ``--repeats`` after one warm-up call.

Usage::

    nice -n 10 .venv/bin/python benchmarks/neuralef_head.py --basis --threads 1
    nice -n 10 .venv/bin/python benchmarks/neuralef_head.py --timing --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from cheeger.graph import normalized_laplacian
from cheeger.heads import build_head, spectral_filtering
from cheeger.heads.neuralef import rayleigh_quotients
from cheeger.linalg import eigsh

REPO = Path(__file__).resolve().parents[1]
TAPS = REPO / "results" / "camvid_lite0" / "features" / "test"


def _frames(count: int) -> torch.Tensor:
    """``(count, 64, 90, 120)`` float32 stand-in decoder features from cached Lite0 taps."""
    maps = []
    for path in sorted(TAPS.glob("*_f0.pt"))[:count]:
        taps = torch.load(path)
        t0 = taps[0].float()  # (24, 90, 120)
        t1 = F.interpolate(taps[1].float()[None], size=t0.shape[-2:], mode="bilinear")[0]
        maps.append(torch.cat([t0, t1]))
    if len(maps) < count:
        raise SystemExit(f"need {count} cached frames in {TAPS}, found {len(maps)}")
    return torch.stack(maps)


def basis(steps: int, frames: int, k: int, positional: int) -> None:
    torch.manual_seed(0)
    features = _frames(frames)
    head = build_head("neuralef", 64, 11, stride=2, k=k, positional=positional).eval()
    head.noise_age.fill_(0)  # the noise edge plays no part here
    opt = torch.optim.Adam(head.psi.parameters(), lr=1e-2)
    start = time.perf_counter()
    for step in range(steps):
        out = head(features, (90, 120))
        opt.zero_grad()
        out.losses["neuralef"].backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step}: neuralef loss {float(out.losses['neuralef'].detach()):.4f}")
    print(f"{steps} steps in {time.perf_counter() - start:.1f} s")
    with torch.no_grad():
        f_low = F.avg_pool2d(features, 2, ceil_mode=True)
        L = normalized_laplacian(head.affinity(F.normalize(head.embed(f_low), dim=1)))
        psi = head.eigenfunctions(f_low)  # (B, n, k)
        n = psi.shape[1]
        raw = psi / n**0.5
        qr = torch.linalg.qr(psi).Q
        lam_ref, U_ref = eigsh(L.double(), k)  # (B, k), (B, n, k)
        eye = torch.eye(k)
        x = torch.randn(frames, n, 11)
        for b in range(frames):
            gram = raw[b].mT @ raw[b]
            angles = scipy.linalg.subspace_angles(raw[b].double().numpy(), U_ref[b].numpy())
            lam_raw = rayleigh_quotients(L, raw)[b].sort().values.double()
            lam_qr = rayleigh_quotients(L, qr)[b].sort().values.double()
            ref = lam_ref[b]
            row = [
                f"frame {b}: ||U0^T U0 - I||_F {float((gram - eye).norm()):.3f}",
                f"max |offdiag| {float((gram - eye).abs().max()):.3f}",
                f"angles to eigsh median {np.median(angles):.3f} max {angles.max():.3f} rad",
                f"lambda err raw {float((lam_raw - ref).abs().max()):.2e}",
                f"qr {float((lam_qr - ref).abs().max()):.2e}",
                f"(lambda_k eigsh {float(ref[-1]):.3e})",
            ]
            print(", ".join(row))
            heat = torch.exp(-10 * lam_qr.float())[None]  # (1, k)
            for name, response in (("flat h=1/2", torch.full((1, k), 0.5)), ("heat t=10", heat)):
                y_qr = spectral_filtering(qr[b : b + 1], response, x[b : b + 1])
                y_raw = spectral_filtering(raw[b : b + 1], response, x[b : b + 1])
                rel = float((y_raw - y_qr).norm() / y_qr.norm())
                print(f"    filtered signal, {name}: ||y_raw - y_qr|| / ||y_qr|| = {rel:.3f}")


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up: allocations, the head's one noise-edge estimate
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timing(repeats: int, k: int) -> None:
    from cheeger.config import head_options, load_params
    from cheeger.models import build_model

    torch.manual_seed(0)
    features = torch.randn(8, 64, 90, 120)
    heads = {
        name: build_head(name, 64, 11, stride=2, k=k).eval() for name in ("spectral", "neuralef")
    }
    with torch.no_grad():
        t = {name: _median_time(lambda h=h: h(features, (360, 480)), repeats)
             for name, h in heads.items()}  # fmt: skip
    print(f"head forward, batch 8, 64 x 90 x 120 features, 45 x 60 graph, k = {k}: "
          + ", ".join(f"{name} {s * 1e3:.0f} ms" for name, s in t.items())
          + f"; neuralef / spectral = {t['neuralef'] / t['spectral']:.3f}")  # fmt: skip
    params = load_params(REPO / "params.yaml")
    images = torch.randn(8, 3, 360, 480)
    steps = {}
    for name in ("conv", "spectral", "neuralef"):
        options = head_options(params, name, "camvid_lite0")
        if name != "conv":
            options = {**options, "k": k}
        model = build_model("efficientnet_lite0", 11, decoder_width=64, freeze_encoder=True,
                            weights=None, head=name, head_options=options).eval()  # fmt: skip
        with torch.no_grad():
            steps[name] = _median_time(lambda m=model: m(images), repeats)
    print("model inference step, batch 8 at 360 x 480 (Lite0 + FPN, frozen encoder): "
          + ", ".join(f"{name} {s * 1e3:.0f} ms" for name, s in steps.items())
          + f"; neuralef / conv = {steps['neuralef'] / steps['conv']:.3f}, "
          f"spectral / conv = {steps['spectral'] / steps['conv']:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--basis", action="store_true")
    parser.add_argument("--positional", type=int, default=8)
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.basis:
        basis(args.steps, args.frames, args.k, args.positional)
    if args.timing:
        timing(args.repeats, args.k)


if __name__ == "__main__":
    main()
