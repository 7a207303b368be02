"""ascend-fa: deploy and verify the CANN ops-transformer FlashAttention operator on Atlas NPU fleets.

The CLI drives the ``ascend.fa`` collection (roles, playbooks, plugins) and imports the collection's controller code
(``ansible_collections.ascend.fa.plugins.plugin_utils``) the way Ansible's own processes do: through Ansible's
collection loader, set up here once per process, before anything else imports it. It finds the collection in a
checkout (``.collections/ansible_collections/ascend/fa``, a link to the checkout itself) or, installed from the wheel,
in site-packages/ansible_collections (ansible-core scans sys.path for collections).
"""

import sys
from pathlib import Path

from ansible.errors import AnsibleError

try:   # reading ansible's configuration: a site's broken ansible.cfg fails here, as ansible-playbook does
    from ansible.plugins.loader import init_plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig
except AnsibleError as _exc:
    # ansible-playbook prints "ERROR: Error reading config file (...)" and exits 5; so does the CLI, not a traceback
    print(f"ascend-fa: {_exc}\nFix: correct that file, or point ANSIBLE_CONFIG at another one", file=sys.stderr)
    raise SystemExit(5) from None

__version__ = "0.1.0"

_CHECKOUT_COLLECTIONS = Path(__file__).resolve().parent.parent / ".collections"
if AnsibleCollectionConfig.collection_finder is None:
    init_plugin_loader([str(_CHECKOUT_COLLECTIONS)] if _CHECKOUT_COLLECTIONS.is_dir() else [])

from ansible_collections.ascend.fa.plugins.plugin_utils import compat as _anchor  # noqa: E402

#: The collection root: roles/, playbooks/, recipes/, kernels/, ansible.cfg live here.
PROJECT_ROOT = Path(_anchor.__file__).resolve().parents[2]
