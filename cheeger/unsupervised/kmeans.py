r"""k-means (Lloyd) with k-means++ seeding, in torch (scikit-learn is not a dependency).

.. math::

    \min_{c_1..c_K} \sum_i \min_k \lVert x_i - c_k \rVert^2

k-means++ (Arthur & Vassilvitskii 2007): the first centre uniform, each next one drawn with
probability proportional to the squared distance to the nearest centre chosen so far. Lloyd
iterations then alternate assignment and mean until no label changes or ``iters`` is reached; an
empty cluster is re-seeded with the point farthest from its centre among clusters that keep
another member (so, given at least ``K`` points, all ``K`` clusters stay non-empty).
Distances are formed on chunks of rows, ``O(chunk K)`` memory.
"""

from __future__ import annotations

import torch

__all__ = ["kmeans", "nearest_centroid"]


def _sq_dist(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """``(N, K)`` squared Euclidean distances, chunked over rows."""
    c2 = centroids.square().sum(-1)  # (K,)
    out = []
    for start in range(0, x.shape[0], chunk):
        xs = x[start : start + chunk]
        # ||x||^2 - 2 x.c + ||c||^2, clamped: rounding can make it slightly negative
        d = xs.square().sum(-1, keepdim=True) - 2 * xs @ centroids.T + c2  # (c, K)
        out.append(d.clamp_min(0))
    return torch.cat(out)


def nearest_centroid(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Label of the nearest centroid of each row: ``(N,)`` int64 for ``x`` ``(N, d)``."""
    return _sq_dist(x, centroids).argmin(-1)


def _reseed_empty(dist: torch.Tensor, labels: torch.Tensor, k: int):
    """Move worst-served points into empty clusters, never a cluster's last member.

    Args:
        dist: ``(N, k)`` squared distances to the centres.
        labels: ``(N,)`` nearest centre of each point (modified in place).

    Returns:
        ``(labels, counts)``, ``counts`` ``(k,)``; every cluster non-empty when ``N >= k``.
    """
    counts = torch.bincount(labels, minlength=k)  # (k,)
    served = dist.gather(1, labels[:, None])[:, 0].clone()  # (N,)
    while bool((counts == 0).any()) and bool((counts[labels] > 1).any()):
        # taking a singleton's only point would empty that cluster in turn
        empty = int(torch.nonzero(counts == 0)[0])
        far = int(served.masked_fill(counts[labels] <= 1, -1.0).argmax())
        counts[labels[far]] -= 1
        labels[far] = empty
        counts[empty] += 1
        served[far] = -1.0  # not picked twice
    return labels, counts


def kmeans(
    x: torch.Tensor, k: int, iters: int = 50, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster the rows of ``x`` into ``k`` groups.

    Args:
        x: ``(N, d)`` float points, ``N >= k``.
        k: clusters.
        iters: maximum Lloyd iterations.
        seed: seed of the k-means++ draws (same seed, same result).

    Returns:
        ``(centroids (k, d), labels (N,) int64)``.

    Raises:
        ValueError: ``x`` not 2-D, NaN in ``x``, or ``k`` not in ``[1, N]``.

    Example:
        >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
        >>> centroids, labels = kmeans(x, 2)
        >>> sorted(centroids.squeeze(1).tolist()), labels[0] == labels[1] != labels[2]
        ([0.05000000074505806, 5.050000190734863], tensor(True))
    """
    if x.dim() != 2:
        raise ValueError(f"kmeans: x must be (N, d), got {tuple(x.shape)}")
    if not isinstance(k, int) or not 1 <= k <= x.shape[0]:
        raise ValueError(f"kmeans: K = {k!r} must be an int in [1, N = {x.shape[0]}]")
    if not torch.isfinite(x).all():
        raise ValueError("kmeans: x has NaN or infinite entries")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=gen))
    centroids = [x[first]]
    nearest = _sq_dist(x, x[first : first + 1])[:, 0]  # (N,)
    for _ in range(1, k):
        weights = nearest.double().cpu()
        total = float(weights.sum())
        if total > 0:
            pick = int(torch.multinomial(weights / total, 1, generator=gen))
        else:  # all points coincide with chosen centres: any unchosen index
            pick = int(torch.randint(n, (1,), generator=gen))
        centroids.append(x[pick])
        nearest = torch.minimum(nearest, _sq_dist(x, x[pick : pick + 1])[:, 0])
    cent = torch.stack(centroids)  # (k, d)
    labels = torch.full((n,), -1, dtype=torch.long, device=x.device)
    for _ in range(iters):
        dist = _sq_dist(x, cent)  # (N, k)
        new = dist.argmin(-1)
        new, counts = _reseed_empty(dist, new, k)
        if torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(cent).index_add(0, labels, x)  # (k, d)
        cent = sums / counts.clamp_min(1)[:, None].to(x.dtype)
    return cent, labels
