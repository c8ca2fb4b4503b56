"""The optimizer update on MKL's own OpenMP threads (kernels/cpu/team.py): the same bits as
the update on one thread, for every optimizer, with segments cut at the parts' boundary and
frozen ones left alone."""
import numpy as np
import pytest

import nngraph
from nngraph.backends.cpu import update
from nngraph.kernels.cpu import optim, team
from test_backends import random_batch

pytestmark = pytest.mark.skipif(not team.AVAILABLE, reason="no Intel OpenMP team (MKL only)")

# Dense layers of 3*40+40, 40*33+33 (frozen: lr_mult 0), 33*5+5 parameters: the parts'
# boundary falls inside the frozen layer's weights
SPEC = """
nngraph: 1
name: team_net
inputs: {x: {shape: [3]}, label: {shape: [], dtype: int64}}
layers:
  - {op: dense, name: d1, units: 40, activation: tanh}
  - {op: dense, name: d2, units: 33, activation: relu, lr_mult: 0}
  - {op: dense, name: out, units: 5}
losses:
  - {op: softmax_cross_entropy, in: [out, label]}
"""
OPTIMIZERS = [{"type": "sgd", "lr": 0.1}, {"type": "sgd", "lr": 0.1, "momentum": 0.9},
              {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
              {"type": "rmsprop", "lr": 0.01}, {"type": "adagrad", "lr": 0.1},
              {"type": "adam", "lr": 0.01}]


def _trained(monkeypatch, optimizer, team_min):
    monkeypatch.setattr(update, "TEAM_MIN", team_min)
    monkeypatch.setenv("NNGRAPH_THREADS", "2")
    model = nngraph.compile(SPEC, backend="cpu", seed=4)
    model.set_optimizer(optimizer)
    losses = [model.train_step(random_batch(model.net, 6, "float32", seed=s)) for s in range(4)]
    return model, losses


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: "-".join(map(str, o.values())))
def test_team_update_gives_the_bits_of_the_serial_update(monkeypatch, optimizer):
    on_team, team_losses = _trained(monkeypatch, optimizer, 0)
    alone, losses = _trained(monkeypatch, optimizer, 10 ** 9)
    assert isinstance(next(iter(on_team.executor.team_updates.values())), optim.TeamUpdate)
    assert list(alone.executor.team_updates.values()) == [None]
    assert team_losses == losses
    for k in alone.params:
        np.testing.assert_array_equal(on_team.params[k], alone.params[k], err_msg=k)
    for k in alone.opt_state:
        np.testing.assert_array_equal(on_team.opt_state[k], alone.opt_state[k], err_msg=k)
    frozen = nngraph.compile(SPEC, backend="cpu", seed=4).params["d2.W"]
    np.testing.assert_array_equal(on_team.params["d2.W"], frozen)


def test_every_part_runs_on_a_team_of_one():
    """Threads take parts with a counter: one thread takes them all."""
    n = 1000
    rng = np.random.default_rng(0)
    p, g = rng.random(n, np.float32), rng.random(n, np.float32)
    v = rng.random(n, np.float32)
    seg = (np.array([0, 300, 501]), np.array([300, 501, n]), np.array([1.0, 0.5, 2.0]))
    expected = [a.copy() for a in (p, v)]
    optim.sgd_update(*expected[:1], g, expected[1], *seg, 0.1, 0.9, False)
    kernel, args = optim.sgd_call(p, g, v, *seg, 0.1, 0.9, False)
    update = optim.TeamUpdate(kernel, args)
    assert update.job.words[8:10].tolist() == [0, 496]         # cut at 64 bytes
    update.run(args, 1)
    np.testing.assert_array_equal(p, expected[0])
    np.testing.assert_array_equal(v, expected[1])
    assert update.job.words[0] >= team.PARTS                   # every part was taken


def test_small_or_split_networks_update_on_this_thread(monkeypatch):
    monkeypatch.setenv("NNGRAPH_THREADS", "2")
    model = nngraph.compile(SPEC, backend="cpu", seed=4)             # 1,683 parameters
    model.train_step(random_batch(model.net, 6, "float32"))
    assert list(model.executor.team_updates.values()) == [None]
    monkeypatch.setenv("NNGRAPH_THREADS", "1")
    monkeypatch.setattr(update, "TEAM_MIN", 0)
    model = nngraph.compile(SPEC, backend="cpu", seed=4)
    model.train_step(random_batch(model.net, 6, "float32"))
    assert list(model.executor.team_updates.values()) == [None]
