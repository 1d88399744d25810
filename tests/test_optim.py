"""The shared optimiser step (tfvis.optim) against Adam and heavy-ball momentum written out in NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from tfvis import optim


def _grads(steps, shape, seed=0):
    """Gradients spanning several orders of magnitude, down to the size of epsilon."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=shape) * 10.0 ** rng.uniform(-9, 1, size=shape)).astype(np.float32) for _ in range(steps)]


def numpy_adam(x, grads, rates, sign, beta1=0.9, beta2=0.999, epsilon=1e-8, epsilon_hat=True):
    """Kingma & Ba: Algorithm 1 (epsilon_hat=False) or the epsilon-hat form of their section 2."""
    x = x.astype(np.float64)
    m, v = np.zeros_like(x), np.zeros_like(x)
    for t, (g, lr) in enumerate(zip(grads, rates), start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        if epsilon_hat:
            x = x + sign * lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(v) + epsilon)
        else:
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
            x = x + sign * lr * m_hat / (np.sqrt(v_hat) + epsilon)
    return x


def numpy_momentum(x, grads, rates, sign, mu=0.9):
    x = x.astype(np.float64)
    u = np.zeros_like(x)
    for g, lr in zip(grads, rates):
        u = mu * u + sign * lr * g
        x = x + u
    return x


def _run(make, start, grads, rates, compiled):
    """Apply ``make([variable])`` for each gradient, in a tf.function when ``compiled``, the rate passed per call."""
    x = tf.Variable(start)
    step = make([x])

    def one(g, lr):
        step([g], lr)

    one = tf.function(one) if compiled else one
    for g, lr in zip(grads, rates):
        one(tf.constant(g), tf.constant(lr, tf.float32))
    return x.numpy()


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("epsilon_hat", [True, False])
@pytest.mark.parametrize("compiled", [True, False])
def test_adam_matches_the_formula(sign, epsilon_hat, compiled):
    start = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    grads = _grads(12, start.shape)
    rates = [0.05] * 8 + [0.005] * 4  # a schedule: the rate changes between calls
    got = _run(lambda v: optim.Adam(v, 0.05, sign=sign, epsilon_hat=epsilon_hat), start, grads, rates, compiled)
    want = numpy_adam(start, grads, rates, sign, epsilon_hat=epsilon_hat)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_two_epsilons_differ_for_gradients_as_small_as_epsilon():
    start = np.zeros(4, np.float32)
    grads = [np.full(4, 1e-8, np.float32)] * 3
    hat = _run(lambda v: optim.Adam(v, 1.0, epsilon_hat=True), start, grads, [1.0] * 3, False)
    algorithm = _run(lambda v: optim.Adam(v, 1.0, epsilon_hat=False), start, grads, [1.0] * 3, False)
    np.testing.assert_allclose(hat, numpy_adam(start, grads, [1.0] * 3, 1, epsilon_hat=True), rtol=1e-5)
    np.testing.assert_allclose(algorithm, numpy_adam(start, grads, [1.0] * 3, 1, epsilon_hat=False), rtol=1e-5)
    assert not np.allclose(hat, algorithm, rtol=1e-2)


def test_adam_default_rate_and_first_step():
    """Adam's first step is ``lr`` times the gradient's sign, whatever its size (epsilon aside)."""
    x = tf.Variable([1.0, 1.0, 1.0])
    optim.Adam([x], learning_rate=0.1, sign=1)([tf.constant([1e3, -2.0, 1e-1])])
    np.testing.assert_allclose(x.numpy(), [1.1, 0.9, 1.1], rtol=1e-5)


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("compiled", [True, False])
def test_momentum_matches_the_formula(sign, compiled):
    start = np.random.default_rng(2).normal(size=(5,)).astype(np.float32)
    grads = _grads(10, start.shape, seed=3)
    rates = [0.3] * 6 + [0.03] * 4
    got = _run(lambda v: optim.Momentum(v, 0.3, sign=sign), start, grads, rates, compiled)
    np.testing.assert_allclose(got, numpy_momentum(start, grads, rates, sign), rtol=1e-5, atol=1e-6)


def test_several_variables_each_get_their_own_state():
    a, b = tf.Variable([0.0]), tf.Variable([0.0, 0.0])
    step = optim.Momentum([a, b], learning_rate=1.0, sign=1, momentum=0.5)
    for _ in range(2):
        step([tf.constant([1.0]), tf.constant([2.0, -2.0])])
    np.testing.assert_allclose(a.numpy(), [1.0 + 1.5])
    np.testing.assert_allclose(b.numpy(), [2.0 + 3.0, -5.0])


