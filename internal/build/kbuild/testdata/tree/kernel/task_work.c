// Empty stand-in for kernel/task_work.c of Linux 6.1.176.
