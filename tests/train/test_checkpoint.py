import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from cnnkit.train.checkpoint import (
    CheckpointError,
    list_checkpoints,
    load_latest_checkpoint,
    optimizer_state_from_flat,
    optimizer_state_to_flat,
    prune_checkpoints,
    read_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)


def write(root, step, value=1.0):
    return write_checkpoint(root / f"step-{step:09d}", {"w": torch.full((3,), value)}, {"global_step": step})


def test_roundtrip_and_no_pickle(tmp_path):
    folder = write_checkpoint(tmp_path / "step-000000001", {"a": torch.arange(4.0), "b": torch.ones(2, dtype=torch.uint8)}, {"x": [1, 2]})
    ck = read_checkpoint(folder)
    assert torch.equal(ck.tensors["a"], torch.arange(4.0)) and ck.tensors["b"].dtype == torch.uint8
    assert ck.meta["x"] == [1, 2]
    assert sorted(p.name for p in folder.iterdir()) == ["COMPLETE", "state.json", "state.safetensors"]
    assert b"\x80\x04" not in (folder / "state.safetensors").read_bytes()[:2]  # not a pickle protocol header


def test_shared_storage_tensors_are_saved(tmp_path):
    w = torch.randn(4, 4)
    ck = read_checkpoint(write_checkpoint(tmp_path / "c", {"w": w, "w_view": w[0], "tied": w}, {}))
    assert torch.equal(ck.tensors["w_view"], w[0]) and torch.equal(ck.tensors["tied"], w)


@pytest.mark.parametrize(
    "damage,reason",
    [
        (lambda f: (f / "COMPLETE").unlink(), "incomplete"),
        (lambda f: (f / "state.safetensors").write_bytes((f / "state.safetensors").read_bytes()[:-7]), "hash"),
        (lambda f: _flip_byte(f / "state.safetensors", -3), "hash"),
        (lambda f: _flip_byte(f / "state.json", 5), "hash"),
        (lambda f: (f / "COMPLETE").write_text("{not json"), "marker"),
    ],
)
def test_torn_or_corrupt_checkpoint_is_skipped_with_message(tmp_path, damage, reason):
    write(tmp_path, 1, 1.0)
    newest = write(tmp_path, 2, 2.0)
    damage(newest)
    messages = []
    ck = load_latest_checkpoint(tmp_path, log=messages.append)
    assert ck.meta["global_step"] == 1 and torch.equal(ck.tensors["w"], torch.full((3,), 1.0))
    assert len(messages) == 1 and reason in messages[0] and "step-000000002" in messages[0]


def _flip_byte(path, index):
    data = bytearray(path.read_bytes())
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def test_bad_safetensors_header_detected_even_with_matching_marker(tmp_path):
    folder = write(tmp_path, 1)
    bad = b"\xff" * 16
    (folder / "state.safetensors").write_bytes(bad)
    marker = json.loads((folder / "COMPLETE").read_text())
    import hashlib

    marker["files"]["state.safetensors"] = {"sha256": hashlib.sha256(bad).hexdigest(), "bytes": len(bad)}
    (folder / "COMPLETE").write_text(json.dumps(marker))
    with pytest.raises(CheckpointError, match="safetensors header"):
        read_checkpoint(folder)


def test_interrupted_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    write(tmp_path, 1, 1.0)
    import cnnkit.train.checkpoint as mod

    real = mod._write_file
    calls = []

    def crash_on_marker(path, data):
        calls.append(path.name)
        if path.name == "COMPLETE":
            raise OSError("disk full (injected)")
        return real(path, data)

    monkeypatch.setattr(mod, "_write_file", crash_on_marker)
    with pytest.raises(OSError, match="injected"):
        write(tmp_path, 2, 2.0)
    monkeypatch.setattr(mod, "_write_file", real)
    assert calls == ["state.safetensors", "state.json", "COMPLETE"]  # the marker comes last
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000000001"]  # the torn one never got its name
    assert load_latest_checkpoint(tmp_path).meta["global_step"] == 1


def test_failed_write_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import errno
    import os

    import cnnkit.train.checkpoint as mod

    write(tmp_path, 1, 1.0)
    real = mod._write_file

    def disk_full_at_json(path, data):
        if path.name == "state.json":  # the tensors are already half-way to disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, data)

    monkeypatch.setattr(mod, "_write_file", disk_full_at_json)
    with pytest.raises(OSError, match="No space left"):
        write(tmp_path, 2, 2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000001"]  # no .tmp left behind
    assert load_latest_checkpoint(tmp_path).meta["global_step"] == 1


def test_failed_rename_puts_the_previous_best_back(tmp_path, monkeypatch):
    import errno
    import os

    import cnnkit.train.checkpoint as mod

    write_checkpoint(tmp_path / "best", {"w": torch.zeros(1)}, {"global_step": 1})
    real = os.replace

    def fail_into_place(src, dst):
        if str(src).endswith(f".tmp-{os.getpid()}"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(src, dst)

    monkeypatch.setattr(mod.os, "replace", fail_into_place)
    with pytest.raises(OSError):
        write_checkpoint(tmp_path / "best", {"w": torch.ones(1)}, {"global_step": 2})
    monkeypatch.setattr(mod.os, "replace", real)
    assert [p.name for p in tmp_path.iterdir()] == ["best"]
    assert read_checkpoint(tmp_path / "best").meta["global_step"] == 1


def test_no_usable_checkpoint(tmp_path):
    (write(tmp_path, 1) / "COMPLETE").unlink()
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        load_latest_checkpoint(tmp_path)


def test_prune_keeps_last_k_and_best(tmp_path):
    for s in (1, 2, 3, 4):
        write(tmp_path, s)
    write_checkpoint(tmp_path / "best", {"w": torch.zeros(1)}, {"global_step": 2})
    prune_checkpoints(tmp_path, keep_last=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "step-000000003", "step-000000004"]


def test_optimizer_state_roundtrip_is_exact():
    torch.manual_seed(0)
    m = nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters(), lr=0.01, betas=(0.8, 0.9))
    for _ in range(3):
        opt.zero_grad()
        m(torch.randn(4, 3)).sum().backward()
        opt.step()
    tensors, meta = optimizer_state_to_flat(opt)
    json.dumps(meta)  # JSON-able
    m2 = nn.Linear(3, 2)
    opt2 = torch.optim.Adam(m2.parameters(), lr=0.5)
    optimizer_state_from_flat(opt2, tensors, json.loads(json.dumps(meta)))
    assert opt2.param_groups[0]["betas"] == (0.8, 0.9) and opt2.param_groups[0]["lr"] == 0.01
    for p, q in zip(m.parameters(), m2.parameters()):
        for k in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(opt.state[p][k], opt2.state[q][k])


def test_sgd_without_momentum_buffer_roundtrip():
    m = nn.Linear(2, 1)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.0)
    m(torch.ones(1, 2)).sum().backward()
    opt.step()
    tensors, meta = optimizer_state_to_flat(opt)
    opt2 = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    optimizer_state_from_flat(opt2, tensors, json.loads(json.dumps(meta)))
    assert opt2.state_dict()["state"] == opt.state_dict()["state"]


def test_rng_states_roundtrip_through_json():
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    tensors, meta = rng_state()
    meta = json.loads(json.dumps(meta))
    a = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    set_rng_state(tensors, meta)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
