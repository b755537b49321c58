"""Request and response types handed to (and accepted from) user predictors.

When Starlette is importable, and CORTEX_RUNTIME_NO_STARLETTE is not set to a true value, these
are Starlette's own classes, as in Cortex v0.24. Otherwise they are small stdlib-only classes with
the parts of the same interface that predictors use:

* ``Headers``: immutable, case-insensitive multi-dict (``[]``, ``get``, ``getlist``, ``items``,
  ``keys``, ``values``, ``in``, ``len``, ``raw``).
* ``QueryParams``: immutable multi-dict (``[]``, ``get``, ``getlist``, ``items``,
  ``multi_items``, ``keys``, ``values``, ``in``, ``len``; ``str()`` gives the query string).
* ``FormData``: immutable multi-dict of ``str`` or ``UploadFile`` values, with ``close()``.
* ``UploadFile``: ``filename``, ``content_type``, ``headers``, ``size``, ``file`` (a binary
  file object), and ``read``/``seek``/``close``. Starlette's ``read`` is a coroutine; the
  fallback's is synchronous. ``upload.file.read()`` works with both.
* ``Response`` (+ ``JSONResponse``, ``PlainTextResponse``): ``status_code``, ``body``,
  ``media_type``, ``headers``, ``raw_headers``, ``background``.
* ``HTTPException``: ``status_code``, ``detail``, ``headers``.
"""

import http
import io
import json
import os
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "HAVE_STARLETTE",
    "Headers",
    "QueryParams",
    "FormData",
    "UploadFile",
    "Response",
    "JSONResponse",
    "PlainTextResponse",
    "HTTPException",
    "RESPONSE_TYPES",
    "HTTP_EXCEPTION_TYPES",
    "make_headers",
    "make_upload_file",
]


def _starlette_disabled():
    value = os.environ.get("CORTEX_RUNTIME_NO_STARLETTE", "").strip().lower()
    return value not in ("", "0", "false", "no")


HAVE_STARLETTE = False
if not _starlette_disabled():
    try:
        from starlette.datastructures import FormData as _SFormData
        from starlette.datastructures import Headers as _SHeaders
        from starlette.datastructures import QueryParams as _SQueryParams
        from starlette.datastructures import UploadFile as _SUploadFile
        from starlette.exceptions import HTTPException as _SHTTPException
        from starlette.responses import JSONResponse as _SJSONResponse
        from starlette.responses import PlainTextResponse as _SPlainTextResponse
        from starlette.responses import Response as _SResponse

        HAVE_STARLETTE = True
    except Exception:  # ImportError, or a broken installation
        HAVE_STARLETTE = False


class _MultiDict:
    """Immutable multi-dict: the last value wins for ``[]``, ``getlist`` returns all."""

    __slots__ = ("_list", "_dict")

    def __init__(self, items=None):
        if items is None:
            items = []
        elif isinstance(items, _MultiDict):
            items = items.multi_items()
        elif hasattr(items, "items"):
            items = list(items.items())
        else:
            items = list(items)
        self._list = items
        self._dict = {k: v for k, v in items}

    def getlist(self, key):
        return [v for k, v in self._list if k == key]

    def get(self, key, default=None):
        return self._dict.get(key, default)

    def keys(self):
        return self._dict.keys()

    def values(self):
        return self._dict.values()

    def items(self):
        return self._dict.items()

    def multi_items(self):
        return list(self._list)

    def __getitem__(self, key):
        return self._dict[key]

    def __contains__(self, key):
        return key in self._dict

    def __iter__(self):
        return iter(self._dict)

    def __len__(self):
        return len(self._dict)

    def __eq__(self, other):
        if not isinstance(other, self.__class__):
            return False
        return sorted(self._list, key=repr) == sorted(other._list, key=repr)

    def __repr__(self):
        return f"{self.__class__.__name__}({self._list!r})"


class _QueryParams(_MultiDict):
    """Query parameters; built from a query string or a list of pairs."""

    __slots__ = ()

    def __init__(self, value=None):
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            value = parse_qsl(value, keep_blank_values=True)
        super().__init__(value)

    def __str__(self):
        return urlencode(self._list)


class _UploadFile:
    """An uploaded file from a multipart form."""

    def __init__(self, file, *, size=None, filename=None, headers=None):
        self.file = file
        self.size = size
        self.filename = filename
        self.headers = headers if headers is not None else _Headers()

    @property
    def content_type(self):
        return self.headers.get("content-type", None)

    def read(self, size=-1):
        return self.file.read(size)

    def seek(self, offset):
        self.file.seek(offset)

    def write(self, data):
        self.file.write(data)

    def close(self):
        self.file.close()

    def __repr__(self):
        return (
            f"UploadFile(filename={self.filename!r}, size={self.size!r}, "
            f"content_type={self.content_type!r})"
        )


class _FormData(_MultiDict):
    """Form fields: ``str`` values, or ``UploadFile`` for file parts."""

    __slots__ = ()

    def close(self):
        for _, value in self._list:
            if isinstance(value, _UploadFile):
                value.close()


