"""Plumbing every vidit package shares: the dataclass -> CLI builder for flat and composed configs
(:mod:`vidit.cli`), atomic file writes (:mod:`vidit.files`), the "same run?" check (:mod:`vidit.runs`), derived
seeds (:mod:`vidit.seeding`) and model folders (:mod:`vidit.pretrained`, the only one that needs torch). It
imports nothing else of ours, and no gymnasium."""
