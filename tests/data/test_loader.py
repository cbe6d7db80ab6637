import pytest
import torch

from cnnkit.config.schema import AugmentConfig
from cnnkit.data import InMemoryLoader
from cnnkit.data.augment import BatchAugment
from cnnkit.data.loader import epoch_permutation
from cnnkit.data.preprocess import normalize, to_unit


def _data(n=50, c=1, hw=8):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, c, hw, hw), dtype=torch.uint8, generator=g)
    # Label = a function of the image, so we can check that every label travels with its image.
    labels = images.flatten(1).long().sum(1) % 7
    return images, labels


AUG = BatchAugment(AugmentConfig(crop_padding=2, hflip=True, rotate=10.0, cutout=3), fill=[0.5])


def _train(images, labels, **kw):
    kw = {"batch_size": 8, "shuffle": True, "augment": AUG, "mean": [0.5], "std": [0.25], "seed": 11} | kw
    return InMemoryLoader(images, labels, **kw)


def test_epoch_is_a_seeded_permutation():
    images, labels = _data()
    loader = _train(images, labels, augment=None)
    assert len(loader) == 7 and loader.num_samples == 50
    ys = [torch.cat([y for _, y in loader.epoch_batches(e)]) for e in (0, 0, 1)]
    assert torch.equal(ys[0], ys[1]) and not torch.equal(ys[0], ys[2])
    perm = epoch_permutation(50, seed=11, epoch=0, shuffle=True)
    assert sorted(perm.tolist()) == list(range(50))
    xs = torch.cat([x for x, _ in loader.epoch_batches(0)])
    # No augmentation: the batch is exactly the normalized stored images, in permutation order.
    assert torch.equal(xs, normalize(to_unit(images[perm]), torch.tensor([0.5]), torch.tensor([0.25])))
    assert torch.equal(ys[0], labels[perm])  # labels preserved


def test_resume_reproduces_batches_exactly():
    images, labels = _data()
    loader = _train(images, labels)
    full = list(loader.epoch_batches(3))
    resumed = list(_train(images, labels).epoch_batches(3, start_step=4))
    assert len(resumed) == len(full) - 4
    for (xa, ya), (xb, yb) in zip(full[4:], resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(full[0][0], list(loader.epoch_batches(4))[0][0])  # new epoch, new batches


def test_augmentation_preserves_labels_and_changes_images():
    images, labels = _data()
    loader = _train(images, labels)
    plain = _train(images, labels, augment=None)
    for (xa, ya), (xb, yb) in zip(loader.epoch_batches(0), plain.epoch_batches(0), strict=True):
        assert torch.equal(ya, yb)
        assert not torch.equal(xa, xb)


def test_sharding_across_ranks():
    images, labels = _data(n=50)
    shards = [_train(images, labels, augment=None, rank=r, world_size=3) for r in range(3)]
    assert {len(s) for s in shards} == {3} and {s.num_samples for s in shards} == {17}
    seen = torch.cat([torch.cat([y for _, y in s.epoch_batches(2)]) for s in shards])
    assert len(seen) == 51  # padded from 50 to a multiple of 3
    perms = [epoch_permutation(50, seed=11, epoch=2, shuffle=True, rank=r, world_size=3) for r in range(3)]
    assert sorted(set(torch.cat(perms).tolist())) == list(range(50))
    with pytest.raises(ValueError, match="Expected 0 <= rank < world_size"):
        _train(images, labels, rank=3, world_size=3)


def test_eval_loader_in_order_and_iter_uses_set_epoch():
    images, labels = _data(n=20)
    ev = InMemoryLoader(images, labels, batch_size=6, mean=[0.0], std=[1.0])
    xs = torch.cat([x for x, _ in ev])
    assert torch.equal(xs, to_unit(images)) and torch.equal(torch.cat([y for _, y in ev]), labels)
    tr = _train(images, labels, augment=None)
    tr.set_epoch(5)
    assert torch.equal(torch.cat([y for _, y in tr]), torch.cat([y for _, y in tr.epoch_batches(5)]))


def test_drop_last_and_keep_on_device_false():
    images, labels = _data(n=20)
    dl = _train(images, labels, drop_last=True, keep_on_device=False)
    assert len(dl) == 2 and all(len(y) == 8 for _, y in dl.epoch_batches(0))
    with pytest.raises(ValueError, match="Expected uint8 images"):
        InMemoryLoader(images.float(), labels, batch_size=4, mean=[0.0], std=[1.0])


def test_three_channel_batches_and_dtype():
    images, labels = _data(n=10, c=3)
    loader = InMemoryLoader(images, labels, batch_size=4, shuffle=True, augment=BatchAugment(AugmentConfig(hflip=True)),
                            mean=[0.1, 0.2, 0.3], std=[1.0, 1.0, 1.0])
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and x.shape == (4, 3, 8, 8) and y.dtype == torch.int64


def test_alternating_flips_mirror_each_image_every_other_epoch():
    # Jordan 2024, Sec. 3.6: a seeded random half in epoch 0, then exactly the complement each next epoch.
    n = 40
    images = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
    images[:, 0, :, 0] = 255  # a bright left column: a mirrored image has it on the right
    labels = torch.arange(n)  # the label names the image
    loader = _train(images, labels, augment=BatchAugment(AugmentConfig(hflip=True, hflip_alternate=True)), batch_size=16)
    mirrored = []
    for epoch in range(4):
        seen = torch.zeros(n, dtype=torch.bool)
        for x, y in loader.epoch_batches(epoch):
            seen[y] = x[:, 0, 0, -1] > x[:, 0, 0, 0]
        mirrored.append(seen)
    assert torch.equal(mirrored[1], ~mirrored[0]) and torch.equal(mirrored[2], mirrored[0])
    assert torch.equal(mirrored[3], ~mirrored[0])
    assert 10 <= int(mirrored[0].sum()) <= 30  # about half (binomial(40, 1/2): this holds with p > 0.998)
    # resuming mid-epoch sees the same flips
    tail = [y for x, y in loader.epoch_batches(1, start_step=1)]
    again = [y for x, y in _train(images, labels, augment=loader.augment, batch_size=16).epoch_batches(1, start_step=1)]
    assert all(torch.equal(a, b) for a, b in zip(tail, again, strict=True))


def test_alternating_flips_need_hflip():
    from cnnkit.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="needs data.augment.hflip"):
        AugmentConfig(hflip_alternate=True)
