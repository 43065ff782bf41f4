// Empty stand-in for kernel/power/poweroff.c of Linux 6.1.176.
