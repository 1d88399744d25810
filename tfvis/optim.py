"""The one optimisation loop of every method that optimises an image, and its optimiser steps.

Feature visualization, caricatures, inversion and the class model are each an objective and a
parameterization run by :class:`Loop`: one compiled ``tf.function`` runs a stretch of steps (a
``tf.range`` loop; each step: the objective under a gradient tape, an optional reshaping of the
gradient, an optional learning-rate schedule, the optimiser's step), and :func:`optimize` calls it
once per stretch of about :data:`STRETCH_SECONDS`, so that a progress bar moves and Ctrl-C is
answered. Randomness inside objectives is keyed by the seed and the step number, so a run gives
the same result whatever its stretches. :func:`cached_loop` keeps built loops per model
(the :data:`CACHE_SIZE` most recently used), so a second run of the same configuration does not
trace again.

Each optimiser holds its state in ``tf.Variable`` objects created once, outside any compiled
function, and is then called inside one (``tf.function``, XLA included) with the gradients of
the variables it moves. ``sign`` says which way: ``+1`` climbs the objective (gradient ascent,
feature visualization maximises), ``-1`` descends it (inversion minimises a loss). ``reset()``
forgets the steps taken (zero state), so that a compiled function holding an optimiser can start
a new optimisation without being traced again.

With ``g`` the gradient, ``lr`` the learning rate and ``t`` the step number (from 1):

* :class:`Adam` (Kingma & Ba 2015)::

      m <- beta1 m + (1 - beta1) g
      v <- beta2 v + (1 - beta2) g^2
      x <- x + sign lr sqrt(1 - beta2^t) / (1 - beta1^t) m / (sqrt(v) + e_t)

  where ``e_t = epsilon`` when ``epsilon`` is their "epsilon hat" (the form just before their
  section 2.1, and TensorFlow's, Keras' and Lucid's), or ``e_t = epsilon sqrt(1 - beta2^t)`` when it
  is the epsilon of their Algorithm 1 (``x <- x + sign lr m_hat / (sqrt(v_hat) + epsilon)`` with
  the bias-corrected moments ``m_hat``, ``v_hat``). The two differ only where gradients are as
  small as ``epsilon``, which the small per-pixel gradients of inversion are.

* :class:`Momentum` (heavy ball, Polyak 1964)::

      u <- mu u + sign lr g
      x <- x + u

Examples
--------
>>> import tensorflow as tf

from . import graph
>>> x = tf.Variable([1.0, -2.0])
>>> step = Momentum([x], learning_rate=0.1, sign=-1)
>>> step([2.0 * x])  # descend x^2
>>> x.numpy()
array([ 0.8, -1.6], dtype=float32)
"""

import collections
import threading
import time

import numpy as np
import tensorflow as tf

from . import graph

#: The optimisers' names, as methods' ``optimizer`` options take them.
NAMES = ("adam", "momentum")
#: Compiled loops kept per model, least recently used dropped first.
CACHE_SIZE = 8
#: Wall time one call of a compiled loop aims at (a progress bar's tick, how soon Ctrl-C is answered).
STRETCH_SECONDS = 1.0
#: Most steps one call of a compiled loop runs.
MAX_STRETCH = 512
_LOCK = threading.Lock()
_CACHE_KEY = "optim_loops"


def _sign(sign):
    if sign not in (1, -1):
        raise ValueError(f"sign={sign!r}: give +1 (ascent: maximise) or -1 (descent: minimise)")
    return float(sign)


def _state(variables):
    return [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]


def _move(var, delta, project):
    """``var += delta``, then ``project`` (if any) in the same write."""
    if project is None:
        var.assign_add(delta)
    else:
        var.assign(project(var + delta))


