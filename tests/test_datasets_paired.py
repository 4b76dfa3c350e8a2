"""Paired data: the synthetic shards (determinism, round trip, staleness, atomic builds), the crops (landmarks,
mask and camera follow the pixels), the N x K subject sampler and the collate."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from facecourse.datasets import paired_synthetic as ps
from facecourse.datasets.paired import (
    CropScaleJitter, CropWindow, PairedFaceDataset, PairedRecord, SampleKey, SubjectBatchSampler, collate_paired,
    crop_image, crop_points,
)
from facecourse.render.head import FaceParams

TINY = ps.PairedSyntheticSpec("small", train_subjects=5, val_subjects=2, images_per_subject=3, image_size=48,
                              crop_size=40, subjects_per_shard=3)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny synthetic paired set (2 train shards, 1 val shard)."""
    return ps.build_paired_synthetic(tmp_path_factory.mktemp("paired") / "tiny", TINY, progress=False)


@pytest.fixture(scope="module")
def train_set(built):
    return PairedFaceDataset(ps.ShardSource(built, "train"), 40, CropScaleJitter(), seed=0)


# ------------------------------------------------------------------------------------------- the shards


def test_shards_round_trip_and_rebuild_to_the_same_bytes(built, renderer):
    meta = ps.read_meta(built)
    assert meta["splits"]["train"]["shards"] == ["train-00000", "train-00001"]
    again = ps.render_shard(TINY, renderer, "train", 1, 3, 2)
    for name, array in again.items():
        stored = np.load(built / "train-00001" / f"{name}.npy")
        assert stored.dtype == array.dtype and stored.tobytes() == array.tobytes(), name
    assert again["images"].dtype == np.uint8 and again["mask"].shape == (6, 48, 6)  # 48 px packed into 6 bytes
    other = ps.render_shard(ps.PairedSyntheticSpec(**{**TINY.__dict__, "seed": 1}), renderer, "train", 1, 3, 2)
    assert not np.array_equal(other["images"], again["images"])
    assert not np.allclose(other["shape"], again["shape"])


def test_validation_identities_are_held_out(built):
    train, val = ps.ShardSource(built, "train"), ps.ShardSource(built, "val")
    assert len(train) == 15 and len(val) == 6 and val.subject_names == ["val-00000", "val-00001"]
    shapes_train = np.unique(np.concatenate([np.load(built / s / "shape.npy") for s in train.shards]), axis=0)
    shapes_val = np.unique(np.load(built / "val-00000" / "shape.npy"), axis=0)
    assert len(shapes_train) == 5 and len(shapes_val) == 2
    assert np.abs(shapes_train[:, None] - shapes_val[None]).max(-1).min() > 0.1


def test_neutral_mesh_is_flame_of_the_shape_alone(built, renderer):
    source = ps.ShardSource(built, "train")
    for index in (0, 7, 14):
        record = source.record(index)
        neutral = renderer.geometry(FaceParams(shape=record.params.shape)).vertices[0]
        torch.testing.assert_close(torch.from_numpy(source.neutral[record.subject]), neutral, atol=1e-6, rtol=0)
        assert source.subjects[index] == index // 3


