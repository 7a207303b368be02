"""SIMULATOR: simulated Atlas NPU hosts for tests, the demo and benchmarks.

Nothing in here is product code. The product (``ascend_fa``, roles, modules) talks to these hosts exactly as it
talks to real ones (SSH, ``npu-smi``, files under ``/usr/local/Ascend``) and never checks whether it is simulated.

- :mod:`ascend_sim.image`: the node image (debootstrap + podman import), containers.conf, the CPU torch folder.
- :mod:`ascend_sim.fleet`: create / destroy / list fleets of node containers, inject faults.
- ``ascend_sim/node/``: what runs inside a node (fake ``npu-smi``, ``sim-apply``, entrypoint).
"""