def test_descent_minimises_a_quadratic():
    target = np.array([3.0, -1.0], np.float32)
    for make in (lambda v: optim.Adam(v, 0.1, sign=-1), lambda v: optim.Momentum(v, 0.05, sign=-1)):
        x = tf.Variable([0.0, 0.0])
        step = make([x])
        for _ in range(300):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum((x - target) ** 2)
            step([tape.gradient(loss, x)])
        np.testing.assert_allclose(x.numpy(), target, atol=0.05)


def test_bad_sign():
    with pytest.raises(ValueError, match=r"sign=0"):
        optim.Adam([tf.Variable(0.0)], sign=0)
    with pytest.raises(ValueError, match=r"\+1 \(ascent"):
        optim.Momentum([tf.Variable(0.0)], sign=2)


def test_plain_gradient_step_matches_the_formula():
    x = tf.Variable([1.0, -2.0])
    step = optim.Gradient([x], learning_rate=0.5, sign=1, project=lambda v: tf.clip_by_value(v, -1.5, 1.5))
    step([tf.constant([0.4, -1.0])])
    np.testing.assert_allclose(x.numpy(), [1.2, -1.5])  # 1 + 0.5 * 0.4; -2 - 0.5 clipped


def test_loop_runs_any_stretches_like_single_steps_with_its_schedule(monkeypatch):
    """Descent on (x - 3)^2 with a rate that drops at step 5 of 8: NumPy's steps, whatever the stretches."""
    want, x_np = [], 0.0
    for index in range(8):
        want.append((x_np - 3.0) ** 2)
        x_np -= (0.25 if index < 5 else 0.025) * 2.0 * (x_np - 3.0)
    for seconds in (0.0, 1e9):  # one step per call; all steps in one call
        monkeypatch.setattr(optim, "STRETCH_SECONDS", seconds)
        x = tf.Variable(0.0)
        loop = optim.Loop(
            lambda seed, index, total, aux: tf.square(x - 3.0),
            optim.Gradient([x], 1.0, sign=-1),
            schedule=lambda index, total: tf.where(index < total - 3, 0.25, 0.025),
        )
        values, kept = optim.optimize(loop, 8, progress=False, checkpoints=[3, 8], at_checkpoint=lambda stop, v: len(v))
        np.testing.assert_allclose(values, want, rtol=1e-5)
        np.testing.assert_allclose(float(x.numpy()), x_np, rtol=1e-5)
        assert kept == {3: 3, 8: 8}


def _tiny_classifier():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x), name="tiny_classifier")


@pytest.mark.parametrize("method", ["render", "caricature", "invert", "class_model"])
def test_every_method_runs_on_the_one_cached_loop(method, capsys):
    """Each method's run is a tfvis.optim.Loop kept per model, traced once for two runs, with the shared progress bar."""
    import tfvis

    model = _tiny_classifier()
    photos = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    run = {
        "render": lambda seed: tfvis.featurevis.render(model, ["c2:0", "c2:1"], size=16, steps=3, seed=seed, transforms=None),
        "caricature": lambda seed: tfvis.featurevis.caricature(model, photos + seed, "c2", steps=3, seed=seed),
        "invert": lambda seed: tfvis.inversion.invert(model, photos[0] + seed, "c2", steps=3, seed=seed, progress=True),
        "class_model": lambda seed: tfvis.saliency.class_model(model, seed, steps=3, shape=(16, 16, 3), progress=True),
    }[method]
    first = run(0)
    assert run(1) is not None
    err = capsys.readouterr().err
    loops = optim.cached_loops(model)
    assert [key[0] for key in loops] == [method] and all(type(loop) is optim.Loop for loop in loops.values())
    assert next(iter(loops.values())).run.experimental_get_tracing_count() == 1  # the second run reused the trace
    assert {"render": "render", "caricature": "caricature c2", "invert": "invert c2", "class_model": "class model 0"}[
        method
    ] in err
    again = run(0)  # the cached loop starts afresh: the first run's result
    for a, b in zip(np.atleast_1d(first) if method != "invert" else first, np.atleast_1d(again) if method != "invert" else again):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
