"""Dataset-level IoU and accuracies against numpy, torchmetrics and the Cityscapes tool."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from torchmetrics.classification import MulticlassJaccardIndex

from cheeger.metrics import (
    SemanticConfusion,
    confusion_matrix,
    iou_from_counts,
    mean_iou,
    scores_from_confusion,
)

SIZES = [(17, 23), (32, 20), (9, 41), (25, 25)]


def numpy_scores(preds, targets, num_classes, ignore_index):
    """Oracle: a float64 numpy confusion matrix and the textbook formulas."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(preds, targets, strict=True):
        p, t = p.numpy().ravel(), t.numpy().ravel()
        keep = t != ignore_index if ignore_index is not None else np.ones_like(t, dtype=bool)
        np.add.at(cm, (t[keep], p[keep]), 1)
    tp = np.diag(cm).astype(np.float64)
    gt, pr = cm.sum(1), cm.sum(0)
    union = gt + pr - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        recall = np.where(gt > 0, tp / gt, np.nan)
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        iou[ignore_index] = np.nan
    return {
        "confmat": cm,
        "iou": iou,
        "miou": np.nanmean(iou),
        "pixel_accuracy": tp.sum() / cm.sum(),
        "class_accuracy": np.nanmean(recall),
    }


@pytest.mark.parametrize(("num_classes", "ignore_index"), [(11, 11), (7, 255), (6, None), (8, 3)])
def test_matches_numpy_confusion_matrix(make_split, num_classes, ignore_index) -> None:
    preds, targets = make_split(
        0, SIZES, num_classes, ignore_index, absent=[1], predicted_only=[num_classes - 2]
    )
    expected = numpy_scores(preds, targets, num_classes, ignore_index)
    metric = SemanticConfusion(num_classes, ignore_index)
    for p, t in zip(preds, targets, strict=True):
        metric.update(p, t)
    got = metric.compute()
    np.testing.assert_array_equal(metric.confmat.numpy(), expected["confmat"])
    for key in ("iou", "miou", "pixel_accuracy", "class_accuracy"):
        np.testing.assert_allclose(got[key].numpy(), expected[key], rtol=1e-12, err_msg=key)
    # The split was built so that these conventions are exercised:
    assert torch.isnan(got["iou"][1])  # absent from both: NaN, out of the mean
    assert got["iou"][num_classes - 2] == 0  # predicted, never present: 0, in the mean
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        assert torch.isnan(got["iou"][ignore_index])


def test_function_and_metric_share_one_path(make_split) -> None:
    preds, targets = make_split(1, SIZES, 5, 255)
    per_class, miou = mean_iou(preds, targets, 5, 255)
    metric = SemanticConfusion(5, 255)
    for p, t in zip(preds, targets, strict=True):
        metric.update(p, t)
    torch.testing.assert_close(per_class, metric.compute()["iou"], equal_nan=True, rtol=0, atol=0)
    assert miou == metric.compute()["miou"]


@pytest.mark.parametrize(("num_classes", "ignore_index"), [(11, 11), (7, 255), (8, 3)])
def test_matches_torchmetrics_jaccard(make_split, num_classes, ignore_index) -> None:
    preds, targets = make_split(2, SIZES, num_classes, ignore_index, absent=[0])
    macro = MulticlassJaccardIndex(num_classes, average="macro", ignore_index=ignore_index)
    none = MulticlassJaccardIndex(num_classes, average="none", ignore_index=ignore_index)
    for p, t in zip(preds, targets, strict=True):
        macro.update(p[None], t[None])
        none.update(p[None], t[None])
    per_class, miou = mean_iou(preds, targets, num_classes, ignore_index)
    torch.testing.assert_close(miou, macro.compute().double(), rtol=1e-6, atol=0)
    defined = ~torch.isnan(per_class)
    torch.testing.assert_close(
        per_class[defined], none.compute().double()[defined], rtol=1e-6, atol=0
    )


def test_hand_computed_example() -> None:
    # 3 classes, void 255. Pixels (gt -> pred): 0->0, 0->1, 1->1, 1->1, 255->2 (dropped).
    preds = [torch.tensor([[0, 1, 1], [1, 2, 2]])]
    targets = [torch.tensor([[0, 0, 1], [1, 255, 255]])]
    scores = SemanticConfusion(3, 255)
    scores.update(preds[0], targets[0])
    out = scores.compute()
    assert out["iou"][0] == 0.5  # tp 1, fn 1, fp 0
    assert torch.isclose(out["iou"][1], torch.tensor(2 / 3, dtype=torch.float64))
    assert torch.isnan(out["iou"][2])  # predicted only at void pixels: dropped, so absent
    assert torch.isclose(out["miou"], torch.tensor(7 / 12, dtype=torch.float64))
    assert out["pixel_accuracy"] == 0.75
    assert out["class_accuracy"] == 0.75  # recalls 1/2 and 1