class Adam:
    """Adam on ``variables``: one call, one step.

        Parameters
        ----------
        variables : list of tf.Variable
            What the optimiser moves.
        learning_rate : float
            Step size (a call may override it, e.g. for a schedule).
        sign : {1, -1}
            ``+1`` for ascent (maximise), ``-1`` for descent (minimise).
        beta1, beta2 : float
            Decay rates of the first and second moment estimates.
        epsilon : float
            Keeps the step finite where the gradient vanishes.
        epsilon_hat : bool
            True: ``epsilon`` is added to ``sqrt(v)`` (Kingma & Ba's "epsilon hat", as in TensorFlow);
            False: to ``sqrt(v_hat)``, the bias-corrected second moment (their Algorithm 1).
        project : callable, optional
            Applied to each variable's new value before it is stored (e.g. a clip onto valid pixels):
            one write per step instead of a step and a separate projection.

        Attributes
        ----------
        m, v : list of tf.Variable
            First and second moment estimates, one per variable.
        t : tf.Variable
            Steps taken.

        Examples
        --------
        >>> import tensorflow as tf

    from . import graph
        >>> x = tf.Variable([3.0])
        >>> step = Adam([x], learning_rate=0.5, sign=-1)
        >>> step([tf.constant([10.0])])  # the first step moves by lr whatever the gradient's size
        >>> x.numpy()
        array([2.5], dtype=float32)
    """

    def __init__(
        self, variables, learning_rate=0.001, sign=1, beta1=0.9, beta2=0.999, epsilon=1e-8, epsilon_hat=True, project=None
    ):
        self.variables = list(variables)
        self.project = project
        self.learning_rate = learning_rate
        self.sign = _sign(sign)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.epsilon_hat = bool(epsilon_hat)
        self.m, self.v = _state(self.variables), _state(self.variables)
        self.t = tf.Variable(0.0, trainable=False)

    def reset(self):
        """Forget every step taken: zero moments and step count, as just built (the variables it moves are left as they are)."""
        for state in self.m + self.v:
            state.assign(tf.zeros_like(state))
        self.t.assign(0.0)

    def __call__(self, grads, learning_rate=None):
        """Take one step along ``grads`` (one per variable); ``learning_rate`` overrides the default."""
        lr = self.learning_rate if learning_rate is None else learning_rate
        beta1, beta2 = self.beta1, self.beta2
        self.t.assign_add(1.0)
        root = tf.sqrt(1.0 - beta2**self.t)
        correction = root / (1.0 - beta1**self.t)
        epsilon = self.epsilon if self.epsilon_hat else self.epsilon * root
        for var, g, m, v in zip(self.variables, grads, self.m, self.v):
            m.assign(beta1 * m + (1.0 - beta1) * g)
            v.assign(beta2 * v + (1.0 - beta2) * tf.square(g))
            _move(var, self.sign * lr * correction * m / (tf.sqrt(v) + epsilon), self.project)


class Momentum:
    """Heavy-ball momentum on ``variables``: one call, one step.

        Parameters
        ----------
        variables : list of tf.Variable
            What the optimiser moves.
        learning_rate : float
            Step size (a call may override it).
        sign : {1, -1}
            ``+1`` for ascent (maximise), ``-1`` for descent (minimise).
        momentum : float
            The share ``mu`` of the last step kept in the next.
        project : callable, optional
            As in :class:`Adam`.

        Attributes
        ----------
        velocity : list of tf.Variable
            The last step, one per variable.

        Examples
        --------
        >>> import tensorflow as tf

    from . import graph
        >>> x = tf.Variable([0.0])
        >>> step = Momentum([x], learning_rate=1.0, sign=1, momentum=0.5)
        >>> for _ in range(2):
        ...     step([tf.constant([1.0])])
        >>> x.numpy()  # 1, then 1 + (0.5 + 1)
        array([2.5], dtype=float32)
    """

    def __init__(self, variables, learning_rate=0.01, sign=1, momentum=0.9, project=None):
        self.variables = list(variables)
        self.project = project
        self.learning_rate = learning_rate
        self.sign = _sign(sign)
        self.momentum = float(momentum)
        self.velocity = _state(self.variables)

    def reset(self):
        """Forget every step taken: zero velocity, as just built."""
        for state in self.velocity:
            state.assign(tf.zeros_like(state))

    def __call__(self, grads, learning_rate=None):
        """Take one step along ``grads`` (one per variable); ``learning_rate`` overrides the default."""
        lr = self.learning_rate if learning_rate is None else learning_rate
        for var, g, u in zip(self.variables, grads, self.velocity):
            u.assign(self.momentum * u + self.sign * lr * g)
            _move(var, u, self.project)


