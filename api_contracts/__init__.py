"""What a producer (the photo app) imports: error codes now, the job contract later.

No TensorFlow and no OpenCV may be imported from this package.
"""

from api_contracts.errors import BackdropError, ErrorCode

__all__ = ["BackdropError", "ErrorCode"]
