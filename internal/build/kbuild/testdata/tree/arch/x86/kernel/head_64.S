/* Empty stand-in for arch/x86/kernel/head_64.S of Linux 6.1.176. */
