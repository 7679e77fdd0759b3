"""CIFAR-10: find, verify, download and load the official "python version".

Lookup order: an explicit `data_dir`, then `$DNNLAB_DATA`, then the Keras cache
(`~/.keras/datasets`). Each place may hold `cifar-10-batches-py/` or be that folder.
If none has it, the official archive is downloaded with `keras.utils.get_file`
(hash-checked, with a progress bar) and extracted into the cache.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnnlab.config import DataConfig
from dnnlab.errors import DnnlabError, StorageError, is_storage_failure

DATA_ENV = "DNNLAB_DATA"
BATCHES_DIR = "cifar-10-batches-py"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
# Published md5s of the official files (the same values as ../shared/data/README.md).
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}


class DataError(DnnlabError):
    """The dataset is missing, incomplete or corrupt."""


@dataclass(frozen=True)
class Cifar10:
    """The official split: uint8 images (N, 32, 32, 3) and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    label_names: tuple[str, ...]


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def candidate_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """The batch folders to try, in lookup order."""
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    if os.environ.get(DATA_ENV):
        roots.append(Path(os.environ[DATA_ENV]))
    cache = keras_cache_dir()
    # get_file(extract=True) extracts "name.tar.gz" into "name_extracted/".
    roots += [cache, cache / "cifar-10-python_extracted"]
    found: list[Path] = []
    for root in roots:
        found += [root] if root.name == BATCHES_DIR else [root / BATCHES_DIR, root]
    return list(dict.fromkeys(p.expanduser() for p in found))


def _has_any_batch(folder: Path) -> bool:
    return any((folder / name).exists() for name in OFFICIAL_MD5)


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_batches(folder: Path, checksums: dict[str, str] = OFFICIAL_MD5) -> None:
    """Raise `DataError` naming the first missing or corrupt file in `folder`."""
    for name, expected in checksums.items():
        path = folder / name
        if not path.exists():
            raise DataError(
                f"{path} is missing: the CIFAR-10 folder is incomplete; delete {folder} to re-download "
                f"or point --data-dir / ${DATA_ENV} at a complete copy"
            )
        if file_md5(path) != expected:
            raise DataError(f"{path} is corrupt or incomplete (md5 mismatch); delete it to re-download")


def download_cifar10(cache: Path | None = None) -> Path:
    """Download and extract the official archive into the Keras cache; return the batch folder."""
    import keras

    cache = cache or keras_cache_dir()
    archive = keras.utils.get_file(
        fname=ARCHIVE_NAME,
        origin=ARCHIVE_URL,
        file_hash=ARCHIVE_MD5,
        cache_dir=str(cache.parent),
        cache_subdir=cache.name,
    )
    with tarfile.open(archive, "r:gz") as tar:
        # filter="data" refuses absolute paths, links out of the tree and device files.
        tar.extractall(cache, filter="data")
    return cache / BATCHES_DIR


def check_data_dir(data_dir: str | Path | None) -> None:
    """Refuse an explicit `data_dir` that does not exist: a typo must not silently fall back to another
    copy further down the lookup order. Cheap: commands call it before they write anything."""
    if data_dir is not None and not Path(data_dir).expanduser().exists():
        raise DataError(f"--data-dir {data_dir} does not exist; pass the folder that holds {BATCHES_DIR}/")