class Gradient:
    """Plain gradient steps on ``variables``, ``x <- x + sign lr g``: one call, one step.

        With ``shape_gradient`` of :class:`Loop` normalising ``g`` (e.g. to unit root mean square, as
        Simonyan et al.'s class model does), ``learning_rate`` is the step's size in the variables' units.

        Parameters
        ----------
        variables : list of tf.Variable
        learning_rate : float
        sign : {1, -1}
        project : callable, optional
            As in :class:`Adam`.

        Examples
        --------
        >>> import tensorflow as tf

    from . import graph
        >>> x = tf.Variable([1.0])
        >>> Gradient([x], learning_rate=0.5, sign=-1)([tf.constant([2.0])])
        >>> x.numpy()
        array([0.], dtype=float32)
    """

    def __init__(self, variables, learning_rate=0.01, sign=1, project=None):
        self.variables = list(variables)
        self.project = project
        self.learning_rate = learning_rate
        self.sign = _sign(sign)

    def reset(self):
        """Nothing to forget: plain steps hold no state."""

    def __call__(self, grads, learning_rate=None):
        """Take one step along ``grads`` (one per variable); ``learning_rate`` overrides the default."""
        lr = self.learning_rate if learning_rate is None else learning_rate
        for var, g in zip(self.variables, grads):
            _move(var, self.sign * lr * g, self.project)


class Loop:
    """A compiled optimisation loop: ``run(seed, start, count, total, aux) -> objective values, (count,)``.

        Parameters
        ----------
        objective : callable
            ``(seed, index, total, aux) -> scalar tensor``, graph code reading the variables that
            ``optimizer`` moves: the value optimised at step ``index`` of ``total`` (int32 scalars),
            ``seed`` (int32) keying its randomness, ``aux`` an int32 vector of per-run inputs (e.g. a
            batch's channel indices; empty when unused).
        optimizer : Adam, Momentum or Gradient
            The step (its ``sign`` says whether the objective is maximised or minimised).
        shape_gradient : callable, optional
            ``g -> g'`` applied to each variable's gradient before the step (a preconditioner, a
            normalisation).
        schedule : callable, optional
            ``(index, total) -> learning rate`` (graph code); default the optimiser's own rate.
        jit_compile : bool
            Compile each step with XLA.

        Attributes
        ----------
        run : tf.function
            ``run(seed, start, count, total, aux)``: steps ``start .. start + count - 1``.
        lock : threading.Lock
            Held by whoever runs the loop (:func:`cached_loop` hands it out locked).

        A loop holds its variables and optimiser state: :meth:`start` resets the optimiser (and calls
        ``reset(seed)`` when given), so that one trace serves any number of runs. Attributes a method
        needs later (its parameterization, its feature net) may be set on the instance.

        Examples
        --------
        >>> import tensorflow as tf

    from . import graph
        >>> x = tf.Variable([3.0])
        >>> loop = Loop(lambda seed, index, total, aux: tf.reduce_sum(x * x), Gradient([x], 0.25, sign=-1))
        >>> values, _ = optimize(loop, steps=2, progress=False)
        >>> values.tolist(), x.numpy().tolist()
        ([9.0, 2.25], [0.75])
    """

    def __init__(self, objective, optimizer, shape_gradient=None, schedule=None, jit_compile=False, reset=None):
        self.optimizer = update = optimizer
        self.lock = threading.Lock()
        self._reset = reset
        variables = optimizer.variables

        def one(seed, index, total, aux):
            with tf.GradientTape() as tape:
                value = objective(seed, index, total, aux)
            grads = tape.gradient(value, variables)
            if shape_gradient is not None:
                grads = [shape_gradient(g) for g in grads]
            if schedule is None:
                update(grads)
            else:
                update(grads, schedule(index, total))
            return tf.cast(value, tf.float32)

        step = tf.function(one, jit_compile=True) if jit_compile else one

        @tf.function(reduce_retracing=True)
        def run(seed, start, count, total, aux):
            values = tf.TensorArray(tf.float32, size=count)
            for k in tf.range(count):
                values = values.write(k, step(seed, start + k, total, aux))
            return values.stack()

        self.run = run

    def start(self, seed=0):
        """The state of a new run: ``reset(seed)`` (the starting variables) and a fresh optimiser."""
        if self._reset is not None:
            self._reset(seed)
        self.optimizer.reset()


