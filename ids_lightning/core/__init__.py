"""The torch-free ground floor: errors, file I/O, tables, readers, splits, preprocessing and the
dataset spec. Everything here imports with numpy alone (pyarrow and pandas are used when
installed), so the edge package, ``prepare`` and the training side all stand on it.
"""
