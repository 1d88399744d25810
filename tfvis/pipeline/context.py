"""What every unit of a run works on: the models (by spec) and the images.

A :class:`Context` names one or more models, each by a :class:`~tfvis.models.spec.ModelSpec`
(the loader every command uses, input convention included), and the images. A worker (this
process, or a Ray actor) loads each model on first use and reads only the images its units ask
for. Units name the model they need by its name in the context (``params["model_name"]``, the
primary model when absent), so a study of several models runs on the same workers.
"""

from collections import OrderedDict

from ..topk import as_uint8


class Context:
    """The models and images every unit of a run works on; models are loaded on first use.

    Parameters
    ----------
    spec : ModelSpec
        The primary model (the one :attr:`model` returns); loads it in worker processes.
    source : tfvis.images.ImageSource, optional
        The dataset, read by index.
    model : keras.Model, optional
        The primary model already loaded in this process (the local engine uses it directly).
    specs : dict of str to ModelSpec, optional
        Further models by name (a study's models); :meth:`model_named` loads them.
    models : dict of str to keras.Model, optional
        Further models already loaded in this process, by the same names.

    The images that end a top-k shard holding a top-k place stay in this process (as uint8, up
    to :attr:`KEPT_BYTES`), so that the channel units, which reconstruct on exactly those images,
    need not read or generate them again; images not kept are read from the source.

    Examples
    --------
    >>> from tfvis.models import ModelSpec
    >>> context = Context(ModelSpec("vgg16", "random"), specs={"b": ModelSpec("vgg16", "random", seed=1)})
    >>> sorted(context.specs), context.describe_model("b")["seed"]
    (['', 'b'], 1)
    """

    #: Most bytes of uint8 images kept between units in one process (oldest dropped first).
    KEPT_BYTES = 256 * 2**20
    #: Most models other than the primary held loaded in one process (least recently used dropped first).
    HELD_MODELS = 4

    def __init__(self, spec, source=None, model=None, specs=None, models=None):
        self.spec, self.source, self._model = spec, source, model
        self.specs = {"": spec, **(specs or {})}
        self._models = OrderedDict(models or {})
        self._preloaded = dict(models or {})
        self._kept = {}

    @property
    def model(self):
        if self._model is None:
            self._model = self.spec.load()
        return self._model

    def model_named(self, name=None):
        """The model called ``name`` in :attr:`specs` (``None`` or ``""``: the primary), loaded on first use."""
        if not name:
            return self.model
        if name not in self.specs:
            raise KeyError(f"no model {name!r} in this run; its models: {', '.join(n or '(primary)' for n in self.specs)}")
        if name in self._preloaded:
            return self._preloaded[name]
        if name not in self._models:
            self._models[name] = self.specs[name].load()
            while len(self._models) > self.HELD_MODELS:
                self._models.popitem(last=False)
        self._models.move_to_end(name)
        return self._models[name]

    def model_for(self, params):
        """The model a unit's ``params`` name (``params["model_name"]``; the primary when absent)."""
        return self.model_named(params.get("model_name"))

    def keep(self, images, ids):
        """Remember ``images`` (dict of index to uint8 image) and their ``ids`` for :meth:`read_uint8`."""
        self._kept.update((index, (ids[index], image)) for index, image in images.items())
        total = sum(image.nbytes for _, image in self._kept.values())
        for index in list(self._kept):
            if total <= self.KEPT_BYTES:
                break
            total -= self._kept.pop(index)[1].nbytes

    def read_uint8(self, indices):
        """``(indices, ids, images)``: the images of ``indices`` that can be read, as uint8; kept ones are not read again."""
        found = {i: self._kept[i] for i in indices if i in self._kept}
        missing = [i for i in indices if i not in found]
        if missing:
            read, ids, images = self.source.read(missing)
            found.update((int(i), (image_id, as_uint8(image))) for i, image_id, image in zip(read, ids, images))
        order = [i for i in indices if i in found]
        return order, [found[i][0] for i in order], [found[i][1] for i in order]

    def __getstate__(self):  # sent to workers without models or kept images: each loads its own
        return {
            "spec": self.spec,
            "source": self.source,
            "specs": self.specs,
            "_model": None,
            "_models": OrderedDict(),
            "_preloaded": {},
            "_kept": {},
        }

    def describe_model(self, name=None):
        """What identifies model ``name``'s values (part of the keys of units that use it)."""
        if not name:
            return self.spec.describe(self._model)
        return self.specs[name].describe(self._preloaded.get(name))

    def describe(self):
        described = {"model": self.describe_model()}
        if self.source is not None:
            described["images"] = self.source.describe()
        return described


class InputsContext(Context):
    """A :class:`Context` that also carries results of earlier units, by key, to the workers.

    A unit sees only its context and its parameters; one that needs another unit's result (the
    activation atlas' layout needs its samples, a faithfulness unit its maps) names that unit's
    key in its parameters, and the driver runs it on an :class:`InputsContext` holding the result.

    Parameters
    ----------
    context : Context
        The run's context (its models and images, and the models loaded in this process).
    inputs : dict of str to dict
        Unit key to its result.
    """

    def __init__(self, context, inputs):
        self.__dict__.update(context.__dict__)
        self.inputs = dict(inputs)

    def __getstate__(self):
        return {**super().__getstate__(), "inputs": self.inputs}
