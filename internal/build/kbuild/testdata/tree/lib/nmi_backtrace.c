// Empty stand-in for lib/nmi_backtrace.c of Linux 6.1.176.
