// Empty stand-in for arch/x86/lib/usercopy_32.c of Linux 6.1.176.
