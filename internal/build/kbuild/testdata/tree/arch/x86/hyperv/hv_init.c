// Empty stand-in for arch/x86/hyperv/hv_init.c of Linux 6.1.176.
