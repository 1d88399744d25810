"""tfvis: see what convolutional networks learn, in TensorFlow 2 / Keras 3."""
from .models import load_model

__version__ = "0.1.0"
