"""Describes an uploaded image, or makes a thumbnail of it, with Pillow.

The request body is the image itself (any format Pillow reads), sent with a non-JSON content type
such as image/png or application/octet-stream, so `payload` is the raw bytes.
"""

import io

from PIL import Image, ImageStat, UnidentifiedImageError

from cortex_runtime import HTTPException  # Starlette's HTTPException when it is installed

TRUE_VALUES = ("1", "true", "yes", "on")


class PythonPredictor:
    def __init__(self, config):
        self.default_size = int(config.get("default_thumbnail_size", 32))
        self.max_size = int(config.get("max_thumbnail_size", 512))

    def predict(self, payload, query_params):
        if not isinstance(payload, bytes) or not payload:
            raise HTTPException(status_code=400,
                                detail="send the image bytes as the request body "
                                       "(Content-Type: image/png or application/octet-stream)")
        try:
            image = Image.open(io.BytesIO(payload))
            image.load()
        except (UnidentifiedImageError, OSError) as e:
            raise HTTPException(status_code=400, detail=f"not an image: {e}")

        if query_params.get("thumbnail", "false").lower() in TRUE_VALUES:
            return self.thumbnail(image, query_params.get("size"))

        grayscale = image.convert("L")
        return {
            "format": image.format,
            "width": image.width,
            "height": image.height,
            "mode": image.mode,
            "grayscale_average": round(ImageStat.Stat(grayscale).mean[0], 2),
        }

    def thumbnail(self, image, size):
        """PNG bytes of the image shrunk to fit in size x size (keeping the aspect ratio)."""
        try:
            size = int(size) if size is not None else self.default_size
        except ValueError:
            raise HTTPException(status_code=400, detail="size must be an integer")
        if not 1 <= size <= self.max_size:
            raise HTTPException(status_code=400,
                                detail=f"size must be between 1 and {self.max_size}")
        thumb = image.copy()
        thumb.thumbnail((size, size))
        out = io.BytesIO()
        thumb.save(out, format="PNG")
        return out.getvalue()  # bytes: sent as application/octet-stream
