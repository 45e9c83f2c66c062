"""The fault suite (``make chaos``, ``python -m tools.chaos``): corrupt inputs, hostile run folders
and bad settings against every tool (:mod:`tools.chaos.suite`)."""
