"""Bad input is refused before anything is written (issue 17): Keras names resolved while the config is
validated, and a run that fails before its first file leaves no folder behind."""

from __future__ import annotations

import json

import pytest

from dnnlab import keras_names
from dnnlab.cli.main import main
from dnnlab.config import ConfigError, ModelConfig, RunConfig
from dnnlab.data import OFFICIAL_MD5, DataError
from dnnlab.training.train import train
from tests.conftest import write_fake_cifar


@pytest.mark.parametrize("kind", [keras_names.ACTIVATION, keras_names.INITIALIZER])
def test_the_names_checked_without_keras_are_names_keras_accepts(kind):
    # The shortcut that spares `import dnnlab.config` a Keras import must not accept what Keras would not.
    for name in keras_names.KNOWN[kind]:
        assert keras_names._try(kind, name), name
        assert name in keras_names.valid_names(kind)


def test_keras_names_are_resolved_when_the_config_is_made():
    assert ModelConfig(activation="relu", initializer="glorot_uniform").activation == "relu"
    assert ModelConfig(initializer="HeNormal").initializer == "HeNormal"  # Keras's class names work too
    with pytest.raises(ConfigError, match=r"--activation 'foo' .* choose one of: .*\belu\b.*\brelu\b"):
        ModelConfig(activation="foo")
    with pytest.raises(ConfigError, match=r"--initializer 'bar' .* choose one of: .*\bhe_normal\b"):
        ModelConfig(initializer="bar")
    # Names Keras resolves but a Dense layer cannot use as they are: they need arguments or a 3-D kernel.
    for kind, name in (("activation", "threshold"), ("initializer", "constant"), ("initializer", "stft")):
        with pytest.raises(ConfigError, match=f"--{kind} '{name}'"):
            ModelConfig(**{kind: name})
    with pytest.raises(ConfigError, match="--activation"):  # a saved config is checked as well
        RunConfig.from_dict({"model": {"activation": "foo"}})


def test_a_typo_then_the_right_command_trains(tmp_path, capsys, monkeypatch):
    """The issue's case: `--activation foo` used to leave runs/elu/config.json, which refused the next run."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--activation", "foo", "--out", "runs"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    folder, checksums = write_fake_cifar(tmp_path / "data")  # 20 images per batch: 100 for training
    for name, md5 in checksums.items():
        monkeypatch.setitem(OFFICIAL_MD5, name, md5)
    return folder.parent


def test_a_run_that_fails_before_its_first_file_leaves_no_folder(tmp_path, fake_data):
    out = tmp_path / "out" / "deeper"
    data = {"data_dir": str(fake_data), "valid_size": 20, "subset": 500}
    config = RunConfig.from_dict({"out": str(out), "data": data})
    with pytest.raises(DataError, match="--subset 500 is larger than the 80 training images"):
        train(config, verbose=0)
    assert not (tmp_path / "out").exists()  # the parents it made went too


def test_a_failing_rerun_keeps_the_folder_it_found(tmp_path, fake_data):
    run_dir = tmp_path / "out" / "elu"
    run_dir.mkdir(parents=True)
    config = RunConfig.from_dict(
        {"out": str(tmp_path / "out"), "data": {"data_dir": str(fake_data), "valid_size": 20, "subset": 500}}
    )
    with pytest.raises(DataError):
        train(config, verbose=0)
    assert run_dir.is_dir()  # not this call's to remove
    (run_dir / "config.json").write_text(json.dumps(config.to_dict()))
    with pytest.raises(DataError):
        train(config, verbose=0)
    assert (run_dir / "config.json").exists()
