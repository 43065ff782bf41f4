// Empty stand-in for net/core/flow_offload.c of Linux 6.1.176.
