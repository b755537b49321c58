"""Reverses the text it is sent (Content-Type: text/plain, so `payload` is the raw bytes) and
answers with a str, which is sent back as text/plain.

post_predict runs after the response has been sent: it logs one line per request, which
`cortex logs text-reverser` shows.
"""

import logging

from cortex_runtime import HTTPException  # Starlette's HTTPException when it is installed

logger = logging.getLogger("text-reverser")
TRUE_VALUES = ("1", "true", "yes", "on")


class PythonPredictor:
    def __init__(self, config):
        self.max_chars = int(config.get("max_chars", 100000))
        self.served = 0

    def predict(self, payload, headers):
        if isinstance(payload, bytes):
            charset = "utf-8"
            content_type = headers.get("content-type", "")
            if "charset=" in content_type:
                charset = content_type.split("charset=", 1)[1].split(";")[0].strip() or charset
            try:
                text = payload.decode(charset)
            except (LookupError, UnicodeDecodeError):
                raise HTTPException(status_code=400, detail=f"the body is not {charset} text")
        elif isinstance(payload, str):  # a JSON string
            text = payload
        else:
            raise HTTPException(status_code=400, detail="send text (Content-Type: text/plain)")
        if len(text) > self.max_chars:
            raise HTTPException(status_code=413, detail=f"at most {self.max_chars} characters")

        # Header names are case-insensitive: x-reverse, X-Reverse and X-REVERSE are the same.
        if headers.get("x-reverse", "chars").lower() == "words":
            result = " ".join(reversed(text.split()))
        else:
            result = text[::-1]
        if headers.get("x-uppercase", "false").lower() in TRUE_VALUES:
            result = result.upper()
        return result

    def post_predict(self, response, headers):
        self.served += 1
        logger.info("reversed %d characters (request %d, user agent %s)", len(response),
                    self.served, headers.get("user-agent", "unknown"))
