"""ids-lightning: intrusion detection on network flows with PyTorch Lightning.

The package root and its torch-free modules (``formats``, ``preprocess``, ``table``,
``errors``, ``io``) import with numpy alone, so edge tools can reuse them.
"""

__version__ = "0.1.0"
