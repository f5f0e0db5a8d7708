"""The HTTP API: FastAPI over api_contracts (never worker code, never TensorFlow)."""
