// Empty stand-in for arch/x86/lib/cmdline.c of Linux 6.1.176.
