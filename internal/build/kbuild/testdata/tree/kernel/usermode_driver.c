// Empty stand-in for kernel/usermode_driver.c of Linux 6.1.176.
