// Empty stand-in for arch/x86/pci/legacy.c of Linux 6.1.176.
