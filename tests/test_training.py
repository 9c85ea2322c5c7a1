"""memkit.training: every ensemble member is the model a plain training loop gives for its seed."""

from __future__ import annotations

import pytest
import torch

from memkit import data, models, training
from memkit.device import pick_device

SGD = training.SGD(epochs=2, batch_size=64, lr=0.05, momentum=0.9, weight_decay=1e-3)
PLAIN = training.SGD(epochs=1, batch_size=32, lr=0.1)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", n_train=300)


@pytest.mark.parametrize(
    "make",
    [
        lambda ds: models.mlp(ds.input_shape, [32, 16], ds.n_classes),
        lambda ds: models.cnn(ds.input_shape, ds.n_classes, channels=(4, 8), hidden=16),
    ],
    ids=["mlp", "cnn"],
)
def test_each_member_matches_a_separately_trained_model(digits, make):
    def factory():
        return make(digits)

    ens = training.Ensemble(factory, 3, seed=11, device="cpu")
    training.fit(ens, digits.x_train, digits.y_train, SGD)
    for i in (0, 2):
        single = training.train_single(factory, digits.x_train, digits.y_train, SGD, seed=ens.seeds[i], device="cpu")
        with torch.no_grad():
            expected = single(digits.x_test)
        assert torch.allclose(ens.logits(digits.x_test)[i], expected, atol=1e-4)
        for name, p in single.named_parameters():  # the weights themselves, not only the outputs
            assert torch.allclose(ens.params[name][i], p, atol=1e-5)


def test_members_differ_and_the_same_seed_repeats(digits):
    def factory():
        return models.mlp(digits.input_shape, [16], 10)

    runs = []
    for _ in range(2):
        ens = training.Ensemble(factory, 4, seed=5, device="cpu")
        training.fit(ens, digits.x_train, digits.y_train, PLAIN)
        runs.append(ens.logits(digits.x_test))
    assert torch.equal(runs[0], runs[1])  # deterministic
    assert not torch.allclose(runs[0][0], runs[0][1])  # independent members
    assert training.member_seeds(5, 4) == ens.seeds and len(set(ens.seeds)) == 4


def test_the_per_seed_loop_gives_the_same_predictions(digits):
    def factory():
        return models.mlp(digits.input_shape, [16], 10)

    ens = training.Ensemble(factory, 3, seed=2, device="cpu")
    training.fit(ens, digits.x_train, digits.y_train, PLAIN)
    loop = training.train_seeds(
        factory, digits.x_train, digits.y_train, PLAIN, n_seeds=3, seed=2, device="cpu", batched=False
    ).predict(digits.x_test)
    assert loop.shape == (3, len(digits.x_test))
    assert (loop == ens.predict(digits.x_test)).float().mean() > 0.99


def test_inactive_members_keep_their_weights(digits):
    ens = training.Ensemble(lambda: models.mlp(digits.input_shape, [16], 10), 3, seed=0, device="cpu")
    before = {k: v.detach().clone() for k, v in ens.params.items()}
    ens.active[1] = False
    training.fit(ens, digits.x_train, digits.y_train, training.SGD(lr=0.1, batch_size=50, momentum=0.9))
    for k, v in ens.params.items():
        assert torch.equal(v[1], before[k][1])
        assert not torch.equal(v[0], before[k][0])


def test_callback_sees_every_step_and_can_stop(digits):
    ens = training.Ensemble(lambda: models.mlp(digits.input_shape, [8], 10), 2, device="cpu")
    seen = []

    def callback(e, step):
        seen.append((step.step, step.epoch, step.end_of_epoch))
        return step.step == 7

    last = training.fit(
        ens, digits.x_train, digits.y_train, training.SGD(lr=0.1, batch_size=100, epochs=3), callback=callback
    )
    assert seen[:4] == [(0, 0, False), (1, 0, False), (2, 0, False), (3, 1, True)]
    assert last.step == 7 and len(seen) == 8


def test_member_module_and_accuracy(digits):
    ens = training.Ensemble(lambda: models.mlp(digits.input_shape, [16], 10), 2, seed=1, device="cpu")
    training.fit(ens, digits.x_train, digits.y_train, training.SGD(lr=0.1, batch_size=32, epochs=3))
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
    training.fit(
        ens,
        x,
        y,
        training.SGD(lr=0.1, batch_size=30),
        data_index=index,
        callback=lambda e, step: batches.append(step.batch),
    )
    assert batches[0] is None and [b.shape for b in batches[1:]] == [(3, 30)] * 3 + [(3, 10)]
    per_member = ens.correct(x, y, batch_size=7, data_index=index)
    for s, d in enumerate(index.tolist()):
        assert torch.equal(per_member[s], ens.correct(x[d], y[d])[s])
    assert torch.allclose(ens.accuracy(x, y, data_index=index), per_member.float().mean(1))
    assert training.steps_per_epoch(100, 30) == 4 and training.steps_per_epoch(90, 30) == 3


