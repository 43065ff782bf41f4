// Empty stand-in for arch/x86/pci/mmconfig_64.c of Linux 6.1.176.
