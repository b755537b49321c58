"""Two scikit-learn iris classifiers behind one API: the request chooses the model by name
(`?model=tree`, or "model" in the payload; default `logistic`) and, optionally, its version."""

import os
import pickle

from cortex_runtime import HTTPException  # Starlette's HTTPException when it is installed

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABELS = ["setosa", "versicolor", "virginica"]


class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client
        self.default_model = config.get("default_model", "logistic")

    def load_model(self, model_path):
        # Called once per model version, on its first use: what it returns is what
        # python_client.get_model answers.
        with open(os.path.join(model_path, "model.pkl"), "rb") as f:
            model = pickle.load(f)
        print(f"loaded {type(model).__name__} from {model_path}")
        return model

    def predict(self, payload, query_params):
        if not isinstance(payload, dict):
            raise HTTPException(status_code=400, detail="send a JSON object")
        name = query_params.get("model") or payload.get("model") or self.default_model
        version = query_params.get("version") or str(payload.get("version", "latest"))
        try:
            row = [[float(payload[f]) for f in FEATURES]]
        except (KeyError, TypeError, ValueError):
            raise HTTPException(status_code=400,
                                detail="numbers are needed for " + ", ".join(FEATURES))
        model = self.client.get_model(name, version)
        return {"model": name, "version": version,
                "label": LABELS[int(model.predict(row)[0])]}
