"""SIMULATOR: files that run inside simulated Ascend nodes (mounted read-only at /opt/ascend-sim/node)."""
