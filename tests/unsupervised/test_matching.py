"""Cluster-to-class matching against brute force over permutations (Hungarian) and by hand."""

from __future__ import annotations

import itertools

import pytest
import torch

from cheeger.unsupervised.matching import cluster_confusion, cluster_to_class


@pytest.mark.parametrize("seed", range(5))
def test_hungarian_is_the_best_permutation(seed):
    gen = torch.Generator().manual_seed(seed)
    confusion = torch.randint(0, 50, (5, 5), generator=gen)
    mapping = cluster_to_class(confusion, "hungarian")
    best = max(sum(int(confusion[p[j], j]) for j in range(5))
               for p in itertools.permutations(range(5)))  # fmt: skip
    assert sorted(mapping.tolist()) == list(range(5))
    assert sum(int(confusion[mapping[j], j]) for j in range(5)) == best


def test_majority_vote_allows_shared_classes():
    confusion = torch.tensor([[9, 8, 0, 1], [0, 1, 7, 0], [1, 0, 0, 5]])
    assert cluster_to_class(confusion, "majority").tolist() == [0, 0, 1, 2]


def test_hungarian_needs_square():
    with pytest.raises(ValueError, match="K = 4, C = 3"):
        cluster_to_class(torch.zeros(3, 4, dtype=torch.long), "hungarian")


def test_confusion_drops_void_and_checks_ids():
    clusters = torch.tensor([[0, 2, 1], [1, 1, 0]])
    targets = torch.tensor([[1, 0, 255], [0, 0, 1]])
    n = cluster_confusion(clusters, targets, 3, 2, 255)
    assert n.tolist() == [[0, 2, 1], [2, 0, 0]]
    with pytest.raises(ValueError, match="cluster ids"):
        cluster_confusion(clusters + 5, targets, 3, 2, 255)