class _Headers:
    """Immutable, case-insensitive multi-dict of HTTP headers (keys are kept lower case)."""

    __slots__ = ("_list",)

    def __init__(self, headers=None, raw=None):
        if headers is not None:
            self._list = [(k.lower(), v) for k, v in headers.items()]
        elif raw is not None:
            self._list = [
                (
                    k.decode("latin-1").lower() if isinstance(k, bytes) else k.lower(),
                    v.decode("latin-1") if isinstance(v, bytes) else v,
                )
                for k, v in raw
            ]
        else:
            self._list = []

    @property
    def raw(self):
        return [(k.encode("latin-1"), _encode_header(v)) for k, v in self._list]

    def keys(self):
        return [k for k, _ in self._list]

    def values(self):
        return [v for _, v in self._list]

    def items(self):
        return list(self._list)

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def getlist(self, key):
        key = key.lower()
        return [v for k, v in self._list if k == key]

    def __getitem__(self, key):
        key = key.lower()
        for k, v in self._list:
            if k == key:
                return v
        raise KeyError(key)

    def __contains__(self, key):
        key = key.lower()
        for k, _ in self._list:
            if k == key:
                return True
        return False

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self._list)

    def __eq__(self, other):
        if not isinstance(other, _Headers):
            return False
        return sorted(self._list) == sorted(other._list)

    def __repr__(self):
        return f"Headers({self._list!r})"


def _encode_header(value):
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


class _Response:
    """A complete HTTP response returned by ``predict``."""

    media_type = None
    charset = "utf-8"

    def __init__(self, content=None, status_code=200, headers=None, media_type=None,
                 background=None):
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.body = self.render(content)
        self._init_headers(headers)

    def render(self, content):
        if content is None:
            return b""
        if isinstance(content, (bytes, bytearray, memoryview)):
            return bytes(content)
        return content.encode(self.charset)

    def _init_headers(self, headers):
        raw = []
        if headers:
            raw = [(k.lower().encode("latin-1"), _encode_header(v)) for k, v in headers.items()]
        keys = {k for k, _ in raw}
        if self.body is not None and b"content-length" not in keys:
            raw.append((b"content-length", str(len(self.body)).encode("latin-1")))
        content_type = self.media_type
        if content_type is not None and b"content-type" not in keys:
            if content_type.startswith("text/"):
                content_type += "; charset=" + self.charset
            raw.append((b"content-type", content_type.encode("latin-1")))
        self.raw_headers = raw

    @property
    def headers(self):
        return _Headers(raw=self.raw_headers)


class _JSONResponse(_Response):
    media_type = "application/json"

    def render(self, content):
        return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":")).encode("utf-8")


class _PlainTextResponse(_Response):
    media_type = "text/plain"


class _HTTPException(Exception):
    """Raise from ``predict`` to answer with ``status_code`` (body ``{"error": detail}``)."""

    def __init__(self, status_code, detail=None, headers=None):
        if detail is None:
            try:
                detail = http.HTTPStatus(status_code).phrase
            except ValueError:
                detail = ""
        self.status_code = status_code
        self.detail = detail
        self.headers = headers
        super().__init__(status_code, detail)

    def __repr__(self):
        return f"HTTPException(status_code={self.status_code!r}, detail={self.detail!r})"


if HAVE_STARLETTE:
    Headers = _SHeaders
    QueryParams = _SQueryParams
    FormData = _SFormData
    UploadFile = _SUploadFile
    Response = _SResponse
    JSONResponse = _SJSONResponse
    PlainTextResponse = _SPlainTextResponse
    HTTPException = _SHTTPException
    RESPONSE_TYPES = (_SResponse, _Response)
    HTTP_EXCEPTION_TYPES = (_SHTTPException, _HTTPException)

    def make_headers(pairs):
        """Headers from the frame's ``[[name, value], ...]`` list."""
        return _SHeaders(raw=[(k.lower().encode("latin-1"), _encode_header(v)) for k, v in pairs])

else:
    Headers = _Headers
    QueryParams = _QueryParams
    FormData = _FormData
    UploadFile = _UploadFile
    Response = _Response
    JSONResponse = _JSONResponse
    PlainTextResponse = _PlainTextResponse
    HTTPException = _HTTPException
    RESPONSE_TYPES = (_Response,)
    HTTP_EXCEPTION_TYPES = (_HTTPException,)

    def make_headers(pairs):
        """Headers from the frame's ``[[name, value], ...]`` list."""
        h = _Headers.__new__(_Headers)
        h._list = [(k.lower(), v) for k, v in pairs]
        return h


def make_upload_file(data, filename, part_headers):
    """An UploadFile holding ``data``; ``part_headers`` is a list of (lower-case name, value)."""
    return UploadFile(io.BytesIO(data), size=len(data), filename=filename,
                      headers=make_headers(part_headers))
