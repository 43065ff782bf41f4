// Empty stand-in for arch/x86/pci/i386.c of Linux 6.1.176.