def test_empty_and_degenerate_matrices() -> None:
    out = scores_from_confusion(torch.zeros(3, 3, dtype=torch.long))
    assert all(torch.isnan(v).all() for v in out.values())
    per_class, mean = iou_from_counts(torch.tensor([0, 0]), torch.tensor([0, 0]))
    assert torch.isnan(per_class).all() and torch.isnan(mean)
    with pytest.raises(ValueError, match="square"):
        scores_from_confusion(torch.zeros(2, 3))


def test_batched_update_equals_per_image(make_split) -> None:
    preds, targets = make_split(3, [(16, 16)] * 4, 6, 255)
    batched = SemanticConfusion(6, 255)
    batched.update(torch.stack(preds), torch.stack(targets))
    per_image = confusion_matrix(preds[0], targets[0], 6, 255)
    for p, t in zip(preds[1:], targets[1:], strict=True):
        per_image += confusion_matrix(p, t, 6, 255)
    assert torch.equal(batched.confmat, per_image)
    batched.reset()
    assert batched.confmat.sum() == 0


def test_deterministic_mode_gives_same_counts(make_split) -> None:
    # torchmetrics' own bincount changes algorithm under deterministic mode; ours must not care.
    preds, targets = make_split(4, SIZES, 5, 255)
    reference = mean_iou(preds, targets, 5, 255)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        deterministic = mean_iou(preds, targets, 5, 255)
    finally:
        torch.use_deterministic_algorithms(previous)
    torch.testing.assert_close(reference, deterministic, equal_nan=True, rtol=0, atol=0)


def test_matches_official_cityscapes_evaluation(make_split, tmp_path) -> None:
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
    from cityscapesscripts.helpers.labels import trainId2label

    num_classes = 19
    # Class 16 absent everywhere (NaN in both), 17 predicted only (IoU 0, kept in the mean).
    preds, targets = make_split(
        5, [(40, 64), (32, 48), (24, 40)], num_classes, 255, absent=[16], predicted_only=[17]
    )
    to_label_id = np.zeros(256, dtype=np.uint8)
    for train_id in range(num_classes):
        to_label_id[train_id] = trainId2label[train_id].id
    to_label_id[255] = 0  # void -> labelId 0 "unlabeled", which the tool ignores
    pred_files, gt_files = [], []
    for i, (p, t) in enumerate(zip(preds, targets, strict=True)):
        for maps, files, kind in ((p, pred_files, "pred"), (t, gt_files, "gt")):
            path = tmp_path / f"{i}_{kind}_labelIds.png"
            Image.fromarray(to_label_id[maps.numpy()]).save(path)
            files.append(str(path))
    args = copy.copy(official.args)
    args.evalInstLevelScore = False  # needs np.in1d, removed in numpy 2.4
    args.evalPixelAccuracy = False  # buggy in the tool; pixel accuracy is checked against numpy
    args.JSONOutput = False
    args.quiet = True
    result = official.evaluateImgLists(pred_files, gt_files, args)

    per_class, miou = mean_iou(preds, targets, num_classes, 255)
    expected = np.array([result["classScores"][trainId2label[c].name] for c in range(num_classes)])
    np.testing.assert_allclose(per_class.numpy(), expected, rtol=1e-12)
    assert np.isnan(expected[16]) and expected[17] == 0
    np.testing.assert_allclose(miou.item(), result["averageScoreClasses"], rtol=1e-12)


label_maps = st.integers(1, 9).flatmap(
    lambda h: st.integers(1, 9).flatmap(
        lambda w: st.lists(
            hnp.arrays(np.int64, (h, w), elements=st.sampled_from([0, 1, 2, 3, 255])),
            min_size=1,
            max_size=4,
        )
    )
)


@settings(max_examples=60, deadline=None)
@given(label_maps, st.randoms(use_true_random=False))
def test_properties(targets_np, rnd) -> None:
    targets = [torch.from_numpy(t) for t in targets_np]
    # A perfect prediction (anything at void pixels) scores 1 on every class present in GT.
    preds = [t.masked_fill(t == 255, rnd.randrange(4)) for t in targets]
    per_class, miou = mean_iou(preds, targets, 4, 255)
    present = torch.zeros(4, dtype=torch.bool)
    for t in targets:
        present[t[t != 255].unique()] = True
    assert torch.equal(~torch.isnan(per_class), present)
    assert (per_class[present] == 1).all()
    assert miou == 1 or (not present.any() and torch.isnan(miou))

    # Any prediction: IoU in [0, 1]; the split's order does not matter.
    noisy = [
        torch.from_numpy(np.asarray(rnd.choices(range(4), k=t.numel()))).view(t.shape)
        for t in targets
    ]
    per_class, miou = mean_iou(noisy, targets, 4, 255)
    defined = per_class[~torch.isnan(per_class)]
    assert ((defined >= 0) & (defined <= 1)).all()
    order = list(range(len(targets)))
    rnd.shuffle(order)
    shuffled = mean_iou([noisy[i] for i in order], [targets[i] for i in order], 4, 255)
    torch.testing.assert_close((per_class, miou), shuffled, equal_nan=True, rtol=0, atol=0)
