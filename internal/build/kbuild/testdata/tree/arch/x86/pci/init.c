// Empty stand-in for arch/x86/pci/init.c of Linux 6.1.176.
