// Empty stand-in for arch/x86/hyperv/irqdomain.c of Linux 6.1.176.
