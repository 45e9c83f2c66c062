"""Edge-side tools that need only numpy and onnxruntime: ``pip install "ids-lightning[edge]"``.

Nothing under ``ids_lightning.edge`` (nor the parsers and preprocessing it uses) imports torch,
Lightning, pandas or pyarrow; a test runs it with those made unimportable.
"""
