"""ids-lightning: intrusion detection on network flows with PyTorch Lightning.

Floors, from the ground up (``tests/unit/test_architecture.py`` keeps them): ``core`` and
``datasets`` (torch-free: readers, dataset specs, preprocessing), ``edge`` (numpy + onnxruntime),
the training side (``batches``, ``models``, ``data``, ``deploy``, ``callbacks``, ``runs``), and the
commands on top (``train``, ``detect``, ``prepare``, ``export``, ``attack``, ``report``, ``search``,
``bench``).
"""

__version__ = "0.1.0"
