"""The optimiser step shared by every method that optimises an image (feature visualization, inversion).

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
>>> x = tf.Variable([1.0, -2.0])
>>> step = Momentum([x], learning_rate=0.1, sign=-1)
>>> step([2.0 * x])  # descend x^2
>>> x.numpy()
array([ 0.8, -1.6], dtype=float32)
"""
import tensorflow as tf

#: The optimisers' names, as methods' ``optimizer`` options take them.
NAMES = ("adam", "momentum")


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
    >>> x = tf.Variable([3.0])
    >>> step = Adam([x], learning_rate=0.5, sign=-1)
    >>> step([tf.constant([10.0])])  # the first step moves by lr whatever the gradient's size
    >>> x.numpy()
    array([2.5], dtype=float32)
    """

    def __init__(self, variables, learning_rate=0.001, sign=1, beta1=0.9, beta2=0.999, epsilon=1e-8, epsilon_hat=True, project=None):
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


__all__ = ["NAMES", "Adam", "Momentum"]
