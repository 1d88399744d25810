"""Where units run: in this process (the default) or as Ray tasks on a cluster.

An engine's ``run(units, context, store)`` computes every unit whose result is not in the store
yet and saves each result as it arrives; the driver then reads results from the store. Both
engines give the same results: units are deterministic functions of their parameters.
"""

import os
import socket
import sys

from tqdm.auto import tqdm

from .work import compute

ENGINES = ("local", "ray")


class EngineError(RuntimeError):
    """An engine that cannot start (Ray missing, cluster unreachable) or a unit that failed on every retry."""


def _pending(units, store, on_result=None):
    """The units not in ``store`` (each once); units already there are handed to ``on_result`` first."""
    seen, todo = set(), []
    for unit in units:
        if unit.key in seen:
            continue
        seen.add(unit.key)
        if not store.has(unit):
            todo.append(unit)
        elif on_result is not None:
            on_result(unit, store.load(unit))
    return todo


def _finish(unit, result, store, on_result):
    store.save(unit, result)
    if on_result is not None:
        on_result(unit, result)


class LocalEngine:
    """Run units one after another in this process, on the model already loaded here."""

    name = "local"

    def __init__(self, progress=True):
        self.progress = progress

    def run(self, units, context, store, desc="units", on_result=None):
        """Compute the units missing from ``store``; returns how many were computed.

        ``on_result(unit, result)`` is called for every unit, as soon as its result is stored
        (at once for units already in the store).
        """
        todo = _pending(units, store, on_result)
        inner = self.progress and len(todo) == 1  # one big unit: show its own progress instead
        bar = tqdm(total=len(todo), desc=desc, unit="unit", disable=not self.progress or len(todo) < 2)
        for unit in todo:
            bar.set_postfix_str(unit.label, refresh=False)
            _finish(unit, compute(unit, context, progress=inner), store, on_result)
            bar.update(1)
        bar.close()
        return len(todo)

    def close(self):
        pass


class _Worker:
    """A Ray actor: loads the model once, then computes the units it is given."""

    def __init__(self, context, threads):
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):  # workers sharing a GPU must not each take all its memory
            tf.config.experimental.set_memory_growth(gpu, True)
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, threads // 2))
        self.context = context

    def compute(self, unit):
        return compute(unit, self.context)

    def pid(self):
        return os.getpid()


class RayEngine:
    """Run units as tasks of Ray actors, one model per actor; the driver stores the results.

    Parameters
    ----------
    address : str, optional
        ``HOST:PORT`` of a running cluster (``ray start --head``); default a local cluster.
    workers : int, optional
        Actors to start; default one per GPU of the cluster, else one per CPU.
    progress : bool
    retries : int
        How many times a unit is retried when its worker dies (the actor is restarted).
    threads : int, optional
        TensorFlow threads per worker. Default: on a local cluster, TensorFlow's own default, the
        same as a local run, because the thread count changes the order of float sums (a 1-thread
        and a 2-thread convolution differ in the last bit of some outputs) and a local cluster
        should give the local engine's results bit for bit; on a remote cluster, the worker's CPUs.
    """

    name = "ray"

    def __init__(self, address=None, workers=None, progress=True, retries=3, threads=None):
        try:
            import ray
        except ImportError:
            raise EngineError("--engine ray needs Ray: pip install 'tfvis[ray]' (or pip install 'ray>=2.9')") from None
        self.ray = ray
        self._owns_cluster = not ray.is_initialized()
        if self._owns_cluster:
            # Ray starts workers at nice 15 by default; tfvis' workers are the work itself, and a
            # local cluster should compete for the cores like the local engine does.
            os.environ.setdefault("RAY_worker_niceness", "0")
            options = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
            try:
                if address:
                    check_reachable(address)
                    ray.init(address=address, **options)
                else:
                    ray.init(num_cpus=workers or os.cpu_count(), **options)
            except EngineError:
                raise
            except Exception as err:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
                raise EngineError(f"could not start Ray{f' at {address}' if address else ''}: {err}") from None
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        self.workers = workers or gpus or cpus
        self.gpus_per_worker = min(1.0, gpus / self.workers) if gpus else 0  # workers share GPUs when there are more of them
        self.cpus_per_worker = max(1, cpus // self.workers)
        self.progress, self.retries = progress, retries
        self.threads = threads if threads is not None else (self.cpus_per_worker if address else 0)
        self.actors, self._context = [], None

    def _start(self, context):
        if self.actors and self._context is context:
            return
        self.close_actors()
        actor = self.ray.remote(
            num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker, max_restarts=self.retries, max_task_retries=self.retries
        )(_Worker)
        self.actors = [actor.remote(context, self.threads) for _ in range(self.workers)]
        self._context = context

    def run(self, units, context, store, desc="units", on_result=None):
        """Compute the units missing from ``store`` on the actors; returns how many were computed (see :meth:`LocalEngine.run`)."""
        todo = _pending(units, store, on_result)
        if not todo:
            return 0
        self._start(context)
        queue = list(reversed(todo))
        running = {}
        bar = tqdm(total=len(todo), desc=f"{desc} (ray, {self.workers} workers)", unit="unit", disable=not self.progress)
        for actor in self.actors * 2:  # two units in flight per actor keep it busy while results travel
            if queue:
                unit = queue.pop()
                running[actor.compute.remote(unit)] = (unit, actor)
        while running:
            (ready,), _ = self.ray.wait(list(running), num_returns=1)
            unit, actor = running.pop(ready)
            try:
                result = self.ray.get(ready)
            except self.ray.exceptions.RayError as err:
                raise EngineError(f"unit {unit.label or unit.key} failed on Ray: {err}") from None
            _finish(unit, result, store, on_result)
            bar.update(1)
            if queue:
                following = queue.pop()
                running[actor.compute.remote(following)] = (following, actor)
        bar.close()
        return len(todo)

    def worker_pids(self):
        """Process ids of the actors (for tests that kill one)."""
        return self.ray.get([actor.pid.remote() for actor in self.actors])

    def close_actors(self):
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors, self._context = [], None

    def close(self):
        """Stop the actors, and the local cluster if this engine started it."""
        self.close_actors()
        if self._owns_cluster:
            self.ray.shutdown()


#: Seconds :func:`check_reachable` waits for a cluster's port to answer.
CONNECT_TIMEOUT = 10


def check_reachable(address, timeout=CONNECT_TIMEOUT):
    """Raise :class:`EngineError` unless something listens at ``address`` (``HOST:PORT``, ``ray://HOST:PORT``).

    ``ray.init`` keeps retrying an address where nothing listens for minutes; a socket connect
    answers at once (or after ``timeout`` seconds when the host drops packets). ``"auto"`` (the
    cluster of this machine that Ray finds itself) is left to Ray.
    """
    if address == "auto":
        return
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise EngineError(f"address {address!r} is not HOST:PORT (such as 127.0.0.1:6379, what 'ray start --head' prints)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise EngineError(
            f"nothing answers at {address} ({reason}): start a cluster there with 'ray start --head', "
            "or leave out --address to start a local one"
        ) from None


def make_engine(name="local", address=None, workers=None, progress=True):
    """The engine called ``name`` (:data:`ENGINES`)."""
    if name == "local":
        if address or workers:
            print("tfvis: --address and --workers apply to --engine ray only; ignored", file=sys.stderr)
        return LocalEngine(progress=progress)
    if name == "ray":
        return RayEngine(address=address, workers=workers, progress=progress)
    raise ValueError(f"unknown engine {name!r}; choose from: {', '.join(ENGINES)}")
