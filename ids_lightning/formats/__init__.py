"""Torch-free parsers for the raw file formats the project reads."""
