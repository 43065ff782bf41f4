// Empty stand-in for arch/x86/pci/mmconfig_32.c of Linux 6.1.176.
