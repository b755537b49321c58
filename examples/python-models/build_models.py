"""Trains two scikit-learn classifiers on the bundled iris data set and pickles them as two
models: models/logistic/1/model.pkl (LogisticRegression) and models/tree/1/model.pkl
(DecisionTreeClassifier). About a second; nothing is downloaded.

    python3 build_models.py
"""

import os
import pickle

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, model):
    path = os.path.join(HERE, "models", name, "1", "model.pkl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        pickle.dump(model, f)
    os.replace(path + ".tmp", path)
    return path


def main():
    iris = load_iris()
    for name, model in (("logistic", LogisticRegression(max_iter=1000)),
                        ("tree", DecisionTreeClassifier(max_depth=3, random_state=0))):
        model.fit(iris.data, iris.target)
        accuracy = model.score(iris.data, iris.target)
        print(f"{name}: {type(model).__name__}, training accuracy {accuracy:.3f}; "
              f"wrote {save(name, model)}")


if __name__ == "__main__":
    main()
