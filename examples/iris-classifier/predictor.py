"""Predicts the species of an iris flower from its sepal and petal measurements (in cm)."""

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from cortex_runtime import HTTPException  # Starlette's HTTPException when it is installed

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class PythonPredictor:
    def __init__(self, config):
        iris = load_iris()  # ships with scikit-learn: no download
        self.labels = [str(name) for name in iris.target_names]  # setosa, versicolor, virginica
        self.model = LogisticRegression(max_iter=int(config.get("max_iter", 1000)))
        self.model.fit(iris.data, iris.target)
        accuracy = self.model.score(iris.data, iris.target)
        print(f"trained LogisticRegression on {len(iris.data)} samples "
              f"(training accuracy {accuracy:.3f})")

    def predict(self, payload):
        if not isinstance(payload, dict):
            raise HTTPException(status_code=400,
                                detail="send a JSON object with " + ", ".join(FEATURES))
        missing = [f for f in FEATURES if f not in payload]
        if missing:
            raise HTTPException(status_code=400, detail="missing field(s): " + ", ".join(missing))
        try:
            row = np.array([[float(payload[f]) for f in FEATURES]])
        except (TypeError, ValueError):
            raise HTTPException(status_code=400, detail="measurements must be numbers")
        label_id = int(self.model.predict(row)[0])
        return self.labels[label_id]
