// Empty stand-in for arch/x86/hyperv/ivm.c of Linux 6.1.176.
