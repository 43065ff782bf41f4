// Empty stand-in for arch/x86/hyperv/hv_proc.c of Linux 6.1.176.
