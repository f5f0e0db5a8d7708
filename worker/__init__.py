"""Backdrop worker: the pipeline, the models, the command line (and later the Celery tasks)."""
