"""SIMULATOR (ascend-fa): the simulated upstream ops-transformer repository.

``tree/`` is the source of the fake ops-transformer (root ``build.sh`` that really compiles a custom
operator package); ``make_repo.make_repo`` turns it into a bare git repository with deterministic
commits and release tags. Tests, the demo and benchmarks only.
"""
