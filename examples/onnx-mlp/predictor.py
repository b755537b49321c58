"""Predicts the species of an iris flower with an MLP served by ONNX Runtime.

The payload is one flower ({"sepal_length": 5.2, ...}, in cm) or a list of them; the answer is
the class name and its probabilities, or a list of those.
"""

import numpy as np

from cortex_runtime import HTTPException  # Starlette's HTTPException when it is installed

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABELS = ["setosa", "versicolor", "virginica"]


class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client
        model = onnx_client.get_model()  # {session, signatures, input_signatures}
        print(f"serving an ONNX model with inputs {model['input_signatures']}")

    def predict(self, payload):
        flowers = payload if isinstance(payload, list) else [payload]
        try:
            rows = [[float(flower[f]) for f in FEATURES] for flower in flowers]
        except (KeyError, TypeError, ValueError):
            raise HTTPException(status_code=400,
                                detail="send a JSON object (or a list of them) with numbers for "
                                       + ", ".join(FEATURES))
        # A bare value: the model has one input, [batch, 4] float32 (the list is converted).
        logits = self.client.predict(rows)[0]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        answers = [{"label": LABELS[int(p.argmax())],
                    "probabilities": {label: round(float(v), 4) for label, v in zip(LABELS, p)}}
                   for p in probabilities]
        return answers if isinstance(payload, list) else answers[0]
