"""Trains a small MLP (4 -> 16 -> 3) on scikit-learn's bundled iris data set with torch and exports
it to model/1/model.onnx (opset 13, dynamic batch axis). Takes a few seconds; nothing is
downloaded.

    python3 build_model.py
"""

import os

import torch
from sklearn.datasets import load_iris

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "model", "1", "model.onnx")


def main():
    torch.manual_seed(0)
    iris = load_iris()
    x = torch.tensor(iris.data, dtype=torch.float32)
    y = torch.tensor(iris.target, dtype=torch.long)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(300):  # full batch: 150 samples
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(dim=1) == y).float().mean().item()

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    torch.onnx.export(model, torch.zeros(1, 4), tmp, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    os.replace(tmp, OUT)
    print(f"trained on {len(x)} samples (training accuracy {accuracy:.3f}); wrote {OUT}")


if __name__ == "__main__":
    main()
