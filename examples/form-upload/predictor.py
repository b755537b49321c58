"""Word statistics of a text sent as an HTML form.

* multipart/form-data: a file field `file` (UTF-8 text) and an optional field `lang`;
* application/x-www-form-urlencoded: a field `text` and an optional field `lang`.

For both content types `payload` is form data: a multi-dict whose values are strings, or upload
files (with `.filename` and a binary `.file`) for file parts.
"""

import collections
import re

from cortex_runtime import HTTPException  # Starlette's HTTPException when it is installed

STOP_WORDS = {
    "en": {"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have",
           "he", "her", "his", "i", "in", "is", "it", "its", "of", "on", "or", "she", "that",
           "the", "their", "they", "this", "to", "was", "were", "will", "with", "you"},
    "es": {"a", "al", "con", "de", "del", "el", "en", "es", "la", "las", "lo", "los", "para",
           "por", "que", "se", "su", "un", "una", "y"},
    "fr": {"a", "au", "aux", "avec", "ce", "dans", "de", "des", "du", "elle", "en", "est", "et",
           "il", "la", "le", "les", "pour", "que", "qui", "sur", "un", "une"},
}
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


class PythonPredictor:
    def __init__(self, config):
        self.top_n = int(config.get("top_n", 5))
        self.default_lang = config.get("default_lang", "en")

    def predict(self, payload):
        if isinstance(payload, (bytes, dict, list)) or not hasattr(payload, "getlist"):
            raise HTTPException(status_code=415,
                                detail="send multipart/form-data (fields: file, lang) or "
                                       "application/x-www-form-urlencoded (fields: text, lang)")
        lang = (payload.get("lang") or self.default_lang).strip().lower()
        if lang not in STOP_WORDS:
            raise HTTPException(status_code=400, detail=f"unsupported lang {lang!r} "
                                                        f"(choose from {sorted(STOP_WORDS)})")
        upload = payload.get("file")
        if upload is not None and not isinstance(upload, str):
            filename = upload.filename
            try:
                text = upload.file.read().decode("utf-8")
            except UnicodeDecodeError:
                raise HTTPException(status_code=400, detail=f"{filename} is not UTF-8 text")
        elif payload.get("text") is not None:
            filename = None
            text = payload.get("text")
        else:
            raise HTTPException(status_code=400, detail="missing form field: file or text")

        words = [w.lower() for w in WORD.findall(text)]
        counted = collections.Counter(w for w in words if w not in STOP_WORDS[lang])
        # Most frequent first; ties in alphabetical order, so that answers are reproducible.
        top = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[: self.top_n]
        return {
            "filename": filename,
            "lang": lang,
            "lines": len(text.splitlines()),
            "words": len(words),
            "top_words": [{"word": w, "count": n} for w, n in top],
        }
