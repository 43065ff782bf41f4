// Empty stand-in for arch/x86/hyperv/mmu.c of Linux 6.1.176.