# ------------------------------------------------------------------ train_seeds: one way, two paths


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(
    "make",
    [
        lambda ds, p: models.mlp(ds.input_shape, [32], ds.n_classes, dropout=p, input_dropout=0.1, hidden_noise=0.2),
        lambda ds, p: models.cnn(ds.input_shape, ds.n_classes, channels=(4,), hidden=16, dropout=p, input_noise=0.3),
    ],
    ids=["mlp", "cnn"],
)
def test_batched_equals_per_seed_with_dropout_and_noise_at_per_member_rates(digits, make):
    factories = [lambda p=p: make(digits, p) for p in (0.1, 0.3, 0.5)]
    sgd = training.SGD(lr=0.05, batch_size=64, epochs=2, momentum=0.9)
    batched = training.train_seeds(
        factories, digits.x_train, digits.y_train, sgd, n_seeds=None, seed=4, device="cpu", batched=True
    )
    loop = training.train_seeds(
        factories, digits.x_train, digits.y_train, sgd, n_seeds=None, seed=4, device="cpu", batched=False
    )
    assert batched.batched and not loop.batched
    for i in range(3):
        assert _max_diff(batched.member(i), loop.member(i)) < 1e-5
    assert [round(float(batched.member(i)[-2].rate), 6) for i in range(3)] == [0.1, 0.3, 0.5]  # stacked buffers
    plain = training.train_seeds(
        lambda: make(digits, 0.0), digits.x_train, digits.y_train, sgd, n_seeds=1, seed=4, device="cpu"
    )
    assert _max_diff(plain.member(0), batched.member(0)) > 1e-3  # the noise did change the training


def test_noise_layers_draw_per_member_numbers_and_are_the_identity_in_eval_mode():
    x = torch.ones(4, 1000)
    a, b = (training.init_model(lambda: models.Dropout(0.5), s) for s in (1, 2))
    assert torch.equal(a.eval()(x), x) and torch.equal(models.GaussianNoise(1.0).eval()(x), x)
    a.train(), b.train()
    ma, mb = a(x), b(x)
    assert set(ma.unique().tolist()) == {0.0, 2.0} and abs((ma == 0).float().mean().item() - 0.5) < 0.02
    assert not torch.equal(ma, mb)  # keys differ between seeds
    models.set_noise_step(a, 1)
    assert not torch.equal(a(x), ma) and torch.equal(models.set_noise_step(a, 0) or a(x), ma)
    eps = training.init_model(lambda: models.GaussianNoise(2.0), 0).train()(torch.zeros(100_000)) / 2
    assert abs(eps.mean().item()) < 0.02 and abs(eps.std().item() - 1) < 0.02
    with pytest.raises(ValueError, match="dropout rate"):
        models.Dropout(1.0)


def test_convolutional_seeds_loop_on_a_cpu_unless_batched_is_asked_for(digits):
    x, y = digits.x_train, digits.y_train

    def cnn():
        return models.cnn((1, 8, 8), 10, channels=[2], hidden=4)

    sgd = training.SGD(lr=0.05, batch_size=32)
    assert models.is_convolutional(cnn) and not models.is_convolutional(lambda: models.mlp((4,), [8], 2))
    assert not training.train_seeds(cnn, x[:64], y[:64], sgd, n_seeds=2, device="cpu").batched
    assert training.train_seeds(cnn, x[:64], y[:64], sgd, n_seeds=2, device="cpu", batched=True).batched
    assert training.train_seeds(lambda: models.mlp((1, 8, 8), [8], 10), x[:64], y[:64], sgd, n_seeds=2).batched


def test_needs_loop_for_batch_norm_but_not_for_noise_layers():
    assert not models.needs_loop(lambda: models.mlp((4,), [8], 2, dropout=0.5, input_noise=0.1))
    assert models.needs_loop(lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8)))
    assert models.needs_loop(torch.nn.Sequential(torch.nn.Dropout(0.5)))  # torch's own generator
    torch.manual_seed(0)
    plain = models.mlp((4,), [8], 2)
    torch.manual_seed(0)
    same = models.mlp((4,), [8], 2, dropout=0.0)
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), same.parameters(), strict=True))


