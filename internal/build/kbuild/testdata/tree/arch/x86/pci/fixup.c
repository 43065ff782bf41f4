// Empty stand-in for arch/x86/pci/fixup.c of Linux 6.1.176.