def locate_cifar10(
    data_dir: str | Path | None = None, download: bool = True, checksums: dict[str, str] = OFFICIAL_MD5
) -> Path:
    """The verified batch folder: found locally, or downloaded when `download` is true."""
    check_data_dir(data_dir)
    candidates = candidate_dirs(data_dir)
    for folder in candidates:
        if folder.is_dir() and _has_any_batch(folder):
            verify_batches(folder, checksums)
            return folder
    looked = ", ".join(str(p) for p in candidates)
    fix = f"pass --data-dir or set {DATA_ENV} to the folder that holds {BATCHES_DIR}/"
    if not download:
        raise DataError(f"CIFAR-10 not found (looked in {looked}); {fix}")
    try:
        folder = download_cifar10()
    except Exception as exc:  # no network, a proxy error, a bad archive: all end the same way
        if is_storage_failure(exc):  # but a full or read-only cache has a fix of its own
            raise StorageError(exc.filename or keras_cache_dir(), exc) from None
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"CIFAR-10 not found (looked in {looked}) and the download failed ({reason}); {fix}") from None
    verify_batches(folder, checksums)
    return folder


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as handle:
        # Only the official batch files are ever unpickled, after their md5 check.
        batch = pickle.load(handle, encoding="bytes")
    flat = np.asarray(batch[b"data"], dtype=np.uint8)
    # Rows are channel-major (1024 R, 1024 G, 1024 B), each plane row-major.
    images = flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(batch[b"labels"], dtype=np.int64)


def load_cifar10(
    data_dir: str | Path | None = None, download: bool = True, checksums: dict[str, str] = OFFICIAL_MD5
) -> Cifar10:
    """The official 50,000/10,000 split as uint8 (N, 32, 32, 3) arrays with int labels."""
    folder = locate_cifar10(data_dir, download, checksums)
    parts = [_read_batch(folder / name) for name in TRAIN_FILES]
    x_test, y_test = _read_batch(folder / TEST_FILE)
    with open(folder / META_FILE, "rb") as handle:
        meta = pickle.load(handle, encoding="bytes")
    names = tuple(n.decode() for n in meta[b"label_names"])
    return Cifar10(
        x_train=np.concatenate([p[0] for p in parts]),
        y_train=np.concatenate([p[1] for p in parts]),
        x_test=x_test,
        y_test=y_test,
        label_names=names,
    )


@dataclass(frozen=True)
class Splits:
    """Train/valid/test as float32 pixels (0-255) prepared once, plus training-set statistics.

    Scaling happens inside the model (see `ModelConfig.input_scaling`), so these arrays are the
    same for every variant and are converted to float32 only once per process.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_mean: np.ndarray  # per-feature (3072,) mean of the training images only
    feature_std: np.ndarray  # per-feature std of the training images only

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_valid.max(), self.y_test.max())) + 1


def make_splits(
    x_train_full: np.ndarray,
    y_train_full: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    valid_size: int = 5000,
    subset: int | None = None,
) -> Splits:
    """The textbook's split: the first `valid_size` training images validate, the rest train.

    `subset` keeps only the first N of the remaining training images. Statistics come from
    the training images actually used, never from validation or test.
    """
    available = len(x_train_full) - valid_size
    if available <= 0:
        raise DataError(f"valid_size {valid_size} leaves no training images (have {len(x_train_full)})")
    if subset is not None and subset > available:
        raise DataError(f"--subset {subset} is larger than the {available} training images; pass at most {available}")
    end = valid_size + (subset or available)
    x_train = x_train_full[valid_size:end].astype(np.float32)
    flat = x_train.reshape(len(x_train), -1)
    return Splits(
        x_train=x_train,
        y_train=y_train_full[valid_size:end],
        x_valid=x_train_full[:valid_size].astype(np.float32),
        y_valid=y_train_full[:valid_size],
        x_test=x_test.astype(np.float32),
        y_test=y_test,
        feature_mean=flat.mean(axis=0),
        feature_std=flat.std(axis=0),
    )


def load_splits(
    data_dir: str | Path | None = None, valid_size: int = 5000, subset: int | None = None, download: bool = True
) -> Splits:
    data = load_cifar10(data_dir, download)
    return make_splits(data.x_train, data.y_train, data.x_test, data.y_test, valid_size, subset)


def load_data(config: DataConfig) -> Splits:
    """The splits a `DataConfig` describes: where the data is, the validation size, the subset."""
    return load_splits(config.data_dir, config.valid_size, config.subset, config.download)
