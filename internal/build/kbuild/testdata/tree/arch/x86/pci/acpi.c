// Empty stand-in for arch/x86/pci/acpi.c of Linux 6.1.176.
