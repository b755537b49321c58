"""Form bodies (application/x-www-form-urlencoded and multipart/form-data) to FormData.

Stdlib only (Starlette's own parsers need python-multipart). Errors raise FormError, whose
message the worker sends back with status 400 as text/plain.
"""

from urllib.parse import parse_qsl

from . import compat

__all__ = ["FormError", "parse_form", "parse_options_header"]


class FormError(ValueError):
    pass


def parse_options_header(value):
    """Splits ``'form-data; name="a"; filename="b.txt"'`` into ("form-data", {name: a, ...}).

    Parameter names are lower-cased; quoted values may contain ``;`` and backslash escapes.
    """
    n = len(value)
    i = value.find(";")
    if i < 0:
        return value.strip().lower(), {}
    main = value[:i].strip().lower()
    params = {}
    i += 1
    while i < n:
        while i < n and value[i] in " \t;":
            i += 1
        if i >= n:
            break
        eq = value.find("=", i)
        semi = value.find(";", i)
        if eq < 0 or (0 <= semi < eq):
            # A bare token with no value.
            end = n if semi < 0 else semi
            params[value[i:end].strip().lower()] = ""
            i = end + 1
            continue
        name = value[i:eq].strip().lower()
        i = eq + 1
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == '"':
            i += 1
            out = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(value[i])
                i += 1
            params[name] = "".join(out)
            i += 1  # closing quote
            semi = value.find(";", i)
            i = n if semi < 0 else semi + 1
        else:
            end = value.find(";", i)
            if end < 0:
                end = n
            params[name] = value[i:end].strip()
            i = end + 1
    return main, params


def _decode_text(data, charset="utf-8"):
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


def parse_urlencoded(body):
    text = body.decode("latin-1")
    return compat.FormData(parse_qsl(text, keep_blank_values=True))


def parse_multipart(body, content_type):
    _, params = parse_options_header(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise FormError("Missing boundary in multipart.")
    charset = params.get("charset", "utf-8")
    delim = b"--" + boundary.encode("latin-1")
    dlen = len(delim)

    # The first delimiter is at the start of the body or after a preamble line.
    if body.startswith(delim):
        pos = 0
    else:
        pos = body.find(b"\r\n" + delim)
        if pos < 0:
            raise FormError("Missing opening boundary in multipart.")
        pos += 2

    items = []
    next_delim = b"\r\n" + delim
    while True:
        pos += dlen
        if body.startswith(b"--", pos):
            break  # closing delimiter
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise FormError("Unexpected end of multipart data.")
        if body[pos:eol].strip(b" \t"):
            raise FormError("Malformed multipart boundary line.")
        header_start = eol + 2
        if body.startswith(b"\r\n", header_start):
            header_end = header_start
            data_start = header_start + 2
        else:
            header_end = body.find(b"\r\n\r\n", header_start)
            if header_end < 0:
                raise FormError("Unexpected end of multipart part headers.")
            data_start = header_end + 4
        end = body.find(next_delim, data_start)
        if end < 0:
            raise FormError("Missing closing boundary in multipart.")
        data = body[data_start:end]

        part_headers = []
        if header_end > header_start:
            for line in body[header_start:header_end].split(b"\r\n"):
                colon = line.find(b":")
                if colon <= 0:
                    raise FormError("Malformed multipart part header.")
                part_headers.append((
                    line[:colon].strip().decode("latin-1").lower(),
                    _decode_text(line[colon + 1:].strip(), charset),
                ))
        disposition = None
        for name, value in part_headers:
            if name == "content-disposition":
                disposition = value
                break
        if disposition is None:
            raise FormError("Missing Content-Disposition header in multipart part.")
        _, options = parse_options_header(disposition)
        field = options.get("name")
        if field is None:
            raise FormError("Missing field name in multipart part.")
        if "filename" in options:
            items.append((field, compat.make_upload_file(data, options["filename"], part_headers)))
        else:
            items.append((field, _decode_text(data, charset)))
        pos = end + 2  # at the delimiter
    return compat.FormData(items)


def parse_form(body, content_type_lower, content_type):
    """FormData for a form body; ``content_type_lower`` selects the parser."""
    if content_type_lower.startswith("application/x-www-form-urlencoded"):
        return parse_urlencoded(body)
    return parse_multipart(body, content_type)
