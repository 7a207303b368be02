"""ascend-fa: deploy and verify the CANN ops-transformer FlashAttention operator on Atlas NPU fleets."""

from pathlib import Path

__version__ = "0.1.0"

#: The repository (or installed collection) root: roles/, playbooks/, recipes/, kernels/ live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
