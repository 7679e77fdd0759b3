"""How tests/data/runs-v0.1/ was made: two tiny run folders written by dnnlab at b3c08d9, before
the layout change (issue 15), one completed and one interrupted after its first epoch, for
tests/test_old_run_format.py. It imports that commit's modules (dnnlab.train), so it runs only
in a checkout of b3c08d9: `python tests/data/make_runs_v0.1.py tests/data/runs-v0.1`."""

import os
import shutil
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("KERAS_BACKEND", "jax")
import dnnlab.train as T
from conftest import synthetic_splits
from dnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig

out = Path(sys.argv[1])
shutil.rmtree(out, ignore_errors=True)
splits = synthetic_splits(n_train=256, n_valid=128, n_test=128, seed=0)
model = ModelConfig(
    depth=2, width=8, activation="selu", initializer="lecun_normal", input_scaling="standardize", dropout="alpha"
)
train_cfg = TrainConfig(lr=0.01, batch_size=32, epochs=3, patience=3, seed=7, optimizer="sgd", schedule="1cycle")


def cfg(name):
    return RunConfig(
        variant="alpha-dropout",
        name=name,
        out=str(out),
        model=model,
        train=train_cfg,
        data=DataConfig(data_dir="/nonexistent-old-machine"),
    )


done = T.train(cfg("completed"), splits, verbose=0)
print("completed", done.metrics["valid_loss"], done.metrics["status"])


class InterruptAtSecondEpoch(T.EpochTimer):
    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)


T.EpochTimer = InterruptAtSecondEpoch
cut = T.train(cfg("interrupted"), splits, verbose=0)
print("interrupted", cut.metrics["status"], cut.metrics["epochs_run"])
for p in sorted(out.rglob("*")):
    print(p.relative_to(out), p.stat().st_size if p.is_file() else "")
