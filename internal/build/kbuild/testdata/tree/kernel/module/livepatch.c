// Empty stand-in for kernel/module/livepatch.c of Linux 6.1.176.
