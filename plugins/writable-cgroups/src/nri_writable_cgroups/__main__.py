"""``nri-writable-cgroups``: serve, checking the host for nsdelegate at registration."""

from __future__ import annotations

import logging

from nri.stub import Flag, Invocation, PluginCommand
from nri_writable_cgroups._plugin import DEFAULT_HOST_MOUNT_FILE, WritableCgroups


def _plugin(run: Invocation[None]) -> WritableCgroups:
    if run.args.verbose:
        logging.getLogger("nri.writable_cgroups").setLevel(logging.DEBUG)
    return WritableCgroups(
        host_mount_file=run.args.host_mount_file or DEFAULT_HOST_MOUNT_FILE,
        reject_undelegated=bool(run.args.reject_undelegated),
    )


COMMAND: PluginCommand[None] = PluginCommand(
    name="writable-cgroups",
    description="Mount /sys/fs/cgroup read-write in annotated containers on hosts whose "
    "cgroup2 mount has nsdelegate.",
    flags=[
        Flag(
            "host-mount-file",
            f"the host's mountinfo, checked for nsdelegate (default: {DEFAULT_HOST_MOUNT_FILE})",
            type=str,
            metavar="FILE",
        ),
        Flag(
            "reject-undelegated",
            "fail the creation of annotated containers on a host without nsdelegate "
            "(default, as upstream: log a warning and leave the mount read-only)",
        ),
        Flag("verbose", "log the plugin's decisions at debug level"),
    ],
    plugin=_plugin,
)
main = COMMAND.main

if __name__ == "__main__":
    main()
