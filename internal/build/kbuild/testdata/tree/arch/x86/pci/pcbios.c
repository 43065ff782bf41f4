// Empty stand-in for arch/x86/pci/pcbios.c of Linux 6.1.176.
