// Empty stand-in for net/core/flow_dissector.c of Linux 6.1.176.
