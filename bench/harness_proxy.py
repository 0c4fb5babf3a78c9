"""Start `shadow run` the way a benchmark harness starts a proxy: from the environment.

    PRIMARY_URL   the backend that serves (legacy role)
    SHADOW_URL    the mirrored backend (candidate role); empty = no mirroring
    LISTEN_PORT   where the proxy listens on 127.0.0.1
    SHADOW_MODE   optional mode override (default: shadow, or legacy-only without SHADOW_URL)
    SHADOW_ADMIN_PORT    optional admin port (default: any free one)
    SHADOW_CONFIG_EXTRA  optional TOML appended to the generated config (experiments)

The admin listener takes a free port; the state file lives in a temporary directory.
Used by bench/compare_modes.py and by a peer harness (`run.sh "python bench/harness_proxy.py"`).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def main() -> None:
    primary = os.environ["PRIMARY_URL"]
    shadow = os.environ.get("SHADOW_URL", "")
    port = int(os.environ["LISTEN_PORT"])
    admin = os.environ.get("SHADOW_ADMIN_PORT", "0")
    mode = os.environ.get("SHADOW_MODE") or ("shadow" if shadow else "legacy-only")
    state = Path(tempfile.mkdtemp(prefix="shadow-bench-")) / "state.db"
    config = Path(state.parent) / "shadow.toml"
    config.write_text(
        f'listen = "127.0.0.1:{port}"\nadmin_listen = "127.0.0.1:{admin}"\nmode = "{mode}"\n'
        f'[backends.legacy]\nurl = "{primary}"\n'
        f'[backends.candidate]\nurl = "{shadow or primary}"\n'
        f'[store]\npath = "{state}"\n[log]\nlevel = "warning"\n'
        + os.environ.get("SHADOW_CONFIG_EXTRA", "")
    )
    shadow_bin = Path(sys.executable).with_name("shadow")
    os.execv(str(shadow_bin), [str(shadow_bin), "run", "-c", str(config)])


if __name__ == "__main__":
    main()
