// Empty stand-in for arch/x86/lib/delay.c of Linux 6.1.176.
