"""Plumbing every vidit package shares: the dataclass -> CLI builder (:mod:`vidit.cli`) and atomic file
writes (:mod:`vidit.files`). It imports nothing of ours, and no torch or gymnasium."""
