// Empty stand-in for arch/x86/lib/msr-reg-export.c of Linux 6.1.176.
