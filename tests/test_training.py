"""memkit.training: every ensemble member is the model a plain training loop gives for its seed."""

from __future__ import annotations

import pytest
import torch

from memkit import data, models, training
from memkit.device import pick_device

SGD = dict(epochs=2, batch_size=64, lr=0.05, momentum=0.9, weight_decay=1e-3)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", n_train=300)


@pytest.mark.parametrize("make", [
    lambda ds: models.mlp(ds.input_shape, [32, 16], ds.n_classes),
    lambda ds: models.cnn(ds.input_shape, ds.n_classes, channels=(4, 8), hidden=16),
], ids=["mlp", "cnn"])
def test_each_member_matches_a_separately_trained_model(digits, make):
    factory = lambda: make(digits)  # noqa: E731
    ens = training.Ensemble(factory, 3, seed=11, device="cpu")
    training.fit(ens, digits.x_train, digits.y_train, **SGD)
    for i in (0, 2):
        single = training.train_single(factory, digits.x_train, digits.y_train, seed=ens.seeds[i],
                                       device="cpu", **SGD)
        with torch.no_grad():
            expected = single(digits.x_test)
        assert torch.allclose(ens.logits(digits.x_test)[i], expected, atol=1e-4)
        for name, p in single.named_parameters():  # the weights themselves, not only the outputs
            assert torch.allclose(ens.params[name][i], p, atol=1e-5)


def test_members_differ_and_the_same_seed_repeats(digits):
    factory = lambda: models.mlp(digits.input_shape, [16], 10)  # noqa: E731
    runs = []
    for _ in range(2):
        ens = training.Ensemble(factory, 4, seed=5, device="cpu")
        training.fit(ens, digits.x_train, digits.y_train, epochs=1, batch_size=32, lr=0.1)
        runs.append(ens.logits(digits.x_test))
    assert torch.equal(runs[0], runs[1])  # deterministic
    assert not torch.allclose(runs[0][0], runs[0][1])  # independent members
    assert training.member_seeds(5, 4) == ens.seeds and len(set(ens.seeds)) == 4


def test_train_loop_gives_the_same_predictions(digits):
    factory = lambda: models.mlp(digits.input_shape, [16], 10)  # noqa: E731
    ens = training.Ensemble(factory, 3, seed=2, device="cpu")
    training.fit(ens, digits.x_train, digits.y_train, epochs=1, batch_size=32, lr=0.1)
    loop = training.train_loop(factory, digits.x_train, digits.y_train, digits.x_test, n_models=3, seed=2,
                               device="cpu", epochs=1, batch_size=32, lr=0.1)
    assert loop.shape == (3, len(digits.x_test))
    assert (loop == ens.predict(digits.x_test)).float().mean() > 0.99


def test_inactive_members_keep_their_weights(digits):
    ens = training.Ensemble(lambda: models.mlp(digits.input_shape, [16], 10), 3, seed=0, device="cpu")
    before = {k: v.detach().clone() for k, v in ens.params.items()}
    ens.active[1] = False
    training.fit(ens, digits.x_train, digits.y_train, epochs=1, batch_size=50, lr=0.1, momentum=0.9)
    for k, v in ens.params.items():
        assert torch.equal(v[1], before[k][1])
        assert not torch.equal(v[0], before[k][0])


def test_callback_sees_every_step_and_can_stop(digits):
    ens = training.Ensemble(lambda: models.mlp(digits.input_shape, [8], 10), 2, device="cpu")
    seen = []

    def callback(e, step):
        seen.append((step.step, step.epoch, step.end_of_epoch))
        return step.step == 7

    last = training.fit(ens, digits.x_train, digits.y_train, epochs=3, batch_size=100, lr=0.1, callback=callback)
    assert seen[:4] == [(0, 0, False), (1, 0, False), (2, 0, False), (3, 1, True)]
    assert last.step == 7 and len(seen) == 8


def test_member_module_and_accuracy(digits):
    ens = training.Ensemble(lambda: models.mlp(digits.input_shape, [16], 10), 2, seed=1, device="cpu")
    training.fit(ens, digits.x_train, digits.y_train, epochs=3, batch_size=32, lr=0.1)
    with torch.no_grad():
        assert torch.allclose(ens.member(1)(digits.x_test), ens.logits(digits.x_test)[1], atol=1e-6)
    acc = ens.accuracy(digits.x_test, digits.y_test)
    assert acc.shape == (2,) and (acc > 0.5).all()  # digits are learnable: far above 10% chance
    assert ens.correct(digits.x_test, digits.y_test).shape == (2, len(digits.x_test))


def test_forward_is_differentiable_in_the_inputs(digits):
    ens = training.Ensemble(lambda: models.mlp(digits.input_shape, [8], 10), 2, device="cpu")
    xs = digits.x_train[:10].expand(2, -1, -1, -1, -1).clone().requires_grad_()
    ens.forward(xs).sum().backward()
    assert xs.grad is not None and xs.grad.shape == xs.shape


def test_device_choice():
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert pick_device(None) in (torch.device("cpu"), torch.device("mps"))
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="at least one model"):
        training.Ensemble(lambda: models.mlp((4,), [], 2), 0)


def test_correct_restores_each_submodules_mode_and_member_leaves_the_generator(digits):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(64, 10))
    model[1].eval()  # a submodule in its own mode
    training.correct(model, digits.x_test, digits.y_test)
    assert model.training and not model[1].training
    ens = training.Ensemble(lambda: models.mlp(digits.input_shape, [8], 10), 2, device="cpu")
    state = torch.random.get_rng_state()
    ens.member(0)
    assert torch.equal(state, torch.random.get_rng_state())


def test_members_scored_on_their_own_data_sets_and_steps_carry_their_batch(digits):
    x = torch.stack([digits.x_train[:100], digits.x_train[100:200]])  # (D=2, N, ...)
    y = torch.stack([digits.y_train[:100], digits.y_train[100:200]])
    index = torch.tensor([1, 0, 1])
    ens = training.Ensemble(lambda: models.mlp(digits.input_shape, [8], 10), 3, device="cpu")
    batches = []
    training.fit(ens, x, y, epochs=1, batch_size=30, lr=0.1, data_index=index,
                 callback=lambda e, step: batches.append(step.batch))
    assert batches[0] is None and [b.shape for b in batches[1:]] == [(3, 30)] * 3 + [(3, 10)]
    per_member = ens.correct(x, y, batch_size=7, data_index=index)
    for s, d in enumerate(index.tolist()):
        assert torch.equal(per_member[s], ens.correct(x[d], y[d])[s])
    assert torch.allclose(ens.accuracy(x, y, data_index=index), per_member.float().mean(1))
    assert training.steps_per_epoch(100, 30) == 4 and training.steps_per_epoch(90, 30) == 3