def test_per_member_lr_and_weight_decay_equal_torch_sgd(digits):
    def factory():
        return models.mlp(digits.input_shape, [16], 10)

    sgd = training.SGD(lr=(0.02, 0.1, 0.05), weight_decay=(0.0, 1e-2, 1e-3), batch_size=64, epochs=2, momentum=0.9)
    seeds = training.train_seeds(factory, digits.x_train, digits.y_train, sgd, n_seeds=3, seed=1, device="cpu")
    assert seeds.batched
    for i in range(3):
        single = training.train_single(factory, digits.x_train, digits.y_train, sgd.member(i), seed=seeds.seeds[i])
        assert _max_diff(seeds.member(i), single) < 1e-5
    with pytest.raises(ValueError, match="one value per member"):
        training.train_seeds(factory, digits.x_train, digits.y_train, sgd, n_seeds=2, device="cpu")


@pytest.mark.parametrize("schedule", [dict(schedule="cosine"), dict(schedule="step", step_epochs=1)])
def test_schedules_in_the_batched_path_equal_train_single(digits, schedule):
    def factory():
        return models.mlp(digits.input_shape, [16], 10)

    sgd = training.SGD(lr=0.1, batch_size=64, epochs=3, momentum=0.9, **schedule)
    seeds = training.train_seeds(factory, digits.x_train, digits.y_train, sgd, n_seeds=2, seed=7, device="cpu")
    for i in range(2):
        single = training.train_single(factory, digits.x_train, digits.y_train, sgd, seed=seeds.seeds[i])
        assert _max_diff(seeds.member(i), single) < 1e-5


def test_augmentation_in_the_batched_path_equals_the_per_seed_path(digits):
    def factory():
        return models.cnn(digits.input_shape, 10, channels=(4,), hidden=16)

    sgd = training.SGD(lr=0.05, batch_size=64, momentum=0.9, augment=True)
    runs = [
        training.train_seeds(factory, digits.x_train, digits.y_train, sgd, n_seeds=2, seed=8, device="cpu", batched=b)
        for b in (True, False)
    ]
    assert runs[0].batched and not runs[1].batched
    for i in range(2):
        assert _max_diff(runs[0].member(i), runs[1].member(i)) < 1e-5
    plain = training.train_seeds(
        factory,
        digits.x_train,
        digits.y_train,
        training.SGD(lr=0.05, batch_size=64, momentum=0.9),
        n_seeds=2,
        seed=8,
        device="cpu",
    )
    assert _max_diff(plain.member(0), runs[0].member(0)) > 1e-4  # the crops and flips did change the training


def test_lr_factor():
    sgd = training.SGD(lr=1.0, batch_size=1, schedule="step", step_epochs=2)
    assert [sgd.lr_factor(t, 100, 10) for t in (0, 19, 20, 45)] == [1.0, 1.0, 0.5, 0.25]
    cos = training.SGD(lr=1.0, batch_size=1, schedule="cosine")
    assert cos.lr_factor(0, 10, 5) == 1.0 and abs(cos.lr_factor(5, 10, 5) - 0.5) < 1e-12
    assert training.SGD(lr=1.0, batch_size=1).lr_factor(7, 10, 5) == 1.0


def test_fit_twice_does_not_reuse_momentum(digits):
    import copy

    def factory():
        return models.mlp(digits.input_shape, [16], 10)

    sgd = training.SGD(lr=0.05, batch_size=64, momentum=0.9)
    ens = training.Ensemble(factory, 2, seed=3, device="cpu")
    training.fit(ens, digits.x_train, digits.y_train, sgd)
    first = ens.member(0)
    training.fit(ens, digits.x_train, digits.y_train, sgd)
    # a fresh torch.optim.SGD (zero momentum) on the model after the first call, same data order
    fresh = training.train_single(lambda: copy.deepcopy(first), digits.x_train, digits.y_train, sgd, seed=ens.seeds[0])
    assert _max_diff(ens.member(0), fresh) < 1e-5


