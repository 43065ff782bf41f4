// Empty stand-in for arch/x86/pci/irq.c of Linux 6.1.176.
