// Empty stand-in for arch/x86/pci/mmconfig-shared.c of Linux 6.1.176.