@pytest.mark.parametrize("batched", [None, False])
def test_hook_sees_the_model_and_its_batch_is_trained_on(digits, batched):
    def factory():
        return models.mlp(digits.input_shape, [16], 10)

    sgd = training.SGD(lr=0.1, batch_size=64, epochs=2)
    seen = []

    def hook(m, step, xb, yb):
        assert isinstance(m, training.Seeds) and xb.shape[:2] == yb.shape == (len(m), len(step.batch[-1]))
        seen.append((tuple(m.members), step.step, m.forward(xb).shape))
        return xb, (yb + 1) % 10

    run = dict(n_seeds=2, seed=5, device="cpu", batched=batched)
    hooked = training.train_seeds(factory, digits.x_train, digits.y_train, sgd, hook=hook, **run)
    shifted = training.train_seeds(factory, digits.x_train, (digits.y_train + 1) % 10, sgd, **run)
    assert torch.equal(hooked.logits(digits.x_test), shifted.logits(digits.x_test))
    assert seen[0][1] == 0 and seen[0][2][-1] == 10
    assert {s[0] for s in seen} == ({(0, 1)} if hooked.batched else {(0,), (1,)})


def test_train_seeds_returns_the_same_type_both_ways(digits):
    def factory():
        return models.mlp(digits.input_shape, [16], 10)

    sgd = training.SGD(lr=0.1, batch_size=64)
    views = []
    runs = [
        training.train_seeds(
            factory,
            digits.x_train,
            digits.y_train,
            sgd,
            n_seeds=2,
            seed=2,
            device="cpu",
            batched=b,
            callback=lambda m, step: views.append(tuple(m.members)),
        )
        for b in (True, False)
    ]
    assert [r.batched for r in runs] == [True, False] and all(isinstance(r, training.Seeds) for r in runs)
    for name in ("logits", "predict"):
        a, b = (getattr(r, name)(digits.x_test) for r in runs)
        assert a.shape == b.shape and (a.shape[0] == 2)
    assert torch.equal(runs[0].correct(digits.x_test, digits.y_test), runs[1].correct(digits.x_test, digits.y_test))
    assert runs[0].accuracy(digits.x_test, digits.y_test).shape == (2,) and runs[0].seeds == runs[1].seeds
    xs = digits.x_test[:5].expand(2, -1, -1, -1, -1)
    assert torch.allclose(runs[0].forward(xs), runs[1].forward(xs), atol=1e-5)
    for a, b in zip(*(r.state_dicts() for r in runs), strict=True):
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    n_steps = training.steps_per_epoch(len(digits.x_train), 64) + 1
    assert views == [(0, 1)] * n_steps + [(0,)] * n_steps + [(1,)] * n_steps
    with pytest.raises(IndexError, match="not in this view"):
        runs[1].member(3)


def test_data_index_in_both_paths(digits):
    x = torch.stack([digits.x_train[:100], digits.x_train[100:200]])
    y = torch.stack([digits.y_train[:100], digits.y_train[100:200]])
    index = torch.tensor([1, 0, 1])

    def factory():
        return models.mlp(digits.input_shape, [8], 10)

    runs = [
        training.train_seeds(
            factory, x, y, training.SGD(lr=0.1, batch_size=30), n_seeds=3, device="cpu", data_index=index, batched=b
        )
        for b in (True, False)
    ]
    assert torch.equal(*(r.correct(x, y, data_index=index) for r in runs))


def test_subsets_in_both_paths_train_each_member_on_its_own_examples(digits):
    """Member i sees only subsets[i] (e.g. random halves for held-out scores), batched or one by one."""
    x, y = digits.x_train[:120], digits.y_train[:120]
    g = torch.Generator().manual_seed(0)
    subsets = torch.stack([torch.randperm(120, generator=g)[:60] for _ in range(3)])

    def factory():
        return models.mlp(digits.input_shape, [8], 10)

    seen = [[set() for _ in range(3)] for _ in range(2)]

    def record(path):
        def callback(models, step):
            for row, i in enumerate(models.members):
                if step.batch is not None:
                    seen[path][i].update(step.batch[row].tolist())

        return callback

    runs = [
        training.train_seeds(
            factory,
            x,
            y,
            training.SGD(lr=0.1, batch_size=16, epochs=2),
            n_seeds=3,
            device="cpu",
            subsets=subsets,
            callback=record(k),
            batched=b,
        )
        for k, b in enumerate((None, False))
    ]
    assert runs[0].batched and not runs[1].batched
    for path in seen:
        assert [s == set(subsets[i].tolist()) for i, s in enumerate(path)] == [True] * 3
    for i in range(3):
        for a, b in zip(runs[0].member(i).parameters(), runs[1].member(i).parameters(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"every entry in 0\.\.119"):
        training.train_seeds(factory, x, y, training.SGD(lr=0.1, batch_size=16), n_seeds=3, subsets=subsets + 100)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (dict(lr=0.0), "lr=0.0: every value must be > 0"),
        (dict(lr=(0.1, -1.0)), "one per member"),
        (dict(batch_size=0), "whole number of examples"),
        (dict(epochs=0), "whole number of epochs"),
        (dict(schedule="linear"), "use 'constant', 'cosine' or 'step'"),
        (dict(schedule="step"), "give step_epochs"),
        (dict(step_epochs=3), "exactly when schedule='step'"),
        (dict(lr=(0.1, 0.2), weight_decay=(0.0,)), "of one length"),
        (dict(momentum=-0.5), "momentum"),
    ],
)
def test_sgd_errors_say_what_to_do(bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        training.SGD(**{"lr": 0.1, "batch_size": 8, **bad})


def test_train_seeds_argument_errors(digits):
    def factory():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), torch.nn.BatchNorm1d(8))

    sgd = training.SGD(lr=0.1, batch_size=64)
    with pytest.raises(ValueError, match="needs the per-seed loop"):
        training.train_seeds(factory, digits.x_train, digits.y_train, sgd, n_seeds=2, batched=True)
    with pytest.raises(ValueError, match="n_seeds=None"):
        training.train_seeds([factory, factory], digits.x_train, digits.y_train, sgd, n_seeds=3)
    with pytest.raises(ValueError, match="set augment=False"):
        training.train_seeds(
            factory,
            digits.x_train.flatten(1),
            digits.y_train,
            training.SGD(lr=0.1, batch_size=8, augment=True),
            n_seeds=1,
        )


