"""The GPU path, checked on a CPU: a worker process per GPU, memory growth, no TF in the parent."""

import argparse
import subprocess
import sys

from tests.conftest import REPO
from worker.cli.service_commands import gpu_worker_commands


def test_one_single_child_worker_per_gpu_each_seeing_only_its_device() -> None:
    args = argparse.Namespace(queues="gpu", loglevel="INFO")
    commands = gpu_worker_commands(args, ["0", "1", "3"])
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in commands] == ["0", "1", "3"]
    for (cmd, _), gpu in zip(commands, ["0", "1", "3"], strict=True):
        assert cmd[cmd.index("--concurrency") + 1] == "1"
        assert cmd[cmd.index("--name") + 1] == f"gpu{gpu}@%h"
        assert cmd[cmd.index("--queues") + 1] == "gpu"


def test_tensorflow_setup_reports_the_gpus_tensorflow_sees() -> None:
    """On any machine, with or without GPUs: one name per device TensorFlow sees."""
    import tensorflow as tf

    from worker.runtime.tensorflow_setup import configure_tensorflow

    assert configure_tensorflow() == [g.name for g in tf.config.list_physical_devices("GPU")]


def test_loading_the_celery_app_and_tasks_does_not_import_tensorflow() -> None:
    """The prefork parent must never start TensorFlow (CUDA does not survive fork)."""
    code = (
        "import sys, worker.service.celery_app, worker.service.tasks, worker.cli.service_commands;"
        "print('tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True)  # fmt: skip
    assert done.stdout.strip() == "False"
