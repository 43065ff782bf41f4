// Empty stand-in for arch/x86/lib/usercopy.c of Linux 6.1.176.