def _int_seed(seed):
    return tf.constant(int(seed) & 0x7FFFFFFF, tf.int32)


def optimize(loop, steps, seed=0, aux=None, checkpoints=None, progress=True, desc="optimize", at_checkpoint=None):
    """Run ``loop`` for ``steps`` steps in stretches of about :data:`STRETCH_SECONDS`, with a progress bar.

    Parameters
    ----------
    loop : Loop
        Started by the caller (:meth:`Loop.start`) when it holds state from an earlier run.
    steps : int
        Steps of the whole run (the ``total`` the objective and schedule see).
    seed : int
        Keys the objective's randomness (with the step number).
    aux : sequence of int, optional
        The int32 vector the objective reads.
    checkpoints : sequence of int, optional
        Sorted step counts (the last one at most ``steps``) after which ``at_checkpoint(stop, values)``
        is called; default ``[steps]``.
    progress : bool
        Show a tqdm bar.
    desc : str
        The bar's label.
    at_checkpoint : callable, optional
        ``(stop, values) -> object``, called after ``stop`` steps with the objective's values so far.

    Returns
    -------
    values : ndarray, float32, shape (last checkpoint,)
        The objective at each step.
    kept : dict of int to object
        What ``at_checkpoint`` returned at each checkpoint (empty without it).
    """
    from tqdm.auto import tqdm

    checkpoints = [int(steps)] if checkpoints is None else [int(c) for c in checkpoints]
    seed = _int_seed(seed)
    total = tf.constant(int(steps), tf.int32)
    aux = tf.constant([] if aux is None else list(aux), tf.int32)
    values, kept, done, stretch = [], {}, 0, 1
    with tqdm(total=checkpoints[-1], disable=not progress, desc=desc, unit="step") as bar:
        for stop in checkpoints:
            while done < stop:
                count = min(stretch, stop - done)
                began = time.perf_counter()
                values.append(loop.run(seed, tf.constant(done, tf.int32), tf.constant(count, tf.int32), total, aux).numpy())
                per_step = (time.perf_counter() - began) / count
                done += count
                bar.update(count)
                stretch = int(min(MAX_STRETCH, max(1.0, STRETCH_SECONDS / max(per_step, 1e-6))))
            if at_checkpoint is not None:
                kept[stop] = at_checkpoint(stop, np.concatenate(values).astype(np.float32))
    history = np.concatenate(values).astype(np.float32) if values else np.zeros([0], np.float32)
    return history, kept


def cached_loop(model, key, build):
    """The cached :class:`Loop` for ``(model, key)``, locked for the caller, or a new one from ``build()`` (locked).

    Up to :data:`CACHE_SIZE` loops are kept per model (:func:`tfvis.graph.cached`); a loop in use
    by another thread is not shared (a new one is built). An unhashable key builds without caching.
    The caller releases ``loop.lock`` when done.
    """
    try:
        hash(key)
    except TypeError:  # an unhashable setting: no cache
        key = None
    table = graph.cached(model, _CACHE_KEY, collections.OrderedDict) if key is not None else None
    if table is not None:
        with _LOCK:
            loop = table.get(key)
            if loop is not None:
                table.move_to_end(key)
                if loop.lock.acquire(blocking=False):
                    return loop
    loop = build()
    loop.lock.acquire()
    if table is not None:
        with _LOCK:
            if key not in table:
                table[key] = loop
                while len(table) > CACHE_SIZE:
                    table.popitem(last=False)
    return loop


def cached_loops(model):
    """The loops :func:`cached_loop` keeps for ``model``, by key (an ordered dict, oldest first)."""
    return graph.cached(model, _CACHE_KEY, collections.OrderedDict)


def clear_cache(model=None):
    """Drop the compiled loops of ``model`` (of every model when None)."""
    with _LOCK:
        if model is None:
            for entry in list(graph._CACHE.values()):
                entry.pop(_CACHE_KEY, None)
        else:
            cached_loops(model).clear()


__all__ = ["NAMES", "Adam", "Momentum", "Gradient", "Loop", "optimize", "cached_loop", "cached_loops", "clear_cache"]
