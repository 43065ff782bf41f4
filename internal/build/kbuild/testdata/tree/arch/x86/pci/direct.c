// Empty stand-in for arch/x86/pci/direct.c of Linux 6.1.176.
