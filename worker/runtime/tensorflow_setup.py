"""TensorFlow per process: memory growth on every GPU, so a worker takes only
what it uses (one worker process per GPU, chosen by CUDA_VISIBLE_DEVICES)."""


def configure_tensorflow() -> list[str]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    return [gpu.name for gpu in gpus]
