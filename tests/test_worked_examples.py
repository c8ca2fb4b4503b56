"""The worked examples of the course material, reproduced to the printed digits."""
import os

import numpy as np
import pytest

import nngraph

XYZ = """
nngraph: 1
name: xyz
inputs:
  x: {shape: [1]}
  y: {shape: [1]}
  z: {shape: [1]}
layers:
  - {op: add, name: q, in: [x, y]}
  - {op: multiply, name: f, in: [q, z]}
outputs: [f]
"""


def test_add_multiply_gradients():
    """f(x, y, z) = (x + y)·z at (-2, 5, -4): df/dx = df/dy = z = -4, df/dz = x + y = 3."""
    model = nngraph.compile(XYZ, backend="reference", dtype="float64")
    data = {"x": np.array([[-2.0]]), "y": np.array([[5.0]]), "z": np.array([[-4.0]])}
    assert model.predict(data)[0, 0] == -12.0
    g = model.input_gradients(data, of="f")
    assert (g["x"][0, 0], g["y"][0, 0], g["z"][0, 0]) == (-4.0, -4.0, 3.0)


@pytest.fixture(params=["reference", "cpu"])
def backprop_222(request):
    model = nngraph.compile(os.path.join(os.path.dirname(__file__), "..", "specs", "backprop_222.yaml"), backend=request.param, dtype="float64")
    data = {"x": np.array([[0.05, 0.10]]), "target": np.array([[0.01, 0.99]])}
    return model, data


def test_backprop_222_one_step(backprop_222):
    model, data = backprop_222
    assert model.evaluate(data)["loss"] == pytest.approx(0.298371109, abs=5e-9)  # printed digits
    model.train_step(data)
    w = model.params["output.W"]
    assert w[0, 0] == pytest.approx(0.35891648, abs=1e-8)         # w5
    assert w[1, 0] == pytest.approx(0.408666186, abs=1e-8)        # w6
    assert w[0, 1] == pytest.approx(0.511301270, abs=1e-8)        # w7
    assert w[1, 1] == pytest.approx(0.561370121, abs=1e-8)        # w8
    h = model.params["hidden.W"]
    assert h[0, 0] == pytest.approx(0.149780716, abs=1e-8)        # w1
    assert model.params["hidden.b"][0] == 0.35                    # frozen by lr_mult
    assert model.evaluate(data)["loss"] == pytest.approx(0.29102777, abs=1e-8)


def test_backprop_222_ten_thousand_steps(backprop_222):
    model, data = backprop_222
    for _ in range(10_000):
        model.train_step(data)
    assert model.evaluate(data)["loss"] == pytest.approx(3.51e-5, rel=5e-3)
