// Empty stand-in for arch/x86/hyperv/nested.c of Linux 6.1.176.
