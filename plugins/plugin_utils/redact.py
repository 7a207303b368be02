"""Which variables are secrets, and how they are kept out of command lines and records (stdlib only).

One rule for the whole controller side: a variable whose name holds one of :data:`SECRET_WORDS` or ends in ``key``
(``ansible_become_password``, ``vault_pass``, ``hook_token``, ``fa_cache_key``, ...) is a secret. The CLI hands such
values to ansible-playbook in a private 0600 file instead of its argv (``ascend_fa/runner.py``); the run locks record
a command line with them masked (``ascend_fa/lock.py``). Masking errs on the side of hiding too much.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

# a name is secret when one of its parts (split at _ . -) holds one of these words, is "pass" or "pwd", or when its
# last part ends in "key" (api_key, fa_cache_key; not host_key_checking or ssh_private_key_file: a switch, a path)
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey")
_SECRET_PARTS = ("pass", "pwd", "pw")
MASK = "***"
_ASSIGN = re.compile(r"""([\w.-]+)["']?\s*[=:]""")


def is_secret_name(name: str) -> bool:
    """Whether a variable (or environment variable) of this name holds a secret."""
    parts = [p for p in re.split(r"[_.\-]+", str(name).lower()) if p]
    return bool(parts) and (parts[-1].endswith("key") or any(p in _SECRET_PARTS for p in parts)
                            or any(w in p for p in parts for w in SECRET_WORDS))


def split_secrets(variables: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plain variables, secret variables)."""
    plain = {k: v for k, v in variables.items() if not is_secret_name(k)}
    return plain, {k: v for k, v in variables.items() if is_secret_name(k)}


def mask_argv(argv: Sequence[str]) -> list[str]:
    """Each argument masked from its first secret-looking assignment on (``ansible_become_password=...``,
    ``{"hook_token": ...}``): more hidden than needed, never less."""
    out = []
    for arg in argv:
        m = next((m for m in _ASSIGN.finditer(arg) if is_secret_name(m.group(1))), None)
        out.append(arg[:m.end()] + MASK if m else arg)
    return out


def mask_command(argv: Sequence[str], limit: int = 0) -> str:
    """:func:`mask_argv` joined as a shell would quote it, cut to ``limit`` characters (0: no limit)."""
    text = shlex.join(mask_argv(argv))
    return text if not limit or len(text) <= limit else text[:limit - 3] + "..."


def mask_values(text: str, values: Sequence[str]) -> str:
    """``text`` with every occurrence of the given secret values replaced (values shorter than 4 characters are
    left alone: masking them would mangle the text and hide nothing)."""
    for v in sorted({str(v) for v in values if v is not None and len(str(v)) >= 4}, key=len, reverse=True):
        text = text.replace(v, MASK)
    return text


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """An environment with the values of secret-named variables masked."""
    return {k: (MASK if is_secret_name(k) and v else v) for k, v in env.items()}