def test_stored_landmarks_and_mask_match_the_rendered_mesh(built, renderer):
    source = ps.ShardSource(built, "train")
    for index in range(len(source)):
        record = source.record(index)
        projected = renderer.camera_landmarks(record.params)[0]
        stored = torch.from_numpy(np.load(built / source.shards[index // 9] / "landmarks.npy")[index % 9])
        torch.testing.assert_close(stored, projected, atol=1e-5, rtol=0)
        assert record.mask.shape == (48, 48) and 0.05 < record.mask.mean() < 0.6


def test_occluded_landmarks_are_invisible():
    before = torch.zeros(1, 3, 8, 8)
    after = before.clone()
    after[0, :, 0:4, 0:4] = 0.5
    covered = ps.occlusion_mask(before, after)
    points = torch.tensor([[[-0.8, -0.8], [0.8, 0.8], [1.5, 0.0]]])  # covered, free, outside the image
    assert ps.pixel_lookup(covered, points).tolist() == [[True, False, False]]


# -------------------------------------------------------------------------------------------- the crops


def test_crops_follow_the_pixels_landmarks_and_camera(train_set, renderer):
    for key in (SampleKey(0, 11), SampleKey(8, 12), SampleKey(13, 13)):
        sample = train_set[key]
        assert sample.image.shape == (3, 40, 40) and sample.mask.shape == (1, 40, 40)
        head = renderer(sample.params, 40)
        # the cropped camera projects the ground-truth mesh's landmarks exactly where the crop put them
        torch.testing.assert_close(head.landmarks[0, :, :2], sample.landmarks, atol=1e-4, rtol=0)
        # and re-renders the face region where the crop shows it (resampling blurs the edges a little)
        inside = (sample.mask[0] > 0) & (head.skin_mask[0, 0] > 0)
        assert inside.float().mean() > 0.05
        assert (sample.image - head.render.image[0]).abs().mean(0)[inside].median() < 0.06
        agreement = ((sample.mask[0] > 0) == (head.skin_mask[0, 0] > 0)).float().mean()
        assert agreement > 0.9


class DotSource:
    """A source of one noise image with bright dots at 68 pixel landmarks (to follow them through crops)."""

    def __init__(self, size=64, seed=0):
        rng = np.random.default_rng(seed)
        self.landmarks = rng.uniform(20, size - 20, (68, 2)).round()
        image = (rng.uniform(0, 0.2, (size, size, 3)) * 255).astype(np.uint8)
        for x, y in self.landmarks.astype(int):
            image[y - 1:y + 2, x - 1:x + 2] = 255
        self.image, self.subjects, self.subject_names = image, np.zeros(1, np.int64), ["dots"]
        self.neutral = np.zeros((1, 4, 3), np.float32)

    def __len__(self):
        return 1

    def record(self, index):
        return PairedRecord(self.image, self.landmarks, np.ones(68, np.float32), None,
                            FaceParams(shape=torch.zeros(1, 2)), 0)


def test_jittered_landmarks_land_on_the_same_image_content():
    data = PairedFaceDataset(DotSource(), 96, CropScaleJitter((1.2, 1.6), 0.1))
    windows = set()
    for draw in range(5):
        sample = data[SampleKey(0, draw)]
        record = data.source.record(0)
        windows.add(data.window(record, draw))
        px = ((sample.landmarks + 1) * 96 / 2 - 0.5).round().long()  # pixel centres, render.camera
        inside = sample.visibility > 0
        values = sample.image[:, px[inside, 1], px[inside, 0]].min(0).values
        assert inside.sum() > 50 and values.min() > 0.9, draw
        assert sample.mask is None and sample.params.camera is None
    assert len(windows) == 5  # each draw a different crop


def test_crop_of_the_whole_image_is_the_identity():
    image = torch.rand(3, 16, 16)
    window = CropWindow(7.5, 7.5, 8.0)  # centre between pixels 7 and 8, half-side 8: the image itself
    torch.testing.assert_close(crop_image(image, window, 16), image, atol=1e-6, rtol=0)
    corners = torch.tensor([[0.0, 0.0], [15.0, 15.0]])
    torch.testing.assert_close(crop_points(corners, window), torch.tensor([[-15 / 16] * 2, [15 / 16] * 2]))


def test_int_keys_crop_the_same_way_every_time(train_set):
    a, b = train_set[4], train_set[4]
    assert torch.equal(a.image, b.image) and torch.equal(a.params.camera, b.params.camera)
    assert not torch.equal(train_set[SampleKey(4, 99)].image, a.image)


def test_jitter_and_sizes_are_checked():
    with pytest.raises(ValueError, match="scale low <= high"):
        CropScaleJitter((1.8, 1.4))
    with pytest.raises(ValueError, match="shift"):
        CropScaleJitter(shift=float("nan"))
    with pytest.raises(ValueError, match="image_size"):
        PairedFaceDataset(DotSource(), 4)


# -------------------------------------------------------------------------------------------- the sampler


SUBJECTS = np.repeat(np.arange(10), [3, 2, 5, 1, 4, 2, 2, 3, 6, 2])


def test_sampler_gives_k_images_of_n_distinct_subjects():
    sampler = SubjectBatchSampler(SUBJECTS, n_subjects=3, k=2, seed=0)
    assert sampler.excluded == {3: 1} and len(sampler) == 3  # 9 subjects with >= 2 images -> 3 batches of 3
    seen = []
    for batch in sampler:
        subjects = SUBJECTS[[key.index for key in batch]]
        assert len(batch) == 6 and len({key.index for key in batch}) == 6
        assert (subjects[0::2] == subjects[1::2]).all() and len(set(subjects[0::2])) == 3
        seen += subjects[0::2].tolist()
    assert len(set(seen)) == 9  # every usable subject once per epoch


def test_sampler_is_a_function_of_seed_and_epoch_and_resumes():
    sampler = SubjectBatchSampler(SUBJECTS, n_subjects=3, k=2, seed=5)
    epoch0 = list(sampler)
    assert list(SubjectBatchSampler(SUBJECTS, n_subjects=3, k=2, seed=5)) == epoch0
    assert list(SubjectBatchSampler(SUBJECTS, n_subjects=3, k=2, seed=6)) != epoch0
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0
    sampler.set_epoch(1, start=1)
    sampler.advance(1)
    state = sampler.state_dict()
    resumed = SubjectBatchSampler(SUBJECTS, n_subjects=3, k=2, seed=5)
    resumed.load_state_dict(state)
    assert list(resumed) == epoch1[2:] and len(resumed) == 1
    with pytest.raises(ValueError, match="seed=5"):
        SubjectBatchSampler(SUBJECTS, n_subjects=3, k=2, seed=7).load_state_dict(state)


def test_sampler_ranks_share_the_global_batches():
    one = SubjectBatchSampler(SUBJECTS, n_subjects=4, k=2, seed=3)
    ranks = [SubjectBatchSampler(SUBJECTS, n_subjects=2, k=2, seed=3, rank=r, world_size=2) for r in (0, 1)]
    assert [a + b for a, b in zip(*map(list, ranks))] == list(one)
    with pytest.raises(ValueError, match="not enough for one batch"):
        SubjectBatchSampler(SUBJECTS, n_subjects=10, k=2)
    with pytest.raises(ValueError, match="1-D integer"):
        SubjectBatchSampler(SUBJECTS.astype(float), n_subjects=2, k=2)


def test_loader_with_workers_gives_the_same_batches(train_set):
    def batches(workers):
        sampler = SubjectBatchSampler(train_set.subjects, n_subjects=2, k=2, seed=1)
        loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate_paired, num_workers=workers)
        return list(loader)

    plain, workers = batches(0), batches(2)
    assert len(plain) == 2
    for a, b in zip(plain, workers):
        assert torch.equal(a.images, b.images) and torch.equal(a.params.camera, b.params.camera)
    batch = plain[0]
    assert batch.images.shape == (4, 3, 40, 40) and batch.landmarks.shape == (4, 68, 2)
    assert batch.mask.shape == (4, 1, 40, 40) and batch.neutral.shape == (4, 1756, 3)
    assert batch.params.shape.shape == (4, 20) and batch.params.lighting.shape == (4, 9, 3)
    assert (batch.subject[0::2] == batch.subject[1::2]).all() and batch.subject[0] != batch.subject[2]
    assert batch.to("cpu").images is not None


def test_collate_refuses_mixed_masks(train_set):
    with_mask = train_set[0]
    without = type(with_mask)(**{**with_mask.__dict__, "mask": None})
    with pytest.raises(ValueError, match="some samples have a mask"):
        collate_paired([with_mask, without])


# ------------------------------------------------------------------------------------- cache management


def test_staleness_follows_version_spec_and_model(built, tmp_path, monkeypatch):
    assert ps.is_current(built, TINY)
    assert not ps.is_current(built, ps.PairedSyntheticSpec(**{**TINY.__dict__, "seed": 3}))
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    meta = json.loads((copy / ps.META_FILE).read_text())
    (copy / ps.META_FILE).write_text(json.dumps({**meta, "version": meta["version"] - 1}))
    assert not ps.is_current(copy, TINY)
    model = tmp_path / "model" / "generic_model.pkl"
    model.parent.mkdir()
    model.write_bytes(open(meta["flame_model"], "rb").read() + b"changed")
    monkeypatch.setattr(ps, "default_model_path", lambda size: model)
    assert not ps.is_current(built, TINY)


def test_a_failing_build_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(*args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("renderer died")
        return real(*args)

    real = ps.render_shard
    monkeypatch.setattr(ps, "render_shard", failing)
    with pytest.raises(RuntimeError, match="renderer died"):
        ps.paired_synthetic_dir(TINY, root=tmp_path, progress=False)
    assert list((tmp_path / "synthetic" / "paired").iterdir()) == []


def test_train_or_build_returns_a_current_set(tmp_path, monkeypatch):
    small = ps.PairedSyntheticSpec("small", 2, 1, 2, 32, 32, subjects_per_shard=2, seed=4)
    folder = ps.paired_synthetic_dir(small, root=tmp_path, progress=False)
    assert folder == tmp_path / "synthetic" / "paired" / "custom-4" and ps.is_current(folder, small)
    monkeypatch.setattr(ps, "build_paired_synthetic", lambda *a, **k: pytest.fail("rebuilt a current set"))
    val = ps.synthetic_paired_dataset(small, "val", root=tmp_path)
    assert val.jitter is None and len(val) == 2 and val.image_size == 32
    with pytest.raises(ValueError, match="split must be one of"):
        ps.synthetic_paired_dataset(small, "test", root=tmp_path)
    with pytest.raises(ValueError, match="paired synthetic size"):
        ps.resolve_spec("huge")
    with pytest.raises(FileNotFoundError, match="not a finished paired synthetic set"):
        ps.ShardSource(tmp_path)
