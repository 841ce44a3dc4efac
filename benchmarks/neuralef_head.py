"""The NeuralEF head (cheeger/heads/neuralef.py): its basis, and its cost beside the other heads.

``--basis``: is ``psi / sqrt(n)`` orthonormal enough to use as is, or does the head need its QR?
On CamVid frames (the cached EfficientNet-Lite0 taps of ``results/camvid_lite0/features``:
the stride-4 tap and the stride-8 tap upsampled, 24 + 40 = 64 channels at 90 x 120, as a
stand-in for the FPN decoder's map), the head's graph at stride 2 (45 x 60, the camvid_lite0
profile's) is held fixed and ``psi`` is trained with the NeuralEF loss alone (Adam, lr 1e-2,
``--steps``) on ``--frames`` frames. Reported after a third of the steps and at the end, on
the training frames, and at the end on as many held-out frames (same graph parameters, the
frames' own graphs): ``||U0^T U0 - I||_F`` of ``U0 = psi / sqrt(n)``, the principal
angles of span(psi) to eigsh's bottom-k eigenvectors (the same for both bases: QR keeps the
span), the Rayleigh quotients of each basis against eigsh's eigenvalues, and how far the filtered
signal ``U diag(h) U^T x`` is between the two bases.

``--track``: the head alone trained on ``8 --frames`` CamVid training frames as in the study (CE
and the head's terms, AdamW at the study's lr 3e-3), with the fidelity of psi to eigsh on the
moving graph printed along the way.

``--timing``: forward time (eval mode, ``torch.no_grad``) of the NeuralEF head against the
spectral head on the same features (batch 8, 64 channels, 90 x 120 map, stride 2: a 45 x 60 graph,
k = 16), and an inference step of the whole camvid_lite0-shaped model (``build_model``: Lite0 +
FPN, frozen encoder, random weights: the cost does not depend on them)
with each head against the conv head. Median of ``--repeats`` after one warm-up call; CPU time
(``time.process_time``, one thread) beside wall time, ratios from the CPU time.

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
TAPS = REPO / "results" / "camvid_lite0" / "features"


def _frames(count: int, split: str = "test") -> torch.Tensor:
    """``(count, 64, 90, 120)`` float32 stand-in decoder features from cached Lite0 taps."""
    maps = []
    for path in sorted((TAPS / split).glob("*_f0.pt"))[:count]:
        taps = torch.load(path)
        t0 = taps[0].float()  # (24, 90, 120)
        t1 = F.interpolate(taps[1].float()[None], size=t0.shape[-2:], mode="bilinear")[0]
        maps.append(torch.cat([t0, t1]))
    if len(maps) < count:
        raise SystemExit(f"need {count} cached frames in {TAPS / split}, found {len(maps)}")
    return torch.stack(maps)


def _report(head, features: torch.Tensor, k: int, label: str) -> None:
    """Print, per frame, the basis diagnostics of the module docstring."""
    frames = features.shape[0]
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
                f"{label} frame {b}: ||U0^T U0 - I||_F {float((gram - eye).norm()):.3f}",
                f"max |offdiag| {float((gram - eye).abs().max()):.3f}",
                f"angles to eigsh median {np.median(angles):.3f} max {angles.max():.3f} rad",
                f"sorted lambda err raw {float((lam_raw - ref).abs().max()):.2e}",
                f"qr {float((lam_qr - ref).abs().max()):.2e}",
                f"(eigsh lambda_2 {float(ref[1]):.2e}, lambda_k {float(ref[-1]):.2e})",
            ]
            print(", ".join(row))
            heat = torch.exp(-10 * lam_qr.float())[None]  # (1, k)
            for name, response in (("flat h=1/2", torch.full((1, k), 0.5)), ("heat t=10", heat)):
                y_qr = spectral_filtering(qr[b : b + 1], response, x[b : b + 1])
                y_raw = spectral_filtering(raw[b : b + 1], response, x[b : b + 1])
                rel = float((y_raw - y_qr).norm() / y_qr.norm())
                print(f"    filtered signal, {name}: ||y_raw - y_qr|| / ||y_qr|| = {rel:.3f}")


def basis(steps: int, frames: int, k: int, positional: int) -> None:
    torch.manual_seed(0)
    features = _frames(2 * frames)
    train, held_out = features[:frames], features[frames:]
    head = build_head("neuralef", 64, 11, stride=2, k=k, positional=positional).eval()
    head.noise_age.fill_(0)  # the noise edge plays no part here
    opt = torch.optim.Adam(head.psi.parameters(), lr=1e-2)
    start = time.perf_counter()
    for step in range(steps + 1):
        if step in (steps // 3, steps):
            _report(head, train, k, f"step {step}, trained on")
        if step == steps:
            break
        out = head(train, (90, 120))
        opt.zero_grad()
        out.losses["neuralef"].backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step}: neuralef loss {float(out.losses['neuralef'].detach()):.4f}")
    print(f"{steps} steps in {time.perf_counter() - start:.1f} s (with the reports)")
    _report(head, held_out, k, "held out")


def track(steps: int, frames: int, k: int, psi_lr: float) -> None:
    """The head alone trained as in the study (AdamW, lr 3e-3, CE + neuralef + 0.1 rayleigh +
    0.01 bulk; psi at ``psi_lr``) on ``frames`` training frames, batches of 4: does psi keep up
    with a moving graph?
    Every ``steps // 6`` steps: the median principal angle of span(psi) to eigsh's bottom k on
    the current graph (ill-conditioned when the bottom eigenvalues cluster: then the mean
    Rayleigh quotient of the basis against eigsh's mean eigenvalue says more), and the CE."""
    import numpy as np

    torch.manual_seed(0)
    features = _frames(frames, "train")
    labels = np.load(REPO / "results" / "camvid_lite0" / "prepared" / "train" / "labels.npy",
                     mmap_mode="r")  # fmt: skip
    target = torch.from_numpy(np.ascontiguousarray(labels[:frames, ::4, ::4])).long()  # 90 x 120
    head = build_head("neuralef", 64, 11, stride=2, k=k)
    psi = list(head.psi.parameters())
    rest = [p for name, p in head.named_parameters() if not name.startswith("psi.")]
    opt = torch.optim.AdamW([{"params": rest}, {"params": psi, "lr": psi_lr}], lr=3e-3,
                            weight_decay=1e-4)  # fmt: skip
    weights = {"neuralef": 1.0, "rayleigh": 0.1, "bulk": 0.01}
    start = time.perf_counter()
    for step in range(steps + 1):
        batch = torch.randperm(frames)[:4]
        out = head(features[batch], (90, 120))
        ce = F.cross_entropy(out.logits, target[batch], ignore_index=255)
        if step % max(1, steps // 6) == 0:
            with torch.no_grad():
                f_low = F.avg_pool2d(features[batch], 2, ceil_mode=True)
                L = normalized_laplacian(head.affinity(F.normalize(head.embed(f_low), dim=1)))
                lam_ref, U_ref = eigsh(L.double(), k)  # (b, k), (b, n, k)
                U = out.internals["eigenvectors"].double()
                angles = [np.median(scipy.linalg.subspace_angles(U[b].numpy(), U_ref[b].numpy()))
                          for b in range(U.shape[0])]  # fmt: skip
            print(f"step {step}: CE {float(ce.detach()):.3f}, neuralef "
                  f"{float(out.losses['neuralef'].detach()):.3f}, median angle to eigsh "
                  f"{np.median(angles):.3f} rad, mean lambda psi "
                  f"{float(out.internals['eigenvalues'].mean()):.2e} eigsh "
                  f"{float(lam_ref.mean()):.2e} (eigsh lambda_k "
                  f"{float(lam_ref[:, -1].mean()):.2e}), "
                  f"sigma {float(head.affinity.sigma.detach()):.3f}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
        if step == steps:
            break
        total = ce + sum(weights[name] * term for name, term in out.losses.items())
        opt.zero_grad()
        total.backward()
        opt.step()


def _median_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU (``time.process_time``: this process, one thread) seconds of ``fn``.

    On a shared, loaded machine the wall time of a one-thread job counts the waits for a core;
    its CPU time does not, so the ratios are read from the CPU column.
    """
    fn()  # warm-up: allocations, the head's one noise-edge estimate
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def timing(repeats: int, k: int) -> None:
    from cheeger.config import head_options, load_params
    from cheeger.models import build_model

    params = load_params(REPO / "params.yaml")
    spectral = {**head_options(params, "spectral", "camvid_lite0"), "k": k}
    # the spectral head in eval mode: with params' noise_eval (per_image: the null model's
    # eigensolves on every call) and with the cached edge (eigsh only: the logits are the same)
    variants = {
        "conv": ("conv", {}),
        f"spectral ({spectral['noise_eval']} noise edge)": ("spectral", spectral),
        "spectral (cached noise edge)": ("spectral", {**spectral, "noise_eval": "cached"}),
        "neuralef": ("neuralef", {**head_options(params, "neuralef", "camvid_lite0"), "k": k}),
    }
    torch.manual_seed(0)
    features = torch.randn(8, 64, 90, 120)
    head_times = {}
    for label, (name, options) in variants.items():
        if name != "conv":
            head = build_head(name, 64, 11, **options).eval()
            with torch.no_grad():
                head_times[label] = _median_time(lambda h=head: h(features, (360, 480)), repeats)
    print(f"head forward (eval, no_grad), batch 8, 64 x 90 x 120 features, stride "
          f"{spectral['stride']}, k = {k}:")  # fmt: skip
    for label, (wall, cpu) in head_times.items():
        ratio = cpu / head_times["neuralef"][1]
        print(f"    {label}: CPU {cpu * 1e3:.0f} ms ({ratio:.2f} x neuralef), "
              f"wall {wall * 1e3:.0f} ms")  # fmt: skip
    images = torch.randn(8, 3, 360, 480)
    steps = {}
    for label, (name, options) in variants.items():
        model = build_model("efficientnet_lite0", 11, decoder_width=64, freeze_encoder=True,
                            weights=None, head=name, head_options=options).eval()  # fmt: skip
        with torch.no_grad():
            steps[label] = _median_time(lambda m=model: m(images), repeats)
    print("model inference step (eval, no_grad), batch 8 at 360 x 480, Lite0 + FPN:")
    for label, (wall, cpu) in steps.items():
        ratio = cpu / steps["conv"][1]
        print(f"    {label}: CPU {cpu * 1e3:.0f} ms ({ratio:.3f} x conv), wall {wall * 1e3:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--basis", action="store_true")
    parser.add_argument("--positional", type=int, default=8)
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--track", action="store_true")
    parser.add_argument("--psi-lr", type=float, default=3e-3)
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
    if args.track:
        track(args.steps, 8 * args.frames, args.k, args.psi_lr)


if __name__ == "__main__":
    main()