# ------------------------------------------------------------------ the batched-linear fast path (plain MLPs)


def test_the_fast_path_is_taken_for_plain_mlps_only(digits):
    mlp = training.Ensemble(lambda: models.mlp(digits.input_shape, [8], 10, dropout=0.2, input_noise=0.1), 2)
    cnn = training.Ensemble(lambda: models.cnn(digits.input_shape, 10, channels=(2,), hidden=8), 2)
    assert mlp.fast_path and not cnn.fast_path
    xs = digits.x_test[:7].expand(2, -1, -1, -1, -1)
    fast = mlp.forward(xs)
    mlp.fast_path = False
    assert torch.allclose(fast, mlp.forward(xs), atol=1e-6)


def test_fast_path_equals_train_single_and_the_vmap_path_with_everything_on(digits):
    """Momentum, per-member lr and weight decay, a schedule, noise layers, data_index, subsets, a hook
    and an inactive member: every member of the fast path is train_single's model for its seed."""
    x = torch.stack([digits.x_train[:120], digits.x_train[120:240]])
    y = torch.stack([digits.y_train[:120], digits.y_train[120:240]])
    index = torch.tensor([1, 0, 1])
    g = torch.Generator().manual_seed(1)
    subsets = torch.stack([torch.randperm(120, generator=g)[:80] for _ in range(3)])
    factories = [
        lambda p=p: models.mlp(digits.input_shape, [16, 8], 10, dropout=p, input_noise=0.1) for p in (0.1, 0.2, 0.3)
    ]
    sgd = training.SGD(
        lr=(0.05, 0.1, 0.02), weight_decay=(1e-3, 0.0, 1e-2), batch_size=16, epochs=2, momentum=0.9, schedule="cosine"
    )

    def hook(m, step, xb, yb):
        m.forward(xb)  # the members in eval mode, inside the training
        return xb * 0.9, yb

    runs = []
    for fast in (True, False):
        ens = training.Ensemble(factories, seed=3, device="cpu")
        ens.fast_path = fast
        ens.active[1] = False
        view = training.Seeds(range(3), ens.seeds, ensemble=ens)
        training.fit(
            ens,
            x,
            y,
            sgd,
            data_index=index,
            subsets=subsets,
            hook=lambda _, st, xb, yb, view=view: hook(view, st, xb, yb),
        )
        runs.append(ens)
    assert runs[0]._fast is not None
    for i in (0, 2):
        xi, yi = x[index[i]][subsets[i]], y[index[i]][subsets[i]]
        single = training.train_single(
            factories[i],
            xi,
            yi,
            sgd.member(i),
            seed=runs[0].seeds[i],
            device="cpu",
            hook=lambda m, st, xb, yb: (xb * 0.9, yb),
        )
        for name, p in single.named_parameters():
            torch.testing.assert_close(runs[0].params[name][i], p, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(runs[0].params[name][i], runs[1].params[name][i], atol=1e-5, rtol=1e-5)
    untouched = training.Ensemble(factories, seed=3, device="cpu")
    assert all(torch.equal(runs[0].params[k][1], v[1]) for k, v in untouched.params.items())
