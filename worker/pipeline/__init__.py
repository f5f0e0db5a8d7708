"""Pure image functions: numpy arrays in, numpy arrays out. No Celery, no storage."""
