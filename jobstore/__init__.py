"""The server's job state on Redis: records and their Lua scripts, admission
(quotas and fair queues), tenants, and submit/cancel for trusted in-house code.

Only the gateway, the workers and operator commands import this package: they
hold the Redis credentials. It depends on redis, pydantic and api_contracts'
models; never on TensorFlow, OpenCV or the worker.
"""
