"""Python runtime of the Cortex re-implementation: runs a user's PythonPredictor in a worker
process that speaks the slot protocol (docs/worker-protocol.md).

Predictors may import the request/response types from here; they are Starlette's classes when
Starlette is importable (and CORTEX_RUNTIME_NO_STARLETTE is unset), otherwise small stdlib-only
equivalents (see cortex_runtime.compat).
"""

from .compat import (  # noqa: F401
    HAVE_STARLETTE,
    FormData,
    Headers,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    QueryParams,
    Response,
    UploadFile,
)

__all__ = [
    "HAVE_STARLETTE",
    "FormData",
    "Headers",
    "HTTPException",
    "JSONResponse",
    "PlainTextResponse",
    "QueryParams",
    "Response",
    "UploadFile",
]
