"""Hand what the Action's container wrote back to the user who owns the checkout.

A Docker action runs as root, but the checkout and the runner's home belong to the
runner's user (uid 1001 on GitHub's hosted runners). Reports, converted models and
cached environments written as root cannot be removed by the job's next step or by
`actions/checkout` in the next job. After the run, every file this run created or
changed (owned by us, changed since the run started) gets the checkout owner's uid
and gid. Nothing else is touched, and nothing happens when we are not root or the
checkout is root's own.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

_SKIP = {".git"}  # never ours to write, and the largest tree in a checkout


def _ours_since(status: os.stat_result, uid: int, since: float) -> bool:
    return status.st_uid == uid and max(status.st_ctime, status.st_mtime) >= since


def _paths_below(root: Path) -> Iterable[Path]:
    yield root
    for directory, subdirectories, files in os.walk(root, followlinks=False):
        subdirectories[:] = [name for name in subdirectories if name not in _SKIP]
        base = Path(directory)
        for name in (*subdirectories, *files):
            yield base / name


def hand_over(roots: Iterable[Path], owner_of: Path, since: float) -> int:
    """Give everything this process wrote under `roots` since `since` to `owner_of`'s owner.

    Returns how many paths changed owner. A root other than `owner_of` is walked only
    if it belongs to that owner too (the runner's home does; root's own home, when
    the entrypoint runs outside a runner, does not). Links are changed themselves,
    never followed; a path that vanished or cannot be changed is left as it is.
    """
    me = os.geteuid()
    try:
        owner = owner_of.stat()
    except OSError:
        return 0
    if me != 0 or (owner.st_uid, owner.st_gid) == (0, 0):
        return 0
    changed = 0
    for root in roots:
        try:
            theirs = (root.stat().st_uid, root.stat().st_gid) == (owner.st_uid, owner.st_gid)
        except OSError:
            continue
        if not theirs and root != owner_of:  # root's own home (a local run): never touched
            continue
        for path in _paths_below(root):
            try:
                status = path.lstat()
                if not _ours_since(status, me, since) or stat.S_ISSOCK(status.st_mode):
                    continue
                os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)
                changed += 1
            except OSError:
                continue
    return changed
