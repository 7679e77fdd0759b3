import pickle

import numpy as np
import pytest

from dnnlab.data import (
    DataError,
    load_cifar10,
    locate_cifar10,
    make_splits,
)


def test_loader_reads_official_layout(fake_cifar):
    folder, checksums = fake_cifar
    data = load_cifar10(folder.parent, download=False, checksums=checksums)
    assert data.x_train.shape == (100, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (20, 32, 32, 3)
    assert data.y_train.shape == (100,) and data.label_names[0] == "airplane"
    # Channel-major rows: the red plane comes first, then green, then blue.
    raw = pickle.loads((folder / "data_batch_1").read_bytes())[b"data"][0]
    assert data.x_train[0, 0, 1, 0] == raw[1]
    assert data.x_train[0, 0, 1, 1] == raw[1024 + 1]
    assert data.x_train[0, 2, 0, 2] == raw[2048 + 64]
    assert data.y_train[0] == pickle.loads((folder / "data_batch_1").read_bytes())[b"labels"][0]


def test_loader_accepts_the_batch_folder_itself(fake_cifar):
    folder, checksums = fake_cifar
    assert locate_cifar10(folder, download=False, checksums=checksums) == folder


def test_md5_mismatch_names_file_and_fix(fake_cifar):
    folder, checksums = fake_cifar
    with open(folder / "data_batch_3", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(DataError, match=r"data_batch_3 is corrupt or incomplete.*delete it to re-download"):
        load_cifar10(folder.parent, download=False, checksums=checksums)


def test_missing_batch_is_named(fake_cifar):
    folder, checksums = fake_cifar
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match=r"data_batch_4 is missing"):
        load_cifar10(folder.parent, download=False, checksums=checksums)


def test_real_md5s_reject_fake_data(fake_cifar):
    folder, _ = fake_cifar
    with pytest.raises(DataError, match="md5 mismatch"):
        load_cifar10(folder.parent, download=False)


def test_missing_data_without_download_names_places_and_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("DNNLAB_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as info:
        load_cifar10(empty, download=False)
    message = str(info.value)
    assert str(empty) in message and "keras_home" in message
    assert "--data-dir" in message and "DNNLAB_DATA" in message and "\n" not in message


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DNNLAB_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def no_network(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr("keras.utils.get_file", no_network)
    with pytest.raises(DataError, match=r"download failed \(Temporary failure.*--data-dir"):
        load_cifar10(download=True)


def test_env_var_is_used(fake_cifar, monkeypatch):
    folder, checksums = fake_cifar
    monkeypatch.setenv("DNNLAB_DATA", str(folder.parent))
    assert locate_cifar10(download=False, checksums=checksums) == folder


def test_splits_follow_the_textbook_and_use_train_stats_only():
    x = np.arange(10 * 2, dtype=np.uint8).reshape(10, 2, 1, 1).repeat(3, axis=3)
    y = np.arange(10)
    x[:4] = 255  # validation images: must not influence the statistics
    splits = make_splits(x, y, x[:2], y[:2], valid_size=4)
    assert list(splits.y_valid) == [0, 1, 2, 3] and list(splits.y_train) == [4, 5, 6, 7, 8, 9]
    assert splits.x_train.dtype == np.float32
    np.testing.assert_allclose(splits.feature_mean, x[4:].reshape(6, -1).mean(axis=0))
    np.testing.assert_allclose(splits.feature_std, x[4:].reshape(6, -1).std(axis=0), rtol=1e-6)


def test_subset_keeps_first_n_and_rejects_too_many():
    x = np.zeros((10, 2, 2, 3), dtype=np.uint8)
    y = np.arange(10)
    assert list(make_splits(x, y, x, y, valid_size=4, subset=3).y_train) == [4, 5, 6]
    with pytest.raises(DataError, match="--subset 7 is larger than the 6 training images"):
        make_splits(x, y, x, y, valid_size=4, subset=7)
