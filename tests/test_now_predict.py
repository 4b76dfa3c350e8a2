"""NoW predictions from an image-to-shape function: crops frame the face on its box, and predicting each
subject's true shape through the whole path (crop, export, evaluate) scores like the ground truth while the
zero shape scores like the mean face."""

import numpy as np
import pytest
import torch

from facecourse.flame import FLAME
from facecourse.now.baselines import baseline_flame_path
from facecourse.now.evaluate import evaluate_now
from facecourse.now.layout import read_image_list
from facecourse.now.predict import crop_now_image, predict_now_split
from facecourse.now.synthetic import synthetic_meta, synthetic_now_dir


@pytest.fixture(scope="module")
def now_dir():
    return synthetic_now_dir()


def test_the_crop_frames_the_face_as_the_training_crops_do(now_dir):
    """The same framing: the head covers the same share of a NoW crop as of the paired data's centre crops, and
    its centre sits at the crop's centre."""
    from facecourse.datasets.paired_synthetic import synthetic_paired_dataset

    def coverage(crop):
        return (crop.sum(0) > 0.15).float()

    images = read_image_list(now_dir, "val")
    now = torch.stack([coverage(crop_now_image(now_dir, im, 64)) for im in images])
    val = synthetic_paired_dataset("ci", "val")
    paired = torch.stack([coverage(val[i].image) for i in range(len(val))])
    assert now.mean() == pytest.approx(float(paired.mean()), abs=0.1)
    assert now.shape[1:] == (64, 64) and now[:, 24:40, 24:40].mean() > 0.95, "the face fills the centre"
    cols = now.mean(1).mean(0)  # coverage per column, averaged over images
    assert abs(float((cols * torch.arange(64)).sum() / cols.sum()) - 31.5) < 3


def test_the_true_shape_through_the_whole_path_scores_like_the_ground_truth(now_dir, tmp_path):
    meta = synthetic_meta(now_dir)
    images = read_image_list(now_dir, "val")[::4]
    flame = FLAME.from_file(baseline_flame_path(now_dir), n_shape=meta["n_shape"], n_exp=0)
    truth = torch.tensor([meta["subjects"][im.subject]["shape"] for im in images], dtype=torch.float32)
    calls = iter(range(len(images)))

    def oracle(crops):  # the shape of the subject shown, in list order
        rows = [next(calls) for _ in range(len(crops))]
        return truth[rows]

    predict_now_split(oracle, now_dir, images, tmp_path / "truth", flame, 32, batch_size=3)
    exact = evaluate_now(now_dir, tmp_path / "truth", images=images, progress=False).stats()["all"]
    predict_now_split(lambda crops: torch.zeros(len(crops), 5), now_dir, images, tmp_path / "mean", flame, 32)
    mean = evaluate_now(now_dir, tmp_path / "mean", images=images, progress=False).stats()["all"]
    assert exact["n_images"] == mean["n_images"] == len(images)
    assert exact["median"] < 0.5 * mean["median"], (exact, mean)
