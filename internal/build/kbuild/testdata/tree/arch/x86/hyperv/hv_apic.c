// Empty stand-in for arch/x86/hyperv/hv_apic.c of Linux 6.1.176.
