"""ids-lightning: intrusion detection on network flows with PyTorch Lightning.

Floors, from the ground up (``tests/unit/test_architecture.py`` keeps them): ``core`` and
``datasets`` (torch-free: readers, dataset specs, preprocessing), ``edge`` (the sensor: numpy,
onnxruntime, communityid), the training side (``models``, ``data``, ``training``, ``evaluation``,
``federation``), ``analysis`` and ``bench``, and the commands on top (``cli``: ``ids train``,
``ids detect``, ``ids prepare``, ...).
"""

__version__ = "0.1.0"
